#pragma once
// A batch made ready for its writer: the entries the analyst rules refused left out, the rest folded into one
// row per strategy_hash (fold.hpp), the rows in strategy_hash order (as the upsert locks them, so two writers
// never wait on each other in a cycle, and the halves of a bisection keep the order), and each partition's
// offsets: the next one to read and the stored one this consumer expects (the fence). Pure; no I/O.
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "strategy_consumer/pipeline/batch.hpp"
#include "strategy_consumer/pipeline/batch_sink.hpp"
#include "strategy_consumer/pipeline/fold.hpp"

namespace strategy_consumer {

// The stored next offset of each assigned partition, as this consumer last read or wrote it (nullopt: no row).
using ExpectedOffsets = std::map<TopicPartition, std::optional<std::int64_t>>;

struct PreparedBatch {
  std::vector<FoldedRow> rows;          // in strategy_hash order
  std::size_t duplicates = 0;           // messages folded into a row beyond its first
  std::vector<PartitionOffset> offsets;  // per partition of the batch; expected nullopt when not in `expected`
};

// `refused`: empty, or one flag per entry of the batch (the rules refused it: dead-lettered, not written).
PreparedBatch prepare_batch(const Batch& batch, const std::vector<bool>& refused, const ExpectedOffsets& expected);

// The records to write, one per row, pointing into the batch's entries (or the rows' folded values).
std::vector<const StrategyRecord*> row_records(const std::vector<FoldedRow>& rows,
                                               const std::vector<BatchEntry>& entries);
// Every message of the rows, row by row and in batch order within a row (the score history's input).
std::vector<RowMessage> row_messages(const std::vector<FoldedRow>& rows, const std::vector<BatchEntry>& entries);

}  // namespace strategy_consumer
