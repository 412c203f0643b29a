#include "strategy_consumer/pipeline/batch_report.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <map>
#include <string>

#include "strategy_consumer/ops/metrics.hpp"

namespace strategy_consumer {
namespace {

std::string describe_offsets(const std::map<TopicPartition, std::int64_t>& next) {
  std::string out;
  for (const auto& [tp, offset] : next) {
    if (!out.empty()) out += ' ';
    out += tp.first + "[" + std::to_string(tp.second) + "]->" + std::to_string(offset);
  }
  return out;
}

}  // namespace

void account_committed(Work& batch, PipelineCounters& counters, PipelineObserver& observer) {
  Work* work = &batch;
  const auto& result = work->result;
  if (result.in_doubt_committed) {
    observer.commit_in_doubt(*result.in_doubt_committed);
    if (*result.in_doubt_committed) {
      spdlog::warn("batch {}: its COMMIT's outcome was unknown (the connection broke during it); the stored "
                   "offsets show it committed",
                   work->id);
    } else {
      spdlog::warn("batch {}: its first COMMIT's outcome was unknown (the connection broke during it); the "
                   "stored offsets showed it had not committed, and it was written again",
                   work->id);
    }
  }
  // The messages folded into a refused row were dead-lettered, each of them: not duplicates.
  for (const auto& r : result.rejected) work->duplicates -= work->rows[r.index].duplicates();
  counters.stored_new += result.inserted;
  counters.stored_updated += result.updated;
  counters.outdated += result.outdated;
  counters.duplicate_in_batch += work->duplicates;
  counters.dead_lettered += work->letters.count();
  ++counters.batches;
  observer.batch_committed({work->id, work->batch.message_count(), result.inserted, result.updated,
                             work->duplicates, work->letters.count(), work->letters.by_stage(), result.outdated});
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - work->handed_off).count();
  // row statements: COPY+INSERT attempts, 1 unless PostgreSQL refused rows (then about 2*log2(n) per row).
  spdlog::info("batch {}: {} message(s): {} new, {} updated, {}{} duplicate(s) in batch, {} dead-lettered; "
               "{} row statement(s); offsets {}; {} ms",
               work->id, work->batch.message_count(), result.inserted, result.updated,
               result.outdated ? std::to_string(result.outdated) + " outdated (not applied), " : std::string(),
               work->duplicates,
               work->letters.count(), result.row_statements, describe_offsets(work->batch.next_offsets()), ms);
}

}  // namespace strategy_consumer
