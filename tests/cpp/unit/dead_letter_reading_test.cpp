// Dead letters read back (read_dead_letter, pure): every letter encode_dead_letter writes reads back to what was
// sent, and what a replay can not use says why.
#include <gtest/gtest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "strategy_consumer/kafka/dead_letter_reading.hpp"
#include "strategy_consumer/kafka/dead_letters.hpp"
#include "strategy_consumer/model/text.hpp"

namespace strategy_consumer {
namespace {

constexpr std::int64_t kNow = 1705307400LL * 1000000 + 123456;  // 2024-01-15T08:30:00.123456Z

DeadLetter letter_of(std::string original, std::string format = "json") {
  DeadLetter l;
  l.original_message = std::move(original);
  l.stage = "rule:too_few_trades";
  l.reasons = {{"rule:too_few_trades", "", "", "only 3 trades"}, {"format.type", "score", "x", "a number"}};
  l.source = {"discovered-strategies", 7, 123456789012LL, 1705307400999};
  l.message_format = std::move(format);
  return l;
}

TEST(ReadDeadLetter, ATextLetterReadsBackWhole) {
  const std::string original = R"({"symbol":"BTC/USD","score":0.5})";
  const ReadDeadLetter r = read_dead_letter(encode_dead_letter(letter_of(original), kNow));
  EXPECT_TRUE(r.replayable()) << r.unreadable << r.not_replayable;
  EXPECT_EQ(r.original_message, original);
  EXPECT_EQ(r.stage, "rule:too_few_trades");
  EXPECT_EQ(r.rule_ids, (std::vector<std::string>{"rule:too_few_trades", "format.type"}));
  EXPECT_EQ(r.source.topic, "discovered-strategies");
  EXPECT_EQ(r.source.partition, 7);
  EXPECT_EQ(r.source.offset, 123456789012LL);
  EXPECT_EQ(r.source.timestamp_ms, 1705307400999) << "the original's Kafka timestamp travels in the letter";
  ASSERT_TRUE(r.letter_time_us.has_value());
  EXPECT_EQ(*r.letter_time_us, kNow);
  EXPECT_EQ(r.message_format, "json");
  EXPECT_NE(r.error.find("only 3 trades"), std::string::npos);
}

TEST(ReadDeadLetter, BinaryOriginalsComeBackByteForByte) {
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes += static_cast<char>(i);
  for (std::size_t n : {0u, 1u, 2u, 3u, 4u, 255u, 256u}) {
    const std::string original = bytes.substr(0, n);
    const ReadDeadLetter r = read_dead_letter(encode_dead_letter(letter_of(original, "protobuf"), kNow));
    ASSERT_TRUE(r.replayable()) << n << ": " << r.unreadable;
    EXPECT_EQ(r.original_message, original) << n << " bytes";
    EXPECT_EQ(r.message_format, "protobuf");
  }
}

TEST(ReadDeadLetter, ALetterWithoutTheOriginalsTimestampHasNone) {
  DeadLetter l = letter_of("{}");
  l.source.timestamp_ms = -1;
  const std::string value = encode_dead_letter(l, kNow);
  EXPECT_EQ(value.find("source_timestamp_ms"), std::string::npos);
  EXPECT_EQ(read_dead_letter(value).source.timestamp_ms, -1);
}

TEST(ReadDeadLetter, ATruncatedOriginalIsNotReplayable) {
  const ReadDeadLetter r = read_dead_letter(encode_dead_letter(letter_of(std::string(5000, 'x')), kNow, 2000));
  EXPECT_TRUE(r.unreadable.empty());
  EXPECT_EQ(r.not_replayable, "truncated");
  EXPECT_FALSE(r.replayable());
  EXPECT_EQ(r.stage, "rule:too_few_trades") << "still filtered and counted by its stage";
  EXPECT_EQ(r.source.offset, 123456789012LL);
}

TEST(ReadDeadLetter, AMinimalLetterIsNotReplayable) {
  const ReadDeadLetter r =
      read_dead_letter(encode_minimal_dead_letter(letter_of("{}"), "Broker: Message size too large", kNow, 2u << 20));
  EXPECT_EQ(r.not_replayable, "omitted");
  EXPECT_EQ(r.stage, "rule:too_few_trades");
  EXPECT_EQ(r.source.partition, 7);
  EXPECT_EQ(r.source.timestamp_ms, 1705307400999);
}

TEST(ReadDeadLetter, ValuesThatAreNoLetterSayWhy) {
  EXPECT_EQ(read_dead_letter("not json").unreadable, "not a JSON object");
  EXPECT_EQ(read_dead_letter("[1,2]").unreadable, "not a JSON object");
  EXPECT_EQ(read_dead_letter("").unreadable, "not a JSON object");
  EXPECT_EQ(read_dead_letter(R"({"original_message":"{}"})").unreadable, "no stage");
  EXPECT_EQ(read_dead_letter(R"({"stage":"decode"})").unreadable, "no original_message");
  EXPECT_EQ(read_dead_letter(R"({"stage":"decode","original_message":7})").unreadable, "no original_message");
  EXPECT_EQ(read_dead_letter(R"({"stage":"decode","original_message":"ab$=","original_message_encoding":"base64"})")
                .unreadable,
            "original_message is not base64");
  // Fields of the wrong type are left out, not trusted.
  const ReadDeadLetter r = read_dead_letter(
      R"({"stage":"validate","original_message":"{}","source_partition":"7","source_offset":1.5,"reasons":[1,{"rule":"x"}]})");
  EXPECT_TRUE(r.replayable());
  EXPECT_EQ(r.source.partition, -1);
  EXPECT_EQ(r.source.offset, -1);
  EXPECT_EQ(r.rule_ids, std::vector<std::string>{"x"});
  EXPECT_FALSE(r.letter_time_us.has_value());
}

TEST(Base64, DecodesWhatItEncodesAndRefusesTheRest) {
  for (std::string s : {"", "a", "ab", "abc", "abcd", "\xff\x00\x10"}) {
    EXPECT_EQ(base64_decode(base64_encode(s)), s);
  }
  EXPECT_EQ(base64_decode("TWFu"), "Man");
  EXPECT_EQ(base64_decode("TWE="), "Ma");
  EXPECT_EQ(base64_decode("TQ=="), "M");
  for (const char* bad : {"TWF", "TW=u", "T===", "TQ==TQ==", "TWF\n", "TW u", "====", "TWE=="}) {
    EXPECT_FALSE(base64_decode(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace strategy_consumer
