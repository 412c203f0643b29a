#pragma once
// The decoded strategy: what one Kafka message becomes once it has passed decoding, and where it came from.
#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace strategy_consumer {

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
