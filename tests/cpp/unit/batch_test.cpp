// Batch bookkeeping (batch.hpp): what a batch holds, how far each partition has been read, when it flushes.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "strategy_consumer/pipeline/batch.hpp"

namespace strategy_consumer {
namespace {

using namespace std::chrono_literals;
using Offsets = std::map<TopicPartition, std::int64_t>;

SourcePosition at(const std::string& topic, std::int32_t partition, std::int64_t offset) {
  SourcePosition p;
  p.topic = topic;
  p.partition = partition;
  p.offset = offset;
  return p;
}

StrategyRecord record(const std::string& hash, double score = 1.0) {
  StrategyRecord r;
  r.symbol = "BTCUSDT";
  r.strategy_type = "SMA";
  r.parameters = nlohmann::json::object();
  r.score = score;
  r.strategy_hash = hash;
  return r;
}

TEST(Batch, StartsEmpty) {
  Batch b;
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.size(), 0u);
  EXPECT_EQ(b.message_count(), 0u);
  EXPECT_TRUE(b.entries().empty());
  EXPECT_TRUE(b.next_offsets().empty());
}

TEST(Batch, AddAndSkipAdvanceNextOffsetsPerPartition) {
  Batch b;
  b.add(record("h1"), at("t", 0, 10), "payload-1");
  EXPECT_EQ(b.next_offsets(), (Offsets{{{"t", 0}, 11}}));
  b.skip(at("t", 0, 11));
  EXPECT_EQ(b.next_offsets(), (Offsets{{{"t", 0}, 12}}));
  b.add(record("h2"), at("t", 1, 500));
  b.skip(at("other", 0, 7));
  b.add(record("h3"), at("t", 0, 12));
  EXPECT_EQ(b.next_offsets(), (Offsets{{{"t", 0}, 13}, {{"t", 1}, 501}, {{"other", 0}, 8}}));
  EXPECT_EQ(b.size(), 3u) << "skipped messages are not entries";
  EXPECT_EQ(b.message_count(), 5u) << "skipped messages are counted";
  EXPECT_FALSE(b.empty());
  ASSERT_EQ(b.entries().size(), 3u);
  EXPECT_EQ(b.entries()[0].record.strategy_hash, "h1");
  EXPECT_EQ(b.entries()[0].payload, "payload-1");
  EXPECT_EQ(b.entries()[0].source.offset, 10);
  EXPECT_EQ(b.entries()[1].source.partition, 1);
  EXPECT_EQ(b.entries()[2].record.strategy_hash, "h3");
}

TEST(Batch, NextOffsetIsMaxPlusOneWhateverTheOrder) {
  Batch b;
  b.add(record("a"), at("t", 3, 100));
  b.skip(at("t", 3, 42));  // an older offset never moves the position back
  b.add(record("b"), at("t", 3, 99));
  EXPECT_EQ(b.next_offsets(), (Offsets{{{"t", 3}, 101}}));
  EXPECT_EQ(b.message_count(), 3u);
}

TEST(Batch, OnlySkippedMessagesStillMakeANonEmptyBatch) {
  // A batch of dead letters must still be committed: its offsets count.
  Batch b;
  b.skip(at("t", 0, 0));
  b.skip(at("t", 0, 1));
  EXPECT_FALSE(b.empty());
  EXPECT_EQ(b.size(), 0u);
  EXPECT_EQ(b.message_count(), 2u);
  EXPECT_EQ(b.next_offsets(), (Offsets{{{"t", 0}, 2}}));
}

TEST(Batch, StartedIsTheTimeOfTheFirstMessage) {
  Batch b;
  const auto before = std::chrono::steady_clock::now();
  b.skip(at("t", 0, 0));
  const auto after = std::chrono::steady_clock::now();
  EXPECT_GE(b.started(), before);
  EXPECT_LE(b.started(), after);
  const auto first = b.started();
  b.add(record("x"), at("t", 0, 1));
  EXPECT_EQ(b.started(), first) << "later messages do not restart the clock";
}

TEST(Batch, DropPartitionsRemovesOnlyThosePartitions) {
  Batch b;
  b.add(record("a"), at("t", 0, 1));
  b.add(record("b"), at("t", 1, 5));
  b.skip(at("t", 2, 9));
  b.add(record("c"), at("t", 0, 2));
  b.add(record("d"), at("u", 1, 3));  // same partition number, other topic: kept
  b.drop_partitions({{"t", 0}, {"t", 2}});
  EXPECT_EQ(b.next_offsets(), (Offsets{{{"t", 1}, 6}, {{"u", 1}, 4}}));
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(b.entries()[0].record.strategy_hash, "b");
  EXPECT_EQ(b.entries()[1].record.strategy_hash, "d");
  EXPECT_FALSE(b.empty());
}

TEST(Batch, DropPartitionsForgetsTheMessageCountOfThosePartitions) {
  // "Forgets everything read from these partitions": the 3 messages of t/0 and t/2 no longer count, so a
  // batch left with 2 messages is not mistaken for a fuller one by BatchPolicy::should_flush.
  Batch b;
  b.add(record("a"), at("t", 0, 1));
  b.add(record("b"), at("t", 1, 5));
  b.skip(at("t", 2, 9));
  b.add(record("c"), at("t", 0, 2));
  b.skip(at("t", 1, 6));
  b.drop_partitions({{"t", 0}, {"t", 2}});
  EXPECT_EQ(b.size(), 1u);
  EXPECT_EQ(b.message_count(), 2u) << "t/1 holds one stored and one skipped message";
}

TEST(Batch, DropPartitionsNotInTheBatchChangesNothing) {
  Batch b;
  b.add(record("a"), at("t", 0, 1));
  b.skip(at("t", 0, 2));
  b.drop_partitions({{"t", 7}, {"other", 0}});
  EXPECT_EQ(b.next_offsets(), (Offsets{{{"t", 0}, 3}}));
  EXPECT_EQ(b.size(), 1u);
  EXPECT_EQ(b.message_count(), 2u);
}

TEST(Batch, DroppingEveryPartitionEmptiesTheBatch) {
  Batch b;
  b.add(record("a"), at("t", 0, 1));
  b.skip(at("t", 1, 2));
  b.drop_partitions({{"t", 0}, {"t", 1}});
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.message_count(), 0u);
  EXPECT_EQ(b.size(), 0u);
  EXPECT_TRUE(b.next_offsets().empty());
}

TEST(Batch, ClearForgetsEverything) {
  Batch b;
  b.add(record("a"), at("t", 0, 1));
  b.skip(at("t", 1, 2));
  b.clear();
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.size(), 0u);
  EXPECT_EQ(b.message_count(), 0u);
  EXPECT_TRUE(b.next_offsets().empty());
  // A cleared batch is reusable and starts a new clock.
  const auto before = std::chrono::steady_clock::now();
  b.add(record("b"), at("t", 0, 3));
  EXPECT_GE(b.started(), before);
  EXPECT_EQ(b.next_offsets(), (Offsets{{{"t", 0}, 4}}));
  EXPECT_EQ(b.message_count(), 1u);
}

TEST(BatchPolicy, ShouldFlush) {
  BatchPolicy policy;
  policy.max_messages = 10;
  policy.max_age = 30000ms;
  struct Case {
    const char* name;
    std::size_t messages;
    std::chrono::steady_clock::duration age;
    bool caught_up;
    bool expected;
  };
  const std::vector<Case> cases = {
      {"empty never", 0, 0ms, false, false},
      {"empty never, even caught up", 0, 0ms, true, false},
      {"empty never, even old", 0, 3600s, true, false},
      {"filling up", 1, 1ms, false, false},
      {"one short of full", 9, 29999ms, false, false},
      {"full", 10, 0ms, false, true},
      {"over full", 11, 0ms, false, true},
      {"timed out", 1, 30000ms, false, true},
      {"long timed out", 3, 90s, false, true},
      {"caught up", 1, 0ms, true, true},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(policy.should_flush(c.messages, 0, c.age, c.caught_up), c.expected) << c.name;
  }
}

TEST(BatchPolicy, FlushesOnBytesToo) {
  BatchPolicy policy;
  policy.max_messages = 1000;
  policy.max_bytes = 1000;
  EXPECT_FALSE(policy.should_flush(1, 999, 0ms, false));
  EXPECT_TRUE(policy.should_flush(1, 1000, 0ms, false));
  EXPECT_TRUE(policy.full(2, 5000));
  EXPECT_FALSE(policy.should_flush(0, 5000, 0ms, false)) << "no message, nothing to write";
}

TEST(Batch, CountsTheBytesItHolds) {
  Batch b;
  const std::string payload(100000, 'x');
  b.add(record("h1"), at("t", 0, 0), payload);
  const std::size_t one = b.bytes();
  EXPECT_GE(one, payload.size()) << "the payload counts";
  EXPECT_LT(one, payload.size() + 4096) << "plus an estimate of the small record";
  b.skip(at("t", 1, 0), 5000);  // a dead letter waiting in the producer's queue
  EXPECT_EQ(b.bytes(), one + 5000);
  b.drop_partitions({{"t", 1}});
  EXPECT_EQ(b.bytes(), one);
  b.add(record("h2"), at("t", 1, 1), payload);
  EXPECT_EQ(b.bytes(), 2 * one);
  b.clear();
  EXPECT_EQ(b.bytes(), 0u);
}

TEST(BatchPolicy, Defaults) {
  const BatchPolicy policy;
  EXPECT_EQ(policy.max_messages, 1000u);
  EXPECT_EQ(policy.max_age, 30000ms);
}

}  // namespace
}  // namespace strategy_consumer
