#pragma once
// The PostgreSQL side: one connection, the schema, the stored offsets and the batch write.
//
// A batch is ONE transaction (its SQL: statements.hpp):
//   1. the offsets table is advanced for every partition of the batch, fenced: a partition's row is only updated
//      when its stored offset is still the one this consumer expects (resumed from, or last wrote);
//   2. the records go by COPY into a temporary staging table (ON COMMIT DELETE ROWS, created once per
//      connection, emptied by every COMMIT);
//   3. one INSERT ... SELECT ... ON CONFLICT (strategy_hash) DO UPDATE moves them into `strategies`; with the
//      score history on (--score_history), the same statement appends every message it applied to
//      `strategy_score_history` (history.hpp), so the history commits or rolls back with the rows;
//   4. in a database the old TradeStream service created, its strategy_specs row for each new strategy name
//      (strategy_specs.hpp).
// So the rows and the offsets that produced them become visible together or not at all.
// Steps 2 and 3 run in the transaction itself. When PostgreSQL refuses a row (a data or constraint error), the
// transaction is rolled back and the batch written again, offsets included, with steps 2 and 3 in savepoints:
// a range is rolled back to its savepoint and split in halves until the refused rows stand alone (about
// 2*log2(n) extra statements for one bad row); the other rows and the offsets still commit in that transaction.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "strategy_consumer/pipeline/batch.hpp"
#include "strategy_consumer/pipeline/batch_sink.hpp"
#include "strategy_consumer/model/strategy_record.hpp"
#include "strategy_consumer/model/config.hpp"
#include "strategy_consumer/postgres/queries.hpp"

namespace strategy_consumer {

// PartitionOffset, RowRejection, WriteResult and BeforeCommit: pipeline/batch_sink.hpp. StoredStrategy,
// StrategyQuery, ScoreHistoryEntry and ScoreHistoryQuery: queries.hpp.

// commit: what write_batch writes commits. rollback (a dry run, service/replay.hpp): each batch is written in
// full (the same statements, so PostgreSQL refuses what it would refuse) and rolled back; its offsets are
// neither checked nor advanced.
enum class WriteMode { commit, rollback };

class PostgresSink : public BatchSink {
 public:
  PostgresSink(PostgresConfig config, std::string group_id, WriteMode mode = WriteMode::commit);
  ~PostgresSink() override;
  PostgresSink(const PostgresSink&) = delete;
  PostgresSink& operator=(const PostgresSink&) = delete;

  // (Re)connects when not connected. Throws DatabaseError (retryable) when the server cannot be reached.
  void ensure_connected() override;
  void disconnect();
  bool ping();
  // From any thread: breaks off whatever the connection is doing (shuts its socket down). The operation in
  // progress fails with a lost connection (nothing of its transaction commits) and the next one reconnects.
  void interrupt() noexcept override;

  // Applies the migrations, or with apply=false verifies that they were applied.
  void prepare_schema(bool apply) override;

  // The stored next offset of each of these partitions that has one.
  std::map<std::int32_t, std::int64_t> load_offsets(const std::string& topic,
                                                    const std::vector<std::int32_t>& partitions) override;

  // Writes the records and advances the offsets in one transaction (see above). Throws FencedError when a
  // partition's stored offset moved, DatabaseError otherwise; on any throw nothing was written, except when the
  // connection broke during COMMIT: then the outcome is unknown (DatabaseError, retryable), and the next call
  // with the same offsets first reads the stored offsets: at this batch's next offsets, the COMMIT had happened
  // and that attempt's result comes back without writing again; at the expected ones, it is written again
  // (WriteResult::in_doubt_committed says which).
  WriteResult write_batch(const std::vector<const StrategyRecord*>& records,
                          const std::vector<PartitionOffset>& offsets,
                          const BeforeCommit& before_commit = {},
                          const std::vector<RowMessage>& messages = {}) override;

  // Reads strategies, best score first (ties: newest first).
  std::vector<StoredStrategy> find_strategies(const StrategyQuery& query);
  std::int64_t count_strategies(const StrategyQuery& query);
  // Reads the score history, in the order stored (stored_at, then the Kafka timestamp and source position).
  std::vector<ScoreHistoryEntry> score_history(const ScoreHistoryQuery& query);

 private:
  struct Impl;
  PostgresConfig config_;
  std::string group_id_;
  WriteMode mode_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace strategy_consumer
