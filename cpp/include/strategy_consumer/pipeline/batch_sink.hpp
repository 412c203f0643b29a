#pragma once
// Where the pipeline writes: a batch's rows and its partitions' next offsets in ONE transaction, fenced on the
// stored offsets. The one implementation in the service is postgres/PostgresSink (one connection each); the
// pipeline's tests use an in-memory double. The pipeline opens one for its own thread (schema, stored offsets)
// and one per writer lane.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "strategy_consumer/model/strategy_record.hpp"

namespace strategy_consumer {

struct PartitionOffset {
  std::string topic;
  std::int32_t partition = -1;
  std::int64_t next_offset = 0;
  std::optional<std::int64_t> expected;  // the stored value this consumer knows; nullopt: no row yet
};

// One message of a row to write, for the score history (postgres/history.hpp): the row it was folded into (an
// index into the records given to write_batch), the message's own values, and where it was read. In batch order
// within each row.
struct RowMessage {
  std::size_t row = 0;
  const StrategyRecord* record = nullptr;
  const SourcePosition* source = nullptr;  // nullptr: not read from Kafka (PostgresClient.bulk_insert)
};

// A row the database refused (a data or constraint error, SQLSTATE class 22, 23 or 54).
struct RowRejection {
  std::size_t index = 0;  // into the records given to write_batch
  std::string sqlstate;
  std::string message;
};

struct WriteResult {
  std::size_t inserted = 0;
  std::size_t updated = 0;
  std::size_t outdated = 0;  // re-discoveries older than the stored row's (Kafka timestamp): not applied
  std::size_t history = 0;   // rows appended to the score history (0 with --score_history=false)
  std::vector<RowRejection> rejected;
  std::size_t row_statements = 0;  // COPY+INSERT attempts (the first, unsaved one included): 1 when no row was refused
  // Set when an earlier attempt at this batch ended with its COMMIT's outcome unknown: whether that COMMIT had
  // in fact committed, as the stored offsets showed on this attempt (then this result is that attempt's).
  std::optional<bool> in_doubt_committed;
};

// Called inside the transaction, before COMMIT, when rows were refused: the pipeline dead-letters them (and
// flushes) here, so their offsets are never committed before their letters are safe. Throwing aborts the write.
using BeforeCommit = std::function<void(const std::vector<RowRejection>&)>;

class BatchSink {
 public:
  virtual ~BatchSink() = default;
  // Throws a retryable Error while the database cannot be reached.
  virtual void ensure_connected() = 0;
  // Checks the schema, or with `apply` creates or migrates it.
  virtual void prepare_schema(bool apply) = 0;
  // The stored next offset of those of `partitions` that have one.
  virtual std::map<std::int32_t, std::int64_t> load_offsets(const std::string& topic,
                                                            const std::vector<std::int32_t>& partitions) = 0;
  // Rows and offsets in one transaction. Throws FencedError (nothing written) when a partition's stored offset
  // is not its `expected`; a retryable Error when the attempt failed and may be repeated. `messages`: every
  // message folded into the records, for the score history; empty: each record is one message of unknown origin.
  virtual WriteResult write_batch(const std::vector<const StrategyRecord*>& records,
                                  const std::vector<PartitionOffset>& offsets,
                                  const BeforeCommit& before_commit = {},
                                  const std::vector<RowMessage>& messages = {}) = 0;
  // Any thread: breaks off the operation in progress (it fails retryably); safe while none runs.
  virtual void interrupt() noexcept = 0;
};

}  // namespace strategy_consumer
