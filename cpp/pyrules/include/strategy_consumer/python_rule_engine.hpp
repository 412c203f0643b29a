#pragma once
// PythonRuleEngine: the core's RuleEngine (rule_engine.hpp) running analyst rules written in Python.
//
// What runs underneath, per batch: the GIL is taken ONCE; every record becomes a Python dict built from the
// already-decoded values (no JSON is parsed again), and strategy_consumer.rules' RuleSet.evaluate runs every
// rule over the list (python/strategy_consumer/rules.py: the same function StrategyInspector(rules=...) uses);
// its issues become outcomes and its per-rule counts are added to the counters here, which stats() reads
// without the GIL. A rule that raises is caught in Python: the strategy is refused with the exception's text.
//
// The interpreter is never created here. In the binary, main owns the one interpreter (pybind11's
// scoped_interpreter), calls install_embedded_rules_module() and releases the GIL while the pipeline runs; in the
// _core extension module the host interpreter is used.
#include <memory>
#include <string>
#include <vector>

#include <pybind11/pybind11.h>

#include "strategy_consumer/rules/rule_engine.hpp"

namespace strategy_consumer {

class PythonRuleEngine final : public RuleEngine {
 public:
  // Loads the rules of `sources` (a Python list: file or directory paths, module names, modules, @rule
  // functions). The caller holds the GIL. Throws ConfigError ("rules: FILE:LINE: SyntaxError: ...") when a
  // source cannot be loaded. `log_outcomes`: log rule warnings and rule errors (a service does; a notebook
  // checking strategies one by one gets them as return values instead).
  explicit PythonRuleEngine(pybind11::object sources, bool log_outcomes = true);
  // The same from paths and module names (--rules); the caller holds the GIL.
  static std::shared_ptr<PythonRuleEngine> from_sources(const std::vector<std::string>& sources);
  // Takes the GIL to drop its references (any thread).
  ~PythonRuleEngine() override;
  PythonRuleEngine(const PythonRuleEngine&) = delete;
  PythonRuleEngine& operator=(const PythonRuleEngine&) = delete;

  // Take the GIL themselves (re-entrant: fine when the caller holds it already).
  std::vector<RuleOutcome> evaluate(const std::vector<const StrategyRecord*>& records) override;
  void reload_if_changed() override;
  void request_reload() noexcept override;
  RuleStats stats() const override;

  // The rules' names, in order (for logs and tests).
  std::vector<std::string> rule_names() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// For the binary's embedded interpreter: registers the copy of strategy_consumer.rules compiled into the
// binary as the module `strategy_consumer.rules` (under a bare `strategy_consumer` package with nothing else in
// it), so that rules files import it without the Python package and the binary never loads the _core
// extension. Call once, holding the GIL, right after starting the interpreter.
void install_embedded_rules_module();

// A record as the dict RuleSet.evaluate takes (strategy_consumer.rules.Strategy.from_record); the caller holds
// the GIL.
pybind11::dict record_to_python(const StrategyRecord& record);

}  // namespace strategy_consumer
