#include "strategy_consumer/postgres/ping.hpp"

#include <pqxx/pqxx>

#include "strategy_consumer/model/errors.hpp"

namespace strategy_consumer {

struct PostgresPing::Impl {
  PostgresConfig config;
  std::unique_ptr<pqxx::connection> conn;
};

PostgresPing::PostgresPing(PostgresConfig config) : impl_(std::make_unique<Impl>()) {
  impl_->config = std::move(config);
}

PostgresPing::~PostgresPing() = default;

void PostgresPing::ping() {
  try {
    if (!impl_->conn || !impl_->conn->is_open()) {
      impl_->conn.reset();
      impl_->conn = std::make_unique<pqxx::connection>(impl_->config.connection_string());
    }
  } catch (const std::exception& e) {
    throw DatabaseError(e.what(), "08001", true);
  }
  try {
    pqxx::nontransaction txn(*impl_->conn);
    txn.exec("SELECT 1");
  } catch (const pqxx::sql_error& e) {
    impl_->conn.reset();  // reconnect next time
    throw DatabaseError(e.what(), e.sqlstate(), true);
  } catch (const std::exception& e) {
    impl_->conn.reset();
    throw DatabaseError(e.what(), "", true);
  }
}

}  // namespace strategy_consumer
