#pragma once
// Message decoding, both wire formats: one Kafka value to a StrategyRecord, or the reasons it is not one.
//   --message_format=auto (default): a value whose first non-blank byte is `{` is JSON (json_decoder.hpp),
//     anything else is tried as the binary protobuf discovery.DiscoveredStrategy (protobuf_decoder.hpp); UTF-8
//     text that is not protobuf and starts like another JSON value ([, ", a digit, -, true, false, null, or
//     "not json") gets JSON's reasons (format.object, format.json) instead of format.unrecognized;
//   json / protobuf: every value is read as that format.
// The catalog, when given, says which parameters a type has (protobuf: which fields at their default value,
// omitted on the wire, are still parameters) and which parameter message belongs to a type.
// The tradestream hash and layout (tradestream_compat.hpp) are applied after validation, by the inspector.
#include <cstddef>
#include <string_view>

#include "strategy_consumer/model/reason.hpp"
#include "strategy_consumer/model/strategy_record.hpp"

namespace strategy_consumer {

class Catalog;

enum class MessageFormat { auto_detect, json, protobuf };
// --strategy_hash_scheme: canonical (canonical_hash.hpp) or tradestream (SHA-256 of the serialized Any).
enum class HashScheme { canonical, tradestream };

struct DecodeOptions {
  std::size_t max_message_bytes = 1 << 20;  // larger values are rejected before parsing
  std::size_t max_depth = 64;               // deeper JSON is rejected while parsing, never recursed into
  MessageFormat format = MessageFormat::auto_detect;
  ParametersLayout parameters_layout = ParametersLayout::named;
  HashScheme hash_scheme = HashScheme::canonical;
};

struct Decoded {
  StrategyRecord record;     // meaningful only when ok()
  Reasons reasons;
  const char* format = "";   // the format tried: "json" or "protobuf"
  bool hash_given = false;   // the message carried its own strategy_hash (JSON only)
  bool ok() const { return reasons.empty(); }
};

// The flag values; throw ConfigError naming the flag for any other text.
MessageFormat parse_message_format(std::string_view text);
ParametersLayout parse_parameters_layout(std::string_view text);
HashScheme parse_hash_scheme(std::string_view text);

// What every format checks before parsing: false, with the reason (format.empty, format.size), when the value is
// empty or larger than options.max_message_bytes.
bool value_size_acceptable(std::string_view payload, const DecodeOptions& options, Reasons& reasons);

// The format `auto` reads the value as: JSON when its first non-blank byte is `{`.
MessageFormat detect_message_format(std::string_view payload);

// Decodes in the format the options say (record.message_format tells which; record.parameters_layout is set from
// the options).
Decoded decode_message(std::string_view payload, const DecodeOptions& options = {}, const Catalog* catalog = nullptr);

}  // namespace strategy_consumer
