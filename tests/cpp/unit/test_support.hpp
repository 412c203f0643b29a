#pragma once
// Small helpers the unit tests share: a strategy record to put in a batch, and a text split into lines.
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "strategy_consumer/model/strategy_record.hpp"

namespace strategy_consumer::test_support {

// A valid SMA_RSI strategy of BTC/USD with this hash and score.
inline StrategyRecord record(const std::string& hash, double score) {
  StrategyRecord r;
  r.symbol = "BTC/USD";
  r.strategy_type = "SMA_RSI";
  r.parameters = nlohmann::json{{"rsiPeriod", 14}};
  r.score = score;
  r.strategy_hash = hash;
  return r;
}

inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

}  // namespace strategy_consumer::test_support
