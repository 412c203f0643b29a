// The writer lane's queue (writer_lane.hpp): the next batch is written the moment the one before it is done,
// without waiting for the consumer thread to take that one back; and a batch handed off behind one that was not
// committed is not written (it was prepared against offsets that batch did not write).
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "doubles.hpp"
#include "strategy_consumer/model/errors.hpp"
#include "strategy_consumer/pipeline/writer_lane.hpp"

namespace strategy_consumer {
namespace {

using namespace std::chrono_literals;

// What the lane's write function saw: the ids of the batches it was called for, in order. A batch whose id is in
// `fence` throws FencedError, one in `fail` a DatabaseError; one in `hold` waits until released.
struct Writes {
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<std::uint64_t> called;
  std::set<std::uint64_t> fence;
  std::set<std::uint64_t> hold;
  std::set<std::uint64_t> fail;  // throws what a write that outlasted its retries throws

  void write(Work& work) {
    std::unique_lock lock(mutex);
    called.push_back(work.id);
    changed.notify_all();
    changed.wait(lock, [&] { return !hold.count(work.id); });
    if (fence.count(work.id)) throw FencedError("the stored offset moved");
    if (fail.count(work.id)) throw DatabaseError("the database refused for good", "XX000", false);
  }
  void release(std::uint64_t id) {
    {
      std::lock_guard lock(mutex);
      hold.erase(id);
    }
    changed.notify_all();
  }
  bool wait_called(std::size_t n) {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, 5s, [&] { return called.size() >= n; });
  }
  std::vector<std::uint64_t> calls() {
    std::lock_guard lock(mutex);
    return called;
  }
};

class WriterLaneTest : public ::testing::Test {
 protected:
  WriterLaneTest() : lane(0, std::make_unique<doubles::MemorySink>(db)) {
    lane.start([this](WriterLane&, Work& work) { writes.write(work); });
  }
  ~WriterLaneTest() override {
    {
      std::lock_guard lock(writes.mutex);
      writes.hold.clear();  // a write still held ends, so the lane's thread can be joined
    }
    writes.changed.notify_all();
    lane.stop();
  }

  static std::unique_ptr<Work> batch(std::uint64_t id) {
    auto work = std::make_unique<Work>();
    work->id = id;
    return work;
  }

  doubles::MemoryDb db;
  Writes writes;
  WriterLane lane;
};

TEST_F(WriterLaneTest, TheNextBatchIsWrittenBeforeTheOneBeforeItIsTakenBack) {
  writes.hold = {1};
  lane.hand(batch(1));
  ASSERT_TRUE(writes.wait_called(1));
  EXPECT_TRUE(lane.has_room()) << "one batch in flight: room for the next";
  lane.hand(batch(2));
  EXPECT_FALSE(lane.has_room()) << "kDepth batches handed off";
  EXPECT_EQ(lane.take_written(/*wait=*/false), nullptr) << "batch 1 is still being written";
  writes.release(1);
  ASSERT_TRUE(writes.wait_called(2)) << "batch 2 is written while batch 1 waits to be taken back";
  auto first = lane.take_written(/*wait=*/true);
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->id, 1u);
  auto second = lane.take_written(/*wait=*/true);
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(second->id, 2u);
  EXPECT_FALSE(second->skipped);
  EXPECT_FALSE(second->fenced);
  EXPECT_FALSE(lane.busy());
}

TEST_F(WriterLaneTest, ABatchHandedOffBehindAFencedOneIsNotWritten) {
  writes.hold = {1};
  writes.fence = {1};
  lane.hand(batch(1));
  ASSERT_TRUE(writes.wait_called(1));
  lane.hand(batch(2));  // prepared expecting the offsets batch 1 would write
  writes.release(1);
  auto first = lane.take_written(/*wait=*/true);
  ASSERT_NE(first, nullptr);
  EXPECT_TRUE(first->fenced.has_value());
  EXPECT_FALSE(first->skipped);
  auto second = lane.take_written(/*wait=*/true);
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(second->id, 2u);
  EXPECT_TRUE(second->skipped);
  EXPECT_TRUE(second->fenced.has_value()) << "it comes back as fenced: its partitions are read again";
  EXPECT_EQ(writes.calls(), std::vector<std::uint64_t>{1}) << "batch 2 never reached the database";

  // Handed off after the fenced batch was taken back: prepared against the stored offsets, so written.
  lane.hand(batch(3));
  auto third = lane.take_written(/*wait=*/true);
  ASSERT_NE(third, nullptr);
  EXPECT_FALSE(third->skipped);
  EXPECT_FALSE(third->fenced);
  EXPECT_EQ(writes.calls(), (std::vector<std::uint64_t>{1, 3}));
}

TEST_F(WriterLaneTest, ABatchHandedOffAfterAFencedOneIsWrittenButBeforeItIsTakenBackIsNotWritten) {
  writes.fence = {1};
  lane.hand(batch(1));
  ASSERT_TRUE(writes.wait_called(1));
  std::this_thread::sleep_for(50ms);  // batch 1 is done (fenced) and waits to be taken back
  lane.hand(batch(2));                // the consumer thread did not know yet: prepared behind batch 1
  auto first = lane.take_written(/*wait=*/true);
  ASSERT_NE(first, nullptr);
  EXPECT_TRUE(first->fenced.has_value());
  auto second = lane.take_written(/*wait=*/true);
  ASSERT_NE(second, nullptr);
  EXPECT_TRUE(second->skipped);
  EXPECT_EQ(writes.calls(), std::vector<std::uint64_t>{1});
}

TEST_F(WriterLaneTest, ABatchHandedOffBehindAFailedOneIsNotWritten) {
  writes.hold = {1};
  writes.fail = {1};
  lane.hand(batch(1));
  ASSERT_TRUE(writes.wait_called(1));
  lane.hand(batch(2));
  writes.release(1);
  auto first = lane.take_written(/*wait=*/true);
  ASSERT_NE(first, nullptr);
  EXPECT_TRUE(first->error != nullptr);
  auto second = lane.take_written(/*wait=*/true);
  ASSERT_NE(second, nullptr);
  EXPECT_TRUE(second->skipped);
  EXPECT_EQ(writes.calls(), std::vector<std::uint64_t>{1});
}

}  // namespace
}  // namespace strategy_consumer
