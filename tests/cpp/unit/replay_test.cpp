// The replay of dead letters (service/replay.hpp) without a broker or a database: the filters, the source that
// turns letters into original messages, and the report of what passed and what still fails.
#include <gtest/gtest.h>

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "strategy_consumer/kafka/dead_letters.hpp"
#include "strategy_consumer/service/replay.hpp"

namespace strategy_consumer {
namespace {

using nlohmann::json;
constexpr std::int64_t kNow = 1705307400LL * 1000000;  // 2024-01-15T08:30:00Z

ReadDeadLetter letter(std::string stage, std::vector<std::string> rules, std::int32_t partition, std::int64_t offset,
                      std::optional<std::int64_t> time_us = kNow) {
  ReadDeadLetter l;
  l.original_message = "{}";
  l.stage = std::move(stage);
  l.rule_ids = std::move(rules);
  l.source = {"strategies", partition, offset, -1};
  l.letter_time_us = time_us;
  return l;
}

TEST(ReplayFilter, NoFilterSelectsEverything) {
  EXPECT_TRUE(ReplayFilter{}.selects(letter("decode", {"format.json"}, 0, 0, std::nullopt)));
}

TEST(ReplayFilter, StageMatchesExactlyAndRuleStandsForEveryRule) {
  ReplayFilter f;
  f.stages = {"validate"};
  EXPECT_TRUE(f.selects(letter("validate", {}, 0, 0)));
  EXPECT_FALSE(f.selects(letter("decode", {}, 0, 0)));
  EXPECT_FALSE(f.selects(letter("rule:x", {}, 0, 0)));
  f.stages = {"rule"};
  EXPECT_TRUE(f.selects(letter("rule:x", {}, 0, 0)));
  EXPECT_TRUE(f.selects(letter("rule:y", {}, 0, 0)));
  EXPECT_FALSE(f.selects(letter("validate", {}, 0, 0)));
  f.stages = {"rule:x", "database"};
  EXPECT_TRUE(f.selects(letter("rule:x", {}, 0, 0)));
  EXPECT_TRUE(f.selects(letter("database", {}, 0, 0)));
  EXPECT_FALSE(f.selects(letter("rule:y", {}, 0, 0)));
}

TEST(ReplayFilter, RuleIdMatchesAnyOfTheLettersReasons) {
  ReplayFilter f;
  f.rule_ids = {"range.max"};
  EXPECT_TRUE(f.selects(letter("validate", {"format.type", "range.max"}, 0, 0)));
  EXPECT_FALSE(f.selects(letter("validate", {"format.type"}, 0, 0)));
  EXPECT_FALSE(f.selects(letter("validate", {}, 0, 0)));
}

TEST(ReplayFilter, PartitionsAndOffsetRangeAreInclusive) {
  ReplayFilter f;
  f.source_partitions = {1, 3};
  f.from_offset = 10;
  f.to_offset = 20;
  EXPECT_TRUE(f.selects(letter("decode", {}, 1, 10)));
  EXPECT_TRUE(f.selects(letter("decode", {}, 3, 20)));
  EXPECT_FALSE(f.selects(letter("decode", {}, 1, 9)));
  EXPECT_FALSE(f.selects(letter("decode", {}, 1, 21)));
  EXPECT_FALSE(f.selects(letter("decode", {}, 2, 15)));
  f.source_partitions.clear();
  f.to_offset = -1;
  EXPECT_TRUE(f.selects(letter("decode", {}, 9, 1LL << 40)));
}

TEST(ReplayFilter, TimeRangeIsSinceInclusiveUntilExclusive) {
  ReplayConfig c;
  c.since = "2024-01-15T08:30:00Z";
  c.until = "2024-01-15T09:30:00+01:00";  // 08:30:00Z as well: an empty range
  ReplayFilter f = ReplayFilter::from(c);
  EXPECT_FALSE(f.selects(letter("decode", {}, 0, 0, kNow)));
  c.until = "2024-01-15T08:30:01Z";
  f = ReplayFilter::from(c);
  EXPECT_TRUE(f.selects(letter("decode", {}, 0, 0, kNow)));
  EXPECT_FALSE(f.selects(letter("decode", {}, 0, 0, kNow - 1)));
  EXPECT_FALSE(f.selects(letter("decode", {}, 0, 0, kNow + 1000000)));
  EXPECT_FALSE(f.selects(letter("decode", {}, 0, 0, std::nullopt))) << "no time: outside any time range";
}

// The dead-letter topic as a list of values at offsets 0, 1, ... of partition 0.
class ListSource : public MessageSource {
 public:
  explicit ListSource(std::vector<std::string> values) {
    for (auto& v : values) {
      queue_.push_back({{"dlq", 0, next_, 1705307400000 + next_}, std::move(v)});
      ++next_;
    }
  }
  std::optional<SourceMessage> poll(std::chrono::milliseconds) override {
    ++polls;
    if (queue_.empty()) return std::nullopt;
    auto m = std::move(queue_.front());
    queue_.pop_front();
    return m;
  }
  bool caught_up() const override { return queue_.empty(); }
  bool queue_empty() const override { return queue_.empty(); }
  std::set<TopicPartition> assignment() const override { return {{"dlq", 0}}; }
  void commit(const std::vector<PartitionOffset>& offsets) override { commits += offsets.size(); }
  void seek(const std::vector<PartitionOffset>&) override {}
  void close() override {}
  int polls = 0;
  std::size_t commits = 0;

 private:
  std::deque<SourceMessage> queue_;
  std::int64_t next_ = 0;
};

std::string encoded(const std::string& original, const std::string& stage, const std::string& rule,
                    std::int64_t source_offset, std::int64_t source_timestamp_ms = 1600000000000) {
  DeadLetter l{original, stage, {{rule, "", "", "refused"}}, {"strategies", 2, source_offset, source_timestamp_ms}, ""};
  return encode_dead_letter(l, kNow);
}

TEST(ReplaySource, HandsOnOriginalsAtTheLettersPositionWithTheOriginalsTimestamp) {
  auto tally = std::make_shared<ReplayTally>();
  auto list = std::make_unique<ListSource>(std::vector<std::string>{
      encoded("first", "validate", "range.max", 10),
      "garbage",
      encoded("skipped", "decode", "format.json", 11),
      encoded(std::string(5000, 'x'), "validate", "range.max", 12).substr(0, 0),  // an empty value: unreadable
      encode_dead_letter({std::string(5000, 'y'), "validate", {{"range.max", "", "", "r"}}, {"strategies", 2, 13, -1}, ""},
                         kNow, 1500),
      encoded("second", "rule:x", "rule:x", 14, -1),
  });
  ListSource* raw = list.get();
  ReplayFilter filter;
  filter.stages = {"validate", "rule"};
  ReplaySource source(std::move(list), filter, tally, /*dry_run=*/false);

  auto first = source.poll(std::chrono::milliseconds(1));
  ASSERT_TRUE(first);
  EXPECT_EQ(first->payload, "first");
  EXPECT_EQ(first->source.topic, "dlq");
  EXPECT_EQ(first->source.offset, 0);
  EXPECT_EQ(first->source.timestamp_ms, 1600000000000) << "the original's timestamp orders re-discoveries";
  auto second = source.poll(std::chrono::milliseconds(1));
  ASSERT_TRUE(second) << "garbage, a filtered letter and a truncated one are passed over in one poll";
  EXPECT_EQ(second->payload, "second");
  EXPECT_EQ(second->source.offset, 5);
  EXPECT_EQ(second->source.timestamp_ms, 1705307400005) << "without the original's: the letter's own";
  EXPECT_FALSE(source.poll(std::chrono::milliseconds(1)));

  source.commit({{"dlq", 0, 6, std::nullopt}});
  EXPECT_EQ(raw->commits, 1u);

  // The second message fails again at a rule; the first passes.
  ReplayLetters letters(tally);
  EXPECT_EQ(letters.send({"second", "rule:x", {{"rule:x", "", "", "still"}}, second->source, ""}), 1u);
  PipelineCounters counters;
  counters.stored_new = 1;
  const json report = json::parse(tally->report_json(counters, false, "dlq", "g-replay"));
  EXPECT_EQ(report["values_read"], 6);
  EXPECT_EQ(report["unreadable"], 2);
  EXPECT_EQ(report["filtered_out"], 1);
  EXPECT_EQ(report["not_replayable"], 1);
  EXPECT_EQ(report["replayed"], 2);
  EXPECT_EQ(report["passed"], 1);
  EXPECT_EQ(report["still_failing"], 1);
  EXPECT_EQ(report["rows"]["inserted"], 1);
  EXPECT_EQ(report["replay_group_id"], "g-replay");
  EXPECT_EQ(report["dry_run"], false);
  const json& validate = report["stages"]["validate"];
  EXPECT_EQ(validate["letters"], 2);
  EXPECT_EQ(validate["replayed"], 1);
  EXPECT_EQ(validate["passed"], 1);
  EXPECT_EQ(validate["not_replayable"], json({{"truncated", 1}}));
  EXPECT_EQ(validate["still_failing"], json::object());
  const json& rule = report["stages"]["rule:x"];
  EXPECT_EQ(rule["replayed"], 1);
  EXPECT_EQ(rule["passed"], 0);
  EXPECT_EQ(rule["still_failing"], json({{"rule:x", {{"rule:x", 1}}}}));
  EXPECT_FALSE(report["stages"].contains("decode")) << "filtered letters are not counted by stage";
}

TEST(ReplaySource, ADryRunCommitsNothingToKafka) {
  auto list = std::make_unique<ListSource>(std::vector<std::string>{encoded("a", "decode", "format.json", 1)});
  ListSource* raw = list.get();
  ReplaySource source(std::move(list), ReplayFilter{}, std::make_shared<ReplayTally>(), /*dry_run=*/true);
  ASSERT_TRUE(source.poll(std::chrono::milliseconds(1)));
  source.commit({{"dlq", 0, 1, std::nullopt}});
  EXPECT_EQ(raw->commits, 0u);
}

TEST(ReplaySource, AFloodOfSkippedLettersStillLetsThePollReturn) {
  std::vector<std::string> values(2500, "garbage");
  auto list = std::make_unique<ListSource>(values);
  ListSource* raw = list.get();
  auto tally = std::make_shared<ReplayTally>();
  ReplaySource source(std::move(list), ReplayFilter{}, tally, false);
  EXPECT_FALSE(source.poll(std::chrono::milliseconds(1)));
  EXPECT_EQ(raw->polls, 1000) << "at most 1000 values passed over per poll";
  while (!raw->caught_up()) source.poll(std::chrono::milliseconds(1));
  const json report = json::parse(tally->report_json(PipelineCounters{}, false, "dlq", "g"));
  EXPECT_EQ(report["unreadable"], 2500);
}

TEST(ReplayTally, AMessageRefusedTwiceCountsOnce) {
  ReplayTally tally;
  ReplayFilter all;
  const SourcePosition at{"dlq", 0, 4, -1};
  ASSERT_TRUE(tally.admit(letter("validate", {"range.max"}, 0, 1), all, at));
  ASSERT_TRUE(tally.admit(letter("validate", {"range.max"}, 0, 1), all, at));  // read again after a fence
  tally.refused_again({"", "validate", {{"range.max", "", "", ""}}, at, ""});
  tally.refused_again({"", "validate", {{"range.max", "", "", ""}}, at, ""});
  const json report = json::parse(tally.report_json(PipelineCounters{}, false, "dlq", "g"));
  EXPECT_EQ(report["replayed"], 1);
  EXPECT_EQ(report["still_failing"], 1);
  EXPECT_EQ(report["stages"]["validate"]["letters"], 2) << "letters count every reading";
  EXPECT_EQ(report["stages"]["validate"]["replayed"], 1);
}

}  // namespace
}  // namespace strategy_consumer
