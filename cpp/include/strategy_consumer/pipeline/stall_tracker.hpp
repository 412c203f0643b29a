#pragma once
// One account of what holds the pipeline up, read alike by /ready, /health, the `stalled` gauge and
// Pipeline::healthy(), whatever thread reports it:
//   - operations being retried (from an operation's first failure until it succeeds or gives up), and
//   - database writes in flight, per writer, with when each attempt began: one in flight for longer than the
//     write limit is hung (a lock that is never released, a network path that died without a reset).
// The pipeline refreshes it every 50 ms, so that a write passing its limit is noticed without an event; every
// change of the state is reported to the listener, under the tracker's mutex (so what the listener shows never
// disagrees with state()). Bookkeeping only; times are passed in.
#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>

namespace strategy_consumer {

struct StallState {
  bool stalled = false;  // an operation is being retried, or a write is hung: not ready
  bool hung = false;     // a write has been in flight for longer than the limit: not alive either
  std::string reason;    // "retrying write batch", "write batch in flight for 12 s (limit 10 s)"; "" when neither

  bool operator==(const StallState&) const = default;
};

class StallTracker {
 public:
  using Clock = std::chrono::steady_clock;
  using Listener = std::function<void(const StallState&)>;

  explicit StallTracker(Clock::duration write_limit, Listener on_change = {});

  void retry_begin(const std::string& operation);
  void retry_end(const std::string& operation);
  void write_begin(std::size_t writer, Clock::time_point now);
  void write_end(std::size_t writer);
  // Evaluates the state at `now` (a write may have passed its limit since the last event) and returns it.
  StallState refresh(Clock::time_point now);
  // The state as last evaluated (by an event or refresh()).
  StallState state() const;

  // A write attempt in flight for its lifetime (RAII).
  class Write {
   public:
    Write(StallTracker& tracker, std::size_t writer) : tracker_(tracker), writer_(writer) {
      tracker_.write_begin(writer_, Clock::now());
    }
    ~Write() { tracker_.write_end(writer_); }
    Write(const Write&) = delete;
    Write& operator=(const Write&) = delete;

   private:
    StallTracker& tracker_;
    std::size_t writer_;
  };

 private:
  void evaluate(Clock::time_point now);  // under mutex_

  const Clock::duration write_limit_;
  const Listener on_change_;
  mutable std::mutex mutex_;
  std::multiset<std::string> retrying_;
  std::map<std::size_t, Clock::time_point> writes_;  // writer -> when its attempt in flight began
  Clock::time_point last_now_{};
  StallState state_;
};

}  // namespace strategy_consumer
