#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "strategy_consumer/python_rule_engine.hpp"

namespace py = pybind11;
using namespace strategy_consumer;

void init_rules(py::module_& m) {
  py::class_<PythonRuleEngine, std::shared_ptr<PythonRuleEngine>>(
      m, "RuleEngine", R"doc(Analyst rules as the service runs them (strategy_consumer.rules, in this interpreter).

sources: files, directories, module names, modules or @rule functions. Raises ConfigError when one cannot be
loaded. log_outcomes: log rule warnings and errors (False when the caller reads the outcomes itself).)doc")
      .def(py::init([](py::list sources, bool log_outcomes) {
             return std::make_shared<PythonRuleEngine>(std::move(sources), log_outcomes);
           }),
           py::arg("sources"), py::arg("log_outcomes") = true)
      .def_property_readonly("names", &PythonRuleEngine::rule_names, R"doc(The rules' names, in order.)doc")
      .def("request_reload", &PythonRuleEngine::request_reload,
           R"doc(Reload at the next reload_if_changed() (the consumer calls it between batches).)doc")
      .def("reload_if_changed", &PythonRuleEngine::reload_if_changed,
           R"doc(Reloads if requested or if a rules file changed (checked at most once a second).)doc")
      .def(
          "stats",
          [](const PythonRuleEngine& self) {
            const RuleStats s = self.stats();
            py::list rules;
            for (const auto& c : s.rules) {
              py::dict d;
              d["name"] = c.name;
              d["description"] = c.description;
              d["severity"] = c.severity;
              d["loaded"] = c.loaded;
              d["evaluated"] = c.evaluated;
              d["rejected"] = c.rejected;
              d["warned"] = c.warned;
              d["errors"] = c.errors;
              d["seconds"] = c.seconds;
              rules.append(d);
            }
            py::dict out;
            out["rules"] = rules;
            out["batches"] = s.batches;
            out["engine_failures"] = s.engine_failures;
            out["reloads"] = s.reloads;
            out["failed_reloads"] = s.failed_reloads;
            out["last_reload_error"] = s.last_reload_error;
            out["sources"] = s.sources;
            return out;
          },
          R"doc(Per-rule counters since the engine started (evaluated, rejected, warned, errors, seconds) and the
reloads.)doc");
}
