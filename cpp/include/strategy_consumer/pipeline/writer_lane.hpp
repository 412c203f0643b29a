#pragma once
// A writer lane: its own sink (one database connection) and thread, and the partitions p with
// p % lanes == its index. A lane takes up to kDepth batches at once: one in flight and the next one waiting,
// prepared while the first is written, so the writer starts it the moment the first commits (the database never
// waits for the consumer thread between two batches). A batch's offsets follow the one before it in its lane
// (Pipeline: the planned offsets), so when a batch is not committed (fenced, or failed), the batches handed off
// before the consumer thread took it back are not written either: they come back fenced (`skipped`), and their
// partitions are read again from the stored offsets. The lanes write in parallel while the consumer thread goes
// on reading, decoding and validating.
// A batch (Work) is open on the consumer thread, handed to the lane's thread, written there (the pipeline's
// write function: dead letters acknowledged, then rows and offsets in one transaction), then taken back by the
// consumer thread to be finished (offsets, counters, Kafka commit) or, when fenced, dropped. The consumer thread
// frees it: its payloads and records were allocated there, and freeing them on the writer's thread kept the
// writer from its next batch for some milliseconds.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
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
  std::optional<std::string> fenced;  // why, when another consumer moved the offsets (or it was skipped)
  bool skipped = false;               // not written: a batch before it in its lane was not committed
  std::exception_ptr error;           // Abandoned, or an Error that outlasted its retries
  std::uint64_t lane_seq = 0;         // the lane's number for it, in the order handed off

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

  static constexpr std::size_t kDepth = 2;  // batches handed off and not taken back, at most

  // A batch handed off and not taken back yet.
  bool busy() const;
  // Fewer than kDepth batches handed off and not taken back.
  bool has_room() const;
  // Hands a batch to the thread (the lane must have room). It is written after the ones before it.
  void hand(std::unique_ptr<Work> work);
  // The oldest batch handed off, once written (or given up, or skipped); with `wait`, waits for that, calling
  // `while_waiting` every 50 ms. Null when none was handed off, or (without `wait`) it is not written yet.
  // Taking back a batch that was not committed makes every batch handed off before now skipped.
  std::unique_ptr<Work> take_written(bool wait, const std::function<void()>& while_waiting = {});
  // Bytes the batches handed off and not taken back hold (memory_budget.hpp).
  std::size_t in_flight_bytes() const { return in_flight_bytes_.load(); }

  Work open;  // the batch being filled: consumer thread only

 private:
  void loop(const WriteFn& write, std::stop_token stop);
  // Whether a batch before jobs_[position] was not committed and the consumer thread has not taken it back yet
  // (so it prepared jobs_[position] against the offsets that batch would have written). Under mutex_.
  bool behind_uncommitted(std::size_t position) const;

  const std::size_t index_;
  std::unique_ptr<BatchSink> sink_;
  mutable std::mutex mutex_;
  std::condition_variable_any changed_;
  // Guarded by mutex_: the batches handed off and not taken back, oldest first; the first `written_` of them
  // are written (or given up, or skipped).
  std::deque<std::unique_ptr<Work>> jobs_;
  std::size_t written_ = 0;
  std::uint64_t handed_seq_ = 0;    // lane_seq of the last batch handed off
  // Batches with lane_seq up to this one are skipped: handed off before a batch that was not committed was
  // taken back.
  std::uint64_t skip_through_ = 0;
  std::atomic<std::size_t> in_flight_bytes_{0};
  std::jthread thread_;
};

}  // namespace strategy_consumer
