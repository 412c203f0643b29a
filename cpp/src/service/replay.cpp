#include "strategy_consumer/service/replay.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "strategy_consumer/kafka/source.hpp"
#include "strategy_consumer/model/timestamp.hpp"
#include "strategy_consumer/postgres/sink.hpp"

namespace strategy_consumer {
namespace {

// Letters passed over in one poll before it returns (the loop's heartbeat and stop checks come between polls).
constexpr int kSkipsPerPoll = 1000;

bool contains(const std::vector<std::string>& list, const std::string& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

}  // namespace

ReplayFilter ReplayFilter::from(const ReplayConfig& c) {
  ReplayFilter f{c.stages, c.rule_ids, c.source_partitions, c.from_offset, c.to_offset, std::nullopt, std::nullopt};
  if (!c.since.empty()) f.since_us = parse_rfc3339_us(c.since);
  if (!c.until.empty()) f.until_us = parse_rfc3339_us(c.until);
  return f;
}

bool ReplayFilter::selects(const ReadDeadLetter& letter) const {
  if (!stages.empty()) {
    const bool rule_stage = letter.stage.rfind("rule:", 0) == 0;
    if (!contains(stages, letter.stage) && !(rule_stage && contains(stages, "rule"))) return false;
  }
  if (!rule_ids.empty() && std::none_of(letter.rule_ids.begin(), letter.rule_ids.end(),
                                        [&](const std::string& r) { return contains(rule_ids, r); })) {
    return false;
  }
  if (!source_partitions.empty() &&
      std::find(source_partitions.begin(), source_partitions.end(), letter.source.partition) ==
          source_partitions.end()) {
    return false;
  }
  if (from_offset >= 0 && letter.source.offset < from_offset) return false;
  if (to_offset >= 0 && letter.source.offset > to_offset) return false;
  if (since_us || until_us) {
    if (!letter.letter_time_us) return false;
    if (since_us && *letter.letter_time_us < *since_us) return false;
    if (until_us && *letter.letter_time_us >= *until_us) return false;
  }
  return true;
}

// ---- the tally

std::uint32_t ReplayTally::stage_id(const std::string& stage) {
  const auto it = std::find(stage_names_.begin(), stage_names_.end(), stage);
  if (it != stage_names_.end()) return static_cast<std::uint32_t>(it - stage_names_.begin());
  stage_names_.push_back(stage);
  return static_cast<std::uint32_t>(stage_names_.size() - 1);
}

bool ReplayTally::admit(const ReadDeadLetter& letter, const ReplayFilter& filter, const SourcePosition& at) {
  std::lock_guard lock(mutex_);
  ++values_;
  if (!letter.unreadable.empty()) {
    ++unreadable_;
    spdlog::warn("{}[{}]@{} is not a dead letter ({}): skipped", at.topic, at.partition, at.offset, letter.unreadable);
    return false;
  }
  if (!filter.selects(letter)) {
    ++filtered_out_;
    return false;
  }
  StageCounts& counts = stages_[letter.stage];
  ++counts.letters;
  if (!letter.replayable()) {
    ++counts.not_replayable[letter.not_replayable];
    return false;
  }
  const auto [it, first] = replayed_.emplace(Position{at.partition, at.offset}, stage_id(letter.stage));
  if (first) ++counts.replayed;
  return true;
}

void ReplayTally::refused_again(const DeadLetter& letter) {
  std::lock_guard lock(mutex_);
  refused_[{letter.source.partition, letter.source.offset}] = {
      letter.stage, letter.reasons.empty() ? std::string() : letter.reasons.front().rule};
}

std::string ReplayTally::report_json(const PipelineCounters& counters, bool dry_run, const std::string& topic,
                                     const std::string& group_id) const {
  using nlohmann::json;
  std::lock_guard lock(mutex_);
  // Each replayed position's outcome, by the stage of its letter.
  std::map<std::string, std::uint64_t> passed;
  std::map<std::string, std::map<std::string, std::map<std::string, std::uint64_t>>> failing;
  std::uint64_t passed_total = 0, failing_total = 0, not_replayable_total = 0;
  for (const auto& [position, stage] : replayed_) {
    const std::string& was = stage_names_[stage];
    const auto refused = refused_.find(position);
    if (refused == refused_.end()) {
      ++passed[was];
      ++passed_total;
    } else {
      ++failing[was][refused->second.first][refused->second.second];
      ++failing_total;
    }
  }
  json stages = json::object();
  for (const auto& [name, counts] : stages_) {
    json s{{"letters", counts.letters},
           {"replayed", counts.replayed},
           {"passed", passed.count(name) ? passed.at(name) : 0},
           {"still_failing", failing.count(name) ? json(failing.at(name)) : json::object()},
           {"not_replayable", json(counts.not_replayable)}};
    for (const auto& [_, n] : counts.not_replayable) not_replayable_total += n;
    stages[name] = std::move(s);
  }
  json report{{"dry_run", dry_run},
              {"dead_letter_topic", topic},
              {"replay_group_id", group_id},
              {"values_read", values_},
              {"unreadable", unreadable_},
              {"filtered_out", filtered_out_},
              {"not_replayable", not_replayable_total},
              {"replayed", replayed_.size()},
              {"passed", passed_total},
              {"still_failing", failing_total},
              {"rows", {{"inserted", counters.stored_new.load()},
                        {"updated", counters.stored_updated.load()},
                        {"outdated", counters.outdated.load()},
                        {"duplicate_in_batch", counters.duplicate_in_batch.load()}}},
              {"stages", std::move(stages)}};
  return report.dump(-1, ' ', false, json::error_handler_t::replace);
}

// ---- the source and the letters

ReplaySource::ReplaySource(std::unique_ptr<MessageSource> letters, ReplayFilter filter,
                           std::shared_ptr<ReplayTally> tally, bool dry_run)
    : letters_(std::move(letters)), filter_(std::move(filter)), tally_(std::move(tally)), dry_run_(dry_run) {}

std::optional<SourceMessage> ReplaySource::poll(std::chrono::milliseconds timeout) {
  for (int skipped = 0; skipped < kSkipsPerPoll; ++skipped) {
    auto value = letters_->poll(timeout);
    if (!value) return std::nullopt;
    ReadDeadLetter letter = read_dead_letter(value->payload);
    if (!tally_->admit(letter, filter_, value->source)) continue;
    SourceMessage out{value->source, std::move(letter.original_message)};
    // Ordered among re-discoveries by when the original was published (letters written before the field
    // existed: by when the letter was).
    if (letter.source.timestamp_ms >= 0) out.source.timestamp_ms = letter.source.timestamp_ms;
    return out;
  }
  return std::nullopt;
}

void ReplaySource::commit(const std::vector<PartitionOffset>& offsets) {
  if (!dry_run_) letters_->commit(offsets);
}

std::uint64_t ReplayLetters::send(const DeadLetter& letter) {
  tally_->refused_again(letter);
  return ++sent_;
}

PipelineParts replay_parts(const Config& config, std::shared_ptr<ReplayTally> tally) {
  KafkaConfig kafka = config.kafka;
  kafka.topic = config.kafka.dlq_topic;
  kafka.group_id = config.replay.group_id;
  const WriteMode mode = config.replay.dry_run ? WriteMode::rollback : WriteMode::commit;
  return {
      .make_sink = [postgres = config.postgres, group = kafka.group_id, mode]() -> std::unique_ptr<BatchSink> {
        return std::make_unique<PostgresSink>(postgres, group, mode);
      },
      .make_source = [kafka, filter = ReplayFilter::from(config.replay), tally,
                      dry_run = config.replay.dry_run](RebalanceListener& listener) -> std::unique_ptr<MessageSource> {
        return std::make_unique<ReplaySource>(std::make_unique<KafkaSource>(kafka, listener, /*direct=*/true), filter,
                                              tally, dry_run);
      },
      .make_dead_letters = [tally](PipelineObserver&) -> std::unique_ptr<DeadLetterSink> {
        return std::make_unique<ReplayLetters>(tally);
      },
  };
}

}  // namespace strategy_consumer
