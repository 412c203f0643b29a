#include "strategy_consumer/postgres/sink.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <mutex>

#include <pqxx/pqxx>
#include <pqxx/tablewriter>
#include <spdlog/spdlog.h>

#include "strategy_consumer/postgres/copy_encoder.hpp"
#include "strategy_consumer/model/errors.hpp"
#include "strategy_consumer/postgres/history.hpp"
#include "strategy_consumer/postgres/migrations.hpp"
#include "strategy_consumer/model/timestamp.hpp"
#include "strategy_consumer/postgres/strategy_specs.hpp"
#include "strategy_consumer/postgres/session.hpp"
#include "strategy_consumer/postgres/statements.hpp"

namespace strategy_consumer {
namespace {

std::string quote_conninfo(const std::string& v) {
  std::string out = "'";
  for (char c : v) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

constexpr std::size_t kCopyChunkBytes = 256 * 1024;

// kCopyColumns (or kHistoryCopyColumns) as the names pqxx::tablewriter takes.
std::vector<std::string> copy_column_names(std::string_view columns) {
  std::vector<std::string> out;
  std::string_view rest = columns;
  while (!rest.empty()) {
    const auto comma = rest.find(", ");
    out.emplace_back(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 2);
  }
  return out;
}

bool is_row_error(const std::string& sqlstate) {
  const std::string cls = sqlstate.substr(0, 2);
  return cls == "22" || cls == "23" || cls == "54";
}

template <class T>
std::string array_literal(const std::vector<T>& values, auto&& show) {
  std::string out = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i) out += ',';
    out += show(values[i]);
  }
  return out + "}";
}

}  // namespace

std::string PostgresConfig::connection_string() const {
  std::string s = "host=" + quote_conninfo(host) + " port=" + std::to_string(port) + " dbname=" +
                  quote_conninfo(database) + " user=" + quote_conninfo(user) +
                  " connect_timeout=" + std::to_string(connect_timeout_seconds) +
                  " application_name=" + quote_conninfo(application_name) +
                  // Version-dependent settings are SET after connecting (session.hpp): a setting the server
                  // does not know here would refuse every connection.
                  " client_encoding=UTF8 options='-c TimeZone=UTC'"
                  " keepalives=1 keepalives_idle=30 keepalives_interval=10 keepalives_count=3"
                  " tcp_user_timeout=60000";
  if (!password.empty()) s += " password=" + quote_conninfo(password);
  return s;
}

std::string PostgresConfig::describe() const {
  return user + "@" + host + ":" + std::to_string(port) + "/" + database;
}

// What the score history stages for one row besides the row itself (history.hpp): whether the row's own line is
// a history message (a row of one message, or a record of unknown origin) and where it was read; for a row folded
// from several messages, each message the fold applied, with its own values and source.
struct RowHistory {
  bool row_in_history = false;
  const SourcePosition* row_source = nullptr;
  std::vector<const RowMessage*> messages;
};

std::vector<RowHistory> plan_history(std::size_t rows, const std::vector<RowMessage>& messages) {
  std::vector<RowHistory> plan(rows);
  if (messages.empty()) {
    for (auto& r : plan) r.row_in_history = true;
    return plan;
  }
  const std::vector<bool> applied = applied_in_fold(messages);
  for (std::size_t i = 0; i < messages.size(); ++i) {
    if (messages[i].row < rows && applied[i]) plan[messages[i].row].messages.push_back(&messages[i]);
  }
  for (auto& r : plan) {
    if (r.messages.size() != 1 || r.messages.front()->record == nullptr) continue;
    r.row_in_history = true;  // the row is the message itself: one line
    r.row_source = r.messages.front()->source;
    r.messages.clear();
  }
  return plan;
}

constexpr std::int64_t kRetentionIntervalUs = 3600LL * 1000000;

struct PostgresSink::Impl {
  std::unique_ptr<pqxx::connection> conn;
  explicit Impl(const std::string& database) : specs(database) {}
  StrategySpecs specs;  // the old service's strategy_specs rows, where that table exists
  // The last write_batch whose COMMIT had an unknown outcome: its offsets and the result it would have had.
  struct InDoubt {
    std::vector<PartitionOffset> offsets;
    WriteResult result;
  };
  std::optional<InDoubt> in_doubt;
  // The connection's socket, for interrupt() from another thread; -1 while there is no connection. Set and
  // cleared under the mutex, so interrupt() never shuts down a descriptor the system has handed to another file.
  std::mutex socket_mutex;
  int socket = -1;
  // Score history upkeep (history.hpp): the month whose partitions this sink has made sure of, and when
  // retention runs next.
  std::optional<HistoryMonth> partitions_month;
  std::int64_t retention_due_us = 0;

  void maintain_history(const PostgresConfig& config) {
    const std::int64_t now = now_us();
    if (config.score_history) {
      const HistoryMonth month = month_of_us(now);
      if (partitions_month != month && ensure_history_partitions(*conn, now)) partitions_month = month;
    }
    if (config.score_history_retention_days > 0 && now >= retention_due_us) {
      drop_expired_history(*conn, now, config.score_history_retention_days);
      retention_due_us = now + kRetentionIntervalUs;
    }
  }

  void connected(std::unique_ptr<pqxx::connection> c) {
    std::lock_guard lock(socket_mutex);
    conn = std::move(c);
    socket = conn->sock();
  }

  void drop() {
    std::lock_guard lock(socket_mutex);
    socket = -1;
    conn.reset();
    specs.reset();
  }

  // Turns what libpqxx threw into our DatabaseError; a broken connection is dropped so the next call reconnects.
  [[noreturn]] void rethrow(const std::string& operation) {
    try {
      throw;
    } catch (const Error&) {
      throw;
    } catch (const pqxx::sql_error& e) {
      const bool retryable = is_retryable_sqlstate(e.sqlstate());
      if (retryable || !conn || !conn->is_open()) drop();
      throw DatabaseError(operation + ": " + e.what(), e.sqlstate(), retryable);
    } catch (const pqxx::in_doubt_error& e) {
      drop();  // the COMMIT may or may not have happened: the offsets fence settles it on the next write
      throw DatabaseError(operation + ": outcome of COMMIT unknown: " + e.what(), "", true);
    } catch (const pqxx::broken_connection& e) {
      drop();
      throw DatabaseError(operation + ": connection lost: " + e.what(), "08006", true);
    } catch (const pqxx::failure& e) {
      drop();
      throw DatabaseError(operation + ": " + e.what(), "", true);
    }
  }

  // COPYs the rows of `indices` into the staging table and upserts them. `clear_first`: rows an earlier range
  // of this transaction staged are still there (they go at COMMIT), so they are deleted first.
  // `history`: empty with the score history off, else one entry per record (plan_history).
  void copy_and_upsert(pqxx::transaction_base& txn, const std::vector<const StrategyRecord*>& records,
                       const std::vector<std::size_t>& indices, WriteResult& result, bool clear_first,
                       const std::vector<RowHistory>& history) {
    if (clear_first) txn.exec(std::string(statements::kClearStaging));
    const bool with_history = !history.empty();
    {
      // tablewriter, not stream_to: in libpqxx 6.4 only tablewriter takes lines we encoded ourselves
      // (copy_encoder.hpp), and it takes many at once: the batch goes out in few large CopyData messages.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
      static const std::vector<std::string> kColumns = copy_column_names(statements::kCopyColumns);
      static const std::vector<std::string> kHistoryColumns = copy_column_names(statements::kHistoryCopyColumns);
      const auto& columns = with_history ? kHistoryColumns : kColumns;
      pqxx::tablewriter writer(txn, std::string(statements::kStagingTable), columns.begin(), columns.end());
#pragma GCC diagnostic pop
      std::string chunk;
      for (std::size_t n = 0; n < indices.size(); ++n) {
        if (!chunk.empty()) chunk += '\n';
        encode_copy_row(chunk, *records[indices[n]]);
        if (with_history) {
          const RowHistory& h = history[indices[n]];
          encode_history_fields(chunk, h.row_source, true, h.row_in_history);
          for (const RowMessage* m : h.messages) {
            chunk += '\n';
            encode_copy_row(chunk, *m->record);
            encode_history_fields(chunk, m->source, false, true);
          }
        }
        if (chunk.size() >= kCopyChunkBytes) {
          writer.write_raw_line(chunk);  // the writer ends it with a newline
          chunk.clear();
        }
      }
      if (!chunk.empty()) writer.write_raw_line(chunk);
      writer.complete();
    }
    auto counts = txn.exec(std::string(with_history ? statements::kUpsertWithHistory : statements::kUpsert));
    const auto inserted = counts[0][0].as<std::size_t>();
    const auto applied = counts[0][1].as<std::size_t>();
    if (with_history) result.history += counts[0][2].as<std::size_t>();
    result.inserted += inserted;
    result.updated += applied - inserted;
    result.outdated += indices.size() - applied;
  }

  static void reject(const pqxx::sql_error& e, std::size_t index, WriteResult& result) {
    std::string message = e.what();
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
    result.rejected.push_back({index, e.sqlstate(), message});
  }

  // Writes the rows of `indices` in a savepoint; refused rows are found by bisection. Every range after the
  // transaction's first clears the staging table first (`staged`: whether a range has staged rows before).
  void write_range(pqxx::dbtransaction& txn, const std::vector<const StrategyRecord*>& records,
                   const std::vector<std::size_t>& indices, WriteResult& result, bool& staged,
                   const std::vector<RowHistory>& history) {
    if (indices.empty()) return;
    ++result.row_statements;
    try {
      pqxx::subtransaction sub(txn, "rows");
      copy_and_upsert(sub, records, indices, result, staged, history);
      sub.commit();
      staged = true;
      return;
    } catch (const pqxx::sql_error& e) {
      if (!is_row_error(e.sqlstate())) throw;
      if (indices.size() == 1) {
        reject(e, indices[0], result);
        return;
      }
    }
    bisect(txn, records, indices, result, staged, history);
  }

  void bisect(pqxx::dbtransaction& txn, const std::vector<const StrategyRecord*>& records,
              const std::vector<std::size_t>& indices, WriteResult& result, bool& staged,
              const std::vector<RowHistory>& history) {
    const auto mid = indices.begin() + static_cast<std::ptrdiff_t>(indices.size() / 2);
    write_range(txn, records, {indices.begin(), mid}, result, staged, history);
    write_range(txn, records, {mid, indices.end()}, result, staged, history);
  }
};

PostgresSink::PostgresSink(PostgresConfig config, std::string group_id, WriteMode mode)
    : config_(std::move(config)),
      group_id_(std::move(group_id)),
      mode_(mode),
      impl_(std::make_unique<Impl>(config_.describe())) {}

PostgresSink::~PostgresSink() = default;

void PostgresSink::ensure_connected() {
  if (impl_->conn && impl_->conn->is_open()) return;
  try {
    impl_->connected(std::make_unique<pqxx::connection>(config_.connection_string()));
    const SessionSettings session = session_settings(config_, impl_->conn->server_version());
    static std::atomic<bool> warned{false};
    if (!session.warnings.empty() && !warned.exchange(true)) {
      for (const auto& w : session.warnings) spdlog::warn("{}", w);
    }
    pqxx::nontransaction setup(*impl_->conn);
    std::vector<std::string> names, values;
    for (const auto& [name, value] : session.settings) {
      names.push_back(name);
      values.push_back(value);
    }
    auto text = [](const std::string& v) { return v; };
    setup.exec_params("SELECT set_config(n, v, false) FROM unnest($1::text[], $2::text[]) AS s(n, v)",
                      array_literal(names, text), array_literal(values, text));
    setup.exec(std::string(statements::kCreateStaging));
    spdlog::info("connected to PostgreSQL {}", config_.describe());
  } catch (const pqxx::broken_connection& e) {
    impl_->drop();
    // libpq's text names host and port, never the password.
    throw DatabaseError("cannot connect to PostgreSQL " + config_.describe() + ": " + e.what(), "08001", true);
  } catch (...) {
    impl_->rethrow("connect");
  }
}

void PostgresSink::disconnect() { impl_->drop(); }

void PostgresSink::interrupt() noexcept {
  std::lock_guard lock(impl_->socket_mutex);
  // libpq's blocked read or write returns at once; the server sees the connection close and rolls back.
  if (impl_->socket >= 0) ::shutdown(impl_->socket, SHUT_RDWR);
}

bool PostgresSink::ping() {
  try {
    ensure_connected();
    pqxx::nontransaction txn(*impl_->conn);
    txn.exec("SELECT 1");
    return true;
  } catch (...) {
    impl_->drop();
    return false;
  }
}

void PostgresSink::prepare_schema(bool apply) {
  ensure_connected();
  try {
    if (apply) apply_migrations(*impl_->conn);
    else verify_migrations(*impl_->conn);
    impl_->maintain_history(config_);
  } catch (...) {
    impl_->rethrow("schema migration");
  }
}

std::map<std::int32_t, std::int64_t> PostgresSink::load_offsets(const std::string& topic,
                                                                const std::vector<std::int32_t>& partitions) {
  ensure_connected();
  std::map<std::int32_t, std::int64_t> out;
  try {
    pqxx::read_transaction txn(*impl_->conn, "load_offsets");
    auto rows = txn.exec_params(
        std::string(statements::kLoadOffsets), group_id_, topic, array_literal(partitions, [](std::int32_t p) { return std::to_string(p); }));
    for (const auto& row : rows) out[row[0].as<std::int32_t>()] = row[1].as<std::int64_t>();
  } catch (...) {
    impl_->rethrow("load offsets");
  }
  return out;
}

namespace {

bool same_offsets(const std::vector<PartitionOffset>& a, const std::vector<PartitionOffset>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const PartitionOffset& x, const PartitionOffset& y) {
    return x.topic == y.topic && x.partition == y.partition && x.next_offset == y.next_offset &&
           x.expected == y.expected;
  });
}

}  // namespace

WriteResult PostgresSink::write_batch(const std::vector<const StrategyRecord*>& records,
                                      const std::vector<PartitionOffset>& offsets,
                                      const BeforeCommit& before_commit,
                                      const std::vector<RowMessage>& messages) {
  ensure_connected();
  std::optional<bool> in_doubt_committed;
  if (impl_->in_doubt && same_offsets(impl_->in_doubt->offsets, offsets)) {
    // The last attempt's COMMIT may have happened. The stored offsets say: all at this batch's next offsets,
    // it did; all still where this batch expected them, it did not; anything else is another consumer's doing,
    // which the fence below reports.
    std::size_t at_next = 0, at_expected = 0;
    std::map<std::string, std::vector<std::int32_t>> by_topic;
    for (const auto& o : offsets) by_topic[o.topic].push_back(o.partition);
    for (const auto& [topic, partitions] : by_topic) {
      const auto stored = load_offsets(topic, partitions);
      for (const auto& o : offsets) {
        if (o.topic != topic) continue;
        const auto it = stored.find(o.partition);
        const std::optional<std::int64_t> now = it == stored.end() ? std::nullopt : std::optional(it->second);
        at_next += now == o.next_offset;
        at_expected += now == o.expected;
      }
    }
    if (at_next == offsets.size()) {
      WriteResult result = std::move(impl_->in_doubt->result);
      impl_->in_doubt.reset();
      result.in_doubt_committed = true;
      return result;
    }
    if (at_expected == offsets.size()) in_doubt_committed = false;
  }
  impl_->in_doubt.reset();
  try {
    impl_->maintain_history(config_);  // between batches: a new month's partitions, retention once an hour
  } catch (...) {
    impl_->rethrow("score history upkeep");
  }
  const std::vector<RowHistory> history =
      config_.score_history ? plan_history(records.size(), messages) : std::vector<RowHistory>{};
  std::vector<std::size_t> all(records.size());
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
  // The first attempt writes every row in the transaction itself, without a savepoint (the common case: no row
  // is refused, and a savepoint costs round trips and a subtransaction). When PostgreSQL refuses a row, that
  // transaction is rolled back and the batch written again, offsets and all, in savepoints that bisect the rows.
  std::optional<pqxx::sql_error> refused_whole;
  try {
    for (;;) {
      WriteResult result;
      result.in_doubt_committed = in_doubt_committed;
      pqxx::work txn(*impl_->conn, "write_batch");
      // Offsets first: this takes the partitions' row locks, so two writers of one partition serialise here.
      std::map<std::string, std::vector<const PartitionOffset*>> by_topic;
      if (mode_ == WriteMode::commit) {
        for (const auto& o : offsets) by_topic[o.topic].push_back(&o);
      }
      for (const auto& [topic, list] : by_topic) {
        auto show = [](auto f) { return [f](const PartitionOffset* o) { return f(*o); }; };
        auto rows = txn.exec_params(
            std::string(statements::kAdvanceOffsets), group_id_, topic,
            array_literal(list, show([](const PartitionOffset& o) { return std::to_string(o.partition); })),
            array_literal(list, show([](const PartitionOffset& o) { return std::to_string(o.next_offset); })),
            array_literal(list, show([](const PartitionOffset& o) {
              return o.expected ? std::to_string(*o.expected) : std::string("NULL");
            })));
        if (rows.size() != list.size()) {
          throw FencedError("offsets of topic " + topic + " moved: another consumer of group " + group_id_ +
                            " has written them; " + std::to_string(list.size() - rows.size()) +
                            " partition(s) fenced");
        }
      }
      if (!refused_whole) {
        if (!all.empty()) {
          ++result.row_statements;
          try {
            impl_->copy_and_upsert(txn, records, all, result, false, history);
          } catch (const pqxx::sql_error& e) {
            if (!is_row_error(e.sqlstate())) throw;
            refused_whole.emplace(e);
            continue;  // the transaction rolls back; once more, bisecting
          }
        }
      } else {
        result.row_statements = 1;  // the attempt above
        if (all.size() == 1) {
          Impl::reject(*refused_whole, 0, result);
        } else {
          bool staged = false;
          impl_->bisect(txn, records, all, result, staged, history);
        }
      }
      std::vector<std::size_t> refused;
      for (const auto& r : result.rejected) refused.push_back(r.index);
      const auto spec_names = impl_->specs.insert_new(txn, records, refused);
      if (!result.rejected.empty() && before_commit) before_commit(result.rejected);
      if (mode_ == WriteMode::rollback) {
        txn.abort();
        return result;
      }
      try {
        txn.commit();
      } catch (const pqxx::in_doubt_error&) {
        impl_->in_doubt = Impl::InDoubt{offsets, result};  // the next attempt finds out
        throw;
      }
      impl_->specs.committed(spec_names);
      return result;
    }
  } catch (...) {
    impl_->rethrow("write batch");
  }
}

std::vector<StoredStrategy> PostgresSink::find_strategies(const StrategyQuery& query) {
  ensure_connected();
  try {
    return query_strategies(*impl_->conn, query);
  } catch (...) {
    impl_->rethrow("read strategies");
  }
}

std::int64_t PostgresSink::count_strategies(const StrategyQuery& query) {
  ensure_connected();
  try {
    return query_strategy_count(*impl_->conn, query);
  } catch (...) {
    impl_->rethrow("count strategies");
  }
}

std::vector<ScoreHistoryEntry> PostgresSink::score_history(const ScoreHistoryQuery& query) {
  ensure_connected();
  try {
    return query_score_history(*impl_->conn, query);
  } catch (...) {
    impl_->rethrow("read score history");
  }
}

}  // namespace strategy_consumer
