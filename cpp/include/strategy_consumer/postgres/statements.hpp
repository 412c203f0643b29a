#pragma once
// The SQL of the write path, in one place: the sink (sink.cpp, strategy_specs.cpp) runs these statements, the COPY
// encoder writes its rows in kCopyColumns order, and scripts/bench's limit runs them too (it asks
// `strategy-bench-tool sql`, which prints every statement below as JSON). Nothing else keeps a copy.
//
// Underneath: PostgreSQL, the schema of migrations.cpp (`strategies`, `strategy_consumer_offsets`,
// `strategy_score_history`, and in a
// database the old TradeStream service created, `strategy_specs`).
#include <array>
#include <string_view>
#include <utility>

namespace strategy_consumer::statements {

// The columns COPY fills, in the order encode_copy_row writes them (copy_encoder.hpp).
#define STRATEGY_CONSUMER_COPY_COLUMNS                                                             \
  "symbol, strategy_type, parameters, current_score, strategy_hash, discovery_symbol, "            \
  "discovery_start_time, discovery_end_time, performance_metrics, message_timestamp"

inline constexpr std::string_view kCopyColumns = STRATEGY_CONSUMER_COPY_COLUMNS;
// With the score history on, each staged line also says where its message was read and what it is: a row to
// upsert (is_row), a message for the history (in_history), or both (a row of one message). A row folded from
// several messages is staged once as the row and once per message (copy_encoder.hpp: encode_history_fields).
inline constexpr std::string_view kHistoryCopyColumns =
    STRATEGY_CONSUMER_COPY_COLUMNS ", source_topic, source_partition, source_offset, is_row, in_history";
inline constexpr std::string_view kStagingTable = "strategy_staging";

// The staging table, created once per connection; ON COMMIT DELETE ROWS empties it at every COMMIT.
inline constexpr std::string_view kCreateStaging =
    "CREATE TEMP TABLE IF NOT EXISTS strategy_staging ("
    " symbol VARCHAR, strategy_type VARCHAR, parameters JSONB, current_score DOUBLE PRECISION,"
    " strategy_hash VARCHAR, discovery_symbol VARCHAR, discovery_start_time TIMESTAMP,"
    " discovery_end_time TIMESTAMP, performance_metrics JSONB, message_timestamp TIMESTAMP,"
    " source_topic TEXT, source_partition INTEGER, source_offset BIGINT,"
    " is_row BOOLEAN NOT NULL DEFAULT TRUE, in_history BOOLEAN NOT NULL DEFAULT FALSE) ON COMMIT DELETE ROWS";

// What a strategy seen again takes from the new row (kUpsert, kUpsertWithHistory): see kUpsert.
#define STRATEGY_CONSUMER_ON_CONFLICT                                                                      \
  "  ON CONFLICT (strategy_hash) DO UPDATE SET" \
  "   current_score = EXCLUDED.current_score," \
  "   performance_metrics = COALESCE(EXCLUDED.performance_metrics, strategies.performance_metrics)," \
  "   discovery_symbol = COALESCE(EXCLUDED.discovery_symbol, strategies.discovery_symbol)," \
  "   discovery_start_time = COALESCE(EXCLUDED.discovery_start_time, strategies.discovery_start_time)," \
  "   discovery_end_time = COALESCE(EXCLUDED.discovery_end_time, strategies.discovery_end_time)," \
  "   message_timestamp = COALESCE(EXCLUDED.message_timestamp, strategies.message_timestamp)," \
  "   last_evaluated_at = NOW()," \
  "   updated_at = NOW()" \
  "  WHERE EXCLUDED.message_timestamp IS NULL OR strategies.message_timestamp IS NULL" \
  "   OR EXCLUDED.message_timestamp >= strategies.message_timestamp"

// Moves the staged rows into `strategies`. A strategy seen again keeps first_discovered_at and created_at;
// optional fields it does not carry keep their stored values. A re-discovery whose Kafka timestamp is older than
// the stored row's is not applied at all (lanes and replicas commit partitions independently, and a replay
// rereads old messages): it counts as outdated (rows staged minus the rows RETURNING gives; the sink knows how
// many it staged). Rows are locked in one order by every writer (ORDER BY strategy_hash): two transactions
// upserting the same strategies wait for one another instead of deadlocking. Its one row: inserted,
// inserted + updated. The staged rows stay until COMMIT empties the table (ON COMMIT DELETE ROWS), so a
// transaction that stages again first runs kClearStaging.
inline constexpr std::string_view kUpsert =
    "WITH up AS ("
    "  INSERT INTO strategies (" STRATEGY_CONSUMER_COPY_COLUMNS ")"
    "  SELECT " STRATEGY_CONSUMER_COPY_COLUMNS
    "  FROM strategy_staging"
    "  ORDER BY strategy_hash"
    STRATEGY_CONSUMER_ON_CONFLICT
    "  RETURNING (xmax = 0) AS inserted)"
    " SELECT count(*) FILTER (WHERE inserted), count(*) FROM up";

// kUpsert with the score history (postgres/history.hpp) in the same statement: the upsert's RETURNING names the
// strategies it applied (inserted or updated), and every message line of those goes into strategy_score_history
// with its own values and source position. A message folded with others into one row is applied only when it is
// not older than the row as stored before this statement (the statement's snapshot; the sink has already left
// out the ones older than another message of the batch); a row of one message was applied exactly when RETURNING
// has it. Its one row: inserted, inserted + updated, history rows.
inline constexpr std::string_view kUpsertWithHistory =
    "WITH up AS ("
    "  INSERT INTO strategies (" STRATEGY_CONSUMER_COPY_COLUMNS ")"
    "  SELECT " STRATEGY_CONSUMER_COPY_COLUMNS
    "  FROM strategy_staging WHERE is_row"
    "  ORDER BY strategy_hash"
    STRATEGY_CONSUMER_ON_CONFLICT
    "  RETURNING strategy_hash, (xmax = 0) AS inserted),"
    " hist AS ("
    "  INSERT INTO strategy_score_history (strategy_hash, score, performance_metrics, discovery_symbol,"
    "   discovery_start_time, discovery_end_time, message_timestamp, source_topic, source_partition, source_offset)"
    "  SELECT s.strategy_hash, s.current_score, s.performance_metrics, s.discovery_symbol, s.discovery_start_time,"
    "   s.discovery_end_time, s.message_timestamp, s.source_topic, s.source_partition, s.source_offset"
    "  FROM strategy_staging s JOIN up ON up.strategy_hash = s.strategy_hash"
    "  WHERE s.in_history AND (s.is_row OR s.message_timestamp IS NULL OR NOT EXISTS ("
    "   SELECT 1 FROM strategies p WHERE p.strategy_hash = s.strategy_hash"
    "    AND p.message_timestamp > s.message_timestamp))"
    "  RETURNING 1)"
    " SELECT count(*) FILTER (WHERE inserted), count(*), (SELECT count(*) FROM hist) FROM up";

// Empties the staging table inside a transaction (only when it stages a second range: bisection).
inline constexpr std::string_view kClearStaging = "DELETE FROM strategy_staging";

// Advances each partition's offset only where the stored value is the expected one (NULL expected: no row
// may exist yet). A partition that does not come back in RETURNING was fenced.
// $1 group, $2 topic, $3 partitions int[], $4 next offsets bigint[], $5 expected offsets bigint[].
inline constexpr std::string_view kAdvanceOffsets =
    "WITH v AS (SELECT * FROM unnest($3::int[], $4::bigint[], $5::bigint[]) AS v(kafka_partition, next_offset, "
    "expected))"
    " INSERT INTO strategy_consumer_offsets AS o (group_id, topic, kafka_partition, next_offset)"
    " SELECT $1, $2, kafka_partition, next_offset FROM v"
    " ON CONFLICT (group_id, topic, kafka_partition) DO UPDATE"
    "  SET next_offset = EXCLUDED.next_offset, updated_at = NOW()"
    "  WHERE o.next_offset IS NOT DISTINCT FROM"
    "   (SELECT expected FROM v WHERE v.kafka_partition = EXCLUDED.kafka_partition)"
    " RETURNING o.kafka_partition";

// The stored next offsets. $1 group, $2 topic, $3 partitions int[].
inline constexpr std::string_view kLoadOffsets =
    "SELECT kafka_partition, next_offset FROM strategy_consumer_offsets"
    " WHERE group_id = $1 AND topic = $2 AND kafka_partition = ANY($3::int[])";

// strategy_specs (strategy_specs.hpp): whether the table exists, and the rows of new names ($1 text[]).
inline constexpr std::string_view kSpecsTableExists = "SELECT to_regclass('strategy_specs') IS NOT NULL";
inline constexpr std::string_view kInsertSpecs =
    "INSERT INTO strategy_specs (name, indicators, entry_conditions, exit_conditions, parameters, source)"
    " SELECT name, '[]', '[]', '[]', '[]', 'MIGRATED' FROM unnest($1::text[]) AS name"
    " ON CONFLICT (name) DO NOTHING";

#undef STRATEGY_CONSUMER_COPY_COLUMNS
#undef STRATEGY_CONSUMER_ON_CONFLICT

// Every statement by name, as `strategy-bench-tool sql` prints them.
inline constexpr std::array<std::pair<std::string_view, std::string_view>, 11> kAll{{
    {"copy_columns", kCopyColumns},
    {"history_copy_columns", kHistoryCopyColumns},
    {"upsert_with_history", kUpsertWithHistory},
    {"staging_table", kStagingTable},
    {"create_staging", kCreateStaging},
    {"upsert", kUpsert},
    {"clear_staging", kClearStaging},
    {"advance_offsets", kAdvanceOffsets},
    {"load_offsets", kLoadOffsets},
    {"specs_table_exists", kSpecsTableExists},
    {"insert_specs", kInsertSpecs},
}};

}  // namespace strategy_consumer::statements
