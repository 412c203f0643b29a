// The pipeline's logic (pipeline.hpp) driven with in-memory doubles of its source and sink (doubles.hpp):
// rebalances in the middle of a batch, the fence, a batch handed off behind one in flight (and behind a fenced
// one), a revoke while a write is in flight, stop at each point, a drain that ends idle. Every message carries its own strategy_hash ("p<partition>-o<offset>"), so the sink
// can tell how many times each was written: exactly-once is "each hash the pipeline should write, written once".
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "doubles.hpp"
#include "strategy_consumer/message/catalog.hpp"
#include "strategy_consumer/pipeline/pipeline.hpp"

namespace strategy_consumer {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using doubles::MemoryDb;
using doubles::MemoryLetters;
using doubles::MemorySink;
using doubles::ScriptedSource;
using doubles::Step;
using doubles::Topic;

std::string hash_of(std::int32_t partition, std::int64_t offset) {
  return "p" + std::to_string(partition) + "-o" + std::to_string(offset);
}

std::string message(std::int32_t partition, std::int64_t offset) {
  json parameters = json::object();
  for (const auto& p : Catalog::builtin()->find("MACD_CROSSOVER")->parameters) {
    if (p.type == ParameterType::integer) parameters[p.name] = static_cast<std::int64_t>(p.default_value);
    else parameters[p.name] = p.default_value;
  }
  return json{{"symbol", "BTCUSDT"},
              {"strategy_type", "MACD_CROSSOVER"},
              {"parameters", parameters},
              {"score", 0.5},
              {"strategy_hash", hash_of(partition, offset)}}
      .dump();
}

class PipelineTest : public ::testing::Test {
 protected:
  PipelineTest() {
    config.kafka.poll_timeout_ms = 20;
    config.processing.writer_connections = 2;
    config.processing.batch_timeout_seconds = 60;  // batches go when the source is caught up, not by age
    config.processing.shutdown_timeout_seconds = 0.3;
  }

  Pipeline& pipeline() {
    if (!pipeline_) {
      PipelineParts parts{
          .make_sink = [this]() -> std::unique_ptr<BatchSink> { return std::make_unique<MemorySink>(db); },
          .make_source = [this](RebalanceListener& listener) -> std::unique_ptr<MessageSource> {
            return std::make_unique<ScriptedSource>(topic, listener);
          },
          .make_dead_letters = [this](PipelineObserver&) -> std::unique_ptr<DeadLetterSink> {
            return std::make_unique<MemoryLetters>(db);
          }};
      pipeline_ = std::make_unique<Pipeline>(config, std::move(parts));
    }
    return *pipeline_;
  }

  ExitReason run() {
    auto& p = pipeline();
    auto done = std::async(std::launch::async, [&p] { return p.run(); });
    if (done.wait_for(30s) != std::future_status::ready) {
      ADD_FAILURE() << "the pipeline did not end within 30 s; stopping it";
      p.stop();
    }
    return done.get();
  }

  // ---- the script's steps
  void assign(std::vector<std::int32_t> partitions) {
    topic.script.push_back([partitions](ScriptedSource& s) {
      s.assign(partitions);
      return Step::event;
    });
  }
  void revoke(std::vector<std::int32_t> partitions) {
    topic.script.push_back([partitions](ScriptedSource& s) {
      std::set<TopicPartition> set;
      for (auto p : partitions) set.insert({s.topic_name(), p});
      s.revoke(set);
      return Step::event;
    });
  }
  void publish(std::int32_t partition, int count) {
    topic.script.push_back([this, partition, count](ScriptedSource&) {
      auto& log = topic.logs[partition];
      for (int i = 0; i < count; ++i) log.push_back(message(partition, static_cast<std::int64_t>(log.size())));
      return Step::next;
    });
  }
  void read_everything() {
    topic.script.push_back([](ScriptedSource& s) { return s.read_everything() ? Step::next : Step::wait; });
  }
  void until(std::function<bool()> holds) {
    topic.script.push_back([holds = std::move(holds)](ScriptedSource&) { return holds() ? Step::next : Step::wait; });
  }
  void act(std::function<void()> f) {
    topic.script.push_back([f = std::move(f)](ScriptedSource&) {
      f();
      return Step::next;
    });
  }
  void stop() {
    act([this] { pipeline_->stop(); });
  }
  // One writer, batches of two, partition 0 holding four messages: [0, 2) is in flight (held in the database,
  // expecting nothing stored) and [2, 4) handed off behind it (expecting 2).
  void one_batch_in_flight_and_one_behind_it() {
    config.processing.writer_connections = 1;
    config.processing.batch_size = 2;
    act([&] { db.with([&] { return db.block = true; }); });
    assign({0});
    publish(0, 4);
    until([&] { return db.with([&] { return db.blocked == 1; }); });
    read_everything();
  }

  // ---- the database
  std::optional<std::int64_t> stored(std::int32_t partition) {
    return db.with([&]() -> std::optional<std::int64_t> {
      auto it = db.offsets.find({topic.name, partition});
      return it == db.offsets.end() ? std::nullopt : std::optional<std::int64_t>(it->second);
    });
  }
  std::function<bool()> stored_is(std::int32_t partition, std::int64_t next) {
    return [this, partition, next] { return stored(partition) == next; };
  }
  int times_written(std::int32_t partition, std::int64_t offset) {
    return db.with([&] {
      auto it = db.written.find(hash_of(partition, offset));
      return it == db.written.end() ? 0 : it->second;
    });
  }
  // Offsets [from, to) of the partition written exactly once each.
  void expect_written_once(std::int32_t partition, std::int64_t from, std::int64_t to) {
    for (auto o = from; o < to; ++o) EXPECT_EQ(times_written(partition, o), 1) << hash_of(partition, o);
  }
  void expect_not_written(std::int32_t partition, std::int64_t from, std::int64_t to) {
    for (auto o = from; o < to; ++o) EXPECT_EQ(times_written(partition, o), 0) << hash_of(partition, o);
  }

  Config config;
  Topic topic;
  MemoryDb db;
  std::unique_ptr<Pipeline> pipeline_;
};

TEST_F(PipelineTest, RebalanceInTheMiddleOfABatchDropsTheRevokedPartitionsMessages) {
  assign({0, 1});
  publish(0, 3);
  publish(1, 3);
  read_everything();  // both partitions in the open batches, nothing written yet
  revoke({1});
  until(stored_is(0, 3));  // partition 0's batch is written alone
  int written_before_reassign = -1;
  act([&] { written_before_reassign = times_written(1, 0) + times_written(1, 1) + times_written(1, 2); });
  assign({1});  // back: reread from its stored offset (none: the start)
  until(stored_is(1, 3));
  stop();
  EXPECT_EQ(run(), ExitReason::stopped);
  EXPECT_EQ(written_before_reassign, 0) << "what was read of a revoked partition is not written";
  expect_written_once(0, 0, 3);
  expect_written_once(1, 0, 3);
  EXPECT_EQ(pipeline().counters().messages, 9u) << "partition 1 was read twice";
  EXPECT_EQ(pipeline().counters().stored_new, 6u);
}

TEST_F(PipelineTest, FencedBatchIsDroppedAndThePartitionRereadFromTheStoredOffset) {
  assign({0});
  // Another consumer wrote offsets 0..2 of partition 0 after this one read the stored offsets (none).
  act([&] { db.with([&] { return db.offsets[{topic.name, 0}] = 3; }); });
  publish(0, 5);
  until(stored_is(0, 5));
  stop();
  EXPECT_EQ(run(), ExitReason::stopped);
  EXPECT_EQ(pipeline().counters().fenced_batches, 1u);
  EXPECT_EQ(db.fenced, 1);
  expect_not_written(0, 0, 3);  // the other consumer's
  expect_written_once(0, 3, 5);
  EXPECT_EQ(pipeline().counters().stored_new, 2u);
}

TEST_F(PipelineTest, RevokeWhileAWriteIsInFlightLetsItLandBeforeThePartitionIsReadAgain) {
  act([&] { db.with([&] { return db.block = true; }); });
  assign({0});
  publish(0, 3);
  until([&] { return db.with([&] { return db.blocked == 1; }); });
  revoke({0});
  act([&] { db.release(); });
  assign({0});  // waits for the write in flight: resumes after it, not behind it
  publish(0, 2);
  until(stored_is(0, 5));
  stop();
  EXPECT_EQ(run(), ExitReason::stopped);
  expect_written_once(0, 0, 5);
  EXPECT_EQ(db.fenced, 0);
  EXPECT_EQ(pipeline().counters().messages, 5u);
}

TEST_F(PipelineTest, RevokedWriteInFlightIsFencedWhenTheNewOwnerCommittedFirst) {
  act([&] { db.with([&] { return db.block = true; }); });
  assign({0});
  publish(0, 3);
  until([&] { return db.with([&] { return db.blocked == 1; }); });
  revoke({0});
  // The new owner wrote 0..3 meanwhile.
  act([&] { db.with([&] { return db.offsets[{topic.name, 0}] = 4; }); });
  publish(0, 3);
  act([&] { db.release(); });
  assign({0});
  until(stored_is(0, 6));
  stop();
  EXPECT_EQ(run(), ExitReason::stopped);
  EXPECT_EQ(pipeline().counters().fenced_batches, 1u);
  expect_not_written(0, 0, 4);
  expect_written_once(0, 4, 6);
}

TEST_F(PipelineTest, TheNextBatchIsHandedOffWhileOneIsWrittenExpectingTheOffsetsThatOneWrites) {
  one_batch_in_flight_and_one_behind_it();
  act([&] { db.release(); });
  until(stored_is(0, 4));
  stop();
  EXPECT_EQ(run(), ExitReason::stopped);
  expect_written_once(0, 0, 4);
  EXPECT_EQ(db.fenced, 0) << "the second batch expected offset 2, what the first wrote, not the stored nothing";
  EXPECT_EQ(pipeline().counters().messages, 4u);
  EXPECT_EQ(db.commits, 2);
}

TEST_F(PipelineTest, ABatchHandedOffBehindAFencedOneIsNotWrittenButReadAgain) {
  one_batch_in_flight_and_one_behind_it();
  // Another consumer wrote 0..1 meanwhile: [0, 2) is fenced. [2, 4) would pass the fence, but this consumer
  // rereads the partition from the stored offset after a fence, and a batch written behind that reread would
  // be applied twice: it is not written, its messages are read again.
  act([&] { db.with([&] { return db.offsets[{topic.name, 0}] = 2; }); });
  act([&] { db.release(); });
  until(stored_is(0, 4));
  stop();
  EXPECT_EQ(run(), ExitReason::stopped);
  expect_not_written(0, 0, 2);
  expect_written_once(0, 2, 4);
  EXPECT_EQ(pipeline().counters().fenced_batches, 1u) << "the skipped batch is not counted as fenced";
  EXPECT_EQ(db.fenced, 1) << "only [0, 2) reached the database";
  EXPECT_EQ(pipeline().counters().messages, 6u) << "offsets 2 and 3 were read twice";
}

TEST_F(PipelineTest, StopBeforeAnyBatch) {
  assign({0});
  stop();
  EXPECT_EQ(run(), ExitReason::stopped);
  EXPECT_EQ(db.commits, 0);
  EXPECT_EQ(stored(0), std::nullopt);
}

TEST_F(PipelineTest, StopWithAnOpenBatchWritesItFirst) {
  assign({0});
  publish(0, 2);
  read_everything();
  stop();  // before the partition-end: the batch is still open
  EXPECT_EQ(run(), ExitReason::stopped);
  expect_written_once(0, 0, 2);
  EXPECT_EQ(stored(0), 2);
}

TEST_F(PipelineTest, StopWhileAWriteWaitsBreaksItOffAfterTheShutdownTimeout) {
  act([&] { db.with([&] { return db.block = true; }); });
  assign({0});
  publish(0, 3);
  until([&] { return db.with([&] { return db.blocked == 1; }); });
  stop();
  const auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(run(), ExitReason::stopped);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
  EXPECT_EQ(db.commits, 0) << "nothing of the abandoned batch commits";
  EXPECT_EQ(stored(0), std::nullopt);
  EXPECT_EQ(pipeline().counters().batches, 0u);
}

TEST_F(PipelineTest, StopDuringARetryAbandonsTheBatch) {
  act([&] { db.with([&] { return db.fail_always = true; }); });
  assign({0});
  publish(0, 3);
  until([&] { return db.with([&] { return db.failures >= 2; }); });  // the stall began at the first
  bool healthy_while_retrying = true;
  act([&] { healthy_while_retrying = pipeline().healthy(); });
  stop();
  EXPECT_EQ(run(), ExitReason::stopped);
  EXPECT_FALSE(healthy_while_retrying);
  EXPECT_TRUE(pipeline().healthy()) << "the retry is over";
  EXPECT_EQ(db.commits, 0);
  EXPECT_GE(pipeline().counters().retries, 1u);
}

TEST_F(PipelineTest, RetryableFailuresAreRetriedAndTheBatchWrittenOnce) {
  act([&] { db.with([&] { return db.fail_writes = 2; }); });
  assign({0});
  publish(0, 3);
  until(stored_is(0, 3));
  stop();
  EXPECT_EQ(run(), ExitReason::stopped);
  expect_written_once(0, 0, 3);
  EXPECT_EQ(pipeline().counters().retries, 2u);
  EXPECT_EQ(db.commits, 1);
}

TEST_F(PipelineTest, DrainEndsIdleWithEverythingWritten) {
  config.processing.idle_timeout_seconds = 0.3;
  assign({0, 1});
  publish(0, 4);
  publish(1, 3);
  EXPECT_EQ(run(), ExitReason::idle);
  expect_written_once(0, 0, 4);
  expect_written_once(1, 0, 3);
  EXPECT_EQ(stored(0), 4);
  EXPECT_EQ(stored(1), 3);
  EXPECT_FALSE(topic.kafka_commits.empty()) << "committed offsets are passed on to the source";
}

TEST_F(PipelineTest, ARefusedMessageIsDeadLetteredAndFlushedBeforeItsOffsetCommits) {
  config.processing.idle_timeout_seconds = 0.3;
  assign({0});
  publish(0, 1);
  act([this] { topic.logs[0].push_back("{not json"); });
  publish(0, 1);
  EXPECT_EQ(run(), ExitReason::idle);
  expect_written_once(0, 0, 1);
  expect_written_once(0, 2, 3);
  EXPECT_EQ(stored(0), 3);
  db.with([&] {
    ASSERT_EQ(db.letters.size(), 1u);
    EXPECT_EQ(db.letters[0].stage, "decode");
    EXPECT_EQ(db.letters[0].original_message, "{not json");
    EXPECT_EQ(db.letters[0].source.offset, 1);
    EXPECT_EQ(db.letters[0].reasons.at(0).rule, "format.json");
    EXPECT_EQ(db.letters_flushed, 1u) << "the letter was waited for before offset 3 was committed";
  });
}

}  // namespace
}  // namespace strategy_consumer
