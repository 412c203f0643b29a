#pragma once
// The decoded strategy: what one Kafka message becomes once it has passed decoding, and where it came from.
#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace strategy_consumer {

// How `parameters` is stored (--parameters_layout): the named values as they are, or the old TradeStream
// service's layout {protobuf_type, protobuf_data, raw_parameters} with the named values under "named"
// (message/tradestream_compat.hpp).
enum class ParametersLayout { named, tradestream };

// The parameters as a google.protobuf.Any: the protobuf message carried them so, or (for the tradestream
// layout and hash) they were encoded so from the named values.
struct AnyParameters {
  std::string type_url;  // type.googleapis.com/strategies.<Message>
  std::string value;     // the serialized parameter message
};

struct StrategyRecord {
  std::string symbol;
  std::string strategy_type;
  nlohmann::json parameters;                          // always an object
  double score = 0.0;                                 // `score` or `current_score`; finite
  std::optional<nlohmann::json> performance_metrics;  // an object when present
  std::optional<std::string> discovery_symbol;
  std::optional<std::int64_t> discovery_start_us;     // UTC, microseconds since the Unix epoch
  std::optional<std::int64_t> discovery_end_us;
  std::string strategy_hash;                          // given, or the canonical SHA-256 (canonical_hash.hpp)
  std::optional<AnyParameters> parameters_any;        // set when the tradestream options need it
  ParametersLayout parameters_layout = ParametersLayout::named;
  const char* message_format = "";                    // "json" or "protobuf": how the message was decoded
  // The Kafka timestamp of the message (ms since the epoch), when it has one: the order of re-discoveries. A
  // re-discovery older than the one a row holds is not applied (postgres/sink.hpp).
  std::optional<std::int64_t> message_timestamp_ms;
};

// Where a message was read: enough to commit past it and to name it in a dead letter.
struct SourcePosition {
  std::string topic;
  std::int32_t partition = -1;
  std::int64_t offset = -1;
  std::int64_t timestamp_ms = -1;  // the message's Kafka timestamp, -1 when it has none
};

}  // namespace strategy_consumer
