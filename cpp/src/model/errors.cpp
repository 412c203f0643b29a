#include "strategy_consumer/model/errors.hpp"

namespace strategy_consumer {

bool is_retryable_sqlstate(const std::string& sqlstate) {
  if (sqlstate.empty()) return true;  // no answer from the server: the connection broke
  const std::string cls = sqlstate.substr(0, 2);
  // 08 connection exception, 53 insufficient resources, 57 operator intervention (shutdown, cancel, and
  // statement_timeout), 58 system error, 40 transaction rollback (serialization failure, deadlock), and 55P03
  // lock_not_available (lock_timeout: the lock may be free on the next attempt).
  return cls == "08" || cls == "53" || cls == "57" || cls == "58" || cls == "40" || sqlstate == "55P03";
}

}  // namespace strategy_consumer
