#pragma once
// strategy_specs, as the old TradeStream service filled it: in a database whose migrations created that table
// (its V2), every strategy name stored gets a row
//   INSERT INTO strategy_specs (name, indicators, entry_conditions, exit_conditions, parameters, source)
//   VALUES (name, '[]', '[]', '[]', '[]', 'MIGRATED') ON CONFLICT (name) DO NOTHING
// (readers join strategies.strategy_type to strategy_specs.name). One statement for the batch's new names, in
// the batch's transaction; a name is sent once per process and database (a process-wide set keyed by the
// database, added to only after COMMIT).
// Without the table nothing happens. strategy_implementations (the old service inserted a row per message,
// never deduplicated) is neither written nor changed: its rows stay as they are (README).
#include <string>
#include <vector>

#include "strategy_consumer/model/strategy_record.hpp"

namespace pqxx { class transaction_base; }

namespace strategy_consumer {

class StrategySpecs {
 public:
  // `database` names the database the names are sent to (PostgresConfig::describe()).
  explicit StrategySpecs(std::string database) : database_(std::move(database)) {}

  // Inserts the rows for the names of `records` not sent before (skipping `skip`, the refused rows' indices);
  // returns the names to mark as sent once the transaction commits.
  std::vector<std::string> insert_new(pqxx::transaction_base& txn, const std::vector<const StrategyRecord*>& records,
                                      const std::vector<std::size_t>& skip);
  void committed(const std::vector<std::string>& names) const;
  // Forgets whether the table exists (a new connection asks again).
  void reset() { known_ = false; }

 private:
  std::string database_;
  bool known_ = false;  // whether `exists_` was asked on this connection
  bool exists_ = false;
};

}  // namespace strategy_consumer
