// The answers of /health and /ready (ops/http.hpp), as pure functions of what the pipeline and the probe report.
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "strategy_consumer/model/errors.hpp"
#include "strategy_consumer/ops/http.hpp"

using namespace strategy_consumer;

TEST(Probes, LivenessFailsOnlyAfterTheStaleTime) {
  using namespace std::chrono;
  EXPECT_TRUE(check_liveness(seconds(5), seconds(60)).ok);
  const auto stale = check_liveness(seconds(61), seconds(60));
  EXPECT_FALSE(stale.ok);
  const auto body = nlohmann::json::parse(stale.body);
  EXPECT_EQ(body["status"], "unavailable");
  EXPECT_NE(body["reason"].get<std::string>().find("61 s"), std::string::npos);
}

TEST(Probes, LivenessFailsWhileAWriteIsHungWhateverTheHeartbeat) {
  using namespace std::chrono;
  const auto hung = check_liveness(seconds(0), seconds(60), "write batch in flight for 12 s (limit 10 s)");
  EXPECT_FALSE(hung.ok);
  EXPECT_EQ(nlohmann::json::parse(hung.body)["reason"], "hung: write batch in flight for 12 s (limit 10 s)");
}

TEST(Probes, ReadinessNamesTheFirstFailingCheck) {
  ReadinessInputs ok;
  ok.assigned_partitions = 2;
  ok.kafka_brokers_up = 1;
  EXPECT_TRUE(check_readiness(ok).ok);
  EXPECT_EQ(nlohmann::json::parse(check_readiness(ok).body)["status"], "ready");

  auto reason = [](const ReadinessInputs& in) {
    const auto r = check_readiness(in);
    EXPECT_FALSE(r.ok);
    return nlohmann::json::parse(r.body)["reason"].get<std::string>();
  };
  ReadinessInputs stalled = ok;
  stalled.pipeline_healthy = false;
  stalled.stall_reason = "retrying write batch";
  stalled.database_ok = false;
  EXPECT_EQ(reason(stalled), "stalled: retrying write batch");
  ReadinessInputs db = ok;
  db.database_ok = false;
  db.database_error = "connection refused";
  EXPECT_EQ(reason(db), "postgresql: connection refused");
  ReadinessInputs unassigned = ok;
  unassigned.assigned_partitions = 0;
  EXPECT_EQ(reason(unassigned), "no partitions assigned");
  ReadinessInputs brokers = ok;
  brokers.kafka_brokers_up = 0;
  EXPECT_EQ(reason(brokers), "kafka: no broker connected");
  ReadinessInputs unknown_brokers = ok;
  unknown_brokers.kafka_brokers_up = -1;  // no statistics yet: not held against readiness
  EXPECT_TRUE(check_readiness(unknown_brokers).ok);
}

TEST(Probes, HttpConfigValidation) {
  HttpConfig c;
  EXPECT_NO_THROW(c.validate());
  c.port = 0;
  EXPECT_NO_THROW(c.validate());
  c.port = 70000;
  EXPECT_ANY_THROW(c.validate());
  c.port = -1;
  EXPECT_ANY_THROW(c.validate());
}

