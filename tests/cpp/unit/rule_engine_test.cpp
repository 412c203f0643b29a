// The core's side of analyst rules: RuleOutcome and inspect_with_rules, with a rule engine written in plain C++
// (the interface needs no Python; cpp/pyrules/ is one implementation of it).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "strategy_consumer/rules/rule_engine.hpp"
#include "strategy_consumer/message/strategy_inspector.hpp"
#include "strategy_consumer/model/timestamp.hpp"

namespace strategy_consumer {
namespace {

// Refuses a score above 1 (rule "cap"), warns about one above 0.5 (rule "soft").
class ScoreRules : public RuleEngine {
 public:
  std::vector<RuleOutcome> evaluate(const std::vector<const StrategyRecord*>& records) override {
    ++calls;
    std::vector<RuleOutcome> out(records.size());
    for (std::size_t i = 0; i < records.size(); ++i) {
      if (records[i]->score > 1) out[i].rejections.push_back({"rule:cap", "", "", "score above 1"});
      if (records[i]->score > 0.5) out[i].warnings.push_back({"soft", "score above 0.5"});
    }
    return out;
  }
  void reload_if_changed() override {}
  void request_reload() noexcept override {}
  RuleStats stats() const override { return {}; }
  int calls = 0;
};

std::string message(double score, int short_period = 12) {
  return nlohmann::json{{"symbol", "BTC/USD"},
                        {"strategy_type", "MACD_CROSSOVER"},
                        {"parameters", {{"shortEmaPeriod", short_period}, {"longEmaPeriod", 26}, {"signalPeriod", 9}}},
                        {"score", score}}
      .dump();
}

TEST(RuleOutcome, StageIsTheFirstRefusingRule) {
  RuleOutcome o;
  EXPECT_FALSE(o.rejected());
  EXPECT_EQ(o.stage(), "");
  o.rejections = {{"rule:first", "", "", "a"}, {"rule:second", "", "", "b"}};
  EXPECT_TRUE(o.rejected());
  EXPECT_EQ(o.stage(), "rule:first");
}

TEST(InspectWithRules, RulesRunOnlyOnValidStrategiesAndTheirRefusalIsTheStage) {
  StrategyInspector inspector;
  ScoreRules rules;

  auto stored = inspect_with_rules(inspector, &rules, message(0.4), now_us());
  EXPECT_EQ(stored.stage, "");
  EXPECT_TRUE(stored.reasons.empty() && stored.warnings.empty());
  EXPECT_EQ(stored.strategy_hash.size(), 64u);

  auto warned = inspect_with_rules(inspector, &rules, message(0.7), now_us());
  EXPECT_EQ(warned.stage, "");
  ASSERT_EQ(warned.warnings.size(), 1u);
  EXPECT_EQ(warned.warnings[0].rule, "soft");

  auto refused = inspect_with_rules(inspector, &rules, message(2.0), now_us());
  EXPECT_EQ(refused.stage, "rule:cap");
  ASSERT_EQ(refused.reasons.size(), 1u);
  EXPECT_EQ(refused.reasons[0].message, "score above 1");
  EXPECT_EQ(refused.warnings.size(), 1u);
  EXPECT_EQ(rules.calls, 3);

  // The catalog refuses first; the rules never see it.
  auto invalid = inspect_with_rules(inspector, &rules, message(2.0, 99), now_us());
  EXPECT_EQ(invalid.stage, "validate");
  EXPECT_EQ(invalid.reasons[0].rule, "parameters.range");
  auto undecodable = inspect_with_rules(inspector, &rules, "{", now_us());
  EXPECT_EQ(undecodable.stage, "decode");
  EXPECT_EQ(undecodable.strategy_hash, "");
  EXPECT_EQ(rules.calls, 3);

  // Without rules: the inspection alone.
  EXPECT_EQ(inspect_with_rules(inspector, nullptr, message(2.0), now_us()).stage, "");
}

}  // namespace
}  // namespace strategy_consumer
