#include "strategy_consumer/pipeline/pipeline.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <set>
#include <optional>
#include <random>
#include <stop_token>
#include <thread>

#include "strategy_consumer/pipeline/batch.hpp"
#include "strategy_consumer/pipeline/fold.hpp"
#include "strategy_consumer/pipeline/memory_budget.hpp"
#include "strategy_consumer/pipeline/stall_tracker.hpp"
#include "strategy_consumer/message/decoding.hpp"
#include "strategy_consumer/kafka/dead_letters.hpp"
#include "strategy_consumer/model/errors.hpp"
#include "strategy_consumer/kafka/source.hpp"
#include "strategy_consumer/ops/logging.hpp"
#include "strategy_consumer/ops/metrics.hpp"
#include "strategy_consumer/postgres/sink.hpp"
#include "strategy_consumer/pipeline/retry.hpp"
#include "strategy_consumer/rules/rule_engine.hpp"
#include "strategy_consumer/message/strategy_inspector.hpp"
#include "strategy_consumer/model/timestamp.hpp"

namespace strategy_consumer {
namespace {

using Clock = std::chrono::steady_clock;

PipelineObserver kNoObserver;

// Thrown when stop() interrupts a retry: the open batch is abandoned (nothing of it was committed).
struct Abandoned {};

// How long one attempt waits for the dead letters to be acknowledged, and the slices it waits in: a stop
// request is never kept waiting for more than a slice by an unreachable dead-letter topic.
constexpr std::chrono::milliseconds kLetterWait{10000};
constexpr std::chrono::milliseconds kLetterSlice{250};

// How long an open batch waits for another message once everything fetched has been read.
constexpr std::chrono::milliseconds kLinger{5};

std::chrono::milliseconds seconds_to_ms(double s) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(s * 1000));
}

std::string describe_offsets(const std::map<TopicPartition, std::int64_t>& next) {
  std::string out;
  for (const auto& [tp, offset] : next) {
    if (!out.empty()) out += ' ';
    out += tp.first + "[" + std::to_string(tp.second) + "]->" + std::to_string(offset);
  }
  return out;
}


// The dead letters sent for one batch's messages, by position: counted when the batch commits.
struct BatchLetters {
  std::map<std::pair<TopicPartition, std::int64_t>, std::string> stage_of;  // a retried write sends none twice
  std::uint64_t last_seq = 0;  // DlqProducer's number of the last one: the batch waits for those up to it

  std::size_t count() const { return stage_of.size(); }
  std::map<std::string, std::size_t> by_stage() const {
    std::map<std::string, std::size_t> out;
    for (const auto& [_, stage] : stage_of) ++out[stage];
    return out;
  }
};

// One batch: open (filled on the consumer thread), then handed to its lane's writer, then finished on the
// consumer thread again (offsets, counters, Kafka commit) or, when fenced, dropped.
struct Work {
  std::uint64_t id = 0;
  Batch batch;
  BatchLetters letters;

  // Forgets what was read from these partitions, letters included (they are reread, elsewhere or here).
  void drop_partitions(const std::set<TopicPartition>& partitions) {
    batch.drop_partitions(partitions);
    std::erase_if(letters.stage_of, [&](const auto& letter) { return partitions.count(letter.first.first) > 0; });
  }
  // At hand-off (consumer thread): what is written.
  std::vector<FoldedRow> rows;  // what is written: the entries the rules passed, folded by strategy_hash
  std::size_t duplicates = 0;  // messages folded into a row beyond its first
  std::vector<PartitionOffset> offsets;
  Clock::time_point handed_off;
  // By the writer.
  WriteResult result;
  std::optional<std::string> fenced;  // why, when another consumer moved the offsets
  std::exception_ptr error;           // Abandoned, or an Error that outlasted its retries
};

// A writer: its own PostgreSQL connection and thread, and the partitions p with p % lanes == its index. Each
// lane has at most one batch in flight (its offsets follow the last one's), so the lanes write in parallel
// while the consumer thread goes on reading, decoding and validating.
struct Lane {
  Lane(std::size_t i, const PostgresConfig& postgres, const std::string& group_id)
      : index(i), sink(postgres, group_id) {}
  const std::size_t index;
  PostgresSink sink;
  Work open;  // consumer thread only
  std::mutex mutex;
  std::condition_variable_any changed;
  std::unique_ptr<Work> job;  // guarded by mutex: in flight until `done`
  bool done = false;
  std::atomic<std::size_t> in_flight_bytes{0};  // what the job holds: 0 once it is written (memory_budget.hpp)
  std::jthread thread;  // last: stopped and joined first
};

}  // namespace

struct Pipeline::Impl : RebalanceListener {
  Config config;
  PipelineObserver* observer;  // metrics and probes; never null
  PipelineCounters counters;
  std::atomic<bool> stop_requested{false};
  // Retries and writes in flight, from every thread: Pipeline::healthy(), the probes and the `stalled` gauge.
  StallTracker stalls;
  std::thread::id consumer_thread;  // run()'s: only its waits are heartbeats
  RetryPolicy retry_policy;
  StrategyInspector inspector;  // decode + built-in validation, the same code as the Python StrategyInspector
  BatchPolicy batch_policy;
  MemoryBudget memory;
  PostgresSink sink;  // the consumer thread's: schema and stored offsets
  std::uint64_t batch_id = 0;
  // The stored next offset of each assigned partition, as this consumer last read or wrote it (the fence).
  // Consumer thread only.
  std::map<TopicPartition, std::optional<std::int64_t>> expected;
  std::shared_ptr<RuleEngine> rules;  // analyst rules, optional
  std::optional<Clock::time_point> kafka_down_since;  // since when librdkafka's statistics show no broker up
  std::unique_ptr<DlqProducer> dlq;
  std::vector<std::unique_ptr<Lane>> lanes;  // after dlq: the writers use it until they are joined
  std::unique_ptr<KafkaSource> source;  // last: destroyed first, while the rest is still there

  Impl(Config c, PipelineObserver* o)
      : config(std::move(c)),
        observer(o ? o : &kNoObserver),
        stalls(std::chrono::duration_cast<Clock::duration>(
                   std::chrono::duration<double>(config.processing.write_stall_seconds)),
               [this](const StallState& state) { observer->stall_changed(state.stalled, state.reason); }),
        inspector(Catalog::with_overrides(config.processing.strategy_catalog),
                  ValidatorOptions{.allow_unknown_strategy_types = config.processing.allow_unknown_strategy_types},
                  DecodeOptions{.max_message_bytes = config.processing.max_message_bytes,
                                .format = parse_message_format(config.processing.message_format),
                                .parameters_layout = parse_parameters_layout(config.processing.parameters_layout),
                                .hash_scheme = parse_hash_scheme(config.processing.strategy_hash_scheme)}),
        sink(config.postgres, config.kafka.group_id) {
    batch_policy.max_messages = static_cast<std::size_t>(config.processing.batch_size);
    batch_policy.max_bytes = config.processing.max_batch_bytes;
    memory.max_batch_bytes = config.processing.max_batch_bytes;
    memory.max_buffered_bytes = config.processing.max_buffered_bytes;
    batch_policy.max_age = seconds_to_ms(config.processing.batch_timeout_seconds);
  }

  ~Impl() { stop_writers(); }

  // After an error (or at the end): a writer still retrying gives up, one blocked in PostgreSQL is broken off,
  // and they are joined. The pipeline does not run again.
  void stop_writers() {
    stop_requested = true;
    for (auto& lane : lanes) lane->sink.interrupt();
    lanes.clear();
  }

  // Runs `op` until it succeeds, backing off between attempts. Errors that a retry cannot mend are thrown at
  // once. After --max_retries failed retries a drain-mode run gives up (throws); a service keeps trying at the
  // capped interval, reported as unhealthy meanwhile. Any thread.
  template <class F>
  auto retrying(const char* what, F&& op) -> decltype(op()) {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    std::optional<Stall> stall;  // from the first failure until success, or until the operation gives up
    for (int failures = 0;;) {
      try {
        if constexpr (std::is_void_v<decltype(op())>) {
          op();
          if (failures) spdlog::info("{} succeeded again", what);
          return;
        } else {
          auto result = op();
          if (failures) spdlog::info("{} succeeded again", what);
          return result;
        }
      } catch (const Error& e) {
        if (!e.retryable()) throw;
        if (stop_requested) throw Abandoned{};  // stopping: not worth another attempt (or interrupted)
        if (failures == 0) stall.emplace(*this, what);
        ++failures;
        ++counters.retries;
        observer->retrying(what);
        if (failures > config.processing.max_retries && config.processing.drain_mode()) {
          spdlog::error("{} failed {} times, giving up: {}", what, failures, e.what());
          throw;
        }
        const auto delay = retry_policy.delay(failures, rng);
        spdlog::warn("{} failed (attempt {}): {}; retrying in {} ms", what, failures, e.what(), delay.count());
        sleep_unless_stopped(delay);
      }
    }
  }

  // An operation stalled for its lifetime (RAII: ended by success and by giving up alike).
  struct Stall {
    Impl& impl;
    std::string what;
    Stall(Impl& i, std::string w) : impl(i), what(std::move(w)) { impl.stalls.retry_begin(what); }
    ~Stall() { impl.stalls.retry_end(what); }
    Stall(const Stall&) = delete;
    Stall& operator=(const Stall&) = delete;
  };

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

  void sleep_unless_stopped(std::chrono::milliseconds delay) {
    const auto until = Clock::now() + delay;
    while (Clock::now() < until) {
      if (stop_requested) throw Abandoned{};
      // The consumer thread waiting is alive; a writer's wait says nothing about the consumer thread.
      if (std::this_thread::get_id() == consumer_thread) observer->heartbeat(expected_partitions);
      std::this_thread::sleep_for(std::min<Clock::duration>(until - Clock::now(), std::chrono::milliseconds(50)));
    }
  }
  std::atomic<std::size_t> expected_partitions{0};  // expected.size(), for heartbeats from any thread
  std::optional<Stall> kafka_outage;  // while no broker is reachable

  std::map<std::int32_t, std::int64_t> on_assigned(const std::string& topic,
                                                   const std::vector<std::int32_t>& partitions) override {
    // A batch of these partitions still being written (they were revoked and come back) lands first: read
    // before it, the stored offsets would make this consumer resume behind it and apply it again.
    for (auto& lane : lanes) collect(*lane, /*wait=*/true);
    auto stored = retrying("load stored offsets", [&] { return sink.load_offsets(topic, partitions); });
    for (auto p : partitions) {
      auto it = stored.find(p);
      expected[{topic, p}] = it == stored.end() ? std::nullopt : std::optional<std::int64_t>(it->second);
    }
    expected_partitions = expected.size();
    return stored;
  }

  void on_statistics(std::string_view json) override {
    observer->kafka_statistics(json);
    const bool down = parse_kafka_statistics(json).brokers_up == 0;
    if (!down) kafka_down_since.reset();
    else if (!kafka_down_since) kafka_down_since = Clock::now();
  }

  // How long a drain job waits for unreachable brokers before it gives up: what the retries of --max_retries
  // would wait, and at least one capped interval (librdkafka reconnects on its own meanwhile).
  Clock::duration kafka_outage_limit() const {
    Clock::duration total{};
    for (int f = 1; f <= config.processing.max_retries; ++f) total += retry_policy.ceiling(f);
    return std::max<Clock::duration>(total, retry_policy.max_delay);
  }

  void check_kafka_reachable(Clock::time_point now) {
    if (!kafka_down_since) {
      if (kafka_outage) {
        kafka_outage.reset();
        spdlog::info("a Kafka broker is reachable again");
      }
      return;
    }
    if (!kafka_outage) {
      kafka_outage.emplace(*this, "reach the Kafka brokers");
      observer->retrying("reach the Kafka brokers");
      spdlog::warn("no Kafka broker reachable; librdkafka keeps reconnecting");
    }
    const auto down_for = now - *kafka_down_since;
    if (config.processing.drain_mode() && down_for >= kafka_outage_limit()) {
      const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(down_for).count();
      spdlog::error("no Kafka broker reachable for {} s, giving up (drain mode, --max_retries={}); the open "
                    "batches ({} message(s)) are not committed",
                    seconds, config.processing.max_retries, open_messages());
      throw KafkaError("no Kafka broker reachable for " + std::to_string(seconds) + " s, gave up", false);
    }
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

  std::size_t open_messages() const {
    std::size_t n = 0;
    for (const auto& lane : lanes) n += lane->open.batch.message_count();
    return n;
  }

  // Bytes held for messages by the open batches and the batches being written (memory_budget.hpp).
  std::size_t held_bytes() const {
    std::size_t n = 0;
    for (const auto& lane : lanes) n += lane->open.batch.bytes() + lane->in_flight_bytes.load();
    return n;
  }

  // Over --max_buffered_bytes the consumer does not poll (librdkafka stops fetching once its queue is full):
  // open batches whose writer is free are handed off, else it waits for a writer to give its batch back.
  void relieve_memory() {
    for (auto& lane : lanes) {
      collect(*lane, /*wait=*/false);
      if (!lane->open.batch.empty() && !busy(*lane)) hand_off(*lane);
    }
    if (!memory.over(held_bytes())) return;
    for (auto& lane : lanes) {
      if (!busy(*lane)) continue;
      collect(*lane, /*wait=*/true);
      return;
    }
  }

  Lane& lane_of(std::int32_t partition) {
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

  void process(KafkaMessage&& message) {
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

  // After a fence: the stored offsets are the truth. Read them again and continue from there; if the
  // partitions belong to another consumer now, the coming rebalance takes them away.
  void resume_from_stored(const std::map<TopicPartition, std::int64_t>& partitions) {
    std::map<std::string, std::vector<std::int32_t>> by_topic;
    for (const auto& [tp, _] : partitions) by_topic[tp.first].push_back(tp.second);
    std::vector<PartitionOffset> positions;
    for (const auto& [topic, list] : by_topic) {
      auto stored = retrying("load stored offsets", [&] { return sink.load_offsets(topic, list); });
      for (auto p : list) {
        auto it = stored.find(p);
        const bool known = it != stored.end();
        if (expected.count({topic, p})) expected[{topic, p}] = known ? std::optional(it->second) : std::nullopt;
        positions.push_back({topic, p, known ? it->second : -1, std::nullopt});
      }
    }
    retrying("seek to the stored offsets", [&] { source->seek(positions); });
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

  // The writer's part of a batch: its dead letters acknowledged, then rows and offsets in one transaction.
  void write(Lane& lane, Work& work) {
    LogScope log_scope(batch_log_fields(work.id, work.batch));
    const auto& entries = work.batch.entries();
    // Letters first: an offset is never committed before the dead letter of its message is acknowledged.
    retrying("deliver dead letters", [&] { flush_letters(work.letters); });
    std::vector<const StrategyRecord*> records;
    records.reserve(work.rows.size());
    for (const auto& row : work.rows) records.push_back(&row.record(entries));
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
      StallTracker::Write in_flight(stalls, lane.index);  // aged: past --write_stall_seconds it is hung
      auto written = lane.sink.write_batch(records, work.offsets, on_rejected);
      observer->database_write(std::chrono::duration<double>(Clock::now() - write_started).count());
      return written;
    });
  }

  void writer_loop(Lane& lane, std::stop_token stop) {
    for (;;) {
      Work* work = nullptr;
      {
        std::unique_lock lock(lane.mutex);
        if (!lane.changed.wait(lock, stop, [&] { return lane.job && !lane.done; })) return;
        work = lane.job.get();
      }
      try {
        write(lane, *work);
      } catch (const FencedError& e) {
        work->fenced = e.what();
      } catch (...) {
        work->error = std::current_exception();
      }
      // Written (or given up): no dead letter can need the payloads any more. Given back now, not when the
      // consumer thread gets round to finishing the batch.
      work->batch.release_entries();
      for (auto& row : work->rows) row.folded.reset();
      lane.in_flight_bytes = 0;
      {
        std::lock_guard lock(lane.mutex);
        lane.done = true;
      }
      lane.changed.notify_all();
    }
  }

  void start_writers() {
    const auto n = static_cast<std::size_t>(config.processing.writer_connections);
    for (std::size_t i = 0; i < n; ++i) {
      lanes.push_back(std::make_unique<Lane>(i, config.postgres, config.kafka.group_id));
      Lane& lane = *lanes.back();
      lane.thread = std::jthread([this, &lane](std::stop_token stop) { writer_loop(lane, stop); });
    }
  }

  static bool busy(Lane& lane) {
    std::lock_guard lock(lane.mutex);
    return lane.job != nullptr;
  }

  // ---- the consumer thread's side of a batch

  // Finishes the lane's batch once its writer is done with it (with `wait`, waits for that): offsets, counters,
  // the log line and the Kafka commit; or, when it was fenced, the stored offsets are read again. Rethrows what
  // stopped the writer.
  void collect(Lane& lane, bool wait) {
    std::unique_ptr<Work> work;
    {
      std::unique_lock lock(lane.mutex);
      if (!lane.job) return;
      while (wait && !lane.done) {
        lane.changed.wait_for(lock, std::chrono::milliseconds(50));
        if (!lane.done) observer->heartbeat(expected.size());
      }
      if (!lane.done) return;
      work = std::move(lane.job);
      lane.done = false;
    }
    LogScope log_scope(batch_log_fields(work->id, work->batch));
    if (work->error) std::rethrow_exception(work->error);
    if (work->fenced) {
      ++counters.fenced_batches;
      observer->batch_fenced();
      spdlog::warn("batch {} abandoned: {}", work->id, *work->fenced);
      const auto partitions = work->batch.next_offsets();
      std::set<TopicPartition> keys;
      for (const auto& [tp, _] : partitions) keys.insert(tp);
      lane.open.drop_partitions(keys);  // read after the fenced batch: reread from the stored offsets
      resume_from_stored(partitions);
      return;
    }
    for (const auto& o : work->offsets) {
      if (auto it = expected.find({o.topic, o.partition}); it != expected.end()) it->second = o.next_offset;
    }
    const auto& result = work->result;
    if (result.in_doubt_committed) {
      observer->commit_in_doubt(*result.in_doubt_committed);
      if (*result.in_doubt_committed) {
        spdlog::warn("batch {}: its COMMIT's outcome was unknown (the connection broke during it); the stored "
                     "offsets show it committed",
                     work->id);
      } else {
        spdlog::warn("batch {}: its first COMMIT's outcome was unknown (the connection broke during it); the "
                     "stored offsets showed it had not committed, and it was written again",
                     work->id);
      }
    }
    // The messages folded into a refused row were dead-lettered, each of them: not duplicates.
    for (const auto& r : result.rejected) work->duplicates -= work->rows[r.index].duplicates();
    counters.stored_new += result.inserted;
    counters.stored_updated += result.updated;
    counters.outdated += result.outdated;
    counters.duplicate_in_batch += work->duplicates;
    counters.dead_lettered += work->letters.count();
    ++counters.batches;
    observer->batch_committed({work->id, work->batch.message_count(), result.inserted, result.updated,
                               work->duplicates, work->letters.count(), work->letters.by_stage(), result.outdated});
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - work->handed_off).count();
    // row statements: COPY+INSERT attempts, 1 unless PostgreSQL refused rows (then about 2*log2(n) per row).
    spdlog::info("batch {}: {} message(s): {} new, {} updated, {}{} duplicate(s) in batch, {} dead-lettered; "
                 "{} row statement(s); offsets {}; {} ms",
                 work->id, work->batch.message_count(), result.inserted, result.updated,
                 result.outdated ? std::to_string(result.outdated) + " outdated (not applied), " : std::string(),
                 work->duplicates,
                 work->letters.count(), result.row_statements, describe_offsets(work->batch.next_offsets()), ms);
    source->commit(work->offsets);
  }

  // Hands the lane's open batch to its writer, once the batch before it is finished (the offsets it expects are
  // the ones that batch wrote).
  void hand_off(Lane& lane) {
    collect(lane, /*wait=*/true);
    if (lane.open.batch.empty()) return;
    if (rules) rules->reload_if_changed();  // between two batches of the lane: a backlog never waits for a reload
    auto work = std::make_unique<Work>(std::exchange(lane.open, Work{}));
    work->handed_off = Clock::now();
    LogScope log_scope(batch_log_fields(work->id, work->batch));
    const std::vector<bool> refused = rules ? apply_rules(*work) : std::vector<bool>{};
    work->rows = fold_by_hash(work->batch.entries(), refused);
    // In strategy_hash order, as the upsert locks rows: the halves of a bisection keep the order too.
    const auto& entries = work->batch.entries();
    std::sort(work->rows.begin(), work->rows.end(), [&](const FoldedRow& a, const FoldedRow& b) {
      return a.record(entries).strategy_hash < b.record(entries).strategy_hash;
    });
    work->duplicates = 0;
    for (const auto& row : work->rows) work->duplicates += row.duplicates();
    for (const auto& [tp, next] : work->batch.next_offsets()) {
      auto it = expected.find(tp);
      work->offsets.push_back({tp.first, tp.second, next, it == expected.end() ? std::nullopt : it->second});
    }
    {
      std::lock_guard lock(lane.mutex);
      lane.in_flight_bytes = work->batch.bytes();
      lane.job = std::move(work);
      lane.done = false;
    }
    lane.changed.notify_all();
  }

  // Every open batch written and finished.
  void flush_all() {
    for (auto& lane : lanes) hand_off(*lane);
    for (auto& lane : lanes) collect(*lane, /*wait=*/true);
  }

  ExitReason consume() {
    const auto start = Clock::now();
    const auto max_time = seconds_to_ms(config.processing.max_processing_time_seconds);
    const auto idle_limit = seconds_to_ms(config.processing.idle_timeout_seconds);
    const auto poll_timeout = std::chrono::milliseconds(config.kafka.poll_timeout_ms);
    Clock::time_point idle_since{};  // while idle: since when (epoch: not idle)
    while (!stop_requested) {
      std::optional<KafkaMessage> message;
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
      check_kafka_reachable(now);
      bool idle = true;
      for (auto& lane : lanes) {
        collect(*lane, /*wait=*/false);
        const Batch& open = lane->open.batch;
        // While its writer is busy a batch goes on growing (the next transaction takes more at once), up to
        // --batch_size; then the consumer waits for the writer.
        if (batch_policy.should_flush(open.message_count(), open.bytes(), now - open.started(), nothing_waiting) &&
            (!busy(*lane) || batch_policy.full(open.message_count(), open.bytes()))) {
          hand_off(*lane);
        }
        idle = idle && lane->open.batch.empty() && !busy(*lane);
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

Pipeline::Pipeline(Config config, PipelineObserver* observer)
    : impl_(std::make_unique<Impl>(std::move(config), observer)) {}
Pipeline::~Pipeline() = default;

ExitReason Pipeline::run() {
  auto& s = *impl_;
  s.consumer_thread = std::this_thread::get_id();
  if (s.lanes.empty()) s.start_writers();
  // The shutdown deadline: after a stop request, the open batch has --shutdown_timeout_seconds to commit. Then
  // the database operation it waits for is broken off (again every second), and the batch is abandoned.
  std::jthread watchdog([&s](std::stop_token done) {
    const auto deadline = seconds_to_ms(s.config.processing.shutdown_timeout_seconds);
    std::optional<Clock::time_point> stop_seen, last_interrupt;
    while (!done.stop_requested()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      s.stalls.refresh(Clock::now());  // a write in flight may have passed its limit
      if (!s.stop_requested) continue;
      const auto now = Clock::now();
      if (!stop_seen) stop_seen = now;
      if (now - *stop_seen < deadline) continue;
      if (!last_interrupt) {
        spdlog::warn("the open batch did not commit within {} s of the stop request: breaking off its database "
                     "write; nothing of it commits",
                     s.config.processing.shutdown_timeout_seconds);
      }
      if (!last_interrupt || now - *last_interrupt >= std::chrono::seconds(1)) {
        last_interrupt = now;
        s.sink.interrupt();
        for (auto& lane : s.lanes) lane->sink.interrupt();
      }
    }
  });
  try {
    s.retrying("connect to PostgreSQL", [&] { s.sink.ensure_connected(); });
    s.retrying("prepare the schema", [&] { s.sink.prepare_schema(s.config.migrate); });
    s.dlq = std::make_unique<DlqProducer>(
        s.config.kafka, [&s](const DeadLetterRefusal& r) { s.observer->dead_letter_refused(r.delivered_minimal); });
    s.source = std::make_unique<KafkaSource>(s.config.kafka, s, s.config.direct_assignment());
    const ExitReason reason = s.consume();
    s.source->close();
    return reason;
  } catch (const Error&) {
    watchdog.request_stop();  // it reads the lanes: joined before they go
    watchdog.join();
    s.stop_writers();  // nothing more commits; a writer still retrying gives up, one blocked is broken off
    if (s.source) s.source->close();
    throw;
  } catch (const Abandoned&) {
    // The other writers finish (or abandon) what they hold; nothing more is handed to them.
    for (auto& lane : s.lanes) {
      try {
        s.collect(*lane, /*wait=*/true);
      } catch (...) {
      }
    }
    const auto dropped = s.open_messages();
    for (auto& lane : s.lanes) lane->open = Work{};
    if (s.source) s.source->close();
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
