#pragma once
// The shutdown deadline (a thread for the length of Pipeline::run()): after a stop request, the open batch has
// `deadline` (--shutdown_timeout_seconds) to commit. Then the database operations it waits for are broken off
// (`interrupt`, again every second while the pipeline has not ended), and the batch is abandoned. Meanwhile, every
// 50 ms, it ages the writes in flight (stall_tracker.hpp: a write past --write_stall_seconds is hung).
#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

#include "strategy_consumer/pipeline/stall_tracker.hpp"

namespace strategy_consumer {

class ShutdownWatchdog {
 public:
  // `stop_requested` and `stalls` must outlive it; `interrupt` is called from its thread.
  ShutdownWatchdog(std::chrono::milliseconds deadline, const std::atomic<bool>& stop_requested, StallTracker& stalls,
                   std::function<void()> interrupt);
  // Ends the thread and joins it. Idempotent.
  ~ShutdownWatchdog() { stop(); }
  void stop();

 private:
  void watch(std::stop_token done);

  const std::chrono::milliseconds deadline_;
  const std::atomic<bool>& stop_requested_;
  StallTracker& stalls_;
  const std::function<void()> interrupt_;
  std::jthread thread_;
};

}  // namespace strategy_consumer
