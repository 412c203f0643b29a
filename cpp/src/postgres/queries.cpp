// The analysts' reads (queries.hpp): one parameterised SELECT each.
#include "strategy_consumer/postgres/queries.hpp"

#include <algorithm>
#include <cctype>

#include <pqxx/pqxx>

#include "strategy_consumer/model/timestamp.hpp"

namespace strategy_consumer {
namespace {

// NULL parameters switch a condition off; exec_params plans with the actual values, so the indexes still serve.
const char* const kStrategyFilter =
    " WHERE ($1::text IS NULL OR strategy_hash = $1 OR ($2::uuid IS NOT NULL AND strategy_id = $2::uuid))"
    " AND ($3::text IS NULL OR symbol = $3)"
    " AND ($4::text IS NULL OR strategy_type = $4)"
    " AND ($5::float8 IS NULL OR current_score >= $5)"
    " AND (NOT $6::boolean OR is_active)";

const char* const kSelectStrategies =
    "SELECT strategy_id::text, symbol, strategy_type, parameters::text, current_score, strategy_hash,"
    " discovery_symbol, (extract(epoch FROM discovery_start_time) * 1000000)::bigint,"
    " (extract(epoch FROM discovery_end_time) * 1000000)::bigint, performance_metrics::text, is_active,"
    " (extract(epoch FROM first_discovered_at) * 1000000)::bigint,"
    " (extract(epoch FROM last_evaluated_at) * 1000000)::bigint,"
    " (extract(epoch FROM created_at) * 1000000)::bigint, (extract(epoch FROM updated_at) * 1000000)::bigint"
    " FROM strategies";

bool looks_like_uuid(const std::string& s) {
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return true;
}

template <class T>
const T* or_null(const std::optional<T>& v) {
  return v ? &*v : nullptr;
}

}  // namespace

std::vector<StoredStrategy> query_strategies(pqxx::connection_base& connection, const StrategyQuery& q) {
  std::vector<StoredStrategy> out;
  pqxx::read_transaction txn(connection, "find_strategies");
  const std::optional<std::string> uuid =
      q.id_or_hash && looks_like_uuid(*q.id_or_hash) ? q.id_or_hash : std::nullopt;
  const std::string sql = std::string(kSelectStrategies) + kStrategyFilter +
                          " ORDER BY current_score DESC, updated_at DESC" +
                          (q.limit ? " LIMIT " + std::to_string(std::max<std::int64_t>(*q.limit, 0)) : "");
  auto rows = txn.exec_params(sql, or_null(q.id_or_hash), or_null(uuid), or_null(q.symbol),
                              or_null(q.strategy_type), or_null(q.min_score), q.active_only);
  out.reserve(rows.size());
  for (const auto& row : rows) {
    StoredStrategy s;
    s.strategy_id = row[0].as<std::string>();
    s.record.symbol = row[1].as<std::string>();
    s.record.strategy_type = row[2].as<std::string>();
    s.record.parameters = nlohmann::json::parse(row[3].as<std::string>());
    s.record.score = row[4].as<double>();
    s.record.strategy_hash = row[5].as<std::string>();
    if (!row[6].is_null()) s.record.discovery_symbol = row[6].as<std::string>();
    if (!row[7].is_null()) s.record.discovery_start_us = row[7].as<std::int64_t>();
    if (!row[8].is_null()) s.record.discovery_end_us = row[8].as<std::int64_t>();
    if (!row[9].is_null()) s.record.performance_metrics = nlohmann::json::parse(row[9].as<std::string>());
    s.is_active = row[10].as<bool>();
    s.first_discovered_at_us = row[11].as<std::int64_t>();
    s.last_evaluated_at_us = row[12].as<std::int64_t>();
    s.created_at_us = row[13].as<std::int64_t>();
    s.updated_at_us = row[14].as<std::int64_t>();
    out.push_back(std::move(s));
  }
  return out;
}

std::int64_t query_strategy_count(pqxx::connection_base& connection, const StrategyQuery& q) {
  pqxx::read_transaction txn(connection, "count_strategies");
  const std::optional<std::string> uuid =
      q.id_or_hash && looks_like_uuid(*q.id_or_hash) ? q.id_or_hash : std::nullopt;
  auto rows = txn.exec_params(std::string("SELECT count(*) FROM strategies") + kStrategyFilter,
                              or_null(q.id_or_hash), or_null(uuid), or_null(q.symbol), or_null(q.strategy_type),
                              or_null(q.min_score), q.active_only);
  return rows[0][0].as<std::int64_t>();
}

std::vector<ScoreHistoryEntry> query_score_history(pqxx::connection_base& connection, const ScoreHistoryQuery& q) {
  std::vector<ScoreHistoryEntry> out;
  auto us = [](const char* column) {
    return std::string("(extract(epoch FROM ") + column + ") * 1000000)::bigint";
  };
  pqxx::read_transaction txn(connection, "score_history");
  const std::string sql =
      "SELECT h.strategy_hash, s.strategy_type, s.symbol, h.score, h.performance_metrics::text,"
      " h.discovery_symbol, " + us("h.discovery_start_time") + ", " + us("h.discovery_end_time") + ", " +
      us("h.message_timestamp") + ", h.source_topic, h.source_partition, h.source_offset, " + us("h.stored_at") +
      " FROM strategy_score_history h LEFT JOIN strategies s ON s.strategy_hash = h.strategy_hash"
      " WHERE ($1::text IS NULL OR h.strategy_hash = $1)"
      " AND ($2::text IS NULL OR s.strategy_type = $2)"
      " AND ($3::text IS NULL OR s.symbol = $3)"
      " AND ($4::timestamp IS NULL OR h.stored_at >= $4::timestamp)"
      " AND ($5::timestamp IS NULL OR h.stored_at < $5::timestamp)"
      " ORDER BY h.stored_at, h.message_timestamp, h.source_topic, h.source_partition, h.source_offset" +
      (q.limit ? " LIMIT " + std::to_string(std::max<std::int64_t>(*q.limit, 0)) : "");
  const auto text = [](const std::optional<std::int64_t>& v) {
    return v ? std::optional<std::string>(format_timestamp_us(*v)) : std::nullopt;
  };
  const auto since = text(q.since_us), until = text(q.until_us);
  auto rows = txn.exec_params(sql, or_null(q.strategy_hash), or_null(q.strategy_type), or_null(q.symbol),
                              or_null(since), or_null(until));
  out.reserve(rows.size());
  for (const auto& row : rows) {
    ScoreHistoryEntry e;
    e.strategy_hash = row[0].as<std::string>();
    if (!row[1].is_null()) e.strategy_type = row[1].as<std::string>();
    if (!row[2].is_null()) e.symbol = row[2].as<std::string>();
    e.score = row[3].as<double>();
    if (!row[4].is_null()) e.performance_metrics = nlohmann::json::parse(row[4].as<std::string>());
    if (!row[5].is_null()) e.discovery_symbol = row[5].as<std::string>();
    if (!row[6].is_null()) e.discovery_start_us = row[6].as<std::int64_t>();
    if (!row[7].is_null()) e.discovery_end_us = row[7].as<std::int64_t>();
    if (!row[8].is_null()) e.message_timestamp_us = row[8].as<std::int64_t>();
    if (!row[9].is_null()) e.source_topic = row[9].as<std::string>();
    if (!row[10].is_null()) e.source_partition = row[10].as<std::int32_t>();
    if (!row[11].is_null()) e.source_offset = row[11].as<std::int64_t>();
    e.stored_at_us = row[12].as<std::int64_t>();
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace strategy_consumer
