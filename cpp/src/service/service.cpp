#include "strategy_consumer/service/service.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <typeinfo>

#include "strategy_consumer/model/errors.hpp"
#include "strategy_consumer/ops/http.hpp"
#include "strategy_consumer/ops/logging.hpp"
#include "strategy_consumer/ops/metrics.hpp"
#include "strategy_consumer/rules/rule_engine.hpp"
#include "strategy_consumer/service/pipeline_parts.hpp"
#include "strategy_consumer/service/replay.hpp"

namespace strategy_consumer {

const char* exit_reason_name(ExitReason reason) {
  switch (reason) {
    case ExitReason::idle: return "idle";
    case ExitReason::time_limit: return "time_limit";
    case ExitReason::stopped: break;
  }
  return "stopped";
}

ServiceOutcome outcome_of(std::exception_ptr error) {
  ServiceOutcome out{kExitFailed, "failed", error};
  try {
    std::rethrow_exception(error);
  } catch (const ConfigError& e) {
    spdlog::error("{}", e.what());
    out.exit_code = kExitBadConfig;
    out.reason = "bad_config";
  } catch (const Error& e) {
    spdlog::error("{} ({})", e.what(), e.remedy());
  } catch (const std::exception& e) {
    // Not one of ours: a bug or a library's surprise. Logged and exit 1, never std::terminate's abort (134).
    spdlog::error("unexpected error ({}): {}", typeid(e).name(), e.what());
  } catch (...) {
    spdlog::error("unexpected error of an unknown type");
  }
  return out;
}

struct Service::Impl {
  explicit Impl(Config c)
      : config(std::move(c)),
        replay(config.replay.enabled ? std::make_shared<ReplayTally>() : nullptr),
        pipeline(config, replay ? replay_parts(config, replay) : kafka_postgres_parts(config), &metrics) {}
  Config config;
  std::shared_ptr<ReplayTally> replay;  // the replay-dead-letters command's findings
  Metrics metrics;
  Pipeline pipeline;  // reports to metrics: built after it, destroyed before it
  std::shared_ptr<RuleEngine> rules;
  std::atomic<RuleEngine*> rules_for_signals{nullptr};
  std::atomic<int> http_port{0};
};

namespace {
// Logging first, so that everything after (the pipeline's construction included) logs in the chosen format
// with the secrets redacted.
const Config& with_logging(const Config& config) {
  configure_logging(config.verbosity, parse_log_format(config.log_format), config.secrets());
  return config;
}
}  // namespace

Service::Service(Config config) : impl_(std::make_unique<Impl>(with_logging(config))) {}

Service::~Service() = default;

void Service::set_rule_engine(std::shared_ptr<RuleEngine> rules) {
  impl_->rules = rules;
  impl_->rules_for_signals = rules.get();
  impl_->pipeline.set_rule_engine(std::move(rules));
}

const std::shared_ptr<RuleEngine>& Service::rule_engine() const { return impl_->rules; }

ServiceOutcome Service::run() noexcept {
  auto& self = *impl_;
  std::unique_ptr<HttpServer> http;
  ServiceOutcome outcome;
  try {
    // Serves from before the first connection: /health answers while PostgreSQL is still being waited for.
    if (self.config.http.port != 0) {
      http = start_operations_server(self.config.http, self.config.postgres, self.metrics, self.pipeline);
      self.http_port = http->port();
    }
    const ExitReason reason = self.pipeline.run();
    outcome.reason = exit_reason_name(reason);
  } catch (...) {
    outcome = outcome_of(std::current_exception());
  }
  // The server reads the pipeline and the metrics: stopped before run() returns, whatever ended it.
  self.http_port = 0;
  if (http) http->stop();
  http.reset();
  const auto& c = self.pipeline.counters();
  LogScope summary({{"messages", c.messages.load()},
                    {"stored_new", c.stored_new.load()},
                    {"stored_updated", c.stored_updated.load()},
                    {"duplicate_in_batch", c.duplicate_in_batch.load()},
                    {"dead_lettered", c.dead_lettered.load()},
                    {"batches", c.batches.load()},
                    {"exit_code", outcome.exit_code}});
  spdlog::info("exiting ({}): {} message(s), {} new, {} updated, {} duplicate(s) in batch, {} dead-lettered, "
               "{} batch(es)",
               outcome.exit_code == kExitOk && outcome.reason == "time_limit" ? "time limit" : outcome.reason,
               c.messages.load(), c.stored_new.load(), c.stored_updated.load(), c.duplicate_in_batch.load(),
               c.dead_lettered.load(), c.batches.load());
  return outcome;
}

void Service::stop() noexcept { impl_->pipeline.stop(); }

void Service::request_reload() noexcept {
  if (RuleEngine* rules = impl_->rules_for_signals.load()) rules->request_reload();
}

const PipelineCounters& Service::counters() const { return impl_->pipeline.counters(); }
bool Service::healthy() const { return impl_->pipeline.healthy(); }
const Config& Service::config() const { return impl_->config; }
int Service::http_port() const { return impl_->http_port.load(); }

std::optional<std::string> Service::replay_report() const {
  if (!impl_->replay) return std::nullopt;
  const Config& c = impl_->config;
  return impl_->replay->report_json(counters(), c.replay.dry_run, c.kafka.dlq_topic, c.replay.group_id);
}

}  // namespace strategy_consumer
