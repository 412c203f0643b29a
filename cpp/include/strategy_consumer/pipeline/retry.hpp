#pragma once
// Capped exponential backoff with full jitter, for operations that fail for a while (database restarting,
// broker down). Pure policy here; the pipeline decides what is retried.
#include <chrono>
#include <random>

namespace strategy_consumer {

struct RetryPolicy {
  std::chrono::milliseconds initial_delay{200};
  std::chrono::milliseconds max_delay{30000};

  // The delay after `failures` failures: uniform in [ceiling/10, ceiling], where
  // ceiling = min(max_delay, initial_delay * 2^(failures-1)).
  std::chrono::milliseconds delay(int failures, std::mt19937_64& rng) const;
  std::chrono::milliseconds ceiling(int failures) const;
};

}  // namespace strategy_consumer
