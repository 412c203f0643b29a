// Protobuf input (message/protobuf_decoder.hpp, decoding.hpp) and the old service's hash and layout
// (message/tradestream_compat.hpp): the README's test vector, the enum form, and every bad-input rule id.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "discovery.pb.h"
#include "strategies.pb.h"
#include "strategy_consumer/kafka/dead_letters.hpp"
#include "strategy_consumer/message/decoding.hpp"
#include "strategy_consumer/message/protobuf_decoder.hpp"
#include "strategy_consumer/message/strategy_inspector.hpp"
#include "strategy_consumer/message/tradestream_compat.hpp"
#include "strategy_consumer/postgres/copy_encoder.hpp"

namespace strategy_consumer {
namespace {

using nlohmann::json;

// shared/data/README.md: MACD_CROSSOVER {12, 26, 9}, score 0.85, BTC/USD, 2024-01-01T00:00Z to 01:00Z.
constexpr const char* kVectorHex =
    "0a5212400a36747970652e676f6f676c65617069732e636f6d2f737472617465676965732e4d61636443726f73736f76657250"
    "6172616d65746572731206080c101a18091a0e4d4143445f43524f53534f56455211333333333333eb3f1a074254432f555344"
    "2206088081c8ac062a0608909dc8ac06";
constexpr const char* kVectorHash = "441af2fa3d5a98ac8bec8aac2e2c0dae8a34b0fa7974bfe5ca8fe5a586c967e9";
constexpr std::int64_t kJan1 = 1704067200LL * 1000000;
constexpr std::int64_t kNow = 1800000000LL * 1000000;  // 2027-01-15

std::string unhex(std::string_view hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) out += static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16));
  return out;
}

// A valid message, as the producer builds it; tests change one thing each.
discovery::DiscoveredStrategy macd() {
  discovery::DiscoveredStrategy m;
  strategies::MacdCrossoverParameters p;
  p.set_shortemaperiod(12);
  p.set_longemaperiod(26);
  p.set_signalperiod(9);
  m.mutable_strategy()->mutable_parameters()->PackFrom(p);
  m.mutable_strategy()->set_strategy_name("MACD_CROSSOVER");
  m.set_score(0.85);
  m.set_symbol("BTC/USD");
  m.mutable_start_time()->set_seconds(1704067200);
  m.mutable_end_time()->set_seconds(1704070800);
  return m;
}

Inspection inspect(const std::string& bytes, HashScheme scheme = HashScheme::canonical,
                   ParametersLayout layout = ParametersLayout::named, bool allow_unknown = false) {
  StrategyInspector inspector(Catalog::builtin(), ValidatorOptions{.allow_unknown_strategy_types = allow_unknown},
                              DecodeOptions{.parameters_layout = layout, .hash_scheme = scheme});
  return inspector.inspect(bytes, kNow);
}

std::string first_rule(const std::string& bytes, MessageFormat format = MessageFormat::auto_detect) {
  Decoded d = decode_message(bytes, DecodeOptions{.format = format}, Catalog::builtin().get());
  if (d.ok()) return "ok";
  return d.reasons.front().rule;
}

TEST(ProtobufDecoder, TestVectorDecodesToTheReadmeValuesAndHash) {
  const std::string bytes = unhex(kVectorHex);
  EXPECT_EQ(macd().SerializeAsString(), bytes) << "our proto3 schema is wire-identical to the producer's";
  Inspection i = inspect(bytes, HashScheme::tradestream, ParametersLayout::tradestream);
  ASSERT_TRUE(i.ok()) << reasons_to_text(i.reasons);
  EXPECT_STREQ(i.message_format, "protobuf");
  const StrategyRecord& r = i.record;
  EXPECT_EQ(r.strategy_type, "MACD_CROSSOVER");
  EXPECT_EQ(r.parameters, json::parse(R"({"shortEmaPeriod":12,"longEmaPeriod":26,"signalPeriod":9})"));
  EXPECT_TRUE(r.parameters["shortEmaPeriod"].is_number_integer());
  EXPECT_DOUBLE_EQ(r.score, 0.85);
  EXPECT_EQ(r.symbol, "BTC/USD");
  EXPECT_EQ(r.discovery_symbol, "BTC/USD");
  EXPECT_EQ(r.discovery_start_us, kJan1);
  EXPECT_EQ(r.discovery_end_us, kJan1 + 3600LL * 1000000);
  EXPECT_EQ(r.strategy_hash, kVectorHash);
  ASSERT_TRUE(r.parameters_any);
  EXPECT_EQ(r.parameters_any->type_url, "type.googleapis.com/strategies.MacdCrossoverParameters");
  const json stored = tradestream_parameters(*r.parameters_any, r.parameters);
  EXPECT_EQ(stored["protobuf_type"], "type.googleapis.com/strategies.MacdCrossoverParameters");
  EXPECT_EQ(stored["protobuf_data"], "080c101a1809");
  EXPECT_EQ(stored["raw_parameters"],
            json({{"type_url", "type.googleapis.com/strategies.MacdCrossoverParameters"}, {"value", "080c101a1809"}}));
  EXPECT_EQ(stored["named"], r.parameters);
  // The COPY row carries that layout.
  std::string row;
  encode_copy_row(row, r);
  EXPECT_NE(row.find("\"protobuf_data\":\"080c101a1809\""), std::string::npos) << row;
}

TEST(ProtobufDecoder, CanonicalHashIsTheSameForJsonAndProtobuf) {
  const std::string json_message =
      R"({"symbol":"BTC/USD","strategy_type":"MACD_CROSSOVER","current_score":0.85,)"
      R"("parameters":{"shortEmaPeriod":12,"longEmaPeriod":26,"signalPeriod":9.0}})";
  for (auto scheme : {HashScheme::canonical, HashScheme::tradestream}) {
    Inspection p = inspect(unhex(kVectorHex), scheme);
    Inspection j = inspect(json_message, scheme);
    ASSERT_TRUE(p.ok() && j.ok()) << reasons_to_text(j.reasons);
    EXPECT_STREQ(j.message_format, "json");
    EXPECT_EQ(p.record.strategy_hash, j.record.strategy_hash);
    EXPECT_EQ(p.record.parameters, j.record.parameters);
  }
  EXPECT_EQ(inspect(json_message, HashScheme::tradestream).record.strategy_hash, kVectorHash);
  // The tradestream layout of a JSON message holds the Any its named values encode to.
  Inspection j = inspect(json_message, HashScheme::canonical, ParametersLayout::tradestream);
  ASSERT_TRUE(j.ok() && j.record.parameters_any);
  EXPECT_EQ(lower_hex(j.record.parameters_any->value), "080c101a1809");
}

TEST(ProtobufDecoder, AutoDetectsByTheFirstNonBlankByte) {
  EXPECT_EQ(detect_message_format(" \n\t{\"a\":1}"), MessageFormat::json);
  EXPECT_EQ(detect_message_format(unhex(kVectorHex)), MessageFormat::protobuf);
  // Forced formats read everything as that format.
  EXPECT_EQ(first_rule(unhex(kVectorHex), MessageFormat::json), "format.json");
  EXPECT_EQ(first_rule(R"({"symbol":"X"})", MessageFormat::protobuf), "format.unrecognized");
}

TEST(ProtobufDecoder, OldEnumFormNamesTheTypeAndBbandKeepsItsSpelling) {
  auto m = macd();
  m.mutable_strategy()->clear_strategy_name();
  m.mutable_strategy()->set_type(strategies::MACD_CROSSOVER);
  Inspection i = inspect(m.SerializeAsString());
  ASSERT_TRUE(i.ok()) << reasons_to_text(i.reasons);
  EXPECT_EQ(i.record.strategy_type, "MACD_CROSSOVER");
  EXPECT_EQ(i.record.strategy_hash, inspect(macd().SerializeAsString()).record.strategy_hash);

  discovery::DiscoveredStrategy b;
  strategies::BbandWRParameters p;
  p.set_bbandsperiod(20);
  p.set_wrperiod(14);
  p.set_stddevmultiplier(2.0);
  b.mutable_strategy()->mutable_parameters()->PackFrom(p);
  b.mutable_strategy()->set_type(strategies::BBAND_W_R);
  b.set_symbol("ETH/USD");
  b.set_score(1.5);
  Inspection bi = inspect(b.SerializeAsString());
  ASSERT_TRUE(bi.ok()) << reasons_to_text(bi.reasons);
  EXPECT_EQ(bi.record.strategy_type, "BBAND_W_R") << "the row stores the name the message carried";
  EXPECT_FALSE(bi.record.discovery_start_us) << "unset timestamps are NULL, never 1970";
  EXPECT_FALSE(bi.record.discovery_end_us);
  b.mutable_strategy()->set_strategy_name("BBAND_WILLIAMS_R");  // the same type in the catalog's spelling
  Inspection both = inspect(b.SerializeAsString());
  ASSERT_TRUE(both.ok()) << reasons_to_text(both.reasons);
  EXPECT_EQ(both.record.strategy_type, "BBAND_WILLIAMS_R");
  EXPECT_EQ(both.record.strategy_hash, bi.record.strategy_hash) << "one type, one canonical hash";
}

TEST(ProtobufDecoder, DefaultValuedCatalogParametersAreListed) {
  discovery::DiscoveredStrategy m = macd();
  strategies::SmaRsiParameters p;  // oversoldThreshold 0 is not on the wire
  p.set_movingaverageperiod(20);
  p.set_rsiperiod(14);
  p.set_overboughtthreshold(70);
  m.mutable_strategy()->mutable_parameters()->PackFrom(p);
  m.mutable_strategy()->set_strategy_name("SMA_RSI");
  Decoded d = decode_message(m.SerializeAsString(), {}, Catalog::builtin().get());
  ASSERT_TRUE(d.ok()) << reasons_to_text(d.reasons);
  ASSERT_TRUE(d.record.parameters.contains("oversoldThreshold"));
  EXPECT_EQ(d.record.parameters["oversoldThreshold"], 0.0);
  // ADX_STOCHASTIC: stochasticDPeriod is in the message but not in the catalog; at 0 it is left out.
  strategies::AdxStochasticParameters a;
  a.set_adxperiod(14);
  a.set_stochastickperiod(14);
  a.set_overboughtthreshold(80);
  a.set_oversoldthreshold(20);
  m.mutable_strategy()->mutable_parameters()->PackFrom(a);
  m.mutable_strategy()->set_strategy_name("ADX_STOCHASTIC");
  Inspection i = inspect(m.SerializeAsString());
  ASSERT_TRUE(i.ok()) << reasons_to_text(i.reasons);
  EXPECT_FALSE(i.record.parameters.contains("stochasticDPeriod"));
}

TEST(ProtobufDecoder, UnknownFieldsAreIgnored) {
  auto m = macd();
  const std::string plain = m.SerializeAsString();
  // Field 9 (varint) at the top level and field 15 (length-delimited) inside Strategy, as a newer producer might.
  std::string extended = plain + std::string("\x48\x07", 2);
  std::string strategy = m.strategy().SerializeAsString() + std::string("\x7a\x02hi", 4);
  discovery::DiscoveredStrategy rest = m;
  rest.clear_strategy();
  extended = std::string("\x0a") + static_cast<char>(strategy.size()) + strategy + rest.SerializeAsString() +
             std::string("\x48\x07", 2);
  Inspection a = inspect(plain), b = inspect(extended);
  ASSERT_TRUE(b.ok()) << reasons_to_text(b.reasons);
  EXPECT_EQ(a.record.parameters, b.record.parameters);
  EXPECT_EQ(a.record.strategy_hash, b.record.strategy_hash);
}

TEST(ProtobufDecoder, BadInputHasItsOwnRuleId) {
  const std::string good = macd().SerializeAsString();
  EXPECT_EQ(first_rule(good), "ok");
  // Neither JSON nor protobuf.
  EXPECT_EQ(first_rule("hello, world"), "format.unrecognized");
  EXPECT_EQ(first_rule(std::string("\xff\xfe\xfd\x00", 4)), "format.unrecognized");
  // Truncated.
  EXPECT_EQ(first_rule(good.substr(0, good.size() - 5)), "protobuf.truncated");
  EXPECT_EQ(first_rule(good.substr(0, 20)), "protobuf.truncated");
  // Valid protobuf of another message type.
  strategies::MacdCrossoverParameters params;
  params.set_shortemaperiod(12);
  EXPECT_EQ(first_rule(params.SerializeAsString()), "protobuf.message_type");
  EXPECT_EQ(first_rule(macd().strategy().SerializeAsString()), "protobuf.message_type");
  // The Any: unknown type_url; bytes that do not parse as its message.
  auto m = macd();
  m.mutable_strategy()->mutable_parameters()->set_type_url("type.googleapis.com/strategies.NoSuchParameters");
  EXPECT_EQ(first_rule(m.SerializeAsString()), "protobuf.any_type");
  m = macd();
  m.mutable_strategy()->mutable_parameters()->set_value(std::string("\x08\xff\xff", 3));
  EXPECT_EQ(first_rule(m.SerializeAsString()), "protobuf.any_value");
  strategies::SmaRsiParameters sma;  // field 3 is a double there, an int32 in MacdCrossoverParameters
  sma.set_overboughtthreshold(70.5);
  m.mutable_strategy()->mutable_parameters()->set_value(sma.SerializeAsString());
  EXPECT_EQ(first_rule(m.SerializeAsString()), "protobuf.any_value");
  // strategy_name disagreeing with the parameter message.
  m = macd();
  strategies::SmaRsiParameters other;
  other.set_movingaverageperiod(20);
  m.mutable_strategy()->mutable_parameters()->PackFrom(other);
  EXPECT_EQ(first_rule(m.SerializeAsString()), "protobuf.type_mismatch");
  // Enum and name both present, disagreeing; an unknown enum number.
  m = macd();
  m.mutable_strategy()->set_type(strategies::SMA_RSI);
  EXPECT_EQ(first_rule(m.SerializeAsString()), "protobuf.enum_name_mismatch");
  m = macd();
  m.mutable_strategy()->set_type(strategies::MACD_CROSSOVER);
  EXPECT_EQ(first_rule(m.SerializeAsString()), "ok") << "agreeing enum and name";
  m.mutable_strategy()->clear_strategy_name();
  m.mutable_strategy()->set_type(static_cast<strategies::StrategyType>(999));
  EXPECT_EQ(first_rule(m.SerializeAsString()), "protobuf.enum_unknown");
  // Timestamps out of range, nanos outside 0..999,999,999.
  m = macd();
  m.mutable_end_time()->set_seconds(253402300800);
  EXPECT_EQ(first_rule(m.SerializeAsString()), "protobuf.timestamp");
  m = macd();
  m.mutable_start_time()->set_seconds(-62135596801);
  EXPECT_EQ(first_rule(m.SerializeAsString()), "protobuf.timestamp");
  m = macd();
  m.mutable_start_time()->set_nanos(1000000000);
  EXPECT_EQ(first_rule(m.SerializeAsString()), "protobuf.timestamp");
  m.mutable_start_time()->set_nanos(-1);
  EXPECT_EQ(first_rule(m.SerializeAsString()), "protobuf.timestamp");
  m.mutable_start_time()->set_nanos(999999999);
  EXPECT_EQ(first_rule(m.SerializeAsString()), "ok");
  // NaN and infinite scores.
  m = macd();
  m.set_score(std::numeric_limits<double>::quiet_NaN());
  EXPECT_EQ(first_rule(m.SerializeAsString()), "protobuf.score");
  m.set_score(-std::numeric_limits<double>::infinity());
  EXPECT_EQ(first_rule(m.SerializeAsString()), "protobuf.score");
  // Missing parts.
  m = macd();
  m.clear_symbol();
  EXPECT_EQ(first_rule(m.SerializeAsString()), "format.required");
  m = macd();
  m.mutable_strategy()->clear_strategy_name();
  EXPECT_EQ(first_rule(m.SerializeAsString()), "format.required");
  m = macd();
  m.clear_strategy();
  EXPECT_EQ(first_rule(m.SerializeAsString()), "format.required");
}

TEST(ProtobufDecoder, NanosecondsAreTruncatedToMicroseconds) {
  auto m = macd();
  m.mutable_start_time()->set_nanos(123456789);
  Decoded d = decode_message(m.SerializeAsString());
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d.record.discovery_start_us, kJan1 + 123456);
}

TEST(ProtobufDecoder, JsonParametersThatDoNotFitTheMessageAreRefusedUnderTheTradestreamOptions) {
  // A type outside the catalog (allowed): no parameter message to build the Any from.
  const std::string custom = R"({"symbol":"BTC/USD","strategy_type":"MY_TYPE","score":1,"parameters":{"x":1}})";
  EXPECT_TRUE(inspect(custom, HashScheme::canonical, ParametersLayout::named, true).ok());
  Inspection i = inspect(custom, HashScheme::tradestream, ParametersLayout::named, true);
  ASSERT_FALSE(i.ok());
  EXPECT_EQ(i.stage, "validate");
  EXPECT_EQ(i.reasons.front().rule, "parameters.protobuf");
  // A value an int32 field cannot hold.
  Reasons reasons;
  EXPECT_FALSE(encode_parameters_any("MacdCrossoverParameters", json::parse(R"({"shortEmaPeriod":1e12})"), reasons));
  ASSERT_EQ(reasons.size(), 1u);
  EXPECT_EQ(reasons[0].rule, "parameters.protobuf");
  reasons.clear();
  EXPECT_FALSE(encode_parameters_any("MacdCrossoverParameters", json::parse(R"({"nope":1})"), reasons));
  EXPECT_EQ(reasons.at(0).rule, "parameters.protobuf");
}

TEST(ProtobufDecoder, DeadLetterKeepsTheBytesAndTheFormatTried) {
  const std::string bytes = unhex(kVectorHex).substr(0, 30);
  Inspection i = inspect(bytes);
  ASSERT_EQ(i.stage, "decode");
  DeadLetter letter{bytes, i.stage, i.reasons, {"t", 0, 5, -1}, i.message_format};
  const json j = json::parse(encode_dead_letter(letter, kNow));
  EXPECT_EQ(j["message_format"], "protobuf");
  EXPECT_EQ(j["original_message_encoding"], "base64");
  EXPECT_EQ(j["reasons"][0]["rule"], "protobuf.truncated");
}

void expect_same(const Decoded& a, const Decoded& b, const std::string& what) {
  ASSERT_EQ(a.ok(), b.ok()) << what;
  if (!a.ok()) return;
  const StrategyRecord &x = a.record, &y = b.record;
  EXPECT_EQ(x.symbol, y.symbol) << what;
  EXPECT_EQ(x.strategy_type, y.strategy_type) << what;
  EXPECT_EQ(x.parameters, y.parameters) << what;
  EXPECT_EQ(x.parameters.dump(), y.parameters.dump()) << what << " (number types too)";
  EXPECT_EQ(x.score, y.score) << what;
  EXPECT_EQ(x.discovery_symbol, y.discovery_symbol) << what;
  EXPECT_EQ(x.discovery_start_us, y.discovery_start_us) << what;
  EXPECT_EQ(x.discovery_end_us, y.discovery_end_us) << what;
  EXPECT_EQ(x.strategy_hash, y.strategy_hash) << what;
  ASSERT_TRUE(x.parameters_any && y.parameters_any) << what;
  EXPECT_EQ(x.parameters_any->type_url, y.parameters_any->type_url) << what;
  EXPECT_EQ(x.parameters_any->value, y.parameters_any->value) << what;
}

TEST(ProtobufDecoder, FastPathAndReferenceAgree) {
  const Catalog* catalog = Catalog::builtin().get();
  std::vector<std::pair<std::string, std::string>> cases;
  cases.push_back({"vector", unhex(kVectorHex)});
  auto m = macd();
  m.mutable_strategy()->clear_strategy_name();
  m.mutable_strategy()->set_type(strategies::MACD_CROSSOVER);
  cases.push_back({"enum form", m.SerializeAsString()});
  m.mutable_strategy()->set_strategy_name("MACD_CROSSOVER");
  cases.push_back({"enum and name", m.SerializeAsString()});
  m = macd();
  m.clear_start_time();
  m.mutable_end_time()->set_nanos(5000);
  m.set_score(-2.5);
  cases.push_back({"one time, nanos, negative score", m.SerializeAsString()});
  m = macd();
  m.mutable_start_time()->Clear();  // set but empty: the epoch
  cases.push_back({"empty timestamp", m.SerializeAsString()});
  strategies::SmaRsiParameters sma;
  sma.set_movingaverageperiod(20);
  sma.set_overboughtthreshold(70.25);
  m = macd();
  m.mutable_strategy()->mutable_parameters()->PackFrom(sma);
  m.mutable_strategy()->set_strategy_name("SMA_RSI");
  cases.push_back({"defaults listed", m.SerializeAsString()});
  m.mutable_strategy()->set_strategy_name("NOT_IN_CATALOG");
  cases.push_back({"type outside the catalog: every field", m.SerializeAsString()});
  strategies::AdxStochasticParameters adx;
  adx.set_adxperiod(14);
  adx.set_stochasticdperiod(3);
  m.mutable_strategy()->mutable_parameters()->PackFrom(adx);
  m.mutable_strategy()->set_strategy_name("ADX_STOCHASTIC");
  cases.push_back({"a set field the catalog does not list", m.SerializeAsString()});
  strategies::SentimentParameters sentiment;
  sentiment.set_enable_momentum(true);
  sentiment.set_sentiment_weight(0.5);
  m.mutable_strategy()->mutable_parameters()->PackFrom(sentiment);
  m.mutable_strategy()->set_strategy_name("SENTIMENT");
  cases.push_back({"bools", m.SerializeAsString()});
  strategies::RainbowOscillatorParameters rainbow;
  rainbow.add_periods(8);
  m.mutable_strategy()->mutable_parameters()->PackFrom(rainbow);
  m.mutable_strategy()->set_strategy_name("RAINBOW_OSCILLATOR");
  cases.push_back({"repeated (reference path only)", m.SerializeAsString()});
  cases.push_back({"unknown field (reference path only)", macd().SerializeAsString() + std::string("\x48\x07", 2)});
  const DecodeOptions keep{.hash_scheme = HashScheme::tradestream};
  for (const auto& [what, bytes] : cases) {
    expect_same(decode_discovered_strategy(bytes, keep, catalog),
                decode_discovered_strategy_reference(bytes, keep, catalog), what);
    expect_same(decode_discovered_strategy(bytes, keep), decode_discovered_strategy_reference(bytes, keep),
                what + ", no catalog");
  }
}

TEST(ProtobufDecoder, SchemaHasTheSixtyTwoParameterMessagesAndTheEnum) {
  EXPECT_EQ(parameter_message_names().size(), 62u);
  EXPECT_EQ(strategy_type_enum_name(44), "MACD_CROSSOVER");
  EXPECT_EQ(strategy_type_enum_name(13), "BBAND_W_R");
  EXPECT_FALSE(strategy_type_enum_name(61));
  EXPECT_EQ(schema_file_descriptors().size(), 2u);
}

}  // namespace
}  // namespace strategy_consumer
