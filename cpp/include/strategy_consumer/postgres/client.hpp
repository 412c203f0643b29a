#pragma once
// PostgresClient: what scripts and notebooks use. A thread-safe pool of PostgresSink connections (at most
// max_connections; min_connections opened at construction), the service's own write path for bulk inserts
// (inspect each message, then COPY + one INSERT ... ON CONFLICT per call), and the analysts' reads.
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "strategy_consumer/postgres/sink.hpp"
#include "strategy_consumer/message/strategy_inspector.hpp"

namespace strategy_consumer {

struct BulkInsertFailure {
  std::size_t index = 0;  // position in the input
  std::string stage;      // decode, validate or database
  Reasons reasons;
};

struct BulkInsertResult {
  std::size_t success_count = 0;  // inputs stored (a strategy given twice counts twice; its last values win)
  std::size_t failure_count = 0;
  std::size_t inserted = 0;       // rows created
  std::size_t updated = 0;        // rows that existed and were updated
  std::vector<BulkInsertFailure> failures;
};

class PostgresClient {
 public:
  // `migrate`: apply the schema migrations before the first use (as the service does at start).
  explicit PostgresClient(PostgresConfig config, std::shared_ptr<const Catalog> catalog = Catalog::builtin(),
                          ValidatorOptions validator_options = {}, bool migrate = true,
                          DecodeOptions decode_options = {});
  ~PostgresClient();

  // Messages are JSON texts or protobuf DiscoveredStrategy bytes (decode_options.format), each one strategy. Refused ones are reported, never stored; the rest are
  // written in one transaction.
  BulkInsertResult bulk_insert(const std::vector<std::string>& messages);
  std::vector<StoredStrategy> find(const StrategyQuery& query);
  std::int64_t count(const StrategyQuery& query);
  std::vector<ScoreHistoryEntry> score_history(const ScoreHistoryQuery& query);
  void migrate();
  const PostgresConfig& config() const { return config_; }

 private:
  class Lease;
  void ensure_schema();
  std::unique_ptr<PostgresSink> acquire();
  void release(std::unique_ptr<PostgresSink> sink);

  PostgresConfig config_;
  StrategyInspector inspector_;
  bool migrate_;
  bool migrated_ = false;
  std::mutex mutex_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<PostgresSink>> idle_;
  int open_ = 0;
};

// libpq connection string or URI ("host=... dbname=..." / "postgresql://user@host:5432/db") to a config.
// Throws ConfigError when libpq cannot parse it.
PostgresConfig postgres_config_from_dsn(const std::string& dsn);

}  // namespace strategy_consumer
