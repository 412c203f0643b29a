#pragma once
// A writer lane: its own sink (one database connection) and thread, and the partitions p with
// p % lanes == its index. A lane has at most one batch in flight (its offsets follow the last one's), so the
// lanes write in parallel while the consumer thread goes on reading, decoding and validating.
// A batch (Work) is open on the consumer thread, handed to the lane's thread, written there (the pipeline's
// write function: dead letters acknowledged, then rows and offsets in one transaction), then taken back by the
// consumer thread to be finished (offsets, counters, Kafka commit) or, when fenced, dropped.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "strategy_consumer/pipeline/batch.hpp"
#include "strategy_consumer/pipeline/batch_sink.hpp"
#include "strategy_consumer/pipeline/fold.hpp"

namespace strategy_consumer {

// The dead letters sent for one batch's messages, by position: counted when the batch commits.
struct BatchLetters {
  std::map<std::pair<TopicPartition, std::int64_t>, std::string> stage_of;  // a retried write sends none twice
  std::uint64_t last_seq = 0;  // the dead-letter producer's number of the last one: the batch waits for those

  std::size_t count() const { return stage_of.size(); }
  std::map<std::string, std::size_t> by_stage() const;
};

struct Work {
  std::uint64_t id = 0;
  Batch batch;
  BatchLetters letters;
  // At hand-off (consumer thread): what is written (prepare.hpp).
  std::vector<FoldedRow> rows;
  std::size_t duplicates = 0;
  std::vector<PartitionOffset> offsets;
  std::chrono::steady_clock::time_point handed_off;
  // By the writer.
  WriteResult result;
  std::optional<std::string> fenced;  // why, when another consumer moved the offsets
  std::exception_ptr error;           // Abandoned, or an Error that outlasted its retries

  // Forgets what was read from these partitions, letters included (they are reread, elsewhere or here).
  void drop_partitions(const std::set<TopicPartition>& partitions);
};

class WriterLane {
 public:
  // Writes one batch on the lane's thread; throws FencedError when fenced, anything else when it failed.
  using WriteFn = std::function<void(WriterLane&, Work&)>;

  WriterLane(std::size_t index, std::unique_ptr<BatchSink> sink);
  // stop(), if not done before.
  ~WriterLane();
  WriterLane(const WriterLane&) = delete;
  WriterLane& operator=(const WriterLane&) = delete;

  void start(WriteFn write);
  // Breaks off the sink's operation in progress, asks the thread to end and joins it. Idempotent.
  void stop();

  std::size_t index() const { return index_; }
  BatchSink& sink() { return *sink_; }

  // A batch handed off and not taken back yet.
  bool busy() const;
  // Hands a batch to the thread (the lane must not be busy).
  void hand(std::unique_ptr<Work> work);
  // The batch handed off, once written (or given up); with `wait`, waits for that, calling `while_waiting`
  // every 50 ms. Null when none was handed off, or (without `wait`) it is not written yet.
  std::unique_ptr<Work> take_written(bool wait, const std::function<void()>& while_waiting = {});
  // Bytes the batch in flight holds: 0 once it is written (memory_budget.hpp).
  std::size_t in_flight_bytes() const { return in_flight_bytes_.load(); }

  Work open;  // the batch being filled: consumer thread only

 private:
  void loop(const WriteFn& write, std::stop_token stop);

  const std::size_t index_;
  std::unique_ptr<BatchSink> sink_;
  mutable std::mutex mutex_;
  std::condition_variable_any changed_;
  std::unique_ptr<Work> job_;  // guarded by mutex_: in flight until done_
  bool done_ = false;
  std::atomic<std::size_t> in_flight_bytes_{0};
  std::jthread thread_;
};

}  // namespace strategy_consumer
