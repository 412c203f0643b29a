#pragma once
// The pipeline: Kafka source -> decode -> batch -> PostgreSQL sink (rows and offsets in one transaction)
// -> offsets committed to Kafka; rejected messages -> dead-letter topic, flushed before their offsets commit.
// Runs on the calling thread until stop() or, in drain mode, until idle or out of time.
// It reads through a MessageSource, writes through BatchSinks and sends what it refuses to a DeadLetterSink
// (message_source.hpp, batch_sink.hpp, dead_letter_sink.hpp): the service gives it kafka/KafkaSource,
// postgres/PostgresSink and kafka/DlqProducer (service/pipeline_parts.hpp), a replay of dead letters its own
// source and letter counter (service/replay.hpp), tests in-memory doubles.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>

#include "strategy_consumer/model/config.hpp"
#include "strategy_consumer/pipeline/stall_tracker.hpp"

namespace strategy_consumer {

class RuleEngine;  // rule_engine.hpp
class BatchSink;
class DeadLetterSink;
class MessageSource;
class PipelineObserver;  // metrics.hpp
class RebalanceListener;

// What the pipeline reads from and writes to.
struct PipelineParts {
  // A sink of its own for the consumer thread (schema, stored offsets) and for each writer lane.
  std::function<std::unique_ptr<BatchSink>()> make_sink;
  // Once, when run() has the schema ready; the listener hears of rebalances from inside poll() and close().
  std::function<std::unique_ptr<MessageSource>(RebalanceListener& listener)> make_source;
  // Once, when run() has the schema ready: where what is not stored goes. The observer hears of letters
  // refused for good (PipelineObserver::dead_letter_refused).
  std::function<std::unique_ptr<DeadLetterSink>(PipelineObserver& observer)> make_dead_letters;
};

struct PipelineCounters {
  std::atomic<std::uint64_t> messages{0};
  std::atomic<std::uint64_t> stored_new{0};
  std::atomic<std::uint64_t> stored_updated{0};
  std::atomic<std::uint64_t> outdated{0};  // re-discoveries older than the stored one: not applied
  std::atomic<std::uint64_t> duplicate_in_batch{0};
  std::atomic<std::uint64_t> dead_lettered{0};
  std::atomic<std::uint64_t> batches{0};
  std::atomic<std::uint64_t> fenced_batches{0};
  std::atomic<std::uint64_t> retries{0};
};

enum class ExitReason { stopped, idle, time_limit };

class Pipeline {
 public:
  // `observer` (optional; must outlive the pipeline) hears of heartbeats, committed batches, dead letters,
  // retries and Kafka statistics: the metrics and the HTTP probes (metrics.hpp, http.hpp).
  // Reads from Kafka and writes to PostgreSQL as `config` says (defined in service/pipeline_parts.cpp).
  explicit Pipeline(Config config, PipelineObserver* observer = nullptr);
  Pipeline(Config config, PipelineParts parts, PipelineObserver* observer = nullptr);
  // Shuts down in one order (writers stopped, source closed, dead letters flushed, sinks closed).
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // Connects, prepares the schema, consumes. Returns why it ended; throws Error when an operation failed
  // after its retries (nothing past the failure was committed).
  ExitReason run();
  // Safe from a signal handler or another thread: the loop ends after the current batch is committed.
  void stop() noexcept;
  // Analyst rules (optional; set before run()): each batch is evaluated once before it is written, what they
  // refuse is dead-lettered with stage rule:<name>; between batches the engine may reload.
  void set_rule_engine(std::shared_ptr<RuleEngine> rules);

  const PipelineCounters& counters() const;
  // False while an operation is being retried or a write is hung (stalled), true once that is over.
  bool healthy() const;
  // What stalls it (stall_tracker.hpp): the reason, and whether a write has been in flight for longer than
  // --write_stall_seconds (hung: /health fails too). Any thread.
  StallState stall() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace strategy_consumer
