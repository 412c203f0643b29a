#pragma once
// The score history (--score_history): `strategy_score_history`, one row per applied discovery, appended in the
// batch's own transaction (sink.hpp: the upsert's RETURNING feeds an INSERT into it in the same statement), so a
// batch that is rolled back, retried or fenced writes none and a committed one has all of its rows.
//
// The table is partitioned by month on `stored_at` (PARTITION BY RANGE): partition `strategy_score_history_yYYYYmMM`
// holds [first of the month, first of the next) in UTC. This month's and the next month's partitions are created
// when the schema is prepared and whenever a connection's first write of a month finds the month new (checked
// against the clock, once per month per connection), under an advisory lock so replicas take turns. The next
// month is always there before it begins, so a clock that differs from the server's by less than a month never
// misses. A DEFAULT partition (migration 5) is the safety net beneath that: a row whose month has no partition
// (a server clock far off, no right to create tables) lands there instead of failing, because a failing history
// row would fail its batch's upsert and dead-letter good strategies.
//
// Retention (--score_history_retention_days, 0: keep forever) drops whole month partitions whose last instant
// is older than the cut-off (and deletes such rows from the DEFAULT partition), at start and then at most once an
// hour per connection, between batches, with a short lock_timeout: a DROP waiting behind an analyst's long
// query would hold up every writer, so it gives up and tries again an hour later instead.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "strategy_consumer/model/strategy_record.hpp"
#include "strategy_consumer/pipeline/batch_sink.hpp"

namespace pqxx { class connection_base; }

namespace strategy_consumer {

inline constexpr const char* kHistoryTable = "strategy_score_history";
inline constexpr const char* kHistoryDefaultPartition = "strategy_score_history_default";

// A calendar month in UTC.
struct HistoryMonth {
  int year = 1970;
  int month = 1;  // 1..12

  friend bool operator==(const HistoryMonth&, const HistoryMonth&) = default;
  friend auto operator<=>(const HistoryMonth&, const HistoryMonth&) = default;
};

// The month a UTC instant (microseconds since the epoch) falls in.
HistoryMonth month_of_us(std::int64_t micros_since_epoch);
HistoryMonth next_month(HistoryMonth m);
// Midnight UTC of the month's first day, in microseconds since the epoch.
std::int64_t month_start_us(HistoryMonth m);
// "strategy_score_history_y2026m03"
std::string partition_name(HistoryMonth m);
// The month a partition name stands for; nullopt for any other name (DEFAULT, an operator's own tables).
std::optional<HistoryMonth> partition_month(const std::string& name);
// "FOR VALUES FROM ('2026-03-01 00:00:00') TO ('2026-04-01 00:00:00')"
std::string partition_bounds(HistoryMonth m);
// CREATE TABLE IF NOT EXISTS ... PARTITION OF ... for the month.
std::string create_partition_sql(HistoryMonth m);

// The instant before which history is dropped: now minus the retention; nullopt when retention_days is 0.
std::optional<std::int64_t> retention_cutoff_us(std::int64_t now_us, int retention_days);
// Those of `names` that are month partitions lying wholly before `cutoff_us` (their month ends at or before it).
std::vector<std::string> expired_partitions(const std::vector<std::string>& names, std::int64_t cutoff_us);

// Which messages of a batch get a history row before the database is asked: a message folded into a row
// (fold.hpp) is applied as the fold applied it, i.e. unless it is older (Kafka timestamp) than one before it in
// the batch for the same strategy. One flag per message, in the order given (`messages` in batch order within
// each row). Whether the row itself was applied, and whether a message is older than the stored row, the upsert
// statement decides.
std::vector<bool> applied_in_fold(const std::vector<RowMessage>& messages);

// I/O (pqxx): this month's and the next month's partitions, created when missing (one transaction under an
// advisory lock). A month whose rows already sit in the DEFAULT partition can not get its own partition: that is
// logged, and its rows stay in DEFAULT (retention still deletes them). Returns false when it could not be done
// (logged; the caller tries again later).
bool ensure_history_partitions(pqxx::connection_base& connection, std::int64_t now_us);
// Drops the expired partitions and deletes expired rows from DEFAULT. Returns the partitions dropped; throws
// nothing (a failure is logged and the caller tries again later).
std::vector<std::string> drop_expired_history(pqxx::connection_base& connection, std::int64_t now_us,
                                              int retention_days);

}  // namespace strategy_consumer
