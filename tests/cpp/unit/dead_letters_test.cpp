// The dead-letter JSON (encode_dead_letter, pure): shared/DESIGN.md "Dead-letter topic".
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "strategy_consumer/kafka/dead_letters.hpp"
#include "strategy_consumer/model/timestamp.hpp"

namespace strategy_consumer {
namespace {

using nlohmann::json;

constexpr std::size_t kMaxLetterBytes = 900 * 1024;
constexpr std::int64_t kNow = 1705307400LL * 1000000 + 123456;  // 2024-01-15T08:30:00.123456Z

// Standard base64 (RFC 4648) decoding, written here so the test does not trust the encoder's table.
std::string base64_decode(const std::string& in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  std::uint32_t buffer = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    const int v = value(c);
    if (v < 0) {
      ADD_FAILURE() << "not a base64 character: " << static_cast<int>(c);
      return out;
    }
    buffer = (buffer << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buffer >> bits) & 0xFF);
    }
  }
  return out;
}

DeadLetter sample_letter(std::string original) {
  DeadLetter l;
  l.original_message = std::move(original);
  l.stage = "decode";
  l.reasons = {{"format.required", "symbol", "", "required field is missing"},
               {"format.type", "score", "\"1.5\"", "must be a number, not string"}};
  l.source.topic = "discovered-strategies";
  l.source.partition = 7;
  l.source.offset = 123456789012LL;
  l.source.timestamp_ms = 1705307400000;
  return l;
}

TEST(EncodeDeadLetter, HasEveryField) {
  const std::string original = R"({"strategy_type":"SMA","score":"1.5"})";
  const DeadLetter letter = sample_letter(original);
  const json j = json::parse(encode_dead_letter(letter, kNow));
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j.at("original_message"), original) << "a UTF-8 original is kept as text, verbatim";
  EXPECT_FALSE(j.contains("original_message_encoding"));
  EXPECT_FALSE(j.contains("original_message_truncated"));
  EXPECT_EQ(j.at("error"), reasons_to_text(letter.reasons));
  EXPECT_NE(j.at("error").get<std::string>().find("format.required"), std::string::npos);
  EXPECT_NE(j.at("error").get<std::string>().find("format.type"), std::string::npos);
  EXPECT_EQ(j.at("stage"), "decode");
  EXPECT_EQ(j.at("source_topic"), "discovered-strategies");
  EXPECT_EQ(j.at("source_partition"), 7);
  EXPECT_EQ(j.at("source_offset"), 123456789012LL);
  ASSERT_TRUE(j.at("reasons").is_array());
  ASSERT_EQ(j.at("reasons").size(), 2u);
  EXPECT_EQ(j.at("reasons")[0].at("rule"), "format.required");
  EXPECT_EQ(j.at("reasons")[0].at("field"), "symbol");
  EXPECT_EQ(j.at("reasons")[0].at("message"), "required field is missing");
  EXPECT_EQ(j.at("reasons")[1].at("rule"), "format.type");
  EXPECT_EQ(j.at("reasons")[1].at("field"), "score");
  EXPECT_EQ(j.at("reasons")[1].at("value"), "\"1.5\"");
}

TEST(EncodeDeadLetter, TimestampIsRfc3339Utc) {
  struct Case {
    std::int64_t now;
    const char* text;
  };
  const std::vector<Case> cases = {
      {kNow, "2024-01-15T08:30:00.123456Z"},
      {1705307400LL * 1000000, "2024-01-15T08:30:00Z"},
      {0, "1970-01-01T00:00:00Z"},
  };
  for (const auto& c : cases) {
    const json j = json::parse(encode_dead_letter(sample_letter("x"), c.now));
    const std::string ts = j.at("timestamp").get<std::string>();
    EXPECT_EQ(ts, c.text);
    const auto back = parse_rfc3339_us(ts);
    ASSERT_TRUE(back.has_value()) << ts;
    EXPECT_EQ(*back, c.now);
  }
}

TEST(EncodeDeadLetter, OtherStages) {
  for (const char* stage : {"validate", "rule:min_sharpe", "database"}) {
    DeadLetter l = sample_letter("{}");
    l.stage = stage;
    EXPECT_EQ(json::parse(encode_dead_letter(l, kNow)).at("stage"), stage);
  }
}

TEST(EncodeDeadLetter, NonUtf8OriginalIsBase64) {
  const std::vector<std::string> originals = {
      std::string("\xff\xfe\x00\x01 binary", 11),
      "{\"symbol\":\"BTC\xe9\"}",         // Latin-1 é
      "\xc0\xaf",                          // overlong encoding of '/'
      "\xed\xa0\x80",                      // an encoded surrogate
      "\xf4\x90\x80\x80",                  // beyond U+10FFFF
      "abc\xe2\x82",                       // truncated sequence at the end
      std::string(1, '\x80'),
      std::string("a", 1) + std::string(1, '\xff'),  // 2 bytes: padding "=="
      std::string("ab", 2) + std::string(1, '\xff'),  // 3 bytes: no padding
  };
  for (const auto& original : originals) {
    const json j = json::parse(encode_dead_letter(sample_letter(original), kNow));
    EXPECT_EQ(j.at("original_message_encoding"), "base64");
    const std::string encoded = j.at("original_message").get<std::string>();
    EXPECT_EQ(encoded.size() % 4, 0u) << encoded;
    EXPECT_EQ(base64_decode(encoded), original);
  }
}

TEST(EncodeDeadLetter, ValidUtf8IsNotBase64) {
  for (const std::string original : {"", "plain", "€ 日本 😀", "tab\tnewline\n\"quote\"", "ctl\x01"}) {
    const json j = json::parse(encode_dead_letter(sample_letter(original), kNow));
    EXPECT_FALSE(j.contains("original_message_encoding")) << original;
    EXPECT_EQ(j.at("original_message"), original);
  }
  // A NUL byte is valid UTF-8 and survives JSON escaping.
  const std::string with_nul("a\0b", 3);
  EXPECT_EQ(json::parse(encode_dead_letter(sample_letter(with_nul), kNow)).at("original_message"), with_nul);
}

struct BigCase {
  const char* name;
  std::string original;
};

TEST(EncodeDeadLetter, TenMegabyteOriginalIsTruncatedBelowTheLimit) {
  constexpr std::size_t kTenMb = 10 * 1000 * 1000;
  std::string text(kTenMb, 'x');
  std::string escapes(kTenMb, '"');  // each byte doubles when JSON escapes it
  std::string controls(kTenMb, '\x01');  // each byte becomes \u0001
  std::string multibyte;
  while (multibyte.size() + 3 <= kTenMb) multibyte += "€";
  while (multibyte.size() < kTenMb) multibyte += 'y';
  // A message as the pipeline would really see it: a JSON object, too large.
  std::string message = R"({"symbol":"BTCUSDT","strategy_type":"SMA","score":1,"parameters":{)";
  for (int i = 0; message.size() < kTenMb - 40; ++i) message += "\"param_" + std::to_string(i) + "\":\"value\",";
  message += "\"last\":1}}";
  message.append(kTenMb - message.size(), ' ');
  std::string binary(kTenMb, '\xff');
  const std::vector<BigCase> cases = {{"ASCII", text},
                                      {"quotes", escapes},
                                      {"control characters", controls},
                                      {"3-byte characters", multibyte},
                                      {"JSON message", message},
                                      {"not UTF-8", binary}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    ASSERT_EQ(c.original.size(), kTenMb);
    const std::string out = encode_dead_letter(sample_letter(c.original), kNow);
    EXPECT_LE(out.size(), kMaxLetterBytes);
    const json j = json::parse(out);  // still one valid JSON document
    EXPECT_EQ(j.at("original_message_truncated"), true);
    EXPECT_EQ(j.at("original_message_bytes"), kTenMb);
    EXPECT_EQ(j.at("stage"), "decode");
    EXPECT_EQ(j.at("source_offset"), 123456789012LL);
    EXPECT_EQ(j.at("reasons").size(), 2u);
    const std::string kept = j.at("original_message").get<std::string>();
    // As much of the original as fits is kept: the letter uses a good part of its room, not a stub.
    EXPECT_GT(out.size(), kMaxLetterBytes / 4) << "kept " << kept.size() << " bytes of the original";
    if (c.original != binary) {
      EXPECT_FALSE(j.contains("original_message_encoding"));
      EXPECT_EQ(c.original.compare(0, kept.size(), kept), 0) << "the kept text is a prefix of the original";
    } else {
      EXPECT_EQ(j.at("original_message_encoding"), "base64");
      const std::string decoded = base64_decode(kept);
      EXPECT_GT(decoded.size(), 0u);
      EXPECT_EQ(c.original.compare(0, decoded.size(), decoded), 0) << "the kept bytes are a prefix of the original";
    }
  }
}

TEST(EncodeDeadLetter, OriginalJustBelowTheLimitIsKeptWhole) {
  const std::string original(800 * 1024, 'z');
  const std::string out = encode_dead_letter(sample_letter(original), kNow);
  EXPECT_LE(out.size(), kMaxLetterBytes);
  const json j = json::parse(out);
  EXPECT_EQ(j.at("original_message"), original);
  EXPECT_FALSE(j.contains("original_message_truncated"));
}

// ---- the byte budget and the minimal letter (issue 15: no message may stall dead-lettering) ----

DeadLetter many_reasons_letter(std::size_t count, std::size_t part_bytes, std::string original) {
  DeadLetter l = sample_letter(std::move(original));
  l.stage = "validate";
  l.reasons.clear();
  for (std::size_t i = 0; i < count; ++i) {
    l.reasons.push_back({"parameters.unknown", "parameters." + std::string(part_bytes, 'k'),
                         std::string(part_bytes, 'v'), "MACD_CROSSOVER has no parameter " + std::string(part_bytes, 'k')});
  }
  return l;
}

TEST(EncodeDeadLetter, ReasonsOfAnyNumberAndLengthKeepTheLetterWithinTheBudget) {
  // What a 1 MiB message of thousands of unknown keys, or one enormous key, used to become: several MiB.
  for (const auto& [count, part] : {std::pair<std::size_t, std::size_t>{5000, 200}, {1, 1 << 20}, {50, 20000}}) {
    SCOPED_TRACE(std::to_string(count) + " reason(s) of " + std::to_string(part) + " bytes");
    const DeadLetter l = many_reasons_letter(count, part, std::string(1 << 20, 'x'));
    const std::string out = encode_dead_letter(l, kNow);
    EXPECT_LE(out.size(), kMaxLetterBytes);
    const json j = json::parse(out);
    const auto& reasons = j.at("reasons");
    EXPECT_LE(reasons.size(), kMaxReasons + 1);
    if (count > kMaxReasons) {
      EXPECT_EQ(reasons.back().at("rule"), kMoreReasonsRule);
      EXPECT_EQ(reasons.back().at("value"), std::to_string(count - kMaxReasons));
    }
    EXPECT_LT(j.at("error").get<std::string>().size(), 20000u);
    // The original is cut last: most of the room is still its.
    EXPECT_EQ(j.at("original_message_truncated"), true);
    EXPECT_EQ(j.at("original_message_bytes"), 1u << 20);
    EXPECT_GT(j.at("original_message").get<std::string>().size(), 800u * 1024);
  }
}

TEST(EncodeDeadLetter, ASmallBudgetCutsTheReasonsBeforeTheOriginal) {
  const DeadLetter l = many_reasons_letter(20, 150, std::string(100000, 'x'));
  const std::string out = encode_dead_letter(l, kNow, 12000);
  EXPECT_LE(out.size(), 12000u);
  const json j = json::parse(out);
  ASSERT_EQ(j.at("reasons").size(), 2u) << "the first reason, and the count of the rest";
  EXPECT_EQ(j.at("reasons")[0].at("rule"), "parameters.unknown");
  EXPECT_EQ(j.at("reasons")[1].at("rule"), kMoreReasonsRule);
  EXPECT_EQ(j.at("reasons")[1].at("value"), "19");
  EXPECT_EQ(j.at("original_message_truncated"), true);
  EXPECT_GT(j.at("original_message").get<std::string>().size(), 5000u);
}

TEST(EncodeDeadLetter, ABudgetTooSmallForAnyOriginalGivesTheMinimalLetter) {
  const DeadLetter l = many_reasons_letter(20, 150, std::string(100000, 'x'));
  const std::string out = encode_dead_letter(l, kNow, 900);
  EXPECT_LE(out.size(), 900u);
  const json j = json::parse(out);
  EXPECT_EQ(j.at("original_message_omitted"), true);
  EXPECT_FALSE(j.contains("original_message"));
  EXPECT_EQ(j.at("source_partition"), 7);
  EXPECT_EQ(j.at("source_offset"), 123456789012LL);
  EXPECT_EQ(j.at("stage"), "validate");
}

TEST(EncodeMinimalDeadLetter, NamesSourceStageAndRefusal) {
  DeadLetter l = many_reasons_letter(5000, 200, std::string(1 << 20, 'x'));
  l.source.topic = std::string(249, 't');  // the longest topic name Kafka allows
  const std::string out = encode_minimal_dead_letter(l, "MSG_SIZE_TOO_LARGE: Broker: Message size too large", kNow);
  EXPECT_LT(out.size(), 1200u);
  const json j = json::parse(out);
  EXPECT_EQ(j.at("source_topic"), l.source.topic);
  EXPECT_EQ(j.at("source_partition"), 7);
  EXPECT_EQ(j.at("source_offset"), 123456789012LL);
  EXPECT_EQ(j.at("stage"), "validate");
  EXPECT_EQ(j.at("refused"), "MSG_SIZE_TOO_LARGE: Broker: Message size too large");
  EXPECT_EQ(j.at("original_message_bytes"), 1u << 20);
  EXPECT_EQ(j.at("original_message_omitted"), true);
  EXPECT_EQ(j.at("timestamp"), "2024-01-15T08:30:00.123456Z");
  EXPECT_NE(j.at("error").get<std::string>().find("parameters.unknown"), std::string::npos);
  // Without its original, with the size given apart.
  DeadLetter stripped = l;
  stripped.original_message.clear();
  EXPECT_EQ(json::parse(encode_minimal_dead_letter(stripped, "x", kNow, 42)).at("original_message_bytes"), 42);
}

}  // namespace
}  // namespace strategy_consumer
