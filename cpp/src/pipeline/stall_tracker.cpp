#include "strategy_consumer/pipeline/stall_tracker.hpp"

#include <algorithm>

namespace strategy_consumer {

StallTracker::StallTracker(Clock::duration write_limit, Listener on_change)
    : write_limit_(write_limit), on_change_(std::move(on_change)) {}

void StallTracker::retry_begin(const std::string& operation) {
  std::lock_guard lock(mutex_);
  retrying_.insert(operation);
  evaluate(std::max(last_now_, Clock::now()));
}

void StallTracker::retry_end(const std::string& operation) {
  std::lock_guard lock(mutex_);
  if (auto it = retrying_.find(operation); it != retrying_.end()) retrying_.erase(it);
  evaluate(std::max(last_now_, Clock::now()));
}

void StallTracker::write_begin(std::size_t writer, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  writes_[writer] = now;
  evaluate(std::max(last_now_, now));
}

void StallTracker::write_end(std::size_t writer) {
  std::lock_guard lock(mutex_);
  writes_.erase(writer);
  evaluate(last_now_);
}

StallState StallTracker::refresh(Clock::time_point now) {
  std::lock_guard lock(mutex_);
  evaluate(now);
  return state_;
}

StallState StallTracker::state() const {
  std::lock_guard lock(mutex_);
  return state_;
}

void StallTracker::evaluate(Clock::time_point now) {
  last_now_ = now;
  StallState next;
  // A hung write first: it is what /health reports, and the reason a retry elsewhere may never end.
  std::optional<Clock::time_point> oldest;
  for (const auto& [_, began] : writes_) oldest = oldest ? std::min(*oldest, began) : began;
  if (oldest && now - *oldest > write_limit_) {
    using std::chrono::duration_cast;
    using std::chrono::seconds;
    next.stalled = next.hung = true;
    next.reason = "write batch in flight for " + std::to_string(duration_cast<seconds>(now - *oldest).count()) +
                  " s (limit " + std::to_string(duration_cast<seconds>(write_limit_).count()) + " s)";
  } else if (!retrying_.empty()) {
    next.stalled = true;
    next.reason = "retrying " + *retrying_.begin();
  }
  if (next == state_) return;
  state_ = next;
  if (on_change_) on_change_(state_);
}

}  // namespace strategy_consumer
