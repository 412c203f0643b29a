#include "strategy_consumer/postgres/copy_encoder.hpp"

#include <charconv>
#include <cstdint>

#include "strategy_consumer/message/json_writer.hpp"
#include "strategy_consumer/message/tradestream_compat.hpp"
#include "strategy_consumer/model/timestamp.hpp"

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

namespace {

void append_double(std::string& out, double value) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  out.append(buf, end);
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

void encode_copy_row(std::string& out, const StrategyRecord& r) {
  append_copy_field(out, r.symbol);
  out += '\t';
  append_copy_field(out, r.strategy_type);
  out += '\t';
  if (r.parameters_layout == ParametersLayout::tradestream && r.parameters_any) {
    append_json_field(out, tradestream_parameters(*r.parameters_any, r.parameters));
  } else {
    append_json_field(out, r.parameters);
  }
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
  out += '\t';
  append_optional(out, r.message_timestamp_ms, [&](std::int64_t ms) { append_timestamp_us(out, ms * 1000); });
}

void encode_history_fields(std::string& out, const SourcePosition* source, bool is_row, bool in_history) {
  if (source && source->partition >= 0) {
    out += '\t';
    append_copy_field(out, source->topic);
    out += '\t';
    out += std::to_string(source->partition);
    out += '\t';
    out += std::to_string(source->offset);
  } else {
    out += "\t\\N\t\\N\t\\N";
  }
  out += is_row ? "\tt" : "\tf";
  out += in_history ? "\tt" : "\tf";
}

}  // namespace strategy_consumer
