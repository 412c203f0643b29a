// strategy-consumer: the service binary. Parses the configuration, starts the embedded interpreter when there
// are analyst rules, installs the signal handlers and runs the Service (service/service.hpp), whose outcome is
// the exit code (0 done, 1 an operation failed after its retries, 2 bad configuration). The replay-dead-letters
// command runs the same way and prints its report as JSON on stdout.
#include <csignal>
#include <iostream>
#include <optional>

#include <pybind11/embed.h>

#include "strategy_consumer/model/config.hpp"
#include "strategy_consumer/model/errors.hpp"
#include "strategy_consumer/python_rule_engine.hpp"
#include "strategy_consumer/service/service.hpp"

// jemalloc's settings (cpp/CMakeLists.txt links it into this binary): pages freed stay with the process for a
// second instead of ten before they go back to the system. A drain frees a batch's blocks every few hundred
// milliseconds; ten seconds of them raised the peak RSS draining 1,000,000 messages by some 13 MB. MALLOC_CONF in
// the environment still overrides it.
extern "C" {
const char* malloc_conf = "dirty_decay_ms:1000,muzzy_decay_ms:0";
}

namespace {

std::atomic<strategy_consumer::Service*> g_service{nullptr};

extern "C" void on_signal(int) {
  if (auto* service = g_service.load()) service->stop();
}

extern "C" void on_hangup(int) {
  if (auto* service = g_service.load()) service->request_reload();  // reloaded between batches
}

void install_signal_handlers() {
  struct sigaction sa {};
  sigemptyset(&sa.sa_mask);
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  sa.sa_handler = on_hangup;
  sigaction(SIGHUP, &sa, nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace strategy_consumer;
  CommandLine cli;
  try {
    cli = parse_command_line(std::vector<std::string>(argv + 1, argv + argc), current_environment());
  } catch (const ConfigError& e) {
    std::cerr << "strategy-consumer: " << e.what() << "\n";
    return kExitBadConfig;
  }
  if (cli.help_requested) {
    std::cout << cli.help_text;
    return kExitOk;
  }
  // The one Python interpreter, only with --rules: started before the rules load, finalized after everything
  // that holds Python objects is gone. Python installs no signal handlers: SIGTERM, SIGINT and SIGHUP are ours.
  std::optional<pybind11::scoped_interpreter> python;
  int code = kExitOk;
  try {
    Service service(cli.config);
    if (!cli.config.processing.rules.empty()) {
      python.emplace(/*init_signal_handlers=*/false, 0, nullptr, /*add_program_dir_to_path=*/false);
      install_embedded_rules_module();
      service.set_rule_engine(PythonRuleEngine::from_sources(cli.config.processing.rules));
    }
    g_service = &service;
    install_signal_handlers();
    {
      std::optional<pybind11::gil_scoped_release> no_gil;  // the engine takes the GIL once per batch
      if (python) no_gil.emplace();
      code = service.run().exit_code;
    }
    // The replay command's report: the one thing on stdout (the logs go to stderr).
    if (auto report = service.replay_report(); report && code == kExitOk) std::cout << *report << "\n";
    g_service = nullptr;
  } catch (...) {  // building the service or loading the rules
    g_service = nullptr;
    code = outcome_of(std::current_exception()).exit_code;
  }
  return code;
}
