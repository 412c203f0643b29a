#pragma once
// Metrics: what the pipeline did, in the Prometheus text exposition format (version 0.0.4), written here
// (Debian has no Prometheus C++ library). Three layers:
//   - MetricsRegistry: counters, gauges and histograms by name and labels behind one mutex; render() writes
//     the text format. The pipeline updates it a few times per batch, /metrics reads it from the HTTP thread.
//   - PipelineObserver: the events the pipeline reports (pipeline.hpp takes one, optionally).
//   - Metrics: a PipelineObserver that turns those events into the strategy_consumer_* metrics and keeps what
//     /health and /ready need (heartbeat, assignment, the operation being retried).
// Message counters are counted when their batch's transaction has committed, never before: they equal what is
// in PostgreSQL and the dead-letter topic. Consumer lag comes from librdkafka's statistics
// (statistics.interval.ms): per partition, the log-end offset minus the offset committed after the transaction.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "strategy_consumer/rules/rule_engine.hpp"

namespace strategy_consumer {

// ---- exposition format (pure) ----

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

// A label value with \, " and newline escaped as the text format requires.
std::string escape_label_value(std::string_view value);
// HELP text with \ and newline escaped.
std::string escape_help(std::string_view text);
// A sample value: integers without a fraction, "+Inf", "-Inf", "NaN", otherwise the shortest exact decimal.
std::string format_sample_value(double value);
// `{a="x",b="y"}`, or "" for no labels.
std::string format_labels(const MetricLabels& labels);

enum class MetricType { counter, gauge, histogram };

// Families of samples by name. Every family is described first (name, help, type; buckets for a histogram);
// updating an undescribed name or using the wrong kind of update throws std::logic_error (a programming error).
// Thread-safe: one mutex around every update and render().
class MetricsRegistry {
 public:
  void describe(const std::string& name, const std::string& help, MetricType type,
                std::vector<double> buckets = {});
  // Counter: adds delta (>= 0). Gauge: adds delta (any sign).
  void add(const std::string& name, const MetricLabels& labels = {}, double delta = 1);
  void set(const std::string& name, const MetricLabels& labels, double value);  // gauge
  void observe(const std::string& name, const MetricLabels& labels, double value);  // histogram
  // Replaces every sample of a gauge family at once (e.g. lag per partition: partitions that went away vanish).
  void replace(const std::string& name, const std::vector<std::pair<MetricLabels, double>>& samples);
  // Creates the sample at zero when it does not exist yet (a series present from the start).
  void touch(const std::string& name, const MetricLabels& labels = {});
  // The value of a counter or gauge sample (0 when absent); the count of a histogram sample.
  double value(const std::string& name, const MetricLabels& labels = {}) const;
  bool has_family(const std::string& name) const;

  // The whole registry in the text format: families in the order described, samples in label order.
  // A family without samples prints only its HELP and TYPE lines.
  std::string render() const;

 private:
  struct Histogram {
    std::vector<std::uint64_t> bucket_counts;  // per bucket, not cumulative
    std::uint64_t count = 0;
    double sum = 0;
  };
  struct Family {
    std::string help;
    MetricType type = MetricType::counter;
    std::vector<double> buckets;
    std::map<MetricLabels, double> values;
    std::map<MetricLabels, Histogram> histograms;
  };
  Family& family(const std::string& name, MetricType type);

  mutable std::mutex mutex_;
  std::vector<std::string> order_;
  std::map<std::string, Family> families_;
};

// ---- what the pipeline reports ----

// One committed batch, as counted after its transaction.
struct BatchReport {
  std::uint64_t batch_id = 0;
  std::size_t messages = 0;        // read into the batch: stored, folded or dead-lettered
  std::size_t stored_new = 0;
  std::size_t stored_updated = 0;
  std::size_t duplicates = 0;      // folded into the row of an earlier message of the same strategy_hash
  std::size_t dead_lettered = 0;   // letters of this batch, every stage
  std::map<std::string, std::size_t> dead_letters_by_stage;
  std::size_t outdated = 0;        // re-discoveries older than the stored one (Kafka timestamp): not applied
};

// Called on the pipeline's threads (the consumer's and the writers'): implementations are thread-safe. The
// default implementations do nothing.
class PipelineObserver {
 public:
  virtual ~PipelineObserver() = default;
  // The processing loop is alive (each poll, each step of a retry wait), holding this many partitions.
  virtual void heartbeat(std::size_t /*assigned_partitions*/) {}
  // A batch committed (rows, offsets and its dead letters).
  virtual void batch_committed(const BatchReport& /*report*/) {}
  // A batch was abandoned because another consumer owns its partitions now.
  virtual void batch_fenced() {}
  // The dead-letter topic refused a letter for good: the minimal letter was delivered in its place
  // (`delivered_minimal`), or nothing could be (undeliverable; its offset is committed without it).
  virtual void dead_letter_refused(bool /*delivered_minimal*/) {}
  // A batch's COMMIT had an unknown outcome (the connection broke during it); the stored offsets showed whether
  // it had committed (then the batch is counted as committed) or not (then it was written again).
  virtual void commit_in_doubt(bool /*committed*/) {}
  // One successful write_batch (COPY, upsert, offsets, COMMIT), in seconds.
  virtual void database_write(double /*seconds*/) {}
  // An operation failed and will be retried.
  virtual void retrying(const std::string& /*operation*/) {}
  // The pipeline's stall state changed (stall_tracker.hpp): stalled while an operation is retried or a write is
  // hung, with the reason. Reported under the tracker's lock: always its latest state.
  virtual void stall_changed(bool /*stalled*/, const std::string& /*reason*/) {}
  // librdkafka's statistics JSON (statistics.interval.ms), from the consumer.
  virtual void kafka_statistics(std::string_view /*json*/) {}
  // The analyst rules' counters since start (rule_engine.hpp): when the engine is set, and after each batch
  // they evaluated.
  virtual void rules_evaluated(const RuleStats& /*totals*/) {}
};

// Per-partition consumer lag and broker state from librdkafka's statistics JSON (pure).
struct PartitionLag {
  std::string topic;
  std::int32_t partition = -1;
  std::int64_t lag = 0;
};
struct KafkaStatistics {
  std::vector<PartitionLag> lag;  // partitions this consumer fetches that have a known lag
  int brokers_up = 0;             // real brokers (not bootstrap or logical ones) in state UP
  int brokers = 0;
};
// Throws nothing: unreadable statistics give an empty result.
KafkaStatistics parse_kafka_statistics(std::string_view json);

// "write batch" -> "write_batch": an operation name as a label value.
std::string operation_label(std::string_view operation);

// ---- the service's metrics ----

class Metrics : public PipelineObserver {
 public:
  using Clock = std::chrono::steady_clock;

  // Describes every strategy_consumer_* family; build_info carries `version`.
  explicit Metrics(std::string version = STRATEGY_CONSUMER_VERSION);

  MetricsRegistry& registry() { return registry_; }
  const MetricsRegistry& registry() const { return registry_; }
  std::string render() const { return registry_.render(); }

  // For /health and /ready (any thread).
  Clock::time_point last_heartbeat() const { return Clock::time_point(Clock::duration(last_heartbeat_.load())); }
  std::size_t assigned_partitions() const { return assigned_partitions_.load(); }
  // Why the pipeline is stalled ("retrying write batch", ...), "" when it is not.
  std::string stall_reason() const;
  // -1 before any statistics arrived.
  int kafka_brokers_up() const { return kafka_brokers_up_.load(); }

  // PipelineObserver
  void heartbeat(std::size_t assigned_partitions) override;
  void batch_committed(const BatchReport& report) override;
  void batch_fenced() override;
  void dead_letter_refused(bool delivered_minimal) override;
  void commit_in_doubt(bool committed) override;
  void database_write(double seconds) override;
  void retrying(const std::string& operation) override;
  void stall_changed(bool stalled, const std::string& reason) override;
  void kafka_statistics(std::string_view json) override;
  // Registers each rule and adds what its counters grew by since the last call.
  void rules_evaluated(const RuleStats& totals) override;

 private:
  MetricsRegistry registry_;
  std::atomic<Clock::rep> last_heartbeat_;
  std::atomic<std::size_t> assigned_partitions_{0};
  std::atomic<int> kafka_brokers_up_{-1};
  mutable std::mutex mutex_;  // guards the two below
  std::string stall_reason_;
  std::map<std::string, RuleCounters> rule_totals_;  // as last seen by rules_evaluated()
  std::uint64_t engine_failures_ = 0;                // likewise

  // The rule families appear in /metrics once the engine names a rule (a service without rules shows none).
  void register_rule(const std::string& rule);
};

}  // namespace strategy_consumer
