#include "strategy_consumer/postgres/history.hpp"

#include <cstdio>
#include <ctime>
#include <regex>
#include <unordered_map>

#include <pqxx/pqxx>
#include <spdlog/spdlog.h>

#include "strategy_consumer/model/timestamp.hpp"

namespace strategy_consumer {
namespace {

// Any constant (not the migrations' key): replicas creating the same month's partition take turns.
constexpr long long kPartitionLockKey = 0x5348495354;
constexpr std::int64_t kMicrosPerDay = 86400LL * 1000000;

std::string month_text(HistoryMonth m) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02d-01 00:00:00", m.year, m.month);
  return buf;
}

}  // namespace

HistoryMonth month_of_us(std::int64_t micros_since_epoch) {
  // Floor division: an instant before 1970 still falls in its own month.
  std::int64_t seconds = micros_since_epoch / 1000000;
  if (micros_since_epoch % 1000000 < 0) --seconds;
  const std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return {tm.tm_year + 1900, tm.tm_mon + 1};
}

HistoryMonth next_month(HistoryMonth m) {
  return m.month == 12 ? HistoryMonth{m.year + 1, 1} : HistoryMonth{m.year, m.month + 1};
}

std::int64_t month_start_us(HistoryMonth m) {
  std::tm tm{};
  tm.tm_year = m.year - 1900;
  tm.tm_mon = m.month - 1;
  tm.tm_mday = 1;
  return static_cast<std::int64_t>(timegm(&tm)) * 1000000;
}

std::string partition_name(HistoryMonth m) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s_y%04dm%02d", kHistoryTable, m.year, m.month);
  return buf;
}

std::optional<HistoryMonth> partition_month(const std::string& name) {
  static const std::regex kName("strategy_score_history_y([0-9]{4})m([0-9]{2})");
  std::smatch match;
  if (!std::regex_match(name, match, kName)) return std::nullopt;
  const HistoryMonth m{std::stoi(match[1]), std::stoi(match[2])};
  if (m.month < 1 || m.month > 12) return std::nullopt;
  return m;
}

std::string partition_bounds(HistoryMonth m) {
  return "FOR VALUES FROM ('" + month_text(m) + "') TO ('" + month_text(next_month(m)) + "')";
}

std::string create_partition_sql(HistoryMonth m) {
  return "CREATE TABLE IF NOT EXISTS " + partition_name(m) + " PARTITION OF " + kHistoryTable + " " +
         partition_bounds(m);
}

std::optional<std::int64_t> retention_cutoff_us(std::int64_t now_us, int retention_days) {
  if (retention_days <= 0) return std::nullopt;
  return now_us - static_cast<std::int64_t>(retention_days) * kMicrosPerDay;
}

std::vector<std::string> expired_partitions(const std::vector<std::string>& names, std::int64_t cutoff_us) {
  std::vector<std::string> out;
  for (const auto& name : names) {
    const auto m = partition_month(name);
    if (m && month_start_us(next_month(*m)) <= cutoff_us) out.push_back(name);
  }
  return out;
}

std::vector<bool> applied_in_fold(const std::vector<RowMessage>& messages) {
  // The newest Kafka timestamp seen so far per row: a message older than it is one the fold did not apply.
  std::vector<bool> out(messages.size(), true);
  std::unordered_map<std::size_t, std::int64_t> newest;
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const auto& ts = messages[i].record->message_timestamp_ms;
    if (!ts) continue;
    auto [it, added] = newest.try_emplace(messages[i].row, *ts);
    if (added) continue;
    if (*ts < it->second) out[i] = false;
    else it->second = *ts;
  }
  return out;
}

bool ensure_history_partitions(pqxx::connection_base& connection, std::int64_t now_us) {
  const HistoryMonth current = month_of_us(now_us);
  const HistoryMonth months[] = {current, next_month(current)};
  try {
    {
      pqxx::read_transaction check(connection, "history_partitions");
      bool all = true;
      for (const auto& m : months) {
        all = all && check.exec_params("SELECT to_regclass($1) IS NOT NULL", partition_name(m))[0][0].as<bool>();
      }
      if (all) return true;
    }
    for (const auto& m : months) {
      // One transaction per month: a month whose rows sit in DEFAULT must not keep the other from being created.
      pqxx::work txn(connection, "history_partition");
      txn.exec("SELECT pg_advisory_xact_lock(" + std::to_string(kPartitionLockKey) + ")");
      if (txn.exec_params("SELECT to_regclass($1) IS NOT NULL", partition_name(m))[0][0].as<bool>()) continue;
      try {
        txn.exec(create_partition_sql(m));
        txn.commit();
        spdlog::info("score history: created partition {}", partition_name(m));
      } catch (const pqxx::check_violation& e) {
        // The DEFAULT partition holds rows of this month already: they stay there (retention deletes them).
        spdlog::warn("score history: partition {} not created: the default partition already holds rows of that "
                     "month ({})", partition_name(m), e.what());
      }
    }
    return true;
  } catch (const std::exception& e) {
    spdlog::warn("score history: could not create this month's partitions, rows go to {} meanwhile: {}",
                 kHistoryDefaultPartition, e.what());
    return false;
  }
}

std::vector<std::string> drop_expired_history(pqxx::connection_base& connection, std::int64_t now_us,
                                              int retention_days) {
  const auto cutoff = retention_cutoff_us(now_us, retention_days);
  if (!cutoff) return {};
  std::vector<std::string> dropped;
  try {
    std::vector<std::string> names;
    {
      pqxx::read_transaction txn(connection, "history_partitions");
      for (const auto& row : txn.exec_params(
               "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
               " WHERE i.inhparent = to_regclass($1)", std::string(kHistoryTable))) {
        names.push_back(row[0].as<std::string>());
      }
    }
    for (const auto& name : expired_partitions(names, *cutoff)) {
      pqxx::work txn(connection, "history_retention");
      txn.exec("SET LOCAL lock_timeout = '2s'");
      txn.exec("DROP TABLE IF EXISTS " + name);
      txn.commit();
      dropped.push_back(name);
      spdlog::info("score history: dropped partition {} (older than {} days)", name, retention_days);
    }
    pqxx::work txn(connection, "history_retention");
    txn.exec("SET LOCAL lock_timeout = '2s'");
    const auto deleted = txn.exec_params(std::string("DELETE FROM ") + kHistoryDefaultPartition +
                                             " WHERE stored_at < $1::timestamp",
                                         format_timestamp_us(*cutoff))
                             .affected_rows();
    txn.commit();
    if (deleted) spdlog::info("score history: deleted {} expired rows from {}", deleted, kHistoryDefaultPartition);
  } catch (const std::exception& e) {
    spdlog::warn("score history: retention postponed: {}", e.what());
  }
  return dropped;
}

}  // namespace strategy_consumer
