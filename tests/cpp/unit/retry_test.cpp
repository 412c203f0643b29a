// Capped exponential backoff with jitter (retry.hpp).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <random>
#include <set>
#include <vector>

#include "strategy_consumer/pipeline/retry.hpp"

namespace strategy_consumer {
namespace {

using namespace std::chrono_literals;

TEST(RetryPolicy, Defaults) {
  const RetryPolicy p;
  EXPECT_EQ(p.initial_delay, 200ms);
  EXPECT_EQ(p.max_delay, 30000ms);
}

TEST(RetryPolicy, CeilingDoublesFromInitialDelayAndCapsAtMaxDelay) {
  const RetryPolicy p;  // 200 ms doubling, capped at 30 s
  struct Case {
    int failures;
    std::chrono::milliseconds ceiling;
  };
  const std::vector<Case> cases = {
      {1, 200ms},    {2, 400ms},    {3, 800ms},    {4, 1600ms},   {5, 3200ms},   {6, 6400ms},
      {7, 12800ms},  {8, 25600ms},  {9, 30000ms},  {10, 30000ms}, {31, 30000ms}, {32, 30000ms},
      {64, 30000ms}, {1000, 30000ms}, {2147483647, 30000ms},
  };
  for (const auto& c : cases) EXPECT_EQ(p.ceiling(c.failures), c.ceiling) << c.failures << " failures";
}

TEST(RetryPolicy, CeilingWithOtherSettings) {
  RetryPolicy p;
  p.initial_delay = 50ms;
  p.max_delay = 1000ms;
  const std::vector<std::chrono::milliseconds> expected = {50ms, 100ms, 200ms, 400ms, 800ms, 1000ms, 1000ms};
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(p.ceiling(static_cast<int>(i) + 1), expected[i]) << i + 1 << " failures";
  }
  // Never below the initial delay, even for nonsense counts.
  EXPECT_EQ(p.ceiling(0), 50ms);
  EXPECT_EQ(p.ceiling(-3), 50ms);
  // Monotonic.
  for (int f = 1; f < 100; ++f) EXPECT_LE(p.ceiling(f), p.ceiling(f + 1)) << f;
}

TEST(RetryPolicy, DelayWithinATenthOfTheCeilingAndTheCeiling) {
  const RetryPolicy p;
  std::mt19937_64 rng(12345);
  for (int failures : {1, 2, 3, 5, 8, 9, 20, 1000}) {
    const auto ceiling = p.ceiling(failures);
    std::int64_t lowest = ceiling.count(), highest = 0;
    std::set<std::int64_t> distinct;
    for (int i = 0; i < 2000; ++i) {
      const auto d = p.delay(failures, rng);
      ASSERT_GE(d.count(), ceiling.count() / 10) << failures << " failures";
      ASSERT_LE(d, ceiling) << failures << " failures";
      lowest = std::min(lowest, d.count());
      highest = std::max(highest, d.count());
      distinct.insert(d.count());
    }
    // Jittered across the range, not a fixed value: 2000 uniform draws come near both ends.
    const std::int64_t span = ceiling.count() - ceiling.count() / 10;
    EXPECT_LT(lowest, ceiling.count() / 10 + span / 10) << failures << " failures";
    EXPECT_GT(highest, ceiling.count() - span / 10) << failures << " failures";
    EXPECT_GT(distinct.size(), 50u) << failures << " failures";
  }
}

TEST(RetryPolicy, DelayIsReproducibleForASeed) {
  const RetryPolicy p;
  std::mt19937_64 a(7), b(7);
  for (int f = 1; f < 20; ++f) EXPECT_EQ(p.delay(f, a), p.delay(f, b));
}

TEST(RetryPolicy, ZeroDelaysStayZero) {
  RetryPolicy p;
  p.initial_delay = 0ms;
  std::mt19937_64 rng(1);
  for (int f = 1; f < 5; ++f) {
    EXPECT_EQ(p.ceiling(f), 0ms);
    EXPECT_EQ(p.delay(f, rng), 0ms);
  }
}

}  // namespace
}  // namespace strategy_consumer
