#pragma once
// "Does PostgreSQL answer?" on a connection of its own (never the pipeline's), for the readiness probe: opened
// on first use and again after a failure, then `SELECT 1`. Blocks for up to the connect timeout; not
// thread-safe (one caller: the probe's thread).
#include <memory>

#include "strategy_consumer/postgres/sink.hpp"

namespace strategy_consumer {

class PostgresPing {
 public:
  explicit PostgresPing(PostgresConfig config);
  ~PostgresPing();
  PostgresPing(const PostgresPing&) = delete;
  PostgresPing& operator=(const PostgresPing&) = delete;

  // Returns when PostgreSQL answered; throws DatabaseError otherwise: sqlstate() "08001" when it could not
  // connect, the server's SQLSTATE (or "") when the query failed. Its text is libpq's: hosts, addresses and
  // user names, for logs only.
  void ping();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace strategy_consumer
