// The score history's pure logic (postgres/history.hpp): month partitions' names and bounds, the retention
// cut-off and which partitions it drops, and which messages of a folded row the fold applied.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "strategy_consumer/model/timestamp.hpp"
#include "strategy_consumer/postgres/copy_encoder.hpp"
#include "strategy_consumer/postgres/history.hpp"
#include "strategy_consumer/postgres/statements.hpp"

namespace strategy_consumer {
namespace {

std::int64_t at(const char* rfc3339) { return *parse_rfc3339_us(rfc3339); }

TEST(HistoryPartitions, TheMonthOfAnInstantIsUtc) {
  EXPECT_EQ(month_of_us(at("2026-03-31T23:59:59.999999Z")), (HistoryMonth{2026, 3}));
  EXPECT_EQ(month_of_us(at("2026-04-01T00:00:00Z")), (HistoryMonth{2026, 4}));
  EXPECT_EQ(month_of_us(at("2026-04-01T01:00:00+02:00")), (HistoryMonth{2026, 3})) << "23:00 UTC on March 31st";
  EXPECT_EQ(month_of_us(at("1969-12-31T23:59:59.5Z")), (HistoryMonth{1969, 12}));
}

TEST(HistoryPartitions, NamesAndBoundsOfAMonth) {
  EXPECT_EQ(partition_name({2026, 3}), "strategy_score_history_y2026m03");
  EXPECT_EQ(partition_bounds({2026, 3}), "FOR VALUES FROM ('2026-03-01 00:00:00') TO ('2026-04-01 00:00:00')");
  EXPECT_EQ(partition_bounds({2026, 12}), "FOR VALUES FROM ('2026-12-01 00:00:00') TO ('2027-01-01 00:00:00')");
  EXPECT_EQ(next_month({2026, 12}), (HistoryMonth{2027, 1}));
  EXPECT_EQ(month_start_us({2026, 3}), at("2026-03-01T00:00:00Z"));
  EXPECT_EQ(create_partition_sql({2026, 3}),
            "CREATE TABLE IF NOT EXISTS strategy_score_history_y2026m03 PARTITION OF strategy_score_history "
            "FOR VALUES FROM ('2026-03-01 00:00:00') TO ('2026-04-01 00:00:00')");
}

TEST(HistoryPartitions, OnlyOurMonthNamesParse) {
  EXPECT_EQ(partition_month("strategy_score_history_y2026m03"), (HistoryMonth{2026, 3}));
  EXPECT_EQ(partition_month(partition_name({1999, 12})), (HistoryMonth{1999, 12}));
  EXPECT_FALSE(partition_month("strategy_score_history_default"));
  EXPECT_FALSE(partition_month("strategy_score_history_y2026m13"));
  EXPECT_FALSE(partition_month("strategy_score_history_y2026m03_archive"));
  EXPECT_FALSE(partition_month("my_strategy_score_history_y2026m03"));
}

TEST(HistoryRetention, ZeroKeepsForever) {
  EXPECT_FALSE(retention_cutoff_us(at("2026-05-10T00:00:00Z"), 0));
  EXPECT_EQ(retention_cutoff_us(at("2026-05-10T00:00:00Z"), 30), at("2026-04-10T00:00:00Z"));
}

TEST(HistoryRetention, APartitionGoesOnlyOnceItsWholeMonthIsOlderThanTheCutoff) {
  const std::vector<std::string> names{"strategy_score_history_y2026m02", "strategy_score_history_y2026m03",
                                       "strategy_score_history_y2026m04", "strategy_score_history_y2026m05",
                                       "strategy_score_history_default", "strategy_score_history_y2025m12"};
  // 30 days before May 10th is April 10th: March ended before it, April did not.
  const auto cutoff = *retention_cutoff_us(at("2026-05-10T00:00:00Z"), 30);
  EXPECT_EQ(expired_partitions(names, cutoff),
            (std::vector<std::string>{"strategy_score_history_y2026m02", "strategy_score_history_y2026m03",
                                      "strategy_score_history_y2025m12"}));
  // A cut-off exactly at a month's end drops that month.
  EXPECT_EQ(expired_partitions({"strategy_score_history_y2026m03"}, at("2026-04-01T00:00:00Z")).size(), 1u);
  EXPECT_TRUE(expired_partitions({"strategy_score_history_y2026m03"}, at("2026-03-31T23:59:59Z")).empty());
}

StrategyRecord message(std::optional<std::int64_t> timestamp_ms) {
  StrategyRecord r;
  r.strategy_hash = "h";
  r.message_timestamp_ms = timestamp_ms;
  return r;
}

TEST(HistoryFold, AMessageOlderThanOneBeforeItInItsRowWasNotApplied) {
  const StrategyRecord a = message(100), b = message(300), c = message(200), d = message(std::nullopt),
                       e = message(300), other = message(50);
  // Row 0: a, b, c (older than b), d (no timestamp: applied), e (as new as b: applied). Row 1: one old message.
  const std::vector<RowMessage> messages{{0, &a, nullptr}, {1, &other, nullptr}, {0, &b, nullptr},
                                         {0, &c, nullptr}, {0, &d, nullptr},     {0, &e, nullptr}};
  EXPECT_EQ(applied_in_fold(messages), (std::vector<bool>{true, true, true, false, true, true}));
}

TEST(HistoryStatements, TheHistoryUpsertIsTheUpsertWithRowsOnlyAndTheHistoryInsert) {
  const std::string upsert(statements::kUpsertWithHistory);
  EXPECT_NE(upsert.find("FROM strategy_staging WHERE is_row"), std::string::npos);
  EXPECT_NE(upsert.find("INSERT INTO strategy_score_history"), std::string::npos);
  EXPECT_NE(upsert.find("ORDER BY strategy_hash"), std::string::npos);
  // Everything after the FROM of kUpsert's SELECT is the same guard and SET list.
  const std::string plain(statements::kUpsert);
  const auto tail = [](const std::string& s) {
    const auto from = s.find("ORDER BY strategy_hash");
    return s.substr(from, s.find("RETURNING") - from);
  };
  EXPECT_EQ(tail(upsert), tail(plain));
  EXPECT_EQ(std::string(statements::kHistoryCopyColumns).rfind(std::string(statements::kCopyColumns), 0), 0u);
}

TEST(HistoryStatements, TheHistoryFieldsEncodeTheSourceOrNulls) {
  std::string out;
  SourcePosition source{"topic\tx", 3, 42, 0};
  encode_history_fields(out, &source, true, false);
  EXPECT_EQ(out, "\ttopic\\tx\t3\t42\tt\tf");
  out.clear();
  encode_history_fields(out, nullptr, false, true);
  EXPECT_EQ(out, "\t\\N\t\\N\t\\N\tf\tt");
}

}  // namespace
}  // namespace strategy_consumer
