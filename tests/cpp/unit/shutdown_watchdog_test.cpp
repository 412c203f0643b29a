// The shutdown deadline (shutdown_watchdog.hpp): nothing is broken off before a stop request nor within the
// deadline after it; past it the database operations are interrupted, again every second; meanwhile a write in
// flight is aged into "hung" without any event.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "strategy_consumer/pipeline/shutdown_watchdog.hpp"

namespace strategy_consumer {
namespace {

using namespace std::chrono_literals;

TEST(ShutdownWatchdog, InterruptsOnlyAfterTheDeadlinePassedSinceTheStopRequestThenEverySecond) {
  std::atomic<bool> stop_requested{false};
  StallTracker stalls(std::chrono::hours(1));
  std::atomic<int> interrupts{0};
  ShutdownWatchdog watchdog(300ms, stop_requested, stalls, [&] { ++interrupts; });
  std::this_thread::sleep_for(400ms);
  EXPECT_EQ(interrupts, 0) << "no stop was requested";
  stop_requested = true;
  std::this_thread::sleep_for(150ms);
  EXPECT_EQ(interrupts, 0) << "within the deadline";
  std::this_thread::sleep_for(600ms);
  EXPECT_EQ(interrupts, 1) << "past the deadline: broken off once";
  std::this_thread::sleep_for(1100ms);
  EXPECT_EQ(interrupts, 2) << "and again a second later";
  watchdog.stop();
  const int after_stop = interrupts;
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(interrupts, after_stop) << "a stopped watchdog interrupts nothing";
}

TEST(ShutdownWatchdog, AgesAWriteInFlightIntoHung) {
  std::atomic<bool> stop_requested{false};
  StallTracker stalls(100ms);
  ShutdownWatchdog watchdog(1s, stop_requested, stalls, [] {});
  StallTracker::Write in_flight(stalls, 0);
  EXPECT_FALSE(stalls.state().hung);
  std::this_thread::sleep_for(400ms);
  EXPECT_TRUE(stalls.state().hung) << "past --write_stall_seconds with no event but the watchdog's refresh";
}

}  // namespace
}  // namespace strategy_consumer
