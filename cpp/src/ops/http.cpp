#include "strategy_consumer/ops/http.hpp"

// Connections waiting to be accepted (cpp-httplib's default is 5): a burst of probes and scrapes beyond that has
// its SYNs dropped and retried by the client a second later, which a /health deadline of 1 s does not survive.
// This file is the only one that includes httplib.h.
#define CPPHTTPLIB_LISTEN_BACKLOG 128
#include <httplib.h>
#include <spdlog/spdlog.h>

#include <cmath>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <stop_token>
#include <nlohmann/json.hpp>
#include <thread>

#include "strategy_consumer/model/errors.hpp"
#include "strategy_consumer/ops/metrics.hpp"
#include "strategy_consumer/pipeline/pipeline.hpp"
#include "strategy_consumer/postgres/ping.hpp"
#include "strategy_consumer/postgres/sink.hpp"

namespace strategy_consumer {
namespace {

std::string first_line(std::string text) {
  text = text.substr(0, text.find('\n'));
  while (!text.empty() && (text.back() == ' ' || text.back() == '\r')) text.pop_back();
  return text;
}

std::string unavailable(const std::string& reason, nlohmann::json details = nlohmann::json::object()) {
  nlohmann::json body{{"status", "unavailable"}, {"reason", reason}};
  body.update(details);
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

void HttpConfig::validate() const {
  if (port < 0 || port > 65535) throw ConfigError("--http_port: must be between 0 (off) and 65535");
  if (port != 0 && host.empty()) throw ConfigError("--http_host: must not be empty");
  if (!(health_stale_seconds > 0)) throw ConfigError("health stale time must be greater than 0");
}

ProbeResult check_liveness(std::chrono::steady_clock::duration since_heartbeat,
                           std::chrono::steady_clock::duration stale_after, const std::string& hung_write) {
  const double seconds = std::chrono::duration<double>(since_heartbeat).count();
  const double rounded = std::round(seconds * 1000) / 1000;
  if (!hung_write.empty()) {
    return {false, unavailable("hung: " + hung_write, {{"seconds_since_heartbeat", rounded}})};
  }
  if (since_heartbeat > stale_after) {
    return {false, unavailable("the processing loop has not run for " + std::to_string(static_cast<long long>(seconds)) +
                                   " s",
                               {{"seconds_since_heartbeat", rounded}})};
  }
  return {true, nlohmann::json{{"status", "ok"}, {"seconds_since_heartbeat", rounded}}.dump()};
}

ProbeResult check_readiness(const ReadinessInputs& in) {
  const nlohmann::json checks{{"assigned_partitions", in.assigned_partitions},
                              {"stalled", !in.pipeline_healthy},
                              {"database", in.database_ok},
                              {"kafka_brokers_up", in.kafka_brokers_up}};
  if (!in.pipeline_healthy) {
    return {false, unavailable("stalled: " + (in.stall_reason.empty() ? std::string("retrying an operation")
                                                                         : in.stall_reason),
                               {{"checks", checks}})};
  }
  if (!in.database_ok) return {false, unavailable("postgresql: " + in.database_error, {{"checks", checks}})};
  if (in.assigned_partitions == 0) return {false, unavailable("no partitions assigned", {{"checks", checks}})};
  if (in.kafka_brokers_up == 0) return {false, unavailable("kafka: no broker connected", {{"checks", checks}})};
  return {true, nlohmann::json{{"status", "ready"}, {"checks", checks}}.dump()};
}

// ---- server ----

struct HttpServer::Impl {
  httplib::Server server;
  std::thread thread;
  int port = 0;
};

HttpServer::HttpServer(const HttpConfig& config, Routes routes) : impl_(std::make_unique<Impl>()) {
  auto& srv = impl_->server;
  // Probes and scrapes are few: two workers, not one per core.
  srv.new_task_queue = [] { return new httplib::ThreadPool(2); };
  srv.set_read_timeout(5, 0);
  srv.set_write_timeout(5, 0);
  auto probe = [](std::function<ProbeResult()> check) {
    return [check = std::move(check)](const httplib::Request&, httplib::Response& res) {
      const ProbeResult r = check();
      res.status = r.ok ? 200 : 503;
      res.set_header("Cache-Control", "no-store");
      res.set_content(r.body + "\n", "application/json");
    };
  };
  srv.Get("/health", probe(std::move(routes.health)));
  srv.Get("/ready", probe(std::move(routes.ready)));
  srv.Get("/metrics", [metrics = std::move(routes.metrics)](const httplib::Request&, httplib::Response& res) {
    res.set_header("Cache-Control", "no-store");
    res.set_content(metrics(), "text/plain; version=0.0.4; charset=utf-8");
  });
  if (!srv.bind_to_port(config.host, config.port)) {
    throw ConfigError("--http_port: cannot listen on " + config.host + ":" + std::to_string(config.port) +
                      " (address in use, or --http_host is not an address of this machine)");
  }
  impl_->port = config.port;
  impl_->thread = std::thread([this] { impl_->server.listen_after_bind(); });
  spdlog::info("serving /health, /ready and /metrics on http://{}:{}", config.host, config.port);
}

HttpServer::~HttpServer() { stop(); }

int HttpServer::port() const { return impl_->port; }

void HttpServer::stop() {
  if (!impl_->thread.joinable()) return;
  impl_->server.stop();
  impl_->thread.join();
}

// ---- database probe ----

struct DatabaseProbe::Impl {
  using Clock = std::chrono::steady_clock;
  std::chrono::milliseconds interval;
  std::chrono::milliseconds stale_after;
  mutable std::mutex mutex;  // guards the four below; never held while pinging
  std::condition_variable_any wake;
  std::pair<bool, std::string> last{false, "not checked yet"};
  std::optional<Clock::time_point> pinging_since;
  std::string last_logged;  // libpq's text of the last failure logged ("" after a success)
  std::jthread thread;      // last: stopped and joined first

  void run(std::stop_token stop, PostgresPing& ping) {
    while (!stop.stop_requested()) {
      {
        std::lock_guard lock(mutex);
        pinging_since = Clock::now();
      }
      std::pair<bool, std::string> result{true, ""};
      std::string detail;
      try {
        ping.ping();
      } catch (const DatabaseError& e) {
        result = {false, e.sqlstate() == "08001" ? std::string("cannot connect")
                         : e.sqlstate().empty()  ? std::string("query failed")
                                                 : "query failed (SQLSTATE " + e.sqlstate() + ")"};
        detail = first_line(e.what());
      }
      std::unique_lock lock(mutex);
      pinging_since.reset();
      last = result;
      if (detail != last_logged) {
        if (detail.empty()) spdlog::info("readiness probe: PostgreSQL answers again");
        else spdlog::warn("readiness probe: PostgreSQL does not answer: {}", detail);
        last_logged = detail;
      }
      wake.wait_for(lock, stop, interval, [] { return false; });
    }
  }
};

DatabaseProbe::DatabaseProbe(const PostgresConfig& config, std::chrono::milliseconds interval,
                             std::chrono::milliseconds stale_after)
    : impl_(std::make_unique<Impl>()) {
  impl_->interval = interval;
  impl_->stale_after = stale_after;
  PostgresConfig own = config;
  own.connect_timeout_seconds = std::min(config.connect_timeout_seconds, 3);
  own.application_name = config.application_name + "-probe";
  impl_->thread = std::jthread([impl = impl_.get(), ping = std::make_shared<PostgresPing>(own)](std::stop_token stop) {
    impl->run(stop, *ping);
  });
}

DatabaseProbe::~DatabaseProbe() = default;

std::pair<bool, std::string> DatabaseProbe::check() const {
  std::lock_guard lock(impl_->mutex);
  if (impl_->pinging_since) {
    const auto waited = Impl::Clock::now() - *impl_->pinging_since;
    if (waited > impl_->stale_after) {
      return {false, "no answer within " +
                         std::to_string(std::chrono::duration_cast<std::chrono::seconds>(impl_->stale_after).count()) +
                         " s"};
    }
  }
  return impl_->last;
}

std::unique_ptr<HttpServer> start_operations_server(const HttpConfig& config, const PostgresConfig& postgres,
                                                    Metrics& metrics, const Pipeline& pipeline) {
  auto database = std::make_shared<DatabaseProbe>(postgres);
  const auto stale_after = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(config.health_stale_seconds));
  HttpServer::Routes routes;
  routes.health = [&metrics, &pipeline, stale_after] {
    const StallState stall = pipeline.stall();
    return check_liveness(std::chrono::steady_clock::now() - metrics.last_heartbeat(), stale_after,
                          stall.hung ? stall.reason : std::string());
  };
  routes.ready = [&metrics, &pipeline, database] {
    ReadinessInputs in;
    in.assigned_partitions = metrics.assigned_partitions();
    const StallState stall = pipeline.stall();  // one reading: the flag and its reason agree
    in.pipeline_healthy = !stall.stalled;
    in.stall_reason = stall.reason;
    std::tie(in.database_ok, in.database_error) = database->check();
    in.kafka_brokers_up = metrics.kafka_brokers_up();
    return check_readiness(in);
  };
  routes.metrics = [&metrics] { return metrics.render(); };
  return std::make_unique<HttpServer>(config, std::move(routes));
}

}  // namespace strategy_consumer
