// Folding several messages of one strategy in a batch (fold.hpp): the row is what applying them one by one
// gives, field by field.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "strategy_consumer/pipeline/fold.hpp"

#include "test_support.hpp"

namespace strategy_consumer {
namespace {

using test_support::record;

BatchEntry entry(StrategyRecord r, std::int64_t offset) {
  BatchEntry e;
  e.record = std::move(r);
  e.source.topic = "t";
  e.source.partition = 0;
  e.source.offset = offset;
  e.payload = "message " + std::to_string(offset);
  return e;
}

std::vector<std::vector<std::size_t>> members(const std::vector<FoldedRow>& rows) {
  std::vector<std::vector<std::size_t>> out;
  for (const auto& r : rows) out.push_back(r.members);
  return out;
}

TEST(ApplyRediscovery, ScoreAlwaysOptionalFieldsOnlyWhenCarried) {
  StrategyRecord row = record("h", 1.0);
  row.performance_metrics = nlohmann::json{{"sharpe_ratio", 1.5}};
  row.discovery_symbol = "BTC/USD";
  row.discovery_start_us = 100;
  row.discovery_end_us = 200;
  StrategyRecord later = record("h", 2.0);
  later.symbol = "ignored";            // a re-discovery never changes symbol, type or parameters
  later.parameters = nlohmann::json{{"rsiPeriod", 99}};
  later.discovery_end_us = 300;
  apply_rediscovery(row, later);
  EXPECT_DOUBLE_EQ(row.score, 2.0);
  EXPECT_EQ(row.performance_metrics, (nlohmann::json{{"sharpe_ratio", 1.5}})) << "kept: the later one had none";
  EXPECT_EQ(row.discovery_symbol, "BTC/USD");
  EXPECT_EQ(row.discovery_start_us, 100);
  EXPECT_EQ(row.discovery_end_us, 300);
  EXPECT_EQ(row.symbol, "BTC/USD");
  EXPECT_EQ(row.parameters, (nlohmann::json{{"rsiPeriod", 14}}));
}

TEST(FoldByHash, OneRowPerHashInTheOrderOfFirstMessages) {
  struct Case {
    const char* name;
    std::vector<std::string> hashes;
    std::vector<std::vector<std::size_t>> expected;
  };
  const std::vector<Case> cases = {
      {"empty", {}, {}},
      {"all distinct", {"a", "b", "c"}, {{0}, {1}, {2}}},
      {"one repeated", {"a", "a", "a"}, {{0, 1, 2}}},
      {"interleaved", {"a", "b", "a", "c", "b"}, {{0, 2}, {1, 4}, {3}}},
      {"repeat at the end", {"a", "b", "c", "a"}, {{0, 3}, {1}, {2}}},
  };
  for (const auto& c : cases) {
    std::vector<BatchEntry> entries;
    for (std::size_t i = 0; i < c.hashes.size(); ++i) {
      entries.push_back(entry(record(c.hashes[i], static_cast<double>(i)), static_cast<std::int64_t>(i)));
    }
    const auto rows = fold_by_hash(entries);
    EXPECT_EQ(members(rows), c.expected) << c.name;
    for (const auto& row : rows) {
      EXPECT_EQ(row.folded.has_value(), row.members.size() > 1) << c.name << ": a single message is not copied";
      EXPECT_DOUBLE_EQ(row.record(entries).score, static_cast<double>(row.members.back())) << c.name;
    }
  }
}

// The defect of issue 15: sent with metrics, then again without them in one batch, the metrics were lost.
TEST(FoldByHash, MetricsOfAnEarlierMessageSurviveALaterOneWithout) {
  std::vector<BatchEntry> entries;
  StrategyRecord first = record("h", 1.0);
  first.performance_metrics = nlohmann::json{{"sharpe_ratio", 1.2}};
  first.discovery_start_us = 10;
  entries.push_back(entry(first, 0));
  StrategyRecord second = record("h", 2.0);
  second.discovery_end_us = 20;
  entries.push_back(entry(second, 1));
  StrategyRecord third = record("h", 3.0);
  third.discovery_start_us = 15;
  entries.push_back(entry(third, 2));
  const auto rows = fold_by_hash(entries);
  ASSERT_EQ(rows.size(), 1u);
  const StrategyRecord& row = rows[0].record(entries);
  EXPECT_DOUBLE_EQ(row.score, 3.0);
  EXPECT_EQ(row.performance_metrics, (nlohmann::json{{"sharpe_ratio", 1.2}}));
  EXPECT_EQ(row.discovery_start_us, 15);
  EXPECT_EQ(row.discovery_end_us, 20);
  EXPECT_EQ(rows[0].duplicates(), 2u);
  // The entries themselves are untouched (their payloads and values are what a dead letter shows).
  EXPECT_FALSE(entries[1].record.performance_metrics.has_value());
  EXPECT_DOUBLE_EQ(entries[0].record.score, 1.0);
}

// Issue 15.4: a re-discovery with an older Kafka timestamp (from another partition, read later) changes
// nothing, as the upsert's guard does not apply it either; one without a timestamp always applies.
TEST(FoldByHash, AnOlderRediscoveryChangesNothing) {
  std::vector<BatchEntry> entries;
  StrategyRecord newer = record("h", 2.0);
  newer.message_timestamp_ms = 2000;
  newer.discovery_end_us = 20;
  entries.push_back(entry(newer, 0));
  StrategyRecord older = record("h", 1.0);
  older.message_timestamp_ms = 1000;
  older.performance_metrics = nlohmann::json{{"sharpe_ratio", 0.1}};
  entries.push_back(entry(older, 1));
  const auto rows = fold_by_hash(entries);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_DOUBLE_EQ(rows[0].record(entries).score, 2.0);
  EXPECT_FALSE(rows[0].record(entries).performance_metrics.has_value());
  EXPECT_EQ(rows[0].record(entries).message_timestamp_ms, 2000);
  EXPECT_EQ(rows[0].members, (std::vector<std::size_t>{0, 1})) << "still folded: dead-lettered with the row";

  StrategyRecord same_time = record("h", 3.0);
  same_time.message_timestamp_ms = 2000;
  StrategyRecord untimed = record("h", 4.0);
  StrategyRecord row = newer;
  apply_rediscovery(row, same_time);
  EXPECT_DOUBLE_EQ(row.score, 3.0) << "not older: applied";
  apply_rediscovery(row, untimed);
  EXPECT_DOUBLE_EQ(row.score, 4.0) << "no timestamp: applied";
  EXPECT_EQ(row.message_timestamp_ms, 2000) << "and the row keeps the timestamp it had";
  EXPECT_TRUE(older_than(older, newer));
  EXPECT_FALSE(older_than(newer, older));
  EXPECT_FALSE(older_than(untimed, newer));
}

TEST(FoldByHash, ExcludedEntriesTakeNoPart) {
  std::vector<BatchEntry> entries;
  const std::vector<std::string> hashes = {"a", "b", "a", "c", "a"};
  for (std::size_t i = 0; i < hashes.size(); ++i) {
    entries.push_back(entry(record(hashes[i], static_cast<double>(i)), static_cast<std::int64_t>(i)));
  }
  // The last "a" refused: the two before it fold; "c" refused: nothing of it.
  const auto rows = fold_by_hash(entries, {false, false, false, true, true});
  EXPECT_EQ(members(rows), (std::vector<std::vector<std::size_t>>{{0, 2}, {1}}));
  EXPECT_DOUBLE_EQ(rows[0].record(entries).score, 2.0);
  EXPECT_TRUE(fold_by_hash(entries, std::vector<bool>(5, true)).empty());
  EXPECT_EQ(members(fold_by_hash(entries, std::vector<bool>(5, false))), members(fold_by_hash(entries)));
}

}  // namespace
}  // namespace strategy_consumer
