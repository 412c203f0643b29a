#include "strategy_consumer/postgres/session.hpp"

#include <cmath>

namespace strategy_consumer {
namespace {

constexpr int kFirstWithConnectionCheck = 140000;  // client_connection_check_interval: PostgreSQL 14

std::string milliseconds(double seconds) {
  return std::to_string(static_cast<long long>(std::llround(seconds * 1000)));
}

}  // namespace

SessionSettings session_settings(const PostgresConfig& config, int server_version) {
  SessionSettings out;
  if (config.statement_timeout_seconds > 0) {
    out.settings.emplace_back("statement_timeout", milliseconds(config.statement_timeout_seconds));
  }
  if (config.lock_timeout_seconds > 0) {
    out.settings.emplace_back("lock_timeout", milliseconds(config.lock_timeout_seconds));
  }
  if (server_version >= kFirstWithConnectionCheck) {
    out.settings.emplace_back("client_connection_check_interval", "2000");
  } else {
    out.warnings.push_back("PostgreSQL " + std::to_string(server_version / 10000) +
                           " has no client_connection_check_interval (14 or later): a session whose client died "
                           "while its statement waited holds its locks until the statement ends");
  }
  return out;
}

}  // namespace strategy_consumer
