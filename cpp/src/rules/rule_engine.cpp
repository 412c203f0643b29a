#include "strategy_consumer/rules/rule_engine.hpp"

#include "strategy_consumer/message/strategy_inspector.hpp"

namespace strategy_consumer {

RuledInspection inspect_with_rules(const StrategyInspector& inspector, RuleEngine* rules, std::string_view message,
                                   std::int64_t now_us) {
  Inspection inspection = inspector.inspect(message, now_us);
  RuledInspection out;
  out.stage = inspection.stage;
  out.reasons = std::move(inspection.reasons);
  if (out.stage != "decode") out.strategy_hash = inspection.record.strategy_hash;
  if (!out.reasons.empty() || rules == nullptr) return out;
  auto outcomes = rules->evaluate({&inspection.record});
  if (outcomes.empty()) return out;
  RuleOutcome& outcome = outcomes.front();
  out.warnings = std::move(outcome.warnings);
  if (outcome.rejected()) {
    out.stage = outcome.stage();
    out.reasons = std::move(outcome.rejections);
  }
  return out;
}

}  // namespace strategy_consumer
