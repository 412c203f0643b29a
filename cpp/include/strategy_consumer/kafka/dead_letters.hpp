#pragma once
// Dead letters: a message the consumer will not store goes to the dead-letter topic, as JSON
//   {original_message, error, timestamp, stage, reasons, source_topic, source_partition, source_offset,
//    message_format, source_timestamp_ms}
// with the source and the stage also as Kafka headers (dlq.source.topic, dlq.source.partition,
// dlq.source.offset, dlq.stage, dlq.error). A value that is not UTF-8 is kept base64-encoded with
// original_message_encoding "base64", as is every value read as protobuf. message_format says which format the
// message was read as ("json" or "protobuf", --message_format; absent when unknown); source_timestamp_ms is the
// original message's Kafka timestamp (absent when it had none), so a replay orders re-discoveries as the main
// path does (service/replay.hpp). The producer is idempotent with acks=all; flush() waits for every letter to be
// acknowledged, and the pipeline calls it before committing past them.
//
// No message can stall the letters: the reasons are bounded (reason.hpp) and a letter is built within a byte
// budget (the smaller of kMaxDeadLetterBytes and the producer's message.max.bytes less its headers), the
// original message cut last and the cut said in the letter. When the topic refuses a letter for good (too
// large, not authorised, a record it calls invalid), a minimal letter takes its place: source, stage, the
// refusal, no original. When that is refused too, the letter is undeliverable: logged, reported, and counted
// as acknowledged, so it holds back no offset. A fatal error of the idempotent producer replaces the
// producer (librdkafka's remedy) and sends again what was not acknowledged.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "strategy_consumer/model/config.hpp"
#include "strategy_consumer/model/dead_letter.hpp"
#include "strategy_consumer/model/strategy_record.hpp"
#include "strategy_consumer/model/reason.hpp"
#include "strategy_consumer/pipeline/dead_letter_sink.hpp"

namespace strategy_consumer {

// Real brokers refuse records over message.max.bytes (1 MB by default): a letter stays below this.
inline constexpr std::size_t kMaxDeadLetterBytes = 900 * 1024;

// The JSON value of a dead letter (pure; `now_us` is the timestamp written), at most `max_bytes` long: over
// it, the reasons are cut to the first one (and "reasons.more"), then the original message is cut
// (original_message_truncated, original_message_bytes). A budget too small even for that gives the minimal letter.
std::string encode_dead_letter(const DeadLetter& letter, std::int64_t now_us,
                               std::size_t max_bytes = kMaxDeadLetterBytes);
// The minimal letter (pure), a few hundred bytes: {error, timestamp, stage, source_topic, source_partition,
// source_offset, original_message_bytes, original_message_omitted: true, refused: <why the full letter was
// refused>}.
// `original_bytes` is the original's size when `letter` no longer holds it (npos: its original_message's).
std::string encode_minimal_dead_letter(const DeadLetter& letter, std::string_view refusal, std::int64_t now_us,
                                       std::size_t original_bytes = std::string::npos);

// A letter the dead-letter topic refused for good.
struct DeadLetterRefusal {
  bool delivered_minimal = false;  // true: the minimal letter was delivered instead; false: nothing was
  std::string stage;
  SourcePosition source;
  std::string refusal;  // librdkafka's error text
};

class DlqProducer : public DeadLetterSink {
 public:
  // `on_refused` (optional) hears of every refused letter, on the thread that polls the producer.
  explicit DlqProducer(const KafkaConfig& config, std::function<void(const DeadLetterRefusal&)> on_refused = {});
  ~DlqProducer() override;
  DlqProducer(const DlqProducer&) = delete;
  DlqProducer& operator=(const DlqProducer&) = delete;

  // Sends a letter (any thread); returns its number, in the order of sending.
  std::uint64_t send(const DeadLetter& letter) override;
  // Waits until every letter numbered up to `up_to` (default: all sent) is acknowledged, or refused for good
  // as above: letters sent later, for other batches, are not waited for. Throws KafkaError (retryable) when one
  // failed otherwise or the timeout passed; the failed letters are kept and sent again by the next flush.
  void flush(std::chrono::milliseconds timeout, std::uint64_t up_to = UINT64_MAX) override;
  // Letters sent and not acknowledged yet.
  std::size_t pending() const;
  // The largest letter value this producer sends (the budget of encode_dead_letter without headers).
  std::size_t letter_budget() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace strategy_consumer
