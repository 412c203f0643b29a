#include "strategy_consumer/copy_encoder.hpp"

#include <charconv>
#include <cmath>
#include <cstdint>

#include "strategy_consumer/timestamp.hpp"

namespace strategy_consumer {
namespace {

void append_null(std::string& out) { out += "\\N"; }

template <class T>
void append_optional(std::string& out, const std::optional<T>& value, auto&& encode) {
  if (value) encode(*value);
  else append_null(out);
}

}  // namespace

void append_copy_field(std::string& out, std::string_view text) {
  std::size_t run = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const char* esc = nullptr;
    switch (c) {
      case '\\': esc = "\\\\"; break;
      case '\t': esc = "\\t"; break;
      case '\n': esc = "\\n"; break;
      case '\r': esc = "\\r"; break;
      default: continue;
    }
    out.append(text.data() + run, i - run);
    out += esc;
    run = i + 1;
  }
  out.append(text.data() + run, text.size() - run);
}

std::string format_double(double value) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  return std::string(buf, end);
}

namespace {

void append_double(std::string& out, double value) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  out.append(buf, end);
}

template <class Integer>
void append_integer(std::string& out, Integer v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

// Printable ASCII without '"' and '\\' is written as it is; any other string goes through nlohmann's serializer,
// so that its escapes (and its error on invalid UTF-8) stay exactly its own.
void append_json_string(std::string& out, const std::string& s) {
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7F || c == '"' || c == '\\') {
      out += nlohmann::json(s).dump();
      return;
    }
  }
  out += '"';
  out += s;
  out += '"';
}

// A JSON value as a COPY field: its dump, with the backslashes of its escapes doubled (a dump never holds a raw
// tab, newline or carriage return). Usually there are none, and the dump is written in place.
void append_json_field(std::string& out, const nlohmann::json& value) {
  const std::size_t start = out.size();
  try {
    append_json(out, value);
  } catch (...) {  // a string that is not UTF-8: leave `out` as it was, as dump() throwing first did
    out.resize(start);
    throw;
  }
  if (out.find('\\', start) == std::string::npos) return;
  thread_local std::string dumped;
  dumped.assign(out, start, std::string::npos);
  out.resize(start);
  append_copy_field(out, dumped);
}

}  // namespace

void append_json(std::string& out, const nlohmann::json& v) {
  using nlohmann::json;
  switch (v.type()) {
    case json::value_t::object: {
      out += '{';
      bool first = true;
      for (const auto& [k, item] : v.get_ref<const json::object_t&>()) {
        if (!first) out += ',';
        first = false;
        append_json_string(out, k);
        out += ':';
        append_json(out, item);
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
        append_json(out, item);
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
        out += "null";
        return;
      }
      char buf[64];
      char* end = nlohmann::detail::to_chars(buf, buf + sizeof buf, d);  // json::dump's own float formatting
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

void encode_copy_row(std::string& out, const StrategyRecord& r) {
  append_copy_field(out, r.symbol);
  out += '\t';
  append_copy_field(out, r.strategy_type);
  out += '\t';
  append_json_field(out, r.parameters);
  out += '\t';
  append_double(out, r.score);
  out += '\t';
  append_copy_field(out, r.strategy_hash);
  out += '\t';
  append_optional(out, r.discovery_symbol, [&](const std::string& s) { append_copy_field(out, s); });
  out += '\t';
  append_optional(out, r.discovery_start_us, [&](std::int64_t us) { append_timestamp_us(out, us); });
  out += '\t';
  append_optional(out, r.discovery_end_us, [&](std::int64_t us) { append_timestamp_us(out, us); });
  out += '\t';
  append_optional(out, r.performance_metrics, [&](const nlohmann::json& m) { append_json_field(out, m); });
}

}  // namespace strategy_consumer
