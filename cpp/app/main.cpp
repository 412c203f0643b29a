// strategy-consumer: the service binary. Parses the configuration, runs the pipeline, maps failures to exit
// codes (0 done, 1 an operation failed after its retries, 2 bad configuration).
#include <csignal>
#include <cstdio>
#include <iostream>
#include <optional>

#include <pybind11/embed.h>
#include <spdlog/spdlog.h>

#include "strategy_consumer/model/config.hpp"
#include "strategy_consumer/model/errors.hpp"
#include "strategy_consumer/ops/http.hpp"
#include "strategy_consumer/ops/logging.hpp"
#include "strategy_consumer/ops/metrics.hpp"
#include "strategy_consumer/pipeline/pipeline.hpp"
#include "strategy_consumer/python_rule_engine.hpp"

namespace {

strategy_consumer::Pipeline* g_pipeline = nullptr;
strategy_consumer::RuleEngine* g_rules = nullptr;

extern "C" void on_signal(int) {
  if (g_pipeline) g_pipeline->stop();
}

extern "C" void on_hangup(int) {
  if (g_rules) g_rules->request_reload();  // reloaded between batches
}

}  // namespace

int main(int argc, char** argv) {
  using namespace strategy_consumer;
  CommandLine cli;
  try {
    cli = parse_command_line(std::vector<std::string>(argv + 1, argv + argc), current_environment());
  } catch (const ConfigError& e) {
    std::cerr << "strategy-consumer: " << e.what() << "\n";
    return 2;
  }
  if (cli.help_requested) {
    std::cout << cli.help_text;
    return 0;
  }
  configure_logging(cli.config.verbosity, parse_log_format(cli.config.log_format), cli.config.secrets());
  // The one Python interpreter, only with --rules: started before the rules load, finalized after everything
  // that holds Python objects is gone. Python installs no signal handlers: SIGTERM, SIGINT and SIGHUP are ours.
  std::optional<pybind11::scoped_interpreter> python;
  std::shared_ptr<PythonRuleEngine> rules;
  try {
    if (!cli.config.processing.rules.empty()) {
      python.emplace(/*init_signal_handlers=*/false, 0, nullptr, /*add_program_dir_to_path=*/false);
      install_embedded_rules_module();
      rules = PythonRuleEngine::from_sources(cli.config.processing.rules);
    }
    Metrics metrics;
    Pipeline pipeline(cli.config, &metrics);
    // Serves from before the first connection: /health answers while PostgreSQL is still being waited for.
    std::unique_ptr<HttpServer> http;
    if (cli.config.http.port != 0) {
      http = start_operations_server(cli.config.http, cli.config.postgres, metrics, pipeline);
    }
    pipeline.set_rule_engine(rules);
    g_pipeline = &pipeline;
    g_rules = rules.get();
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
    sa.sa_handler = on_hangup;
    sigaction(SIGHUP, &sa, nullptr);
    std::optional<pybind11::gil_scoped_release> no_gil;  // the engine takes the GIL once per batch
    if (python) no_gil.emplace();
    const ExitReason reason = pipeline.run();
    no_gil.reset();
    g_pipeline = nullptr;
    if (http) http->stop();
    const auto& c = pipeline.counters();
    LogScope summary({{"messages", c.messages.load()},
                      {"stored_new", c.stored_new.load()},
                      {"stored_updated", c.stored_updated.load()},
                      {"duplicate_in_batch", c.duplicate_in_batch.load()},
                      {"dead_lettered", c.dead_lettered.load()},
                      {"batches", c.batches.load()}});
    spdlog::info("exiting ({}): {} message(s), {} new, {} updated, {} duplicate(s) in batch, {} dead-lettered, "
                 "{} batch(es)",
                 reason == ExitReason::idle ? "idle" : reason == ExitReason::time_limit ? "time limit" : "stopped",
                 c.messages.load(), c.stored_new.load(), c.stored_updated.load(), c.duplicate_in_batch.load(),
                 c.dead_lettered.load(), c.batches.load());
    return 0;
  } catch (const ConfigError& e) {
    g_pipeline = nullptr;
    g_rules = nullptr;
    spdlog::error("{}", e.what());
    return 2;
  } catch (const Error& e) {
    g_pipeline = nullptr;
    g_rules = nullptr;
    spdlog::error("{} ({})", e.what(), e.remedy());
    return 1;
  }
}
