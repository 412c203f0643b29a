#pragma once
// The operations endpoints, served by cpp-httplib on a thread of their own (and a pool of two workers):
//   GET /health   200 while the processing loop is alive (it heartbeats on every poll and every step of a retry
//                 wait); 503 when it has not for `health_stale_seconds` (a deadlock), or while a database write
//                 has been in flight for longer than --write_stall_seconds (a hung write: stall_tracker.hpp).
//   GET /ready    200 when the consumer holds partitions, PostgreSQL answers a `SELECT 1` on a connection of
//                 the probe's own, Kafka brokers are connected and no operation is stalled in retries; else 503.
//                 Both answer a small JSON object; a 503 says why in "reason".
//   GET /metrics  the Prometheus text format (metrics.hpp).
// The pipeline never waits for the server: the server reads atomics and the metrics registry's mutex.
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include "strategy_consumer/model/config.hpp"

namespace strategy_consumer {

struct ProbeResult {
  bool ok = false;
  std::string body;  // JSON
};

// Pure: /health's answer given the time since the last heartbeat and, when a write is hung, why.
ProbeResult check_liveness(std::chrono::steady_clock::duration since_heartbeat,
                           std::chrono::steady_clock::duration stale_after, const std::string& hung_write = "");

struct ReadinessInputs {
  std::size_t assigned_partitions = 0;
  bool pipeline_healthy = true;      // Pipeline::healthy(): false while an operation is retried or a write hung
  std::string stall_reason;          // "retrying write batch", "write batch in flight for ...", for the reason
  bool database_ok = true;
  std::string database_error;        // first line of libpq's message
  int kafka_brokers_up = -1;         // -1: not known yet (no statistics)
};

// Pure: /ready's answer. The first failing check gives the reason: stalled, database, no partitions, brokers.
ProbeResult check_readiness(const ReadinessInputs& in);

class HttpServer {
 public:
  struct Routes {
    std::function<ProbeResult()> health;
    std::function<ProbeResult()> ready;
    std::function<std::string()> metrics;
  };

  // Binds now (throws ConfigError naming the flag when it cannot) and serves on a thread of its own.
  HttpServer(const HttpConfig& config, Routes routes);
  ~HttpServer();  // stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const;
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class Metrics;
class Pipeline;
struct PostgresConfig;

// Answers "does PostgreSQL answer" for /ready without ever making a request wait: a thread of its own pings
// PostgreSQL (postgres/ping.hpp: its own connection, connect timeout at most 3 s) every `interval`, and check()
// returns the last result at once. A ping still unanswered after `stale_after` counts as a failure (a dead
// network path can hold a query for minutes). The reason is one of a few fixed texts, never libpq's (it names
// hosts, addresses and users): that goes to the log, once per change. Thread-safe.
class DatabaseProbe {
 public:
  explicit DatabaseProbe(const PostgresConfig& config, std::chrono::milliseconds interval = std::chrono::seconds(1),
                         std::chrono::milliseconds stale_after = std::chrono::seconds(5));
  ~DatabaseProbe();  // stops the thread (waits for a ping in progress, at most the connect timeout)
  DatabaseProbe(const DatabaseProbe&) = delete;
  DatabaseProbe& operator=(const DatabaseProbe&) = delete;
  // ok, or false with the reason: "not checked yet", "cannot connect", "query failed (SQLSTATE ...)", "no answer
  // within N s".
  std::pair<bool, std::string> check() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The service's server: /health from the metrics' heartbeat, /ready from the metrics, pipeline.healthy() and a
// DatabaseProbe of `postgres`, /metrics from the registry. The objects must outlive the server.
std::unique_ptr<HttpServer> start_operations_server(const HttpConfig& config, const PostgresConfig& postgres,
                                                    Metrics& metrics, const Pipeline& pipeline);

}  // namespace strategy_consumer
