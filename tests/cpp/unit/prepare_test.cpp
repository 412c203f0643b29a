// A batch made ready for its writer (prepare.hpp): refused entries left out, one row per strategy_hash in
// strategy_hash order, duplicates counted, each partition's next offset with the stored one expected.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "strategy_consumer/pipeline/prepare.hpp"

#include "test_support.hpp"

namespace strategy_consumer {
namespace {

using test_support::record;

SourcePosition at(std::int32_t partition, std::int64_t offset) { return {"t", partition, offset, -1}; }

std::vector<std::string> hashes(const PreparedBatch& p, const Batch& b) {
  std::vector<std::string> out;
  for (const auto& r : p.rows) out.push_back(r.record(b.entries()).strategy_hash);
  return out;
}

TEST(PrepareBatch, RowsInHashOrderOnePerStrategy) {
  Batch b;
  b.add(record("c", 1), at(0, 10));
  b.add(record("a", 2), at(0, 11));
  b.add(record("b", 3), at(1, 5));
  b.add(record("a", 4), at(1, 6));
  const PreparedBatch p = prepare_batch(b, {}, {});
  EXPECT_EQ(hashes(p, b), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(p.duplicates, 1u);
  EXPECT_EQ(p.rows[0].members, (std::vector<std::size_t>{1, 3}));
  EXPECT_DOUBLE_EQ(p.rows[0].record(b.entries()).score, 4) << "the last message's score";
  const auto records = row_records(p.rows, b.entries());
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[2]->strategy_hash, "c");
}

TEST(PrepareBatch, EveryMessageOfTheRowsForTheScoreHistoryRowByRowInBatchOrder) {
  Batch b;
  b.add(record("c", 1), at(0, 10));
  b.add(record("a", 2), at(0, 11));
  b.add(record("b", 3), at(1, 5));
  b.add(record("a", 4), at(1, 6));
  const PreparedBatch p = prepare_batch(b, {false, false, true, false}, {});
  const auto messages = row_messages(p.rows, b.entries());
  ASSERT_EQ(messages.size(), 3u) << "the refused message has none";
  EXPECT_EQ(messages[0].row, 0u);
  EXPECT_DOUBLE_EQ(messages[0].record->score, 2) << "the message's own values, not the folded row's";
  EXPECT_EQ(messages[0].source->offset, 11);
  EXPECT_EQ(messages[1].row, 0u);
  EXPECT_DOUBLE_EQ(messages[1].record->score, 4);
  EXPECT_EQ(messages[1].source->partition, 1);
  EXPECT_EQ(messages[2].row, 1u);
  EXPECT_EQ(messages[2].record->strategy_hash, "c");
}

TEST(PrepareBatch, RefusedEntriesAreNotWrittenButTheirOffsetsCount) {
  Batch b;
  b.add(record("a", 1), at(0, 0));
  b.add(record("b", 2), at(0, 1));
  b.add(record("b", 3), at(0, 2));
  const PreparedBatch p = prepare_batch(b, {false, true, false}, {});
  EXPECT_EQ(hashes(p, b), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(p.duplicates, 0u) << "the refused message folds into nothing";
  EXPECT_EQ(p.rows[1].members, (std::vector<std::size_t>{2}));
  ASSERT_EQ(p.offsets.size(), 1u);
  EXPECT_EQ(p.offsets[0].next_offset, 3);
}

TEST(PrepareBatch, EverythingRefusedStillAdvancesTheOffsets) {
  Batch b;
  b.add(record("a", 1), at(0, 7));
  b.skip(at(0, 8));  // dead-lettered at decoding
  const PreparedBatch p = prepare_batch(b, {true}, {{{"t", 0}, 7}});
  EXPECT_TRUE(p.rows.empty());
  ASSERT_EQ(p.offsets.size(), 1u);
  EXPECT_EQ(p.offsets[0].next_offset, 9);
  EXPECT_EQ(p.offsets[0].expected, 7);
}

TEST(PrepareBatch, OffsetsPerPartitionWithTheStoredOneExpected) {
  Batch b;
  b.add(record("a", 1), at(2, 40));
  b.add(record("b", 1), at(0, 3));
  b.add(record("c", 1), at(2, 41));
  const ExpectedOffsets expected{{{"t", 2}, 40}, {{"t", 0}, std::nullopt}, {{"t", 9}, 1}};
  const PreparedBatch p = prepare_batch(b, {}, expected);
  ASSERT_EQ(p.offsets.size(), 2u);  // only the batch's partitions, in partition order
  EXPECT_EQ(p.offsets[0].partition, 0);
  EXPECT_EQ(p.offsets[0].next_offset, 4);
  EXPECT_EQ(p.offsets[0].expected, std::nullopt) << "no row stored yet";
  EXPECT_EQ(p.offsets[1].partition, 2);
  EXPECT_EQ(p.offsets[1].next_offset, 42);
  EXPECT_EQ(p.offsets[1].expected, 40);
}

TEST(PrepareBatch, PartitionNotInExpectedHasNoExpectedOffset) {
  Batch b;
  b.add(record("a", 1), at(3, 0));
  const PreparedBatch p = prepare_batch(b, {}, {});
  ASSERT_EQ(p.offsets.size(), 1u);
  EXPECT_EQ(p.offsets[0].expected, std::nullopt);
  EXPECT_EQ(p.offsets[0].topic, "t");
}

}  // namespace
}  // namespace strategy_consumer
