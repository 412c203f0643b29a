#pragma once
// Analyst rules, as the core sees them: an interface. The core knows nothing of Python; cpp/pyrules/ implements
// it with an interpreter (PythonRuleEngine), and a test can implement it with plain C++.
//
// The pipeline hands the engine each batch ONCE, just before the write and before in-batch duplicates fold
// (every message gets its own verdict, whatever batch it lands in): the strategies it refuses are dead-lettered
// with stage `rule:<name>` and left out of the transaction (their offsets still advance with the batch). Between batches the pipeline calls reload_if_changed(), where a
// requested or a file-triggered reload happens; a reload that fails keeps the rules that were running.
#include <cstdint>
#include <string>
#include <vector>

#include "strategy_consumer/model/strategy_record.hpp"
#include "strategy_consumer/model/reason.hpp"

namespace strategy_consumer {

class StrategyInspector;
struct Inspection;

struct RuleWarning {
  std::string rule;     // the rule's name
  std::string message;
};

// What the rules said about one strategy.
struct RuleOutcome {
  // One reason per refusing rule, in rule order: rule "rule:<name>", message the rule's reason (or, when the
  // rule raised, the exception's text).
  Reasons rejections;
  std::vector<RuleWarning> warnings;

  bool rejected() const { return !rejections.empty(); }
  // The dead letter's stage: the first refusing rule's id, "rule:<name>" ("" when not rejected).
  std::string stage() const { return rejections.empty() ? std::string() : rejections.front().rule; }
};

inline constexpr const char* kRuleStagePrefix = "rule:";

// Counters of one rule since the engine started (kept across reloads, by name).
struct RuleCounters {
  std::string name;
  std::string description;
  std::string severity;     // "reject" or "warn"
  bool loaded = true;       // false: the rule was in an earlier version of the rules, no longer
  std::uint64_t evaluated = 0;
  std::uint64_t rejected = 0;  // refusals by the rule's verdict
  std::uint64_t warned = 0;    // warnings by the rule's verdict
  std::uint64_t errors = 0;    // the rule raised: refuses for a reject rule, warns for a warn rule
  double seconds = 0;          // time spent in the rule
};

struct RuleStats {
  std::vector<RuleCounters> rules;  // in rule order; rules no longer loaded last
  std::uint64_t batches = 0;        // evaluate() calls
  // Batches on which the engine itself failed (not one rule: the evaluation as a whole raised). Each strategy of
  // such a batch is refused with stage rule:engine rather than stored unchecked.
  std::uint64_t engine_failures = 0;
  std::uint64_t reloads = 0;        // successful reloads (not counting the first load)
  std::uint64_t failed_reloads = 0;
  std::string last_reload_error;    // "" when the last reload succeeded
  std::vector<std::string> sources; // what the rules were loaded from
};

class RuleEngine {
 public:
  virtual ~RuleEngine() = default;
  // One outcome per record, in order. Never throws because of a rule: a rule's failure is an outcome.
  virtual std::vector<RuleOutcome> evaluate(const std::vector<const StrategyRecord*>& records) = 0;
  // Between batches: reloads when a reload was requested or a rules file changed (checked at most about once a
  // second). A reload that fails is logged and keeps the previous rules.
  virtual void reload_if_changed() = 0;
  // Safe from a signal handler (SIGHUP) and any thread: the next reload_if_changed() reloads.
  virtual void request_reload() noexcept = 0;
  // Safe from any thread (e.g. the HTTP thread rendering /metrics).
  virtual RuleStats stats() const = 0;
};

// An inspection (decode, catalog validation) followed, when it passed, by the rules: what the pipeline does to
// one message, for StrategyInspector users. A refusal by the rules sets the inspection's stage to
// "rule:<name>" and its reasons to the rules' rejections.
struct RuledInspection {
  std::string stage;  // "" when the message would be stored
  Reasons reasons;
  std::vector<RuleWarning> warnings;
  std::string strategy_hash;  // "" when the message could not be decoded
};
RuledInspection inspect_with_rules(const StrategyInspector& inspector, RuleEngine* rules, std::string_view message,
                                   std::int64_t now_us);

}  // namespace strategy_consumer
