// The byte estimates behind the memory budget (memory_budget.hpp).
#include <gtest/gtest.h>

#include <string>

#include "strategy_consumer/pipeline/memory_budget.hpp"

namespace strategy_consumer {
namespace {

TEST(MemoryBudget, JsonEstimatesGrowWithWhatTheValueHolds) {
  const nlohmann::json small = {{"a", 1}};
  const nlohmann::json big = {{"a", 1}, {"text", std::string(100000, 'y')}};
  EXPECT_GT(json_heap_bytes(small), sizeof(nlohmann::json));
  EXPECT_GE(json_heap_bytes(big), 100000u);
  EXPECT_LT(json_heap_bytes(big), 101000u);
  nlohmann::json many = nlohmann::json::object();
  for (int i = 0; i < 1000; ++i) many["key_number_" + std::to_string(i)] = i;
  // A thousand small members cost far more than their text: about 100 bytes each in map nodes.
  EXPECT_GT(json_heap_bytes(many), 1000u * 80);
  nlohmann::json array = nlohmann::json::array();
  for (int i = 0; i < 100; ++i) array.push_back(i);
  EXPECT_GE(json_heap_bytes(array), 100 * sizeof(nlohmann::json));
}

TEST(MemoryBudget, RecordEstimateCountsParametersAndMetrics) {
  StrategyRecord r;
  r.symbol = "BTC/USD";
  r.strategy_type = "SMA_RSI";
  r.parameters = {{"rsiPeriod", 14}};
  r.strategy_hash = std::string(64, 'f');
  const std::size_t base = record_bytes(r);
  EXPECT_GT(base, sizeof(StrategyRecord) + 64);
  r.performance_metrics = nlohmann::json{{"note", std::string(50000, 'z')}};
  EXPECT_GE(record_bytes(r), base + 50000);
}

TEST(MemoryBudget, Thresholds) {
  MemoryBudget m;
  EXPECT_EQ(m.max_batch_bytes, 16u << 20);
  EXPECT_EQ(m.max_buffered_bytes, 128u << 20);
  m.max_batch_bytes = 10;
  m.max_buffered_bytes = 100;
  EXPECT_FALSE(m.batch_full(9));
  EXPECT_TRUE(m.batch_full(10));
  EXPECT_FALSE(m.over(99));
  EXPECT_TRUE(m.over(100));
}

}  // namespace
}  // namespace strategy_consumer
