#include "strategy_consumer/pipeline/retry.hpp"

#include <algorithm>

namespace strategy_consumer {

std::chrono::milliseconds RetryPolicy::ceiling(int failures) const {
  const int shift = std::clamp(failures - 1, 0, 30);
  const auto grown = initial_delay.count() * (std::int64_t{1} << shift);
  return std::chrono::milliseconds(std::min<std::int64_t>(grown, max_delay.count()));
}

std::chrono::milliseconds RetryPolicy::delay(int failures, std::mt19937_64& rng) const {
  const auto cap = ceiling(failures).count();
  // Full jitter, but never less than a tenth of the ceiling: a tight loop against a down server helps nobody.
  std::uniform_int_distribution<std::int64_t> dist(cap / 10, cap);
  return std::chrono::milliseconds(dist(rng));
}

}  // namespace strategy_consumer
