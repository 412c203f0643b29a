#pragma once
// What every session of the service runs with. In the connection string (understood by every server version):
// client_encoding=UTF8 (strings are stored byte for byte, whatever the server's default), TimeZone=UTC, and TCP
// keepalives (idle 30 s, then every 10 s, 3 probes; tcp_user_timeout 60 s for data the peer never
// acknowledges), so a network path that died without a reset fails the call within about a minute instead of
// leaving it waiting for ever. After connecting, settings that depend on the server's version are SET:
//   statement_timeout, lock_timeout (when configured) and client_connection_check_interval (2 s: a session
//   whose client is gone is rolled back while its statement waits). PostgreSQL 13 and older do not know the
//   last one and would refuse every connection that names it: it is left out there, with a warning.
#include <string>
#include <utility>
#include <vector>

#include "strategy_consumer/postgres/sink.hpp"

namespace strategy_consumer {

struct SessionSettings {
  std::vector<std::pair<std::string, std::string>> settings;  // name -> value, for set_config()
  std::vector<std::string> warnings;                           // what was left out, and why
};

// Pure: the settings for a server of `server_version` (libpq's number: 150004 for 15.4, 130011 for 13.11).
SessionSettings session_settings(const PostgresConfig& config, int server_version);

}  // namespace strategy_consumer
