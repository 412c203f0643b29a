#include "strategy_consumer/pipeline/broker_outage.hpp"

#include <spdlog/spdlog.h>

#include <string>

#include "strategy_consumer/model/errors.hpp"

namespace strategy_consumer {

BrokerOutage::BrokerOutage(StallTracker& stalls, Clock::duration patience, bool give_up,
                           std::function<void()> on_outage)
    : stalls_(stalls), patience_(patience), give_up_(give_up), on_outage_(std::move(on_outage)) {}

void BrokerOutage::observed(bool brokers_up, Clock::time_point now) {
  if (brokers_up) down_since_.reset();
  else if (!down_since_) down_since_ = now;
}

void BrokerOutage::check(Clock::time_point now, std::size_t open_messages, int max_retries) {
  if (!down_since_) {
    if (outage_) {
      outage_.reset();
      spdlog::info("a Kafka broker is reachable again");
    }
    return;
  }
  if (!outage_) {
    outage_.emplace(stalls_, "reach the Kafka brokers");
    if (on_outage_) on_outage_();
    spdlog::warn("no Kafka broker reachable; librdkafka keeps reconnecting");
  }
  const auto down_for = now - *down_since_;
  if (give_up_ && down_for >= patience_) {
    const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(down_for).count();
    spdlog::error("no Kafka broker reachable for {} s, giving up (drain mode, --max_retries={}); the open batches "
                  "({} message(s)) are not committed",
                  seconds, max_retries, open_messages);
    throw KafkaError("no Kafka broker reachable for " + std::to_string(seconds) + " s, gave up", false);
  }
}

}  // namespace strategy_consumer
