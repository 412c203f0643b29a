#include "strategy_consumer/pipeline/fold.hpp"

#include <string_view>
#include <unordered_map>

namespace strategy_consumer {

bool older_than(const StrategyRecord& later, const StrategyRecord& row) {
  return later.message_timestamp_ms && row.message_timestamp_ms && *later.message_timestamp_ms < *row.message_timestamp_ms;
}

void apply_rediscovery(StrategyRecord& row, const StrategyRecord& later) {
  // The upsert's guard and SET list (postgres/statements.hpp, the upsert): an older re-discovery changes nothing; else the score
  // always, each optional field when the message has it.
  if (older_than(later, row)) return;
  row.score = later.score;
  if (later.message_timestamp_ms) row.message_timestamp_ms = later.message_timestamp_ms;
  if (later.performance_metrics) row.performance_metrics = later.performance_metrics;
  if (later.discovery_symbol) row.discovery_symbol = later.discovery_symbol;
  if (later.discovery_start_us) row.discovery_start_us = later.discovery_start_us;
  if (later.discovery_end_us) row.discovery_end_us = later.discovery_end_us;
}

std::vector<FoldedRow> fold_by_hash(const std::vector<BatchEntry>& entries, const std::vector<bool>& excluded) {
  auto taking_part = [&](std::size_t i) { return excluded.empty() || !excluded[i]; };
  std::vector<FoldedRow> rows;
  std::unordered_map<std::string_view, std::size_t> row_of;  // strategy_hash -> index into rows
  row_of.reserve(entries.size());
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (!taking_part(i)) continue;
    const StrategyRecord& record = entries[i].record;
    auto [it, added] = row_of.try_emplace(record.strategy_hash, rows.size());
    if (added) {
      rows.push_back({{i}, std::nullopt});
      continue;
    }
    FoldedRow& row = rows[it->second];
    if (!row.folded) row.folded = entries[row.members.front()].record;  // copied once, at the first repeat
    apply_rediscovery(*row.folded, record);
    row.members.push_back(i);
  }
  return rows;
}

}  // namespace strategy_consumer
