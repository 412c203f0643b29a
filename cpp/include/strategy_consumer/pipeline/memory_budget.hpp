#pragma once
// Memory bounded in bytes, not messages. What the consumer holds for messages is counted in bytes:
//   - each valid message of an open or in-flight batch: its raw payload (kept while a dead letter could still
//     need it: until its batch is written) and an estimate of its decoded record on the heap;
//   - each dead letter of such a batch (its copy waits in the producer's queue until the batch commits).
// A batch is written once it holds --max_batch_bytes, and the consumer stops polling Kafka while everything it
// holds reaches --max_buffered_bytes (librdkafka then stops fetching once its own queue is full:
// queued.max.messages.kbytes). A written batch gives its messages back when the consumer thread takes it back,
// at its next poll. So the memory of a drain stays under --max_buffered_bytes plus a constant: one message over
// each budget, librdkafka's queue and fetch buffers, and the process itself (README: Configuration, Benchmarks).
#include <cstddef>

#include <nlohmann/json.hpp>

#include "strategy_consumer/model/strategy_record.hpp"

namespace strategy_consumer {

// An estimate of the heap a JSON value holds, itself included (nlohmann's map nodes, strings, vectors).
std::size_t json_heap_bytes(const nlohmann::json& value);
// An estimate of what a decoded record holds, itself included.
std::size_t record_bytes(const StrategyRecord& record);

struct MemoryBudget {
  std::size_t max_batch_bytes = 16u << 20;      // --max_batch_bytes
  std::size_t max_buffered_bytes = 128u << 20;  // --max_buffered_bytes: open and in-flight batches together

  bool batch_full(std::size_t batch_bytes) const { return batch_bytes >= max_batch_bytes; }
  bool over(std::size_t held_bytes) const { return held_bytes >= max_buffered_bytes; }
};

}  // namespace strategy_consumer
