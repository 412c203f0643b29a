#include "strategy_consumer/pipeline/prepare.hpp"

#include <algorithm>

namespace strategy_consumer {

PreparedBatch prepare_batch(const Batch& batch, const std::vector<bool>& refused, const ExpectedOffsets& expected) {
  PreparedBatch out;
  const auto& entries = batch.entries();
  out.rows = fold_by_hash(entries, refused);
  std::sort(out.rows.begin(), out.rows.end(), [&](const FoldedRow& a, const FoldedRow& b) {
    return a.record(entries).strategy_hash < b.record(entries).strategy_hash;
  });
  for (const auto& row : out.rows) out.duplicates += row.duplicates();
  for (const auto& [tp, next] : batch.next_offsets()) {
    auto it = expected.find(tp);
    out.offsets.push_back({tp.first, tp.second, next, it == expected.end() ? std::nullopt : it->second});
  }
  return out;
}

std::vector<const StrategyRecord*> row_records(const std::vector<FoldedRow>& rows,
                                               const std::vector<BatchEntry>& entries) {
  std::vector<const StrategyRecord*> records;
  records.reserve(rows.size());
  for (const auto& row : rows) records.push_back(&row.record(entries));
  return records;
}

std::vector<RowMessage> row_messages(const std::vector<FoldedRow>& rows, const std::vector<BatchEntry>& entries) {
  std::vector<RowMessage> messages;
  messages.reserve(entries.size());
  for (std::size_t r = 0; r < rows.size(); ++r) {
    for (const auto member : rows[r].members) messages.push_back({r, &entries[member].record, &entries[member].source});
  }
  return messages;
}

}  // namespace strategy_consumer
