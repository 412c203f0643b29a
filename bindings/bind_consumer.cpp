#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "strategy_consumer/model/config.hpp"
#include "strategy_consumer/model/errors.hpp"
#include "strategy_consumer/python_rule_engine.hpp"
#include "strategy_consumer/service/service.hpp"

namespace py = pybind11;
using namespace strategy_consumer;

namespace {

// The service (service/service.hpp) with the configuration it was built from: flags and environment, exactly as
// the binary, so it logs, redacts, serves the probes and ends as the binary does.
class Consumer {
 public:
  // `rules`: rule sources besides --rules (paths, module names, modules, @rule functions), run in this (the
  // host) interpreter; the engine takes the GIL once per batch while run() has released it.
  Consumer(const std::vector<std::string>& args, const Environment& env, const py::list& rules) {
    CommandLine cli = parse_command_line(args, env);
    if (cli.help_requested) throw ConfigError(cli.help_text);
    service_ = std::make_unique<Service>(cli.config);
    py::list sources;
    for (const auto& s : cli.config.processing.rules) sources.append(s);
    for (auto r : rules) sources.append(r);
    if (!sources.empty()) service_->set_rule_engine(std::make_shared<PythonRuleEngine>(sources));
  }
  // The reason, or the error raised as its Python exception (already logged by the service).
  std::string run() {
    ServiceOutcome outcome = service_->run();
    if (outcome.exit_code != kExitOk) std::rethrow_exception(outcome.error);
    return outcome.reason;
  }
  // The process exit code (python -m strategy_consumer): nothing raised.
  int serve() { return service_->run().exit_code; }
  void stop() { service_->stop(); }
  std::shared_ptr<PythonRuleEngine> rules() const {
    return std::dynamic_pointer_cast<PythonRuleEngine>(service_->rule_engine());
  }
  bool healthy() const { return service_->healthy(); }
  std::optional<std::string> replay_report() const { return service_->replay_report(); }
  int http_port() const { return service_->http_port(); }
  py::dict counters() const {
    const auto& c = service_->counters();
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
  std::unique_ptr<Service> service_;
};

}  // namespace

void init_consumer(py::module_& m) {
  m.attr("EXIT_OK") = kExitOk;
  m.attr("EXIT_FAILED") = kExitFailed;
  m.attr("EXIT_BAD_CONFIG") = kExitBadConfig;
  py::class_<Consumer>(m, "Consumer", R"doc(The service (pipeline, probes, logging), configured by the binary's flags.)doc")
      .def(py::init<const std::vector<std::string>&, const Environment&, const py::list&>(), py::arg("args"),
           py::arg("env"), py::arg("rules") = py::list())
      .def("run", &Consumer::run, py::call_guard<py::gil_scoped_release>(),
           R"doc(Consumes until stop() or, in drain mode, until idle or out of time; returns why ("stopped", "idle",
"time_limit") or raises what ended it. Releases the GIL.)doc")
      .def("serve", &Consumer::serve, py::call_guard<py::gil_scoped_release>(),
           R"doc(As run(), but returns the binary's exit code (0, 1 or 2) instead of raising. Releases the GIL.)doc")
      .def("stop", &Consumer::stop)
      .def_property_readonly("healthy", &Consumer::healthy)
      .def_property_readonly("http_port", &Consumer::http_port,
                             R"doc(The port of /health, /ready and /metrics while running; 0 otherwise.)doc")
      .def_property_readonly("rules", &Consumer::rules, R"doc(The RuleEngine, or None without rules.)doc")
      .def_property_readonly("counters", &Consumer::counters)
      .def_property_readonly("replay_report", &Consumer::replay_report,
                             R"doc(Built with the replay-dead-letters command (first argument): after run(), the report
as JSON text; None otherwise.)doc");
  m.def(
      "help_text",
      [](const std::string& command) {
        return parse_command_line(command.empty() ? std::vector<std::string>{"--help"}
                                                  : std::vector<std::string>{command, "--help"},
                                  {})
            .help_text;
      },
      py::arg("command") = std::string(),
      R"doc(The binary's --help text; with command="replay-dead-letters", that command's.)doc");
}
