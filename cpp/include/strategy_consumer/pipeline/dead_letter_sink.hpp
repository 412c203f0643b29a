#pragma once
// Where the pipeline sends what it will not store. The service's is kafka/DlqProducer (the dead-letter topic);
// a replay of dead letters (service/replay.hpp) counts them instead; the pipeline's tests keep them in memory.
// The pipeline flushes a batch's letters before its offsets commit: a message is never passed over unrecorded.
#include <chrono>
#include <cstdint>

#include "strategy_consumer/model/dead_letter.hpp"

namespace strategy_consumer {

class DeadLetterSink {
 public:
  virtual ~DeadLetterSink() = default;
  // Sends a letter (any thread); returns its number, in the order of sending (from 1).
  virtual std::uint64_t send(const DeadLetter& letter) = 0;
  // Waits until every letter numbered up to `up_to` is safe. Throws a retryable Error when one failed or the
  // timeout passed; what failed is sent again by the next flush.
  virtual void flush(std::chrono::milliseconds timeout, std::uint64_t up_to = UINT64_MAX) = 0;
};

}  // namespace strategy_consumer
