#pragma once
// The one wiring point of the service: the `strategy-consumer` binary (cpp/app/main.cpp) and the Python
// `Consumer` (bindings/bind_consumer.cpp, `python -m strategy_consumer`) both run a Service, so both log, redact,
// serve the probes and end with the same exit codes.
//
// Underneath, run() starts the operations HTTP server (ops/http.hpp: /health, /ready, /metrics; when
// --http_port is not 0) before the first connection, runs the pipeline (pipeline/pipeline.hpp) on the calling
// thread, stops the server and logs one summary line. With config.replay.enabled the pipeline replays the
// dead-letter topic instead (service/replay.hpp) and replay_report() tells what it found. Logging (format, verbosity, redaction of the configured
// secrets) is configured when the Service is built. Signals are the caller's: it calls stop() and
// request_reload() from a handler (both are async-signal-safe).
#include <exception>
#include <memory>
#include <optional>
#include <string>

#include "strategy_consumer/model/config.hpp"
#include "strategy_consumer/pipeline/pipeline.hpp"

namespace strategy_consumer {

class RuleEngine;

// The process exit codes, the one map from outcomes to them.
inline constexpr int kExitOk = 0;          // stopped, idle (drain mode) or out of time
inline constexpr int kExitFailed = 1;      // an operation failed after its retries, or an unexpected error
inline constexpr int kExitBadConfig = 2;   // the configuration (flags, environment, files) is not usable

// "stopped", "idle", "time_limit".
const char* exit_reason_name(ExitReason reason);

struct ServiceOutcome {
  int exit_code = kExitOk;
  std::string reason;            // exit_reason_name() when exit_code is 0; else "failed" or "bad_config"
  std::exception_ptr error;      // what ended it, when exit_code is not 0 (already logged)
};

// The exit code for an exception that ended the service: ConfigError 2, anything else 1. Logs it (an error
// that is not ours is logged with its type, never left to abort the process).
ServiceOutcome outcome_of(std::exception_ptr error);

class Service {
 public:
  // Configures logging from config (verbosity, --log_format, the secrets to redact), then builds the metrics
  // and the pipeline. Throws ConfigError.
  explicit Service(Config config);
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // Analyst rules (optional; before run()).
  void set_rule_engine(std::shared_ptr<RuleEngine> rules);
  const std::shared_ptr<RuleEngine>& rule_engine() const;

  // Serves the probes, consumes until stop() or, in drain mode, until idle or out of time, and logs the
  // summary. Never throws: what ended it is in the outcome (logged once, here).
  ServiceOutcome run() noexcept;

  // Async-signal-safe: the loop ends after the current batch (SIGTERM, SIGINT).
  void stop() noexcept;
  // Async-signal-safe: the rules reload between batches (SIGHUP). Nothing without rules.
  void request_reload() noexcept;

  const PipelineCounters& counters() const;
  bool healthy() const;
  const Config& config() const;
  // The port the HTTP server listens on while run() runs (0 before, after, or without a server).
  int http_port() const;
  // For the replay-dead-letters command (config.replay.enabled; service/replay.hpp): what the replay found, as
  // JSON; nullopt for the service itself.
  std::optional<std::string> replay_report() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace strategy_consumer
