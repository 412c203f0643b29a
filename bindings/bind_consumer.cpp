#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "strategy_consumer/model/config.hpp"
#include "strategy_consumer/model/errors.hpp"
#include "strategy_consumer/ops/logging.hpp"
#include "strategy_consumer/pipeline/pipeline.hpp"
#include "strategy_consumer/python_rule_engine.hpp"

namespace py = pybind11;
using namespace strategy_consumer;

namespace {

// The pipeline with the configuration it was built from (flags and environment, exactly as the binary).
class Consumer {
 public:
  // `rules`: rule sources besides --rules (paths, module names, modules, @rule functions), run in this (the
  // host) interpreter; the engine takes the GIL once per batch while run() has released it.
  Consumer(const std::vector<std::string>& args, const Environment& env, const py::list& rules) {
    CommandLine cli = parse_command_line(args, env);
    if (cli.help_requested) throw ConfigError(cli.help_text);
    // Lines on stderr at the consumer's verbosity (the module starts at warnings only).
    configure_logging(cli.config.verbosity);
    pipeline_ = std::make_unique<Pipeline>(cli.config);
    py::list sources;
    for (const auto& s : cli.config.processing.rules) sources.append(s);
    for (auto r : rules) sources.append(r);
    if (!sources.empty()) {
      rules_ = std::make_shared<PythonRuleEngine>(sources);
      pipeline_->set_rule_engine(rules_);
    }
  }
  std::string run() {
    switch (pipeline_->run()) {
      case ExitReason::idle: return "idle";
      case ExitReason::time_limit: return "time_limit";
      default: return "stopped";
    }
  }
  void stop() { pipeline_->stop(); }
  std::shared_ptr<PythonRuleEngine> rules() const { return rules_; }
  bool healthy() const { return pipeline_->healthy(); }
  py::dict counters() const {
    const auto& c = pipeline_->counters();
    py::dict d;
    d["messages"] = c.messages.load();
    d["stored_new"] = c.stored_new.load();
    d["stored_updated"] = c.stored_updated.load();
    d["outdated"] = c.outdated.load();
    d["duplicate_in_batch"] = c.duplicate_in_batch.load();
    d["dead_lettered"] = c.dead_lettered.load();
    d["batches"] = c.batches.load();
    d["fenced_batches"] = c.fenced_batches.load();
    d["retries"] = c.retries.load();
    return d;
  }

 private:
  std::shared_ptr<PythonRuleEngine> rules_;  // also held by the pipeline
  std::unique_ptr<Pipeline> pipeline_;
};

}  // namespace

void init_consumer(py::module_& m) {
  py::class_<Consumer>(m, "Consumer", R"doc(The service's pipeline, configured by the binary's flags.)doc")
      .def(py::init<const std::vector<std::string>&, const Environment&, const py::list&>(), py::arg("args"),
           py::arg("env"), py::arg("rules") = py::list())
      .def("run", &Consumer::run, py::call_guard<py::gil_scoped_release>(),
           R"doc(Consumes until stop() or, in drain mode, until idle or out of time. Releases the GIL.)doc")
      .def("stop", &Consumer::stop)
      .def_property_readonly("healthy", &Consumer::healthy)
      .def_property_readonly("rules", &Consumer::rules, R"doc(The RuleEngine, or None without rules.)doc")
      .def_property_readonly("counters", &Consumer::counters);
  m.def(
      "help_text", [] { return parse_command_line({"--help"}, {}).help_text; },
      R"doc(The binary's --help text.)doc");
}
