#pragma once
// The analysts' reads (PostgresClient and through it the Python package): strategies by id, hash, symbol, type and
// score, their count, and the score history. Each is one parameterised SELECT in a read-only transaction on the
// connection given; PostgresSink runs them on its connection (sink.hpp), turning libpqxx's errors into ours.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "strategy_consumer/model/strategy_record.hpp"

namespace pqxx { class connection_base; }

namespace strategy_consumer {

// A row of `strategies` as analysts read it. Timestamps are UTC microseconds since the epoch.
struct StoredStrategy {
  std::string strategy_id;  // UUID text
  StrategyRecord record;
  bool is_active = true;
  std::int64_t first_discovered_at_us = 0;
  std::int64_t last_evaluated_at_us = 0;
  std::int64_t created_at_us = 0;
  std::int64_t updated_at_us = 0;
};

// Which strategies to read; every set field narrows the result. One parameterised SELECT serves all of them.
struct StrategyQuery {
  std::optional<std::string> id_or_hash;  // a strategy_id (UUID text) or a strategy_hash
  std::optional<std::string> symbol;
  std::optional<std::string> strategy_type;
  std::optional<double> min_score;
  bool active_only = false;
  std::optional<std::int64_t> limit;
};

// A row of `strategy_score_history` (history.hpp) with its strategy's type and symbol. The message's own values:
// a field the message did not carry is empty here even though the strategy row kept an earlier value.
struct ScoreHistoryEntry {
  std::string strategy_hash;
  std::string strategy_type;  // from `strategies`; empty if that row is gone
  std::string symbol;
  double score = 0.0;
  std::optional<nlohmann::json> performance_metrics;
  std::optional<std::string> discovery_symbol;
  std::optional<std::int64_t> discovery_start_us;
  std::optional<std::int64_t> discovery_end_us;
  std::optional<std::int64_t> message_timestamp_us;  // the Kafka timestamp
  std::optional<std::string> source_topic;           // empty when not read from Kafka (PostgresClient.bulk_insert)
  std::optional<std::int32_t> source_partition;
  std::optional<std::int64_t> source_offset;
  std::int64_t stored_at_us = 0;
};

// Which history rows to read, oldest first; every set field narrows the result.
struct ScoreHistoryQuery {
  std::optional<std::string> strategy_hash;
  std::optional<std::string> strategy_type;
  std::optional<std::string> symbol;
  std::optional<std::int64_t> since_us;  // stored_at >= since (the partitions before it are not read)
  std::optional<std::int64_t> until_us;  // stored_at < until
  std::optional<std::int64_t> limit;
};

// Strategies, best score first (ties: newest first).
std::vector<StoredStrategy> query_strategies(pqxx::connection_base& connection, const StrategyQuery& query);
std::int64_t query_strategy_count(pqxx::connection_base& connection, const StrategyQuery& query);
// History rows, oldest first.
std::vector<ScoreHistoryEntry> query_score_history(pqxx::connection_base& connection, const ScoreHistoryQuery& query);

}  // namespace strategy_consumer
