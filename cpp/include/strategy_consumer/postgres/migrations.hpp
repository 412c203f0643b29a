#pragma once
// Versioned schema migrations. Each has a number and SQL; `schema_migrations` records what was applied.
// apply: one transaction under an advisory lock (replicas starting together apply each migration once).
// verify (--no_migrate): fails with a ConfigError naming the missing versions, changes nothing.
#include <string>
#include <vector>

namespace pqxx { class connection_base; }

namespace strategy_consumer {

struct Migration {
  int version;
  std::string name;
  std::string sql;
};

const std::vector<Migration>& migrations();
int latest_schema_version();

void apply_migrations(pqxx::connection_base& connection);
void verify_migrations(pqxx::connection_base& connection);

}  // namespace strategy_consumer
