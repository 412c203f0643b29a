// The one stall tracker (stall_tracker.hpp): retries from any thread and aged writes, one state for /ready,
// /health, the `stalled` gauge and Pipeline::healthy().
#include <gtest/gtest.h>

#include <chrono>
#include <vector>

#include "strategy_consumer/pipeline/stall_tracker.hpp"

namespace strategy_consumer {
namespace {

using namespace std::chrono_literals;
using Clock = StallTracker::Clock;

TEST(StallTracker, StalledWhileAnyOperationOfAnyWriterIsRetried) {
  std::vector<StallState> seen;
  StallTracker t(10s, [&](const StallState& s) { seen.push_back(s); });
  EXPECT_FALSE(t.state().stalled);
  // Two writers, two operations: the state stays stalled until the last one is over, whatever the order (two
  // trackers used to disagree here: the gauge went to 0 while a writer still retried).
  t.retry_begin("write batch");
  t.retry_begin("deliver dead letters");
  t.retry_begin("write batch");
  t.retry_end("deliver dead letters");
  EXPECT_TRUE(t.state().stalled);
  EXPECT_EQ(t.state().reason, "retrying write batch");
  t.retry_end("write batch");
  EXPECT_TRUE(t.state().stalled) << "the other writer still retries";
  t.retry_end("write batch");
  EXPECT_FALSE(t.state().stalled);
  EXPECT_EQ(t.state().reason, "");
  // Every change was reported, and only changes; the last report is the state.
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back(), t.state());
  for (std::size_t i = 1; i < seen.size(); ++i) EXPECT_FALSE(seen[i] == seen[i - 1]);
}

TEST(StallTracker, AWriteInFlightPastTheLimitIsHungUntilItEnds) {
  std::vector<StallState> seen;
  StallTracker t(10s, [&](const StallState& s) { seen.push_back(s); });
  const auto t0 = Clock::now();
  t.write_begin(0, t0);
  t.write_begin(1, t0 + 8s);
  EXPECT_FALSE(t.refresh(t0 + 10s).stalled) << "at the limit, not past it";
  const StallState hung = t.refresh(t0 + 12s);
  EXPECT_TRUE(hung.stalled);
  EXPECT_TRUE(hung.hung);
  EXPECT_EQ(hung.reason, "write batch in flight for 12 s (limit 10 s)");
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back(), hung) << "the listener (the gauge) heard it";
  t.write_end(0);
  EXPECT_FALSE(t.refresh(t0 + 13s).hung) << "writer 1's attempt is 5 s old";
  EXPECT_TRUE(t.refresh(t0 + 19s).hung);
  t.write_end(1);
  EXPECT_FALSE(t.state().stalled);
  EXPECT_EQ(seen.back(), t.state());
}

TEST(StallTracker, AHungWriteComesBeforeARetryInTheReason) {
  StallTracker t(1s);
  const auto t0 = Clock::now();
  t.retry_begin("deliver dead letters");
  t.write_begin(0, t0);
  const StallState s = t.refresh(t0 + 2s);
  EXPECT_TRUE(s.hung);
  EXPECT_EQ(s.reason.rfind("write batch in flight", 0), 0u);
  t.write_end(0);
  EXPECT_EQ(t.refresh(t0 + 3s).reason, "retrying deliver dead letters");
  EXPECT_FALSE(t.state().hung);
}

}  // namespace
}  // namespace strategy_consumer
