// BrokerOutage (pipeline/broker_outage.hpp): no broker up stalls the pipeline; a drain job gives up after its
// patience, a service never does; a broker back ends the stall.
#include <gtest/gtest.h>

#include "strategy_consumer/model/errors.hpp"
#include "strategy_consumer/pipeline/broker_outage.hpp"

namespace strategy_consumer {
namespace {

using namespace std::chrono_literals;
using Clock = BrokerOutage::Clock;

TEST(BrokerOutage, ADrainJobGivesUpAfterItsPatienceAndNotBefore) {
  StallTracker stalls(600s);
  int outages = 0;
  BrokerOutage brokers(stalls, 30s, /*give_up=*/true, [&] { ++outages; });
  const Clock::time_point t0{};
  brokers.check(t0, 0, 3);
  EXPECT_FALSE(brokers.down());
  brokers.observed(false, t0);
  brokers.check(t0 + 1s, 5, 3);
  EXPECT_TRUE(brokers.down());
  EXPECT_EQ(outages, 1);
  EXPECT_TRUE(stalls.state().stalled);
  EXPECT_EQ(stalls.state().reason, "retrying reach the Kafka brokers");
  brokers.observed(false, t0 + 20s);  // still down: the outage started at t0
  brokers.check(t0 + 29s, 5, 3);
  EXPECT_EQ(outages, 1) << "one outage, one report";
  try {
    brokers.check(t0 + 30s, 5, 3);
    FAIL() << "did not give up";
  } catch (const KafkaError& e) {
    EXPECT_FALSE(e.retryable());
    EXPECT_NE(std::string(e.what()).find("no Kafka broker reachable for 30 s"), std::string::npos) << e.what();
  }
}

TEST(BrokerOutage, AServiceWaitsAndABrokerBackEndsTheStall) {
  StallTracker stalls(600s);
  BrokerOutage brokers(stalls, 30s, /*give_up=*/false);
  const Clock::time_point t0{};
  brokers.observed(false, t0);
  brokers.check(t0 + 3600s, 0, 3);  // an hour: still waiting
  EXPECT_TRUE(stalls.state().stalled);
  brokers.observed(true, t0 + 3601s);
  brokers.check(t0 + 3601s, 0, 3);
  EXPECT_FALSE(brokers.down());
  EXPECT_FALSE(stalls.state().stalled);
}

}  // namespace
}  // namespace strategy_consumer
