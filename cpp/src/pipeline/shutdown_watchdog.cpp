#include "strategy_consumer/pipeline/shutdown_watchdog.hpp"

#include <optional>

#include <spdlog/spdlog.h>

namespace strategy_consumer {

ShutdownWatchdog::ShutdownWatchdog(std::chrono::milliseconds deadline, const std::atomic<bool>& stop_requested,
                                   StallTracker& stalls, std::function<void()> interrupt)
    : deadline_(deadline), stop_requested_(stop_requested), stalls_(stalls), interrupt_(std::move(interrupt)) {
  thread_ = std::jthread([this](std::stop_token done) { watch(done); });
}

void ShutdownWatchdog::stop() {
  if (!thread_.joinable()) return;
  thread_.request_stop();
  thread_.join();
}

void ShutdownWatchdog::watch(std::stop_token done) {
  using Clock = std::chrono::steady_clock;
  std::optional<Clock::time_point> stop_seen, last_interrupt;
  while (!done.stop_requested()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    stalls_.refresh(Clock::now());  // a write in flight may have passed its limit
    if (!stop_requested_) continue;
    const auto now = Clock::now();
    if (!stop_seen) stop_seen = now;
    if (now - *stop_seen < deadline_) continue;
    if (!last_interrupt) {
      spdlog::warn("the open batch did not commit within {} s of the stop request: breaking off its database "
                   "write; nothing of it commits",
                   std::chrono::duration<double>(deadline_).count());
    }
    if (!last_interrupt || now - *last_interrupt >= std::chrono::seconds(1)) {
      last_interrupt = now;
      interrupt_();
    }
  }
}

}  // namespace strategy_consumer
