#pragma once
// The Kafka side of the pipeline: a librdkafka consumer, auto-commit off, positions taken from PostgreSQL. On
// assignment it asks the listener for the stored offsets and starts each partition there (a partition never
// stored starts at the offset its group committed in Kafka, as the service this one replaces left it, else at
// auto.offset.reset). Offsets are committed to Kafka after the database
// transaction, for lag tools only: the offsets table is the truth.
// Two ways to get partitions (KafkaConfig::assignment):
//   - group: subscribes as a member of the consumer group with the cooperative-sticky assignor, so a rebalance
//     revokes only the partitions that move. Joining a new group costs the broker's initial rebalance delay.
//   - direct: reads the topic's metadata on the first poll and assigns itself every partition (rd_kafka_assign,
//     as Flink's Kafka source does), without joining: a drain job starts reading at once. A second reader of the
//     same partitions (a service in the group, another job) is harmless: the offsets table fences whichever
//     commits second, and it rereads from the stored offsets. close() revokes them through the listener, as
//     leaving a group would.
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "strategy_consumer/model/config.hpp"
#include "strategy_consumer/pipeline/batch.hpp"
#include "strategy_consumer/pipeline/message_source.hpp"

namespace strategy_consumer {

// What the pipeline sees of it: MessageSource (pipeline/message_source.hpp).
using KafkaMessage = SourceMessage;

class KafkaSource : public MessageSource {
 public:
  // `direct`: assign every partition of config.topic on the first poll instead of joining the group.
  KafkaSource(const KafkaConfig& config, RebalanceListener& listener, bool direct = false);
  ~KafkaSource() override;
  KafkaSource(const KafkaSource&) = delete;
  KafkaSource& operator=(const KafkaSource&) = delete;

  // The next message, or nullopt after `timeout` (or after a partition-end or rebalance event).
  // Throws KafkaError for fatal consumer errors.
  std::optional<KafkaMessage> poll(std::chrono::milliseconds timeout) override;

  // True when every assigned partition has been read to its end (and at least one is assigned).
  bool caught_up() const override;
  // The last poll timed out: everything fetched so far has been read (more may be on its way from the brokers).
  bool queue_empty() const override;
  bool has_assignment() const;
  std::set<TopicPartition> assignment() const override;

  // Asynchronous commit to Kafka of offsets already made durable in PostgreSQL.
  void commit(const std::vector<PartitionOffset>& offsets) override;
  // Moves the read position of these partitions (those still assigned); the next poll reads from there.
  // A negative next_offset means "no stored offset": the partition restarts at auto_offset_reset. Throws
  // KafkaError (retryable) naming each partition whose seek failed or timed out: call it again.
  void seek(const std::vector<PartitionOffset>& positions) override;
  // Leaves the group (revoking the assignment through the listener) and closes the consumer; after 5 s without
  // an answer from the group's coordinator it closes without it.
  void close() override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace strategy_consumer
