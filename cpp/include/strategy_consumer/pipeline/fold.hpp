#pragma once
// Several messages for one strategy in a batch: folded, field by field and in batch order (offset order within
// a partition), into the one row the batch writes for it. The row is what applying the messages one by one with
// the upsert would give (postgres/sink.hpp): the first message's symbol, strategy type and parameters (a
// re-discovery never changes them), the last message's score, and for each optional field (performance_metrics,
// discovery_symbol, discovery_start_time, discovery_end_time) the last value a message carried, since a message
// without it keeps the stored one. A message whose Kafka timestamp is older than the row's (a re-discovery that
// arrived late, from another partition) changes nothing, as the upsert's guard would not apply it either.
// Pure functions; no I/O.
#include <cstddef>
#include <optional>
#include <vector>

#include "strategy_consumer/model/strategy_record.hpp"
#include "strategy_consumer/pipeline/batch.hpp"

namespace strategy_consumer {

// `later` carries an older Kafka timestamp than `row` (both have one).
bool older_than(const StrategyRecord& later, const StrategyRecord& row);
// `row` after the re-discovery `later` of the same strategy has been applied to it, as the upsert applies it.
void apply_rediscovery(StrategyRecord& row, const StrategyRecord& later);

// One row to write: every entry of the batch folded into it (indices, in batch order), and the folded values
// when there are several (a single message is written as it is, not copied).
struct FoldedRow {
  std::vector<std::size_t> members;
  std::optional<StrategyRecord> folded;

  // The values to write.
  const StrategyRecord& record(const std::vector<BatchEntry>& entries) const {
    return folded ? *folded : entries[members.front()].record;
  }
  // Messages folded into the row beyond the first.
  std::size_t duplicates() const { return members.size() - 1; }
};

// One row per strategy_hash among the entries not `excluded` (refused by the analyst rules; `excluded` is empty
// or one flag per entry), in the order of each strategy's first message.
std::vector<FoldedRow> fold_by_hash(const std::vector<BatchEntry>& entries, const std::vector<bool>& excluded = {});

}  // namespace strategy_consumer
