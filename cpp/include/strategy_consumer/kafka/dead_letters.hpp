#pragma once
// Dead letters: a message the consumer will not store goes to the dead-letter topic, as JSON
//   {original_message, error, timestamp, stage, reasons, source_topic, source_partition, source_offset,
//    message_format}
// with the source and the stage also as Kafka headers (dlq.source.topic, dlq.source.partition,
// dlq.source.offset, dlq.stage, dlq.error). A value that is not UTF-8 is kept base64-encoded with
// original_message_encoding "base64", as is every value read as protobuf. message_format says which format the
// message was read as ("json" or "protobuf", --message_format; absent when unknown). The producer is idempotent with acks=all; flush() waits for every
// letter to be acknowledged, and the pipeline calls it before committing past them.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "strategy_consumer/model/config.hpp"
#include "strategy_consumer/model/strategy_record.hpp"
#include "strategy_consumer/model/reason.hpp"

namespace strategy_consumer {

struct DeadLetter {
  std::string original_message;
  std::string stage;  // decode, validate, rule:<name>, database
  Reasons reasons;
  SourcePosition source;
  std::string message_format;  // "json" or "protobuf": what decoding tried; "" to leave it out
};

// The JSON value of a dead letter (pure; `now_us` is the timestamp written).
std::string encode_dead_letter(const DeadLetter& letter, std::int64_t now_us);

class DlqProducer {
 public:
  explicit DlqProducer(const KafkaConfig& config);
  ~DlqProducer();
  DlqProducer(const DlqProducer&) = delete;
  DlqProducer& operator=(const DlqProducer&) = delete;

  // Sends a letter (any thread); returns its number, in the order of sending.
  std::uint64_t send(const DeadLetter& letter);
  // Waits until every letter numbered up to `up_to` (default: all sent) is acknowledged: letters sent later,
  // for other batches, are not waited for. Throws KafkaError (retryable) when one failed or the timeout passed;
  // the failed letters are kept and sent again by the next flush.
  void flush(std::chrono::milliseconds timeout, std::uint64_t up_to = UINT64_MAX);
  // Letters sent and not acknowledged yet.
  std::size_t pending() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace strategy_consumer
