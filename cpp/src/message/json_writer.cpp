#include "strategy_consumer/message/json_writer.hpp"

#include <charconv>
#include <cmath>
#include <cstdint>

namespace strategy_consumer {

std::string format_double(double value) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  return std::string(buf, end);
}

namespace {

using nlohmann::json;

constexpr double kTwoTo53 = 9007199254740992.0;

template <class Integer>
void append_integer(std::string& out, Integer v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

}  // namespace

// Printable ASCII without '"' and '\\' is written as it is; any other string goes through nlohmann's serializer,
// so that its escapes (and its error on invalid UTF-8) stay exactly its own.
void append_json_string(std::string& out, std::string_view s) {
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7F || c == '"' || c == '\\') {
      out += json(std::string(s)).dump();
      return;
    }
  }
  out += '"';
  out += s;
  out += '"';
}

void append_json(std::string& out, const json& v, JsonNumbers numbers) {
  switch (v.type()) {
    case json::value_t::object: {
      out += '{';
      bool first = true;
      for (const auto& [k, item] : v.get_ref<const json::object_t&>()) {  // std::map: keys sorted by bytes
        if (!first) out += ',';
        first = false;
        append_json_string(out, k);
        out += ':';
        append_json(out, item, numbers);
      }
      out += '}';
      return;
    }
    case json::value_t::array: {
      out += '[';
      bool first = true;
      for (const auto& item : v.get_ref<const json::array_t&>()) {
        if (!first) out += ',';
        first = false;
        append_json(out, item, numbers);
      }
      out += ']';
      return;
    }
    case json::value_t::string:
      append_json_string(out, v.get_ref<const std::string&>());
      return;
    case json::value_t::number_integer:
      append_integer(out, v.get<std::int64_t>());
      return;
    case json::value_t::number_unsigned:
      append_integer(out, v.get<std::uint64_t>());
      return;
    case json::value_t::number_float: {
      const double d = v.get<double>();
      if (!std::isfinite(d)) {
        out += "null";  // as dump() writes them
        return;
      }
      if (numbers == JsonNumbers::canonical && std::trunc(d) == d && std::fabs(d) < kTwoTo53) {
        append_integer(out, static_cast<std::int64_t>(d));  // also turns -0.0 into 0
        return;
      }
      char buf[64];
      char* end = nlohmann::detail::to_chars(buf, buf + sizeof buf, d);  // dump()'s own float formatting
      out.append(buf, end);
      return;
    }
    case json::value_t::null:
      out += "null";
      return;
    case json::value_t::boolean:
      out += v.get<bool>() ? "true" : "false";
      return;
    default:  // binary (parsed JSON never holds it) and discarded
      out += v.dump();
      return;
  }
}

}  // namespace strategy_consumer
