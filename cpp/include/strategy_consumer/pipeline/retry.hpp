#pragma once
// Capped exponential backoff with full jitter, for operations that fail for a while (database restarting,
// broker down): RetryPolicy, the pure policy; Retrier, which runs an operation under it, reports the stall to
// the StallTracker (/ready, /health) from the first failure until success or giving up, and gives up when a
// stop is requested. The pipeline decides what is retried.
#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <type_traits>

#include "strategy_consumer/model/errors.hpp"
#include "strategy_consumer/pipeline/stall_tracker.hpp"

namespace strategy_consumer {

struct RetryPolicy {
  std::chrono::milliseconds initial_delay{200};
  std::chrono::milliseconds max_delay{30000};

  // The delay after `failures` failures: uniform in [ceiling/10, ceiling], where
  // ceiling = min(max_delay, initial_delay * 2^(failures-1)).
  std::chrono::milliseconds delay(int failures, std::mt19937_64& rng) const;
  std::chrono::milliseconds ceiling(int failures) const;
};

// Thrown when a stop request interrupts a retry (or the wait before one): the operation was abandoned.
struct Abandoned {};

class Retrier {
 public:
  struct Options {
    RetryPolicy policy;
    int max_retries = 5;
    // After max_retries failed retries: give up (throw the last error; drain jobs), else keep trying at the
    // capped interval (a service, unhealthy meanwhile).
    bool give_up = false;
  };
  // Hooks, any of them empty: `on_retry` hears of every failed attempt that is retried; `while_waiting` is
  // called every 50 ms of a wait (the pipeline's heartbeat, on its own thread).
  struct Hooks {
    std::function<void(const char* what)> on_retry;
    std::function<void()> while_waiting;
  };
  // `stop` and `stalls` must outlive the retrier.
  Retrier(Options options, const std::atomic<bool>& stop, StallTracker& stalls, Hooks hooks = {});

  // Runs `op` until it succeeds, backing off between attempts. Errors a retry cannot mend are thrown at once;
  // a stop request throws Abandoned. Any thread.
  template <class F>
  auto run(const char* what, F&& op) -> decltype(op());

  // Sleeps `delay`, in slices; throws Abandoned as soon as a stop is requested.
  void sleep_unless_stopped(std::chrono::milliseconds delay) const;
  const RetryPolicy& policy() const { return options_.policy; }
  // How long a drain job waits for unreachable brokers: what the retries of max_retries would wait, and at
  // least one capped interval.
  std::chrono::steady_clock::duration patience() const;

  // An operation stalled for its lifetime (RAII: ended by success and by giving up alike).
  class Stall {
   public:
    Stall(StallTracker& stalls, std::string what) : stalls_(stalls), what_(std::move(what)) {
      stalls_.retry_begin(what_);
    }
    ~Stall() { stalls_.retry_end(what_); }
    Stall(const Stall&) = delete;
    Stall& operator=(const Stall&) = delete;

   private:
    StallTracker& stalls_;
    std::string what_;
  };

 private:
  // A failed attempt: rethrows when it is not retried, else waits before the next one.
  void failed(const char* what, const Error& e, int failures, std::optional<Stall>& stall);
  void succeeded_again(const char* what) const;

  Options options_;
  const std::atomic<bool>& stop_;
  StallTracker& stalls_;
  Hooks hooks_;
};

template <class F>
auto Retrier::run(const char* what, F&& op) -> decltype(op()) {
  std::optional<Stall> stall;  // from the first failure until success, or until the operation gives up
  for (int failures = 0;;) {
    try {
      if constexpr (std::is_void_v<decltype(op())>) {
        op();
        if (failures) succeeded_again(what);
        return;
      } else {
        auto result = op();
        if (failures) succeeded_again(what);
        return result;
      }
    } catch (const Error& e) {
      failed(what, e, ++failures, stall);
    }
  }
}

}  // namespace strategy_consumer
