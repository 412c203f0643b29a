#include "strategy_consumer/copy_encoder.hpp"

#include <charconv>

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

void encode_copy_row(std::string& out, const StrategyRecord& r) {
  append_copy_field(out, r.symbol);
  out += '\t';
  append_copy_field(out, r.strategy_type);
  out += '\t';
  append_copy_field(out, r.parameters.dump());
  out += '\t';
  out += format_double(r.score);
  out += '\t';
  append_copy_field(out, r.strategy_hash);
  out += '\t';
  append_optional(out, r.discovery_symbol, [&](const std::string& s) { append_copy_field(out, s); });
  out += '\t';
  append_optional(out, r.discovery_start_us, [&](std::int64_t us) { out += format_timestamp_us(us); });
  out += '\t';
  append_optional(out, r.discovery_end_us, [&](std::int64_t us) { out += format_timestamp_us(us); });
  out += '\t';
  append_optional(out, r.performance_metrics, [&](const nlohmann::json& m) { append_copy_field(out, m.dump()); });
}

}  // namespace strategy_consumer
