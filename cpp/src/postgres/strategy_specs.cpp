#include "strategy_consumer/postgres/strategy_specs.hpp"

#include <algorithm>
#include <mutex>
#include <set>

#include <pqxx/pqxx>

#include "strategy_consumer/postgres/statements.hpp"

namespace strategy_consumer {
namespace {

std::mutex sent_mutex;
// (database, name) pairs sent and committed.
std::set<std::pair<std::string, std::string>>& sent_names() {
  static std::set<std::pair<std::string, std::string>> names;
  return names;
}

std::string text_array(const std::vector<std::string>& names) {
  std::string out = "{";
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (char c : names[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

}  // namespace

std::vector<std::string> StrategySpecs::insert_new(pqxx::transaction_base& txn,
                                                   const std::vector<const StrategyRecord*>& records,
                                                   const std::vector<std::size_t>& skip) {
  if (known_ && !exists_) return {};  // no strategy_specs table in this database: nothing to look up per row
  std::set<std::string> names;
  {
    std::lock_guard lock(sent_mutex);
    for (std::size_t i = 0; i < records.size(); ++i) {
      if (std::find(skip.begin(), skip.end(), i) != skip.end()) continue;
      if (!sent_names().count({database_, records[i]->strategy_type})) names.insert(records[i]->strategy_type);
    }
  }
  if (names.empty()) return {};
  if (!known_) {
    exists_ = txn.exec(std::string(statements::kSpecsTableExists))[0][0].as<bool>();
    known_ = true;
  }
  if (!exists_) return {};
  std::vector<std::string> list(names.begin(), names.end());
  txn.exec_params(std::string(statements::kInsertSpecs), text_array(list));
  return list;
}

void StrategySpecs::committed(const std::vector<std::string>& names) const {
  std::lock_guard lock(sent_mutex);
  for (const auto& n : names) sent_names().insert({database_, n});
}

}  // namespace strategy_consumer
