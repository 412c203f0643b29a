#include "strategy_consumer/postgres/migrations.hpp"

#include <pqxx/pqxx>
#include <set>
#include <spdlog/spdlog.h>

#include "strategy_consumer/model/errors.hpp"

namespace strategy_consumer {
namespace {

// Any constant: replicas starting together take turns applying migrations.
constexpr long long kMigrationLockKey = 0x5354524154;

const char* const kCreateMigrationsTable =
    "CREATE TABLE IF NOT EXISTS strategy_consumer_migrations ("
    " version INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " applied_at TIMESTAMP NOT NULL DEFAULT NOW())";

std::set<int> applied_versions(pqxx::transaction_base& txn) {
  std::set<int> out;
  auto exists = txn.exec("SELECT to_regclass('strategy_consumer_migrations') IS NOT NULL");
  if (!exists[0][0].as<bool>()) return out;
  for (const auto& row : txn.exec("SELECT version FROM strategy_consumer_migrations")) out.insert(row[0].as<int>());
  return out;
}

}  // namespace

const std::vector<Migration>& migrations() {
  // IF NOT EXISTS throughout: a database the original Python service created is adopted as it stands.
  static const std::vector<Migration> kMigrations{
      {1, "strategies table of the original production schema",
       "CREATE TABLE IF NOT EXISTS strategies ("
       " strategy_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),"
       " symbol VARCHAR NOT NULL,"
       " strategy_type VARCHAR NOT NULL,"
       " parameters JSONB NOT NULL,"
       " current_score DOUBLE PRECISION NOT NULL,"
       " first_discovered_at TIMESTAMP NOT NULL DEFAULT NOW(),"
       " last_evaluated_at TIMESTAMP NOT NULL DEFAULT NOW(),"
       " is_active BOOLEAN NOT NULL DEFAULT TRUE,"
       " strategy_hash VARCHAR UNIQUE NOT NULL,"
       " discovery_symbol VARCHAR,"
       " discovery_start_time TIMESTAMP,"
       " discovery_end_time TIMESTAMP,"
       " created_at TIMESTAMP NOT NULL DEFAULT NOW(),"
       " updated_at TIMESTAMP NOT NULL DEFAULT NOW());"
       "CREATE INDEX IF NOT EXISTS idx_strategies_symbol ON strategies(symbol);"
       "CREATE INDEX IF NOT EXISTS idx_strategies_strategy_type ON strategies(strategy_type);"
       "CREATE INDEX IF NOT EXISTS idx_strategies_current_score ON strategies(current_score);"
       "CREATE INDEX IF NOT EXISTS idx_strategies_is_active ON strategies(is_active);"},
      {2, "performance_metrics column",
       "ALTER TABLE strategies ADD COLUMN IF NOT EXISTS performance_metrics JSONB"},
      {3, "offsets stored with the rows they produced",
       "CREATE TABLE IF NOT EXISTS strategy_consumer_offsets ("
       " group_id TEXT NOT NULL,"
       " topic TEXT NOT NULL,"
       " kafka_partition INTEGER NOT NULL,"
       " next_offset BIGINT NOT NULL,"
       " updated_at TIMESTAMP NOT NULL DEFAULT NOW(),"
       " PRIMARY KEY (group_id, topic, kafka_partition))"},
      {4, "the Kafka timestamp of the message a row holds: re-discoveries apply in timestamp order",
       "ALTER TABLE strategies ADD COLUMN IF NOT EXISTS message_timestamp TIMESTAMP"},
      // Month partitions are created by postgres/history.cpp (they depend on the date); DEFAULT is the safety net.
      {5, "score history: every applied discovery, partitioned by month of stored_at",
       "CREATE TABLE IF NOT EXISTS strategy_score_history ("
       " strategy_hash VARCHAR NOT NULL,"
       " score DOUBLE PRECISION NOT NULL,"
       " performance_metrics JSONB,"
       " discovery_symbol VARCHAR,"
       " discovery_start_time TIMESTAMP,"
       " discovery_end_time TIMESTAMP,"
       " message_timestamp TIMESTAMP,"
       " source_topic TEXT,"
       " source_partition INTEGER,"
       " source_offset BIGINT,"
       " stored_at TIMESTAMP NOT NULL DEFAULT NOW()"
       ") PARTITION BY RANGE (stored_at);"
       "CREATE INDEX IF NOT EXISTS idx_strategy_score_history_hash ON strategy_score_history (strategy_hash, stored_at);"
       "CREATE TABLE IF NOT EXISTS strategy_score_history_default PARTITION OF strategy_score_history DEFAULT"},
  };
  return kMigrations;
}

int latest_schema_version() { return migrations().back().version; }

void apply_migrations(pqxx::connection_base& connection) {
  pqxx::work txn(connection, "migrate");
  txn.exec("SELECT pg_advisory_xact_lock(" + std::to_string(kMigrationLockKey) + ")");
  txn.exec(kCreateMigrationsTable);
  const auto done = applied_versions(txn);
  for (const auto& m : migrations()) {
    if (done.count(m.version)) continue;
    spdlog::info("applying schema migration {}: {}", m.version, m.name);
    txn.exec(m.sql);
    txn.exec_params("INSERT INTO strategy_consumer_migrations (version, name) VALUES ($1, $2)", m.version, m.name);
  }
  txn.commit();
}

void verify_migrations(pqxx::connection_base& connection) {
  pqxx::read_transaction txn(connection, "verify_schema");
  const auto done = applied_versions(txn);
  std::string missing;
  for (const auto& m : migrations()) {
    if (!done.count(m.version)) missing += (missing.empty() ? "" : ", ") + std::to_string(m.version);
  }
  if (!missing.empty()) {
    throw ConfigError("--no_migrate: the database lacks schema migrations " + missing +
                      "; run once without --no_migrate to apply them");
  }
}

}  // namespace strategy_consumer
