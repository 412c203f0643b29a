#include "strategy_consumer/message/decoding.hpp"

#include "strategy_consumer/message/json_decoder.hpp"
#include "strategy_consumer/message/protobuf_decoder.hpp"
#include "strategy_consumer/model/errors.hpp"
#include "strategy_consumer/model/text.hpp"

namespace strategy_consumer {
namespace {

// Text that is not protobuf but starts like a JSON value other than an object ([1, 2], "x", null, 12, not json):
// JSON's reasons say best what is wrong with it.
bool json_like_text(std::string_view payload) {
  const auto start = payload.find_first_not_of(" \t\n\r");
  if (start == std::string_view::npos || !is_valid_utf8(payload)) return false;
  const char c = payload[start];
  return c == '[' || c == '"' || c == '-' || (c >= '0' && c <= '9') || c == 't' || c == 'f' || c == 'n';
}

bool structural_failure(const Decoded& d) {
  if (d.ok()) return false;
  const std::string& rule = d.reasons.front().rule;
  return rule == "format.unrecognized" || rule == "protobuf.truncated" || rule == "protobuf.malformed" ||
         rule == "protobuf.message_type";
}

}  // namespace

bool value_size_acceptable(std::string_view payload, const DecodeOptions& options, Reasons& reasons) {
  if (payload.empty()) {
    reasons.push_back({"format.empty", "", "", "message value is empty"});
    return false;
  }
  if (payload.size() > options.max_message_bytes) {
    reasons.push_back({"format.size", "", std::to_string(payload.size()) + " bytes",
                       "message is larger than " + std::to_string(options.max_message_bytes) + " bytes"});
    return false;
  }
  return true;
}

MessageFormat parse_message_format(std::string_view text) {
  if (text == "auto") return MessageFormat::auto_detect;
  if (text == "json") return MessageFormat::json;
  if (text == "protobuf") return MessageFormat::protobuf;
  throw ConfigError("--message_format must be auto, json or protobuf, not '" + std::string(text) + "'");
}

ParametersLayout parse_parameters_layout(std::string_view text) {
  if (text == "named") return ParametersLayout::named;
  if (text == "tradestream") return ParametersLayout::tradestream;
  throw ConfigError("--parameters_layout must be named or tradestream, not '" + std::string(text) + "'");
}

HashScheme parse_hash_scheme(std::string_view text) {
  if (text == "canonical") return HashScheme::canonical;
  if (text == "tradestream") return HashScheme::tradestream;
  throw ConfigError("--strategy_hash_scheme must be canonical or tradestream, not '" + std::string(text) + "'");
}

MessageFormat detect_message_format(std::string_view payload) {
  for (char c : payload) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') continue;
    return c == '{' ? MessageFormat::json : MessageFormat::protobuf;
  }
  return MessageFormat::json;  // empty or blank: JSON's reasons (format.empty, format.json) explain it best
}

Decoded decode_message(std::string_view payload, const DecodeOptions& options, const Catalog* catalog) {
  MessageFormat format = options.format;
  if (format == MessageFormat::auto_detect) format = detect_message_format(payload);
  Decoded out;
  if (format == MessageFormat::json) {
    out = decode_strategy(payload, options);
    out.format = "json";
  } else {
    out = decode_discovered_strategy(payload, options, catalog);
    if (options.format == MessageFormat::auto_detect && structural_failure(out) && json_like_text(payload)) {
      out = decode_strategy(payload, options);
      out.format = "json";
    }
  }
  out.record.message_format = out.format;
  out.record.parameters_layout = options.parameters_layout;
  return out;
}

}  // namespace strategy_consumer
