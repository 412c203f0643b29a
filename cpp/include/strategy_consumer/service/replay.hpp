#pragma once
// `strategy-consumer replay-dead-letters`: the dead-letter topic read again, each selected letter's original
// message run through today's decoding, validation and rules, and what passes now stored as the main path stores
// it. It is the pipeline itself with three parts of its own:
//   - ReplaySource reads the dead-letter topic (kafka/KafkaSource, direct assignment) and hands the pipeline the
//     original messages of the letters the filters select (kafka/dead_letter_reading.hpp), each at its letter's
//     position and with the original's Kafka timestamp (so an old discovery does not overwrite a newer one);
//   - the sink is postgres/PostgresSink for the replay group (--replay_group_id): the rows and the dead-letter
//     topic's next offsets commit in one transaction, so a replay killed half way and started again stores
//     nothing twice. With --dry_run each batch is written and rolled back and no offset is stored or committed;
//   - ReplayLetters takes what still fails: it is counted for the report, never dead-lettered again (the letter
//     is still in the topic; sending it there again would replay it forever).
// Letters the filters pass over, letters whose original was cut or left out (not replayable) and values that are
// no letter are counted and skipped: nothing is stored for them, and their offsets are stored with the next
// replayed letter's batch.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "strategy_consumer/kafka/dead_letter_reading.hpp"
#include "strategy_consumer/model/config.hpp"
#include "strategy_consumer/pipeline/dead_letter_sink.hpp"
#include "strategy_consumer/pipeline/message_source.hpp"
#include "strategy_consumer/pipeline/pipeline.hpp"

namespace strategy_consumer {

// The filters of ReplayConfig, times parsed.
struct ReplayFilter {
  std::vector<std::string> stages;
  std::vector<std::string> rule_ids;
  std::vector<int> source_partitions;
  std::int64_t from_offset = -1;
  std::int64_t to_offset = -1;
  std::optional<std::int64_t> since_us;
  std::optional<std::int64_t> until_us;

  static ReplayFilter from(const ReplayConfig& config);
  // Every set filter holds. A letter without a time is outside any time range.
  bool selects(const ReadDeadLetter& letter) const;
};

// What a replay found, for the report: letters by the stage that refused them, and what replaying them did.
// Thread-safe (the consumer thread admits letters, writer threads report refusals).
class ReplayTally {
 public:
  // How the source disposed of one value of the dead-letter topic; true: replay it.
  bool admit(const ReadDeadLetter& letter, const ReplayFilter& filter, const SourcePosition& at);
  // A replayed message refused again (a letter the pipeline would have sent), by its dead-letter position.
  void refused_again(const DeadLetter& letter);
  // The report as JSON (counters: the rows the pipeline wrote, or with dry_run would have written).
  std::string report_json(const PipelineCounters& counters, bool dry_run, const std::string& topic,
                          const std::string& group_id) const;

 private:
  struct StageCounts {
    std::uint64_t letters = 0;   // selected letters of this stage
    std::uint64_t replayed = 0;  // of them, run through the pipeline (distinct positions)
    std::map<std::string, std::uint64_t> not_replayable;  // truncated, omitted
  };
  using Position = std::pair<std::int32_t, std::int64_t>;  // the letter's partition and offset
  struct PositionHash {
    std::size_t operator()(const Position& p) const noexcept {
      return std::hash<std::int64_t>()(p.second * 1000003 + p.first);
    }
  };
  std::uint32_t stage_id(const std::string& stage);

  mutable std::mutex mutex_;
  std::uint64_t values_ = 0;
  std::uint64_t unreadable_ = 0;
  std::uint64_t filtered_out_ = 0;
  std::vector<std::string> stage_names_;                      // interned: positions keep an index
  std::map<std::string, StageCounts> stages_;
  std::unordered_map<Position, std::uint32_t, PositionHash> replayed_;  // -> original stage
  // -> (stage now, first rule id now)
  std::unordered_map<Position, std::pair<std::string, std::string>, PositionHash> refused_;
};

// The pipeline's source during a replay: letters in, original messages out (see above).
class ReplaySource : public MessageSource {
 public:
  ReplaySource(std::unique_ptr<MessageSource> letters, ReplayFilter filter, std::shared_ptr<ReplayTally> tally,
               bool dry_run);
  std::optional<SourceMessage> poll(std::chrono::milliseconds timeout) override;
  bool caught_up() const override { return letters_->caught_up(); }
  bool queue_empty() const override { return letters_->queue_empty(); }
  std::set<TopicPartition> assignment() const override { return letters_->assignment(); }
  // Nothing is committed to Kafka in a dry run: a real replay of the same group must find the letters.
  void commit(const std::vector<PartitionOffset>& offsets) override;
  void seek(const std::vector<PartitionOffset>& positions) override { letters_->seek(positions); }
  void close() override { letters_->close(); }

 private:
  std::unique_ptr<MessageSource> letters_;
  ReplayFilter filter_;
  std::shared_ptr<ReplayTally> tally_;
  bool dry_run_;
};

// What still fails goes here: counted, not sent anywhere.
class ReplayLetters : public DeadLetterSink {
 public:
  explicit ReplayLetters(std::shared_ptr<ReplayTally> tally) : tally_(std::move(tally)) {}
  std::uint64_t send(const DeadLetter& letter) override;
  void flush(std::chrono::milliseconds, std::uint64_t) override {}

 private:
  std::shared_ptr<ReplayTally> tally_;
  std::atomic<std::uint64_t> sent_{0};
};

// The pipeline's parts for a replay of `config.kafka.dlq_topic` as config.replay says.
PipelineParts replay_parts(const Config& config, std::shared_ptr<ReplayTally> tally);

}  // namespace strategy_consumer
