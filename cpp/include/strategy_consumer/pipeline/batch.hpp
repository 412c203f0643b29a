#pragma once
// A batch: the decoded records read since the last commit, and how far each partition has been read
// (valid or not: a dead-lettered message advances its partition like a stored one).
// Pure data and free functions; no I/O.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "strategy_consumer/model/strategy_record.hpp"

namespace strategy_consumer {

using TopicPartition = std::pair<std::string, std::int32_t>;

struct BatchEntry {
  StrategyRecord record;
  SourcePosition source;
  std::string payload;  // the message as read, for a dead letter should PostgreSQL refuse the row
};

class Batch {
 public:
  void add(StrategyRecord record, const SourcePosition& source, std::string payload = {});
  // A message that will not be stored (dead-lettered): its offset counts, and `held_bytes` (its dead letter,
  // waiting in the producer's queue until the batch commits).
  void skip(const SourcePosition& source, std::size_t held_bytes = 0);
  // Forgets everything read from these partitions (they were revoked; the new owner rereads them).
  void drop_partitions(const std::set<TopicPartition>& partitions);
  void clear();

  const std::vector<BatchEntry>& entries() const { return entries_; }
  // Offset of the next message to read, per partition touched by the batch.
  const std::map<TopicPartition, std::int64_t>& next_offsets() const { return next_offsets_; }
  // Offset of the first message read into the batch, per partition (with next_offsets: the range, for logs).
  const std::map<TopicPartition, std::int64_t>& first_offsets() const { return first_offsets_; }
  std::size_t size() const { return entries_.size(); }
  // Messages read into the batch, stored or skipped.
  std::size_t message_count() const { return message_count_; }
  bool empty() const { return message_count_ == 0; }
  // Bytes held for the batch's messages (memory_budget.hpp): payloads, decoded records, dead letters.
  std::size_t bytes() const { return bytes_; }
  std::chrono::steady_clock::time_point started() const { return started_; }

 private:
  void advance(const SourcePosition& source);

  std::vector<BatchEntry> entries_;
  std::map<TopicPartition, std::int64_t> next_offsets_;
  std::map<TopicPartition, std::int64_t> first_offsets_;
  std::map<TopicPartition, std::size_t> messages_per_partition_;
  std::map<TopicPartition, std::size_t> bytes_per_partition_;
  std::size_t message_count_ = 0;
  std::size_t bytes_ = 0;
  std::chrono::steady_clock::time_point started_{};
};

// When a batch is written: when it is full, when it is older than the timeout, or as soon as the consumer has
// caught up: read every assigned partition to its end, or everything fetched so far (a quiet topic sees its rows
// at once, not after the timeout, and a steady stream waits one fetch, not a full batch).
// Also when it holds --max_batch_bytes (memory_budget.hpp).
struct BatchPolicy {
  std::size_t max_messages = 1000;
  std::size_t max_bytes = 16u << 20;
  std::chrono::milliseconds max_age{30000};

  bool full(std::size_t messages, std::size_t bytes) const { return messages >= max_messages || bytes >= max_bytes; }
  bool should_flush(std::size_t messages, std::size_t bytes, std::chrono::steady_clock::duration age,
                    bool caught_up) const {
    if (messages == 0) return false;
    return full(messages, bytes) || age >= max_age || caught_up;
  }
};

}  // namespace strategy_consumer
