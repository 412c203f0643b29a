#include "strategy_consumer/ops/metrics.hpp"

#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace strategy_consumer {

// ---- exposition format ----

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string escape_help(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string format_sample_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  // Counts are integers: print them as such (exact up to 2^53).
  if (value == std::floor(value) && std::fabs(value) < 9007199254740992.0) {
    return std::to_string(static_cast<std::int64_t>(value));
  }
  return fmt::format("{}", value);  // shortest representation that reads back to the same double
}

std::string format_labels(const MetricLabels& labels) {
  if (labels.empty()) return {};
  std::string out = "{";
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (i) out += ',';
    out += labels[i].first;
    out += "=\"";
    out += escape_label_value(labels[i].second);
    out += '"';
  }
  return out + "}";
}

// ---- registry ----

void MetricsRegistry::describe(const std::string& name, const std::string& help, MetricType type,
                               std::vector<double> buckets) {
  std::lock_guard lock(mutex_);
  if (families_.count(name)) throw std::logic_error("metric described twice: " + name);
  if (type == MetricType::histogram && buckets.empty()) throw std::logic_error("histogram without buckets: " + name);
  Family f;
  f.help = help;
  f.type = type;
  f.buckets = std::move(buckets);
  families_.emplace(name, std::move(f));
  order_.push_back(name);
}

MetricsRegistry::Family& MetricsRegistry::family(const std::string& name, MetricType type) {
  auto it = families_.find(name);
  if (it == families_.end()) throw std::logic_error("metric not described: " + name);
  if (it->second.type != type) throw std::logic_error("metric of another type: " + name);
  return it->second;
}

void MetricsRegistry::add(const std::string& name, const MetricLabels& labels, double delta) {
  std::lock_guard lock(mutex_);
  auto it = families_.find(name);
  if (it == families_.end()) throw std::logic_error("metric not described: " + name);
  if (it->second.type == MetricType::histogram) throw std::logic_error("add() on a histogram: " + name);
  if (it->second.type == MetricType::counter && delta < 0) throw std::logic_error("counter decreased: " + name);
  it->second.values[labels] += delta;
}

void MetricsRegistry::set(const std::string& name, const MetricLabels& labels, double value) {
  std::lock_guard lock(mutex_);
  family(name, MetricType::gauge).values[labels] = value;
}

void MetricsRegistry::observe(const std::string& name, const MetricLabels& labels, double value) {
  std::lock_guard lock(mutex_);
  Family& f = family(name, MetricType::histogram);
  Histogram& h = f.histograms[labels];
  if (h.bucket_counts.empty()) h.bucket_counts.assign(f.buckets.size(), 0);
  for (std::size_t i = 0; i < f.buckets.size(); ++i) {
    if (value <= f.buckets[i]) {
      ++h.bucket_counts[i];
      break;
    }
  }
  ++h.count;  // a value above every bucket counts only in +Inf, which is the count
  h.sum += value;
}

void MetricsRegistry::replace(const std::string& name, const std::vector<std::pair<MetricLabels, double>>& samples) {
  std::lock_guard lock(mutex_);
  Family& f = family(name, MetricType::gauge);
  f.values.clear();
  for (const auto& [labels, value] : samples) f.values[labels] = value;
}

void MetricsRegistry::touch(const std::string& name, const MetricLabels& labels) {
  std::lock_guard lock(mutex_);
  auto it = families_.find(name);
  if (it == families_.end()) throw std::logic_error("metric not described: " + name);
  Family& f = it->second;
  if (f.type != MetricType::histogram) {
    f.values.try_emplace(labels, 0.0);
  } else if (auto [h, added] = f.histograms.try_emplace(labels); added) {
    h->second.bucket_counts.assign(f.buckets.size(), 0);
  }
}

double MetricsRegistry::value(const std::string& name, const MetricLabels& labels) const {
  std::lock_guard lock(mutex_);
  auto it = families_.find(name);
  if (it == families_.end()) return 0;
  if (it->second.type == MetricType::histogram) {
    auto h = it->second.histograms.find(labels);
    return h == it->second.histograms.end() ? 0 : static_cast<double>(h->second.count);
  }
  auto v = it->second.values.find(labels);
  return v == it->second.values.end() ? 0 : v->second;
}

bool MetricsRegistry::has_family(const std::string& name) const {
  std::lock_guard lock(mutex_);
  return families_.count(name) > 0;
}

std::string MetricsRegistry::render() const {
  std::lock_guard lock(mutex_);
  std::string out;
  out.reserve(4096);
  for (const auto& name : order_) {
    const Family& f = families_.at(name);
    out += "# HELP " + name + " " + escape_help(f.help) + "\n";
    out += "# TYPE " + name + " " +
           (f.type == MetricType::counter ? "counter" : f.type == MetricType::gauge ? "gauge" : "histogram") + "\n";
    if (f.type != MetricType::histogram) {
      for (const auto& [labels, v] : f.values) out += name + format_labels(labels) + " " + format_sample_value(v) + "\n";
      continue;
    }
    for (const auto& [labels, h] : f.histograms) {
      std::uint64_t cumulative = 0;
      for (std::size_t i = 0; i <= f.buckets.size(); ++i) {
        MetricLabels with_le = labels;
        if (i < f.buckets.size()) {
          cumulative += h.bucket_counts[i];
          with_le.emplace_back("le", format_sample_value(f.buckets[i]));
        } else {
          cumulative = h.count;
          with_le.emplace_back("le", "+Inf");
        }
        out += name + "_bucket" + format_labels(with_le) + " " + std::to_string(cumulative) + "\n";
      }
      out += name + "_sum" + format_labels(labels) + " " + format_sample_value(h.sum) + "\n";
      out += name + "_count" + format_labels(labels) + " " + std::to_string(h.count) + "\n";
    }
  }
  return out;
}

// ---- librdkafka statistics ----

KafkaStatistics parse_kafka_statistics(std::string_view json) {
  KafkaStatistics out;
  const auto doc = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) return out;
  if (auto brokers = doc.find("brokers"); brokers != doc.end() && brokers->is_object()) {
    for (const auto& [_, b] : brokers->items()) {
      // Bootstrap entries have nodeid -1; the group coordinator appears again as a "logical" broker.
      if (!b.is_object() || b.value("nodeid", -1) < 0 || b.value("source", "") == "logical") continue;
      ++out.brokers;
      if (b.value("state", "") == "UP") ++out.brokers_up;
    }
  }
  if (auto topics = doc.find("topics"); topics != doc.end() && topics->is_object()) {
    for (const auto& [topic_name, t] : topics->items()) {
      if (!t.is_object()) continue;
      auto partitions = t.find("partitions");
      if (partitions == t.end() || !partitions->is_object()) continue;
      for (const auto& [_, p] : partitions->items()) {
        if (!p.is_object()) continue;
        const std::int64_t partition = p.value("partition", std::int64_t{-1});
        std::int64_t lag = p.value("consumer_lag", std::int64_t{-1});
        // A partition nothing was ever committed for has no lag (-1); when it holds no messages either, its
        // lag is 0 (stable end offset = low watermark).
        const std::int64_t lo = p.value("lo_offset", std::int64_t{-1});
        const std::int64_t end = p.value("ls_offset", p.value("hi_offset", std::int64_t{-1}));
        if (lag < 0 && lo >= 0 && end == lo) lag = 0;
        // -1 is the "unassigned" pseudo-partition; "none" a partition this consumer does not fetch (revoked).
        if (partition < 0 || lag < 0 || p.value("fetch_state", "none") == "none") continue;
        out.lag.push_back({t.value("topic", topic_name), static_cast<std::int32_t>(partition), lag});
      }
    }
  }
  return out;
}

std::string operation_label(std::string_view operation) {
  std::string out;
  for (char c : operation) {
    const bool keep = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (c >= 'A' && c <= 'Z') out += static_cast<char>(c - 'A' + 'a');
    else if (keep) out += c;
    else if (!out.empty() && out.back() != '_') out += '_';
  }
  while (!out.empty() && out.back() == '_') out.pop_back();
  return out.empty() ? "unknown" : out;
}

// ---- the service's metrics ----

namespace {

constexpr const char* kBuildInfo = "strategy_consumer_build_info";
constexpr const char* kStartTime = "strategy_consumer_start_time_seconds";
constexpr const char* kMessages = "strategy_consumer_messages_total";
constexpr const char* kDeadLetters = "strategy_consumer_dead_letters_total";
constexpr const char* kBatches = "strategy_consumer_batches_total";
constexpr const char* kFenced = "strategy_consumer_batches_fenced_total";
constexpr const char* kLettersRefused = "strategy_consumer_dead_letters_refused_total";
constexpr const char* kInDoubt = "strategy_consumer_commits_in_doubt_total";
constexpr const char* kBatchSize = "strategy_consumer_batch_size_messages";
constexpr const char* kDbWrite = "strategy_consumer_database_write_seconds";
constexpr const char* kRetries = "strategy_consumer_retries_total";
constexpr const char* kStalled = "strategy_consumer_stalled";
constexpr const char* kLastCommit = "strategy_consumer_last_commit_timestamp_seconds";
constexpr const char* kLag = "strategy_consumer_consumer_lag_messages";
constexpr const char* kAssigned = "strategy_consumer_assigned_partitions";
constexpr const char* kBrokersUp = "strategy_consumer_kafka_brokers_up";
constexpr const char* kRuleEvaluations = "strategy_consumer_rule_evaluations_total";
constexpr const char* kRuleRejections = "strategy_consumer_rule_rejections_total";
constexpr const char* kRuleErrors = "strategy_consumer_rule_errors_total";
constexpr const char* kRuleWarnings = "strategy_consumer_rule_warnings_total";
constexpr const char* kRuleSeconds = "strategy_consumer_rule_seconds_total";
constexpr const char* kRuleEngineFailures = "strategy_consumer_rule_engine_failures_total";

double unix_seconds_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

Metrics::Metrics(std::string version) : last_heartbeat_(Clock::now().time_since_epoch().count()) {
  auto& r = registry_;
  r.describe(kBuildInfo, "Build of this strategy-consumer (always 1)", MetricType::gauge);
  r.set(kBuildInfo, {{"version", version}}, 1);
  r.describe(kStartTime, "When the process started (Unix seconds)", MetricType::gauge);
  r.set(kStartTime, {}, std::floor(unix_seconds_now()));
  r.describe(kMessages,
             "Messages of committed batches by outcome: stored_new, stored_updated, outdated (older than the stored "
             "re-discovery: not applied), duplicate_in_batch (folded into the row of an earlier message of the same "
             "strategy_hash), dead_lettered",
             MetricType::counter);
  for (const char* outcome : {"stored_new", "stored_updated", "outdated", "duplicate_in_batch", "dead_lettered"}) {
    r.add(kMessages, {{"outcome", outcome}}, 0);
  }
  r.describe(kDeadLetters, "Dead letters of committed batches by the stage that refused the message",
             MetricType::counter);
  for (const char* stage : {"decode", "validate", "database"}) r.add(kDeadLetters, {{"stage", stage}}, 0);
  r.describe(kBatches, "Batches committed to PostgreSQL", MetricType::counter);
  r.add(kBatches, {}, 0);
  r.describe(kFenced, "Batches abandoned because another consumer of the group owned their partitions",
             MetricType::counter);
  r.add(kFenced, {}, 0);
  r.describe(kLettersRefused,
             "Dead letters the dead-letter topic refused for good, by what was delivered instead: minimal (source, "
             "stage and refusal, no original) or none (undeliverable: the offset was committed without a letter)",
             MetricType::counter);
  for (const char* delivered : {"minimal", "none"}) r.add(kLettersRefused, {{"delivered", delivered}}, 0);
  r.describe(kInDoubt,
             "Batch COMMITs whose outcome was unknown (connection lost during COMMIT), by what the stored offsets "
             "showed: committed, or not_committed (written again)",
             MetricType::counter);
  for (const char* outcome : {"committed", "not_committed"}) r.add(kInDoubt, {{"outcome", outcome}}, 0);
  r.describe(kBatchSize, "Messages per committed batch", MetricType::histogram,
             {1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 50000});
  r.describe(kDbWrite, "Duration of one successful batch write (COPY, upsert, offsets, COMMIT)",
             MetricType::histogram, {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30});
  r.describe(kRetries, "Failed attempts of an operation that were retried, by operation", MetricType::counter);
  r.describe(kStalled,
             "1 while an operation is being retried or a database write is hung (the service reports itself not "
             "ready)",
             MetricType::gauge);
  r.set(kStalled, {}, 0);
  r.describe(kLastCommit, "When the last batch committed (Unix seconds; 0 before the first)", MetricType::gauge);
  r.set(kLastCommit, {}, 0);
  r.describe(kLag,
             "Messages of each assigned partition not yet committed: log-end offset minus committed offset "
             "(librdkafka statistics)",
             MetricType::gauge);
  r.describe(kAssigned, "Partitions assigned to this consumer", MetricType::gauge);
  r.set(kAssigned, {}, 0);
  r.describe(kBrokersUp, "Kafka brokers this consumer is connected to (librdkafka statistics)", MetricType::gauge);
  // Series that exist from the start show as 0 rather than missing (rate() and alerts need them).
  r.touch(kBatchSize);
  r.touch(kDbWrite);
}

void Metrics::register_rule(const std::string& rule) {
  if (!registry_.has_family(kRuleEvaluations)) {
    // Several threads may race here only if a rules engine registers from several; describe() refuses twice.
    try {
      registry_.describe(kRuleEvaluations, "Messages an analyst rule was run on, by rule", MetricType::counter);
      registry_.describe(kRuleRejections, "Messages an analyst rule refused, by rule", MetricType::counter);
      registry_.describe(kRuleErrors, "Messages on which an analyst rule failed (raised), by rule",
                         MetricType::counter);
      registry_.describe(kRuleWarnings, "Messages an analyst rule of severity warn flagged, by rule",
                         MetricType::counter);
      registry_.describe(kRuleSeconds, "Time spent in an analyst rule, by rule", MetricType::counter);
    } catch (const std::logic_error&) {
    }
  }
  for (const char* family : {kRuleEvaluations, kRuleRejections, kRuleErrors, kRuleWarnings, kRuleSeconds}) {
    registry_.add(family, {{"rule", rule}}, 0);
  }
}

void Metrics::rules_evaluated(const RuleStats& totals) {
  std::lock_guard lock(mutex_);
  if (!registry_.has_family(kRuleEngineFailures)) {
    registry_.describe(kRuleEngineFailures,
                       "Batches on which the analyst-rule engine itself failed (every strategy of the batch refused "
                       "with stage rule:engine)",
                       MetricType::counter);
    registry_.add(kRuleEngineFailures, {}, 0);
  }
  if (totals.engine_failures > engine_failures_) {
    registry_.add(kRuleEngineFailures, {}, static_cast<double>(totals.engine_failures - engine_failures_));
    engine_failures_ = totals.engine_failures;
  }
  for (const auto& now : totals.rules) {
    auto [it, added] = rule_totals_.try_emplace(now.name);
    if (added) register_rule(now.name);
    const RuleCounters& before = it->second;
    const MetricLabels labels{{"rule", now.name}};
    // A counter only grows: totals are kept across reloads by name, so a smaller value never comes.
    auto grown = [](auto a, auto b) { return a > b ? static_cast<double>(a - b) : 0.0; };
    registry_.add(kRuleEvaluations, labels, grown(now.evaluated, before.evaluated));
    registry_.add(kRuleRejections, labels, grown(now.rejected, before.rejected));
    registry_.add(kRuleErrors, labels, grown(now.errors, before.errors));
    registry_.add(kRuleWarnings, labels, grown(now.warned, before.warned));
    registry_.add(kRuleSeconds, labels, grown(now.seconds, before.seconds));
    it->second = now;
  }
}

std::string Metrics::stall_reason() const {
  std::lock_guard lock(mutex_);
  return stall_reason_;
}

void Metrics::heartbeat(std::size_t assigned_partitions) {
  last_heartbeat_.store(Clock::now().time_since_epoch().count());
  if (assigned_partitions_.exchange(assigned_partitions) != assigned_partitions) {
    registry_.set(kAssigned, {}, static_cast<double>(assigned_partitions));
  }
}

void Metrics::batch_committed(const BatchReport& report) {
  const auto& letters = report.dead_letters_by_stage;
  auto& r = registry_;
  r.add(kMessages, {{"outcome", "stored_new"}}, static_cast<double>(report.stored_new));
  r.add(kMessages, {{"outcome", "stored_updated"}}, static_cast<double>(report.stored_updated));
  r.add(kMessages, {{"outcome", "outdated"}}, static_cast<double>(report.outdated));
  r.add(kMessages, {{"outcome", "duplicate_in_batch"}}, static_cast<double>(report.duplicates));
  r.add(kMessages, {{"outcome", "dead_lettered"}}, static_cast<double>(report.dead_lettered));
  std::size_t by_stage = 0;
  for (const auto& [stage, n] : letters) {
    r.add(kDeadLetters, {{"stage", stage}}, static_cast<double>(n));
    by_stage += n;
  }
  // Letters the pipeline counted without naming a stage (none today) still show up.
  if (report.dead_lettered > by_stage) {
    r.add(kDeadLetters, {{"stage", "unknown"}}, static_cast<double>(report.dead_lettered - by_stage));
  }
  r.add(kBatches);
  r.observe(kBatchSize, {}, static_cast<double>(report.messages));
  r.set(kLastCommit, {}, unix_seconds_now());
}

void Metrics::batch_fenced() { registry_.add(kFenced); }

void Metrics::dead_letter_refused(bool delivered_minimal) {
  registry_.add(kLettersRefused, {{"delivered", delivered_minimal ? "minimal" : "none"}});
}

void Metrics::commit_in_doubt(bool committed) {
  registry_.add(kInDoubt, {{"outcome", committed ? "committed" : "not_committed"}});
}

void Metrics::database_write(double seconds) { registry_.observe(kDbWrite, {}, seconds); }

void Metrics::retrying(const std::string& operation) {
  registry_.add(kRetries, {{"target", operation_label(operation)}});
}

void Metrics::stall_changed(bool stalled, const std::string& reason) {
  std::lock_guard lock(mutex_);
  stall_reason_ = stalled ? reason : std::string();
  registry_.set(kStalled, {}, stalled ? 1 : 0);
}

void Metrics::kafka_statistics(std::string_view json) {
  const KafkaStatistics stats = parse_kafka_statistics(json);
  std::vector<std::pair<MetricLabels, double>> lag;
  lag.reserve(stats.lag.size());
  for (const auto& p : stats.lag) {
    lag.push_back({{{"topic", p.topic}, {"partition", std::to_string(p.partition)}}, static_cast<double>(p.lag)});
  }
  registry_.replace(kLag, lag);
  registry_.set(kBrokersUp, {}, stats.brokers_up);
  kafka_brokers_up_.store(stats.brokers > 0 ? stats.brokers_up : -1);
}

}  // namespace strategy_consumer
