#pragma once
// The account of a committed batch, on the consumer thread: the counters, the observer's batch_committed (and
// commit_in_doubt), and the batch's log line (messages, new, updated, outdated, duplicates, dead letters, row
// statements, offsets, time since hand-off).
#include "strategy_consumer/pipeline/pipeline.hpp"
#include "strategy_consumer/pipeline/writer_lane.hpp"

namespace strategy_consumer {

// `work`: written and committed (not fenced, no error). Takes the refused rows' members out of its duplicates.
void account_committed(Work& work, PipelineCounters& counters, PipelineObserver& observer);

}  // namespace strategy_consumer
