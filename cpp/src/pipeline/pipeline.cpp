#include "strategy_consumer/pipeline/pipeline.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <exception>
#include <map>
#include <optional>
#include <set>
#include <stop_token>
#include <thread>

#include "strategy_consumer/message/decoding.hpp"
#include "strategy_consumer/message/strategy_inspector.hpp"
#include "strategy_consumer/model/errors.hpp"
#include "strategy_consumer/model/timestamp.hpp"
#include "strategy_consumer/ops/logging.hpp"
#include "strategy_consumer/ops/metrics.hpp"
#include "strategy_consumer/pipeline/batch.hpp"
#include "strategy_consumer/pipeline/batch_report.hpp"
#include "strategy_consumer/pipeline/batch_sink.hpp"
#include "strategy_consumer/pipeline/broker_outage.hpp"
#include "strategy_consumer/pipeline/dead_letter_sink.hpp"
#include "strategy_consumer/pipeline/memory_budget.hpp"
#include "strategy_consumer/pipeline/message_source.hpp"
#include "strategy_consumer/pipeline/prepare.hpp"
#include "strategy_consumer/pipeline/retry.hpp"
#include "strategy_consumer/pipeline/shutdown_watchdog.hpp"
#include "strategy_consumer/pipeline/stall_tracker.hpp"
#include "strategy_consumer/pipeline/writer_lane.hpp"
#include "strategy_consumer/rules/rule_engine.hpp"

namespace strategy_consumer {
namespace {

using Clock = std::chrono::steady_clock;

PipelineObserver kNoObserver;

// How long one attempt waits for the dead letters to be acknowledged, and the slices it waits in: a stop
// request is never kept waiting for more than a slice by an unreachable dead-letter topic.
constexpr std::chrono::milliseconds kLetterWait{10000};
constexpr std::chrono::milliseconds kLetterSlice{250};

// How long an open batch waits for another message once everything fetched has been read.
constexpr std::chrono::milliseconds kLinger{5};

std::chrono::milliseconds seconds_to_ms(double s) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(s * 1000));
}

}  // namespace

struct Pipeline::Impl : RebalanceListener {
  Config config;
  PipelineParts parts;
  PipelineObserver* observer;  // metrics and probes; never null
  PipelineCounters counters;
  std::atomic<bool> stop_requested{false};
  // Retries and writes in flight, from every thread: Pipeline::healthy(), the probes and the `stalled` gauge.
  StallTracker stalls;
  std::thread::id consumer_thread;  // run()'s: only its waits are heartbeats
  Retrier retrier;
  StrategyInspector inspector;  // decode + built-in validation, the same code as the Python StrategyInspector
  BatchPolicy batch_policy;
  MemoryBudget memory;
  std::uint64_t batch_id = 0;
  // The stored next offset of each assigned partition, as this consumer last read or wrote it (the fence).
  // Consumer thread only.
  ExpectedOffsets expected;
  // Of a partition whose last batch handed off is not taken back yet: the next offset that batch writes, and
  // its id. The batch after it in the lane expects that offset (writer_lane.hpp). Consumer thread only.
  std::map<TopicPartition, std::pair<std::int64_t, std::uint64_t>> planned;
  std::atomic<std::size_t> expected_partitions{0};  // expected.size(), for heartbeats from any thread
  std::shared_ptr<RuleEngine> rules;  // analyst rules, optional
  BrokerOutage brokers;  // no Kafka broker up: stalled; a drain job gives up after the retrier's patience
  // The parts, released in shutdown()'s order, not in the order of declaration.
  std::unique_ptr<BatchSink> sink;  // the consumer thread's: schema and stored offsets
  std::unique_ptr<DeadLetterSink> dlq;
  std::vector<std::unique_ptr<WriterLane>> lanes;
  std::unique_ptr<MessageSource> source;

  Impl(Config c, PipelineParts p, PipelineObserver* o)
      : config(std::move(c)),
        parts(std::move(p)),
        observer(o ? o : &kNoObserver),
        stalls(std::chrono::duration_cast<Clock::duration>(
                   std::chrono::duration<double>(config.processing.write_stall_seconds)),
               [this](const StallState& state) { observer->stall_changed(state.stalled, state.reason); }),
        retrier({.policy = RetryPolicy{},
                 .max_retries = config.processing.max_retries,
                 .give_up = config.processing.drain_mode()},
                stop_requested, stalls,
                {.on_retry =
                     [this](const char* what) {
                       ++counters.retries;
                       observer->retrying(what);
                     },
                 // The consumer thread waiting is alive; a writer's wait says nothing about the consumer thread.
                 .while_waiting =
                     [this] {
                       if (std::this_thread::get_id() == consumer_thread) observer->heartbeat(expected_partitions);
                     }}),
        inspector(Catalog::with_overrides(config.processing.strategy_catalog),
                  ValidatorOptions{.allow_unknown_strategy_types = config.processing.allow_unknown_strategy_types},
                  DecodeOptions{.max_message_bytes = config.processing.max_message_bytes,
                                .format = parse_message_format(config.processing.message_format),
                                .parameters_layout = parse_parameters_layout(config.processing.parameters_layout),
                                .hash_scheme = parse_hash_scheme(config.processing.strategy_hash_scheme)}),
        brokers(stalls, retrier.patience(), config.processing.drain_mode(),
                [this] { observer->retrying("reach the Kafka brokers"); }),
        sink(parts.make_sink()) {
    batch_policy.max_messages = static_cast<std::size_t>(config.processing.batch_size);
    batch_policy.max_bytes = config.processing.max_batch_bytes;
    memory.max_batch_bytes = config.processing.max_batch_bytes;
    memory.max_buffered_bytes = config.processing.max_buffered_bytes;
    batch_policy.max_age = seconds_to_ms(config.processing.batch_timeout_seconds);
  }

  ~Impl() { shutdown(); }

  // The shutdown order, whatever way run() was left: (1) the writers give up (one retrying stops, one blocked in
  // the database is broken off) and are joined: nothing more commits; (2) the source closes, its revocation
  // dropping the open batches while the lanes are still there; (3) the lanes go; (4) the dead-letter producer
  // delivers what it holds; (5) the consumer thread's sink. The pipeline does not run again.
  void shutdown() noexcept {
    stop_writers();
    close_source();
    lanes.clear();
    dlq.reset();
    sink.reset();
  }

  void stop_writers() noexcept {
    stop_requested = true;
    for (auto& lane : lanes) lane->stop();
  }

  void close_source() noexcept {
    if (!source) return;
    try {
      source->close();
    } catch (const std::exception& e) {
      spdlog::warn("closing the source: {}", e.what());
    }
    source.reset();
  }

  template <class F>
  auto retrying(const char* what, F&& op) -> decltype(op()) {
    return retrier.run(what, std::forward<F>(op));
  }

  // Waits until the batch's dead letters (and those sent before them) are acknowledged; throws KafkaError
  // (retryable) after kLetterWait, or sooner once a stop is requested.
  void flush_letters(const BatchLetters& letters) {
    if (letters.last_seq == 0) return;
    const auto until = Clock::now() + kLetterWait;
    for (;;) {
      try {
        dlq->flush(kLetterSlice, letters.last_seq);
        return;
      } catch (const KafkaError&) {
        if (stop_requested || Clock::now() >= until) throw;
      }
    }
  }

  // ---- rebalances and outages (the source calls these from inside poll() and close())

  std::map<std::int32_t, std::int64_t> on_assigned(const std::string& topic,
                                                   const std::vector<std::int32_t>& partitions) override {
    // A batch of these partitions still being written (they were revoked and come back) lands first: read
    // before it, the stored offsets would make this consumer resume behind it and apply it again.
    for (auto& lane : lanes) drain(*lane);
    auto stored = retrying("load stored offsets", [&] { return sink->load_offsets(topic, partitions); });
    for (auto p : partitions) {
      auto it = stored.find(p);
      expected[{topic, p}] = it == stored.end() ? std::nullopt : std::optional<std::int64_t>(it->second);
    }
    expected_partitions = expected.size();
    return stored;
  }

  void on_revoked(const std::set<TopicPartition>& partitions) override {
    // Uncommitted work of these partitions is abandoned: their new owner resumes from the stored offsets. A
    // batch of theirs already being written commits only if the stored offsets are still the ones it expects.
    const auto before = open_messages();
    for (auto& lane : lanes) lane->open.drop_partitions(partitions);
    if (before != open_messages()) {
      spdlog::info("abandoned {} uncommitted message(s) of revoked partitions", before - open_messages());
    }
    for (const auto& tp : partitions) expected.erase(tp);
    expected_partitions = expected.size();
  }

  void on_statistics(std::string_view json) override {
    observer->kafka_statistics(json);
    brokers.observed(parse_kafka_statistics(json).brokers_up > 0, Clock::now());
  }

  // After a fence: the stored offsets are the truth. Read them again and continue from there; if the
  // partitions belong to another consumer now, the coming rebalance takes them away.
  void resume_from_stored(const std::map<TopicPartition, std::int64_t>& partitions) {
    std::map<std::string, std::vector<std::int32_t>> by_topic;
    for (const auto& [tp, _] : partitions) by_topic[tp.first].push_back(tp.second);
    std::vector<PartitionOffset> positions;
    for (const auto& [topic, list] : by_topic) {
      auto stored = retrying("load stored offsets", [&] { return sink->load_offsets(topic, list); });
      for (auto p : list) {
        auto it = stored.find(p);
        const bool known = it != stored.end();
        if (expected.count({topic, p})) expected[{topic, p}] = known ? std::optional(it->second) : std::nullopt;
        positions.push_back({topic, p, known ? it->second : -1, std::nullopt});
      }
    }
    retrying("seek to the stored offsets", [&] { source->seek(positions); });
  }

  // ---- the open batches

  std::size_t open_messages() const {
    std::size_t n = 0;
    for (const auto& lane : lanes) n += lane->open.batch.message_count();
    return n;
  }

  // Bytes held for messages by the open batches and the batches being written (memory_budget.hpp).
  std::size_t held_bytes() const {
    std::size_t n = 0;
    for (const auto& lane : lanes) n += lane->open.batch.bytes() + lane->in_flight_bytes();
    return n;
  }

  // Over --max_buffered_bytes the consumer does not poll (librdkafka stops fetching once its queue is full):
  // open batches whose writer is free are handed off, else it waits for a writer to give its batch back.
  void relieve_memory() {
    for (auto& lane : lanes) {
      collect(*lane, /*wait=*/false);
      if (!lane->open.batch.empty() && !lane->busy()) hand_off(*lane);
    }
    if (!memory.over(held_bytes())) return;
    for (auto& lane : lanes) {
      if (!lane->busy()) continue;
      collect(*lane, /*wait=*/true);
      return;
    }
  }

  WriterLane& lane_of(std::int32_t partition) {
    return *lanes[static_cast<std::size_t>(partition) % lanes.size()];
  }

  // Any thread: `work` is the consumer thread's open batch, or a batch its writer owns.
  void dead_letter(Work& work, const std::string& payload, const std::string& stage, Reasons reasons,
                   const SourcePosition& source_position, const char* message_format = "") {
    const auto key = std::make_pair(TopicPartition{source_position.topic, source_position.partition},
                                    source_position.offset);
    if (!work.letters.stage_of.emplace(key, stage).second) return;  // already sent (a retried write)
    LogFields fields = message_log_fields(source_position);
    fields.emplace_back("stage", stage);
    LogScope log_scope(std::move(fields));
    spdlog::warn("dead-lettering {}[{}]@{} at stage {}: {}", source_position.topic, source_position.partition,
                 source_position.offset, stage, reasons_to_text(reasons));
    work.letters.last_seq = dlq->send(DeadLetter{payload, stage, std::move(reasons), source_position, message_format});
  }

  void process(SourceMessage&& message) {
    ++counters.messages;
    Work& open = lane_of(message.source.partition).open;
    if (open.id == 0) open.id = ++batch_id;  // numbered as they open: a message's log names its batch
    Inspection inspection = inspector.inspect(message.payload, now_us());
    if (inspection.ok()) {
      if (message.source.timestamp_ms >= 0) inspection.record.message_timestamp_ms = message.source.timestamp_ms;
      open.batch.add(std::move(inspection.record), message.source, std::move(message.payload));
    } else {
      // The batch this message's offset will commit with; its strategy_hash when it was decoded.
      LogScope log_scope({{"batch_id", open.id}});
      std::optional<LogScope> hash_scope;
      if (!inspection.record.strategy_hash.empty()) {
        hash_scope.emplace(LogFields{{"strategy_hash", inspection.record.strategy_hash}});
      }
      dead_letter(open, message.payload, inspection.stage, std::move(inspection.reasons), message.source,
                  inspection.message_format);
      open.batch.skip(message.source, message.payload.size());  // its letter waits in the producer's queue
    }
  }

  // The rules see every message of the batch, in one call, before duplicates fold: each gets its own
  // verdict whatever batch it lands in. What they refuse is dead-lettered and takes no part in the fold (its
  // offset still commits with the batch). Returns one flag per entry: refused.
  std::vector<bool> apply_rules(Work& work) {
    const auto& entries = work.batch.entries();
    std::vector<const StrategyRecord*> records;
    records.reserve(entries.size());
    for (const auto& e : entries) records.push_back(&e.record);
    auto outcomes = rules->evaluate(records);
    observer->rules_evaluated(rules->stats());
    std::vector<bool> refused(entries.size(), false);
    for (std::size_t i = 0; i < entries.size() && i < outcomes.size(); ++i) {
      if (!outcomes[i].rejected()) continue;
      const std::string stage = outcomes[i].stage();
      dead_letter(work, entries[i].payload, stage, std::move(outcomes[i].rejections), entries[i].source,
                  entries[i].record.message_format);
      refused[i] = true;
    }
    return refused;
  }

  // ---- the writers

  // The writer's part of a batch (on its lane's thread): its dead letters acknowledged, then rows and offsets
  // in one transaction.
  void write(WriterLane& lane, Work& work) {
    LogScope log_scope(batch_log_fields(work.id, work.batch));
    const auto& entries = work.batch.entries();
    // Letters first: an offset is never committed before the dead letter of its message is acknowledged.
    retrying("deliver dead letters", [&] { flush_letters(work.letters); });
    const auto records = row_records(work.rows, entries);
    const auto messages = row_messages(work.rows, entries);  // the score history's
    // A refused row: every message folded into it is dead-lettered, none is lost.
    auto on_rejected = [&](const std::vector<RowRejection>& rejected) {
      for (const auto& r : rejected) {
        for (const auto member : work.rows[r.index].members) {
          const BatchEntry& e = entries[member];
          LogScope hash_scope({{"strategy_hash", e.record.strategy_hash}});
          dead_letter(work, e.payload, "database",
                      {{"database." + r.sqlstate, "", truncate_for_reason(e.record.strategy_hash), r.message}},
                      e.source, e.record.message_format);
        }
      }
      flush_letters(work.letters);
    };
    work.result = retrying("write batch", [&] {
      const auto write_started = Clock::now();
      StallTracker::Write in_flight(stalls, lane.index());  // aged: past --write_stall_seconds it is hung
      auto written = lane.sink().write_batch(records, work.offsets, on_rejected, messages);
      observer->database_write(std::chrono::duration<double>(Clock::now() - write_started).count());
      return written;
    });
  }

  void start_writers() {
    const auto n = static_cast<std::size_t>(config.processing.writer_connections);
    for (std::size_t i = 0; i < n; ++i) {
      lanes.push_back(std::make_unique<WriterLane>(i, parts.make_sink()));
      lanes.back()->start([this](WriterLane& lane, Work& work) { write(lane, work); });
    }
  }

  // ---- the consumer thread's side of a batch

  // Finishes the lane's batch once its writer is done with it (with `wait`, waits for that): offsets, counters,
  // the log line and the Kafka commit; or, when it was fenced, the stored offsets are read again. Rethrows what
  // stopped the writer.
  void collect(WriterLane& lane, bool wait) {
    auto work = lane.take_written(wait, [this] { observer->heartbeat(expected.size()); });
    if (!work) return;
    LogScope log_scope(batch_log_fields(work->id, work->batch));
    if (work->error) std::rethrow_exception(work->error);
    if (work->fenced) {
      if (!work->skipped) {  // (a skipped batch is taken back with the one it was behind, below)
        ++counters.fenced_batches;
        observer->batch_fenced();
      }
      spdlog::warn("batch {} abandoned: {}", work->id, *work->fenced);
      auto partitions = work->batch.next_offsets();
      // The batches handed off behind it are not written (writer_lane.hpp): taken back with it, their partitions
      // are read again with its own.
      while (auto behind = lane.take_written(/*wait=*/true, [this] { observer->heartbeat(expected.size()); })) {
        spdlog::info("batch {} not written: handed off behind batch {}", behind->id, work->id);
        for (const auto& [tp, next] : behind->batch.next_offsets()) partitions.emplace(tp, next);
      }
      std::set<TopicPartition> keys;
      for (const auto& [tp, _] : partitions) keys.insert(tp);
      lane.open.drop_partitions(keys);  // read after the fenced batch: reread from the stored offsets
      for (const auto& tp : keys) planned.erase(tp);  // what is handed off next starts at the stored offsets
      resume_from_stored(partitions);
      return;
    }
    for (const auto& o : work->offsets) {
      auto it = planned.find({o.topic, o.partition});
      if (it != planned.end() && it->second.second == work->id) planned.erase(it);  // no later batch of it
    }
    for (const auto& o : work->offsets) {
      if (auto it = expected.find({o.topic, o.partition}); it != expected.end()) it->second = o.next_offset;
    }
    account_committed(*work, counters, *observer);
    source->commit(work->offsets);
  }

  // Every batch of the lane written and finished.
  void drain(WriterLane& lane) {
    while (lane.busy()) collect(lane, /*wait=*/true);
  }

  // Hands the lane's open batch to its writer once the lane has room (writer_lane.hpp). It expects the offsets the
  // batch before it writes, when that one is not finished yet, else the stored ones.
  void hand_off(WriterLane& lane) {
    collect(lane, /*wait=*/false);
    while (!lane.has_room()) collect(lane, /*wait=*/true);
    if (lane.open.batch.empty()) return;
    if (rules) rules->reload_if_changed();  // between two batches of the lane: a backlog never waits for a reload
    auto work = std::make_unique<Work>(std::exchange(lane.open, Work{}));
    work->handed_off = Clock::now();
    LogScope log_scope(batch_log_fields(work->id, work->batch));
    const std::vector<bool> refused = rules ? apply_rules(*work) : std::vector<bool>{};
    ExpectedOffsets expects = expected;
    for (const auto& [tp, next] : planned) expects[tp] = next.first;
    PreparedBatch prepared = prepare_batch(work->batch, refused, expects);
    work->rows = std::move(prepared.rows);
    work->duplicates = prepared.duplicates;
    work->offsets = std::move(prepared.offsets);
    for (const auto& o : work->offsets) planned[{o.topic, o.partition}] = {o.next_offset, work->id};
    lane.hand(std::move(work));
  }

  // Every open batch written and finished.
  void flush_all() {
    for (auto& lane : lanes) hand_off(*lane);
    for (auto& lane : lanes) drain(*lane);
  }

  // ---- the loop

  ExitReason consume() {
    const auto start = Clock::now();
    const auto max_time = seconds_to_ms(config.processing.max_processing_time_seconds);
    const auto idle_limit = seconds_to_ms(config.processing.idle_timeout_seconds);
    const auto poll_timeout = std::chrono::milliseconds(config.kafka.poll_timeout_ms);
    Clock::time_point idle_since{};  // while idle: since when (epoch: not idle)
    while (!stop_requested) {
      std::optional<SourceMessage> message;
      if (memory.over(held_bytes())) {
        relieve_memory();  // not polling meanwhile
      } else {
        // An open batch waits only kLinger for more: once everything fetched is read, it is written.
        message = source->poll(open_messages() == 0 ? poll_timeout : std::min(poll_timeout, kLinger));
      }
      observer->heartbeat(expected.size());
      if (message) process(std::move(*message));
      const bool caught_up = source->caught_up();
      const bool nothing_waiting = caught_up || source->queue_empty();
      const auto now = Clock::now();
      brokers.check(now, open_messages(), config.processing.max_retries);
      bool idle = true;
      for (auto& lane : lanes) {
        collect(*lane, /*wait=*/false);
        const Batch& open = lane->open.batch;
        // While its writer is busy a batch goes on growing (the next transaction takes more at once), up to
        // --batch_size; then the consumer waits for the writer.
        if (batch_policy.should_flush(open.message_count(), open.bytes(), now - open.started(), nothing_waiting) &&
            (!lane->busy() || batch_policy.full(open.message_count(), open.bytes()))) {
          hand_off(*lane);
        }
        idle = idle && lane->open.batch.empty() && !lane->busy();
      }
      if (rules && open_messages() == 0) rules->reload_if_changed();  // idle: no batch to hand off
      if (max_time.count() > 0 && now - start >= max_time) {
        flush_all();
        spdlog::info("maximum processing time reached");
        return ExitReason::time_limit;
      }
      // The idle clock runs only while this consumer holds partitions and has read them all: joining a group
      // after a crash can take a while, and a drain job must not give up before it has started.
      if (idle_limit.count() > 0 && caught_up && idle) {
        if (idle_since == Clock::time_point{}) idle_since = now;
        if (now - idle_since >= idle_limit) {
          spdlog::info("caught up and idle for {} s", config.processing.idle_timeout_seconds);
          return ExitReason::idle;
        }
      } else {
        idle_since = Clock::time_point{};
      }
    }
    flush_all();
    return ExitReason::stopped;
  }
};

Pipeline::Pipeline(Config config, PipelineParts parts, PipelineObserver* observer)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(parts), observer)) {}
Pipeline::~Pipeline() = default;

ExitReason Pipeline::run() {
  auto& s = *impl_;
  s.consumer_thread = std::this_thread::get_id();
  if (s.lanes.empty()) s.start_writers();
  ShutdownWatchdog watchdog(seconds_to_ms(s.config.processing.shutdown_timeout_seconds), s.stop_requested, s.stalls,
                            [&s] {
                              s.sink->interrupt();
                              for (auto& lane : s.lanes) lane->sink().interrupt();
                            });
  try {
    s.retrying("connect to PostgreSQL", [&] { s.sink->ensure_connected(); });
    s.retrying("prepare the schema", [&] { s.sink->prepare_schema(s.config.migrate); });
    s.dlq = s.parts.make_dead_letters(*s.observer);
    s.source = s.parts.make_source(s);
    const ExitReason reason = s.consume();
    s.close_source();
    return reason;
  } catch (const Error&) {
    watchdog.stop();  // it reads the lanes: joined before they go
    s.stop_writers();  // nothing more commits; a writer still retrying gives up, one blocked is broken off
    s.close_source();
    throw;
  } catch (const Abandoned&) {
    // The other writers finish (or abandon) what they hold; nothing more is handed to them.
    for (auto& lane : s.lanes) {
      while (lane->busy()) {
        try {
          s.collect(*lane, /*wait=*/true);
        } catch (...) {
        }
      }
    }
    const auto dropped = s.open_messages();
    for (auto& lane : s.lanes) lane->open = Work{};
    s.close_source();
    spdlog::warn("stopped while retrying; the open batch ({} message(s)) was abandoned, nothing of it committed",
                 dropped);
    return ExitReason::stopped;
  }
}

void Pipeline::stop() noexcept { impl_->stop_requested = true; }

void Pipeline::set_rule_engine(std::shared_ptr<RuleEngine> rules) {
  impl_->rules = std::move(rules);
  if (impl_->rules) impl_->observer->rules_evaluated(impl_->rules->stats());  // the rules' series from the start
}

const PipelineCounters& Pipeline::counters() const { return impl_->counters; }

bool Pipeline::healthy() const { return !impl_->stalls.state().stalled; }

StallState Pipeline::stall() const { return impl_->stalls.state(); }

}  // namespace strategy_consumer
