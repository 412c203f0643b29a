#include "strategy_consumer/postgres/client.hpp"

#include <libpq-fe.h>

#include "strategy_consumer/pipeline/batch.hpp"
#include "strategy_consumer/pipeline/fold.hpp"
#include "strategy_consumer/model/errors.hpp"
#include "strategy_consumer/model/timestamp.hpp"

namespace strategy_consumer {

// Returns the connection to the pool however the caller leaves; a broken one is dropped (the sink reconnects).
class PostgresClient::Lease {
 public:
  explicit Lease(PostgresClient& client) : client_(client), sink_(client.acquire()) {}
  ~Lease() { client_.release(std::move(sink_)); }
  PostgresSink* operator->() { return sink_.get(); }

 private:
  PostgresClient& client_;
  std::unique_ptr<PostgresSink> sink_;
};

PostgresClient::PostgresClient(PostgresConfig config, std::shared_ptr<const Catalog> catalog,
                               ValidatorOptions validator_options, bool migrate, DecodeOptions decode_options)
    : config_(std::move(config)),
      inspector_(std::move(catalog), validator_options, decode_options),
      migrate_(migrate) {
  if (config_.min_connections < 0 || config_.max_connections < 1 ||
      config_.min_connections > config_.max_connections) {
    throw ConfigError("min_connections must be between 0 and max_connections, and max_connections at least 1");
  }
  for (int i = 0; i < config_.min_connections; ++i) {
    auto sink = std::make_unique<PostgresSink>(config_, "python-client");
    sink->ensure_connected();
    idle_.push_back(std::move(sink));
    ++open_;
  }
}

PostgresClient::~PostgresClient() = default;

std::unique_ptr<PostgresSink> PostgresClient::acquire() {
  std::unique_lock lock(mutex_);
  available_.wait(lock, [&] { return !idle_.empty() || open_ < config_.max_connections; });
  if (!idle_.empty()) {
    auto sink = std::move(idle_.back());
    idle_.pop_back();
    return sink;
  }
  ++open_;
  return std::make_unique<PostgresSink>(config_, "python-client");
}

void PostgresClient::release(std::unique_ptr<PostgresSink> sink) {
  {
    std::lock_guard lock(mutex_);
    idle_.push_back(std::move(sink));
  }
  available_.notify_one();
}

void PostgresClient::migrate() {
  Lease lease(*this);
  lease->prepare_schema(true);
  std::lock_guard lock(mutex_);
  migrated_ = true;
}

BulkInsertResult PostgresClient::bulk_insert(const std::vector<std::string>& messages) {
  BulkInsertResult result;
  std::vector<BatchEntry> entries;
  std::vector<std::size_t> input_index;  // entries[i] came from messages[input_index[i]]
  const auto now = now_us();
  for (std::size_t i = 0; i < messages.size(); ++i) {
    Inspection inspection = inspector_.inspect(messages[i], now);
    if (inspection.ok()) {
      entries.push_back({std::move(inspection.record), {}, {}});
      input_index.push_back(i);
    } else {
      result.failures.push_back({i, inspection.stage, std::move(inspection.reasons)});
    }
  }
  if (!entries.empty()) {
    ensure_schema();
    const auto rows = fold_by_hash(entries);
    std::vector<const StrategyRecord*> records;
    std::vector<RowMessage> history;  // each input its own history row (no Kafka position)
    for (std::size_t r = 0; r < rows.size(); ++r) {
      records.push_back(&rows[r].record(entries));
      for (const auto member : rows[r].members) history.push_back({r, &entries[member].record, nullptr});
    }
    Lease lease(*this);
    WriteResult written = lease->write_batch(records, {}, {}, history);
    result.inserted = written.inserted;
    result.updated = written.updated;
    // A refused row: every strategy folded into it failed, with the row's reason.
    std::vector<const RowRejection*> refused(entries.size(), nullptr);
    for (const auto& r : written.rejected) {
      for (auto member : rows[r.index].members) refused[member] = &r;
    }
    for (std::size_t e = 0; e < entries.size(); ++e) {
      if (!refused[e]) {
        ++result.success_count;
        continue;
      }
      result.failures.push_back(
          {input_index[e], "database", {{"database." + refused[e]->sqlstate, "", "", refused[e]->message}}});
    }
  }
  std::sort(result.failures.begin(), result.failures.end(),
            [](const BulkInsertFailure& a, const BulkInsertFailure& b) { return a.index < b.index; });
  result.failure_count = result.failures.size();
  return result;
}

void PostgresClient::ensure_schema() {
  bool needed;
  {
    std::lock_guard lock(mutex_);
    needed = migrate_ && !migrated_;
  }
  if (needed) migrate();
}

std::vector<StoredStrategy> PostgresClient::find(const StrategyQuery& query) {
  ensure_schema();
  Lease lease(*this);
  return lease->find_strategies(query);
}

std::int64_t PostgresClient::count(const StrategyQuery& query) {
  ensure_schema();
  Lease lease(*this);
  return lease->count_strategies(query);
}

std::vector<ScoreHistoryEntry> PostgresClient::score_history(const ScoreHistoryQuery& query) {
  ensure_schema();
  Lease lease(*this);
  return lease->score_history(query);
}

PostgresConfig postgres_config_from_dsn(const std::string& dsn) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(dsn.c_str(), &error);
  if (!options) {
    std::string what = error ? error : "out of memory";
    PQfreemem(error);
    // libpq's message may quote the string, password included: say only what kind of problem it is.
    throw ConfigError("cannot parse the PostgreSQL connection string");
  }
  PostgresConfig config;
  for (PQconninfoOption* o = options; o->keyword; ++o) {
    if (!o->val) continue;
    const std::string key = o->keyword, val = o->val;
    if (key == "host") config.host = val;
    else if (key == "port") config.port = std::stoi(val);
    else if (key == "dbname") config.database = val;
    else if (key == "user") config.user = val;
    else if (key == "password") config.password = val;
    else if (key == "connect_timeout") config.connect_timeout_seconds = std::stoi(val);
    else if (key == "application_name") config.application_name = val;
  }
  PQconninfoFree(options);
  return config;
}

}  // namespace strategy_consumer
