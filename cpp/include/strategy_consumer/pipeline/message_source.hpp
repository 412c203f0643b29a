#pragma once
// What the pipeline reads from: messages per partition, the partitions it holds, where it reads next. The one
// implementation in the service is kafka/KafkaSource (librdkafka); the pipeline's tests use an in-memory double.
// Rebalance callbacks (RebalanceListener) run on the thread that calls poll() or close(), from inside them.
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "strategy_consumer/model/strategy_record.hpp"
#include "strategy_consumer/pipeline/batch.hpp"
#include "strategy_consumer/pipeline/batch_sink.hpp"

namespace strategy_consumer {

class RebalanceListener {
 public:
  virtual ~RebalanceListener() = default;
  // Partitions just assigned; returns the next offset to read of those that have one stored.
  virtual std::map<std::int32_t, std::int64_t> on_assigned(const std::string& topic,
                                                           const std::vector<std::int32_t>& partitions) = 0;
  virtual void on_revoked(const std::set<TopicPartition>& partitions) = 0;
  // librdkafka's statistics JSON, every statistics.interval.ms, from inside poll().
  virtual void on_statistics(std::string_view /*json*/) {}
};

struct SourceMessage {
  SourcePosition source;
  std::string payload;
};

class MessageSource {
 public:
  virtual ~MessageSource() = default;
  // The next message, or nullopt after `timeout` (or after a partition-end or rebalance event).
  // Throws Error (KafkaError) for fatal consumer errors.
  virtual std::optional<SourceMessage> poll(std::chrono::milliseconds timeout) = 0;
  // True when every assigned partition has been read to its end (and at least one is assigned).
  virtual bool caught_up() const = 0;
  // The last poll timed out: everything fetched so far has been read (more may be on its way).
  virtual bool queue_empty() const = 0;
  virtual std::set<TopicPartition> assignment() const = 0;
  // Records offsets already made durable in the sink (for lag tools only: the sink's offsets are the truth).
  virtual void commit(const std::vector<PartitionOffset>& offsets) = 0;
  // Moves the read position of these partitions (those still assigned); a negative next_offset means "no stored
  // offset": the partition restarts where a new one would. Throws a retryable Error when a seek failed.
  virtual void seek(const std::vector<PartitionOffset>& positions) = 0;
  // Gives the assignment up (revoking it through the listener) and closes; idempotent.
  virtual void close() = 0;
};

}  // namespace strategy_consumer
