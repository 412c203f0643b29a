#include "strategy_consumer/pipeline/retry.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <thread>

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

Retrier::Retrier(Options options, const std::atomic<bool>& stop, StallTracker& stalls, Hooks hooks)
    : options_(options), stop_(stop), stalls_(stalls), hooks_(std::move(hooks)) {}

void Retrier::succeeded_again(const char* what) const { spdlog::info("{} succeeded again", what); }

void Retrier::failed(const char* what, const Error& e, int failures, std::optional<Stall>& stall) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  if (!e.retryable()) throw;
  if (stop_) throw Abandoned{};  // stopping: not worth another attempt (or interrupted)
  if (!stall) stall.emplace(stalls_, what);
  if (hooks_.on_retry) hooks_.on_retry(what);
  if (failures > options_.max_retries && options_.give_up) {
    spdlog::error("{} failed {} times, giving up: {}", what, failures, e.what());
    throw;
  }
  const auto delay = options_.policy.delay(failures, rng);
  spdlog::warn("{} failed (attempt {}): {}; retrying in {} ms", what, failures, e.what(), delay.count());
  sleep_unless_stopped(delay);
}

void Retrier::sleep_unless_stopped(std::chrono::milliseconds delay) const {
  using Clock = std::chrono::steady_clock;
  const auto until = Clock::now() + delay;
  while (Clock::now() < until) {
    if (stop_) throw Abandoned{};
    if (hooks_.while_waiting) hooks_.while_waiting();
    std::this_thread::sleep_for(std::min<Clock::duration>(until - Clock::now(), std::chrono::milliseconds(50)));
  }
}

std::chrono::steady_clock::duration Retrier::patience() const {
  std::chrono::steady_clock::duration total{};
  for (int f = 1; f <= options_.max_retries; ++f) total += options_.policy.ceiling(f);
  return std::max<std::chrono::steady_clock::duration>(total, options_.policy.max_delay);
}

}  // namespace strategy_consumer
