#pragma once
// Whether the Kafka brokers can be reached, as librdkafka's statistics say (every statistics.interval.ms, from
// inside poll()). librdkafka reconnects on its own, so an outage is watched, not retried: while no broker is up
// the pipeline is stalled ("reach the Kafka brokers": /ready answers 503); a drain job gives up once the outage
// has lasted the retrier's patience (what its retries would wait), a service waits for as long as it takes.
#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>

#include "strategy_consumer/pipeline/retry.hpp"
#include "strategy_consumer/pipeline/stall_tracker.hpp"

namespace strategy_consumer {

class BrokerOutage {
 public:
  using Clock = std::chrono::steady_clock;
  // `on_outage` hears of each outage as it starts (the metrics' retry counter). `stalls` must outlive this.
  BrokerOutage(StallTracker& stalls, Clock::duration patience, bool give_up, std::function<void()> on_outage = {});

  // From each statistics report: whether any broker is up.
  void observed(bool brokers_up, Clock::time_point now);
  // Each turn of the loop: starts or ends the stall. Throws KafkaError (not retryable) when a drain job has
  // waited its patience; `open_messages` and `max_retries` only go into the message.
  void check(Clock::time_point now, std::size_t open_messages, int max_retries);
  bool down() const { return outage_.has_value(); }

 private:
  StallTracker& stalls_;
  Clock::duration patience_;
  bool give_up_;
  std::function<void()> on_outage_;
  std::optional<Clock::time_point> down_since_;  // since when the statistics show no broker up
  std::optional<Retrier::Stall> outage_;         // while no broker is reachable
};

}  // namespace strategy_consumer
