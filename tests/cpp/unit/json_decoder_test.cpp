// decode_strategy: the message contract of shared/DESIGN.md "The message", and a reason for everything else.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "strategy_consumer/message/canonical_hash.hpp"
#include "strategy_consumer/message/json_decoder.hpp"

namespace strategy_consumer {
namespace {

using nlohmann::json;

// A complete, valid message: every optional field present.
const char* const kFullMessage = R"({
  "symbol": "BTCUSDT",
  "strategy_type": "SMA_RSI",
  "parameters": {"fast": 10, "slow": 30, "rsi": {"period": 14, "threshold": 0.7}},
  "score": 0.8523,
  "performance_metrics": {"total_return": 0.15, "sharpe_ratio": 1.8, "max_drawdown": -0.05, "win_rate": 0.6,
                          "profit_factor": 1.9, "total_trades": 120, "avg_trade_duration": 3600},
  "discovery_symbol": "ETHUSDT",
  "discovery_start_time": "2024-01-15T10:30:00+02:00",
  "discovery_end_time": "2024-01-16T00:00:00.5Z",
  "strategy_hash": "given-hash-123"
})";

// A minimal valid message as a JSON object, for tests that change one field.
json minimal() {
  return json{{"symbol", "BTCUSDT"}, {"strategy_type", "SMA_RSI"}, {"parameters", {{"fast", 10}}}, {"score", 1.5}};
}

std::string describe(const Decoded& d) {
  if (d.ok()) return "ok (no reasons)";
  std::string out;
  for (const auto& r : d.reasons) out += "[" + r.rule + " field='" + r.field + "' value='" + r.value + "'] ";
  return out;
}

std::set<std::pair<std::string, std::string>> rule_fields(const Decoded& d) {
  std::set<std::pair<std::string, std::string>> out;
  for (const auto& r : d.reasons) out.emplace(r.rule, r.field);
  return out;
}

// Exactly one reason, with this rule (and this field when given).
void expect_single_reason(const Decoded& d, const std::string& rule, const std::string* field = nullptr) {
  ASSERT_EQ(d.reasons.size(), 1u) << describe(d);
  EXPECT_EQ(d.reasons[0].rule, rule) << describe(d);
  if (field) EXPECT_EQ(d.reasons[0].field, *field) << describe(d);
  EXPECT_FALSE(d.ok());
  EXPECT_FALSE(d.reasons[0].message.empty()) << "every reason explains itself";
}

TEST(Decode, FullValidMessageKeepsEveryField) {
  const Decoded d = decode_strategy(kFullMessage);
  ASSERT_TRUE(d.ok()) << describe(d);
  const StrategyRecord& r = d.record;
  EXPECT_EQ(r.symbol, "BTCUSDT");
  EXPECT_EQ(r.strategy_type, "SMA_RSI");
  EXPECT_EQ(r.parameters, json::parse(R"({"fast":10,"slow":30,"rsi":{"period":14,"threshold":0.7}})"));
  EXPECT_DOUBLE_EQ(r.score, 0.8523);
  ASSERT_TRUE(r.performance_metrics.has_value());
  EXPECT_EQ(*r.performance_metrics,
            json::parse(R"({"total_return":0.15,"sharpe_ratio":1.8,"max_drawdown":-0.05,"win_rate":0.6,
                            "profit_factor":1.9,"total_trades":120,"avg_trade_duration":3600})"));
  ASSERT_TRUE(r.discovery_symbol.has_value());
  EXPECT_EQ(*r.discovery_symbol, "ETHUSDT");
  // 10:30 at +02:00 is 08:30 UTC: `date -u -d 2024-01-15T08:30:00Z +%s` = 1705307400.
  ASSERT_TRUE(r.discovery_start_us.has_value());
  EXPECT_EQ(*r.discovery_start_us, 1705307400LL * 1000000);
  // `date -u -d 2024-01-16T00:00:00Z +%s` = 1705363200, plus half a second.
  ASSERT_TRUE(r.discovery_end_us.has_value());
  EXPECT_EQ(*r.discovery_end_us, 1705363200LL * 1000000 + 500000);
  EXPECT_EQ(r.strategy_hash, "given-hash-123");
}

TEST(Decode, OptionalFieldsAbsentOrNullStayEmpty) {
  json msg = minimal();
  msg["discovery_symbol"] = nullptr;
  msg["performance_metrics"] = nullptr;
  msg["discovery_start_time"] = nullptr;
  for (const json& m : {minimal(), msg}) {
    const Decoded d = decode_strategy(m.dump());
    ASSERT_TRUE(d.ok()) << describe(d) << " for " << m.dump();
    EXPECT_FALSE(d.record.performance_metrics.has_value());
    EXPECT_FALSE(d.record.discovery_symbol.has_value());
    EXPECT_FALSE(d.record.discovery_start_us.has_value());
    EXPECT_FALSE(d.record.discovery_end_us.has_value());
    EXPECT_DOUBLE_EQ(d.record.score, 1.5);
  }
}

TEST(Decode, ScoreAndCurrentScoreAreBothAccepted) {
  struct Case {
    const char* name;
    json extra;  // score fields to set on a message with none
    double expected;
  };
  const std::vector<Case> cases = {
      {"score only", {{"score", 2.25}}, 2.25},
      {"current_score only", {{"current_score", -0.75}}, -0.75},
      {"both, equal", {{"score", 3.0}, {"current_score", 3}}, 3.0},
      {"integer score", {{"score", 7}}, 7.0},
  };
  for (const auto& c : cases) {
    json msg = minimal();
    msg.erase("score");
    msg.update(c.extra);
    const Decoded d = decode_strategy(msg.dump());
    ASSERT_TRUE(d.ok()) << c.name << ": " << describe(d);
    EXPECT_DOUBLE_EQ(d.record.score, c.expected) << c.name;
  }
}

TEST(Decode, ScoreAndCurrentScoreDisagreeing) {
  json msg = minimal();
  msg["score"] = 1.5;
  msg["current_score"] = 2.5;
  const std::string field = "current_score";
  expect_single_reason(decode_strategy(msg.dump()), "format.score", &field);
}

TEST(Decode, EachRequiredFieldMissing) {
  // "score" stands for score-or-current_score: with neither, the reason names "score".
  for (const std::string field : {"symbol", "strategy_type", "parameters", "score"}) {
    json msg = minimal();
    msg.erase(field);
    SCOPED_TRACE(field);
    expect_single_reason(decode_strategy(msg.dump()), "format.required", &field);
    // JSON null counts as missing.
    msg[field] = nullptr;
    expect_single_reason(decode_strategy(msg.dump()), "format.required", &field);
  }
}

TEST(Decode, EachFieldMistyped) {
  struct Case {
    std::string field;
    json value;
  };
  const std::vector<Case> cases = {
      {"symbol", 5},
      {"symbol", json::array({"BTC"})},
      {"strategy_type", true},
      {"parameters", json::array()},
      {"parameters", "x"},
      {"parameters", 3},
      {"score", "1.5"},
      {"score", false},
      {"current_score", "1.5"},
      {"performance_metrics", json::array({1, 2})},
      {"performance_metrics", "good"},
      {"discovery_symbol", 42},
      {"discovery_start_time", 123},
      {"discovery_end_time", json::object()},
      {"strategy_hash", 99},
  };
  for (const auto& c : cases) {
    json msg = minimal();
    msg[c.field] = c.value;
    SCOPED_TRACE(c.field + " = " + c.value.dump());
    const Decoded d = decode_strategy(msg.dump());
    expect_single_reason(d, "format.type", &c.field);
    if (!d.reasons.empty()) EXPECT_EQ(d.reasons[0].value, c.value.dump()) << "the reason shows the offending value";
  }
}

TEST(Decode, BadTimestamps) {
  struct Case {
    std::string field;
    std::string value;
  };
  const std::vector<Case> cases = {
      {"discovery_start_time", "2024-13-01T00:00:00Z"},  // month 13
      {"discovery_start_time", "2024-01-15T10:30:00"},   // no zone: no UTC meaning
      {"discovery_end_time", "2023-02-29T00:00:00Z"},    // not a leap year
      {"discovery_end_time", "yesterday"},
      {"discovery_end_time", ""},
  };
  for (const auto& c : cases) {
    json msg = minimal();
    msg[c.field] = c.value;
    SCOPED_TRACE(c.field + " = " + c.value);
    const Decoded d = decode_strategy(msg.dump());
    expect_single_reason(d, "format.timestamp", &c.field);
    if (!d.reasons.empty()) EXPECT_EQ(d.reasons[0].value, c.value);
  }
}

TEST(Decode, SeveralProblemsAreAllReported) {
  const Decoded d = decode_strategy(
      R"({"symbol": 5, "parameters": "x", "score": 1, "discovery_end_time": "nope", "performance_metrics": 1})");
  const std::set<std::pair<std::string, std::string>> expected = {
      {"format.required", "strategy_type"},
      {"format.type", "symbol"},
      {"format.type", "parameters"},
      {"format.timestamp", "discovery_end_time"},
      {"format.type", "performance_metrics"},
  };
  EXPECT_EQ(rule_fields(d), expected) << describe(d);
  EXPECT_EQ(d.reasons.size(), expected.size()) << describe(d);
}

TEST(Decode, EmptyPayload) {
  expect_single_reason(decode_strategy(""), "format.empty");
}

TEST(Decode, InvalidJson) {
  struct Case {
    const char* name;
    std::string payload;
  };
  const std::vector<Case> cases = {
      {"truncated", R"({"symbol": "BTCUSDT", "strategy_type": "SMA)"},
      {"truncated after a value", R"({"symbol": "BTCUSDT",)"},
      {"non-UTF-8 byte in a string", "{\"symbol\": \"BTC\xff\xfe\", \"strategy_type\": \"x\"}"},
      {"overlong UTF-8", "{\"symbol\": \"\xc0\xaf\"}"},
      {"non-UTF-8 byte outside strings", "{\xff}"},
      {"NaN", R"({"symbol": "A", "strategy_type": "B", "parameters": {}, "score": NaN})"},
      {"Infinity", R"({"symbol": "A", "strategy_type": "B", "parameters": {}, "score": Infinity})"},
      {"-Infinity", R"({"symbol": "A", "strategy_type": "B", "parameters": {}, "score": -Infinity})"},
      {"lone high surrogate", R"({"symbol": "\ud800", "strategy_type": "B", "parameters": {}, "score": 1})"},
      {"lone low surrogate", R"({"symbol": "\udc00", "strategy_type": "B", "parameters": {}, "score": 1})"},
      {"trailing garbage", R"({"symbol": "A"} x)"},
      {"two documents", R"({} {})"},
      {"single quotes", R"({'symbol': 'A'})"},
      {"only white space", "   \n"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    expect_single_reason(decode_strategy(c.payload), "format.json");
  }
}

TEST(Decode, NumberBeyondDoubleRange) {
  // 1e400 would become infinity: it is rejected as a number, not as broken JSON.
  for (const char* number : {"1e400", "-1e400"}) {
    SCOPED_TRACE(number);
    const std::string payload =
        std::string(R"({"symbol": "A", "strategy_type": "B", "parameters": {}, "score": )") + number + "}";
    expect_single_reason(decode_strategy(payload), "format.number");
  }
}

TEST(Decode, NulCharacter) {
  struct Case {
    const char* name;
    std::string payload;
  };
  const std::vector<Case> cases = {
      {"in a value", R"({"symbol": "BTC\u0000USDT", "strategy_type": "B", "parameters": {}, "score": 1})"},
      {"in a nested value", R"({"symbol": "A", "strategy_type": "B", "parameters": {"p": "\u0000"}, "score": 1})"},
      {"in a key", R"({"symbol": "A", "strategy_type": "B", "parameters": {"a\u0000b": 1}, "score": 1})"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    expect_single_reason(decode_strategy(c.payload), "format.nul");
  }
  const std::string field = "symbol";
  expect_single_reason(decode_strategy(cases[0].payload), "format.nul", &field);
}

TEST(Decode, DuplicateKey) {
  const std::string top = "symbol";
  expect_single_reason(
      decode_strategy(R"({"symbol": "A", "symbol": "B", "strategy_type": "T", "parameters": {}, "score": 1})"),
      "format.duplicate_key", &top);
  const std::string nested = "parameters.period";
  expect_single_reason(
      decode_strategy(
          R"({"symbol": "A", "strategy_type": "T", "parameters": {"period": 1, "period": 2}, "score": 1})"),
      "format.duplicate_key", &nested);
  // The same key in two different objects is fine.
  const Decoded ok = decode_strategy(
      R"({"symbol": "A", "strategy_type": "T", "parameters": {"symbol": "B", "x": {"symbol": 1}}, "score": 1})");
  EXPECT_TRUE(ok.ok()) << describe(ok);
}

TEST(Decode, DeepNestingIsRejectedQuicklyWithoutRecursion) {
  for (const std::string& payload : {std::string(100000, '['),
                                     std::string(100000, '[') + std::string(100000, ']'),
                                     [] {
                                       std::string s;
                                       for (int i = 0; i < 100000; ++i) s += R"({"a":)";
                                       return s;
                                     }()}) {
    const auto start = std::chrono::steady_clock::now();
    const Decoded d = decode_strategy(payload);
    const auto elapsed = std::chrono::steady_clock::now() - start;
    expect_single_reason(d, "format.depth");
    EXPECT_LT(elapsed, std::chrono::seconds(1));
  }
}

TEST(Decode, DepthLimitIsExact) {
  // The message object is level 1, parameters level 2, then arrays inside parameters.
  DecodeOptions options;
  options.max_depth = 5;
  auto with_arrays = [](int n) {
    return R"({"symbol": "A", "strategy_type": "T", "score": 1, "parameters": {"p": )" + std::string(n, '[') +
           std::string(n, ']') + "}}";
  };
  const Decoded at_limit = decode_strategy(with_arrays(3), options);
  EXPECT_TRUE(at_limit.ok()) << describe(at_limit);
  expect_single_reason(decode_strategy(with_arrays(4), options), "format.depth");
  // The default allows ordinary nesting.
  EXPECT_TRUE(decode_strategy(with_arrays(20)).ok());
}

TEST(Decode, TopLevelMustBeAnObject) {
  for (const char* payload : {"[1, 2]", "[]", R"("symbol")", "42", "1.5", "null", "true"}) {
    SCOPED_TRACE(payload);
    expect_single_reason(decode_strategy(payload), "format.object");
  }
}

TEST(Decode, MaxMessageBytes) {
  const std::string payload = minimal().dump();
  DecodeOptions options;
  options.max_message_bytes = payload.size();
  EXPECT_TRUE(decode_strategy(payload, options).ok()) << "a message of exactly the limit is accepted";
  options.max_message_bytes = payload.size() - 1;
  expect_single_reason(decode_strategy(payload, options), "format.size");
  // The size check comes before parsing: even broken JSON over the limit is a size problem.
  expect_single_reason(decode_strategy(std::string(2 << 20, '{')), "format.size");
}

TEST(Decode, UnknownTopLevelFieldsAreIgnored) {
  json with_extra = minimal();
  with_extra["comment"] = "from the GA run 17";
  with_extra["generation"] = 42;
  with_extra["nested_extra"] = json::parse(R"({"a": [1, {"b": null}]})");
  const Decoded plain = decode_strategy(minimal().dump());
  const Decoded extra = decode_strategy(with_extra.dump());
  ASSERT_TRUE(plain.ok()) << describe(plain);
  ASSERT_TRUE(extra.ok()) << describe(extra);
  EXPECT_EQ(extra.record.symbol, plain.record.symbol);
  EXPECT_EQ(extra.record.parameters, plain.record.parameters);
  EXPECT_EQ(extra.record.strategy_hash, plain.record.strategy_hash);
}

TEST(Decode, HashComputedWhenAbsent) {
  const Decoded d = decode_strategy(
      R"({"symbol": "ETHUSDT", "strategy_type": "MACD", "parameters": {"slow": 26, "fast": 12.0}, "score": 1})");
  ASSERT_TRUE(d.ok()) << describe(d);
  EXPECT_EQ(d.record.strategy_hash,
            canonical_strategy_hash("ETHUSDT", "MACD", json::parse(R"({"fast": 12, "slow": 26})")));
  EXPECT_EQ(d.record.strategy_hash.size(), 64u);
  // Key order, white space and number spelling of the message do not change it.
  const Decoded same = decode_strategy(
      R"({"score":2,"parameters":{"fast":1.2e1,"slow":26},"strategy_type":"MACD","symbol":"ETHUSDT"})");
  ASSERT_TRUE(same.ok()) << describe(same);
  EXPECT_EQ(same.record.strategy_hash, d.record.strategy_hash);
  // Another parameter value gives another hash.
  const Decoded other = decode_strategy(
      R"({"symbol": "ETHUSDT", "strategy_type": "MACD", "parameters": {"slow": 27, "fast": 12}, "score": 1})");
  ASSERT_TRUE(other.ok()) << describe(other);
  EXPECT_NE(other.record.strategy_hash, d.record.strategy_hash);
}

TEST(Decode, EmptyGivenHashIsRejected) {
  json msg = minimal();
  msg["strategy_hash"] = "";
  const std::string field = "strategy_hash";
  expect_single_reason(decode_strategy(msg.dump()), "format.hash", &field);
}

// decode_strategy reads the usual messages in one pass and hands everything else to decode_strategy_dom: on any
// input the two must agree exactly (every reason, every field, the JSON type of every number).
bool same_json(const json& a, const json& b) {
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case json::value_t::object: {
      if (a.size() != b.size()) return false;
      auto ib = b.begin();
      for (auto ia = a.begin(); ia != a.end(); ++ia, ++ib) {
        if (ia.key() != ib.key() || !same_json(ia.value(), ib.value())) return false;
      }
      return true;
    }
    case json::value_t::array: {
      if (a.size() != b.size()) return false;
      for (std::size_t i = 0; i < a.size(); ++i) {
        if (!same_json(a[i], b[i])) return false;
      }
      return true;
    }
    case json::value_t::number_float: {
      const double x = a.get<double>(), y = b.get<double>();
      return std::memcmp(&x, &y, sizeof x) == 0;  // -0.0 is not 0.0
    }
    default:
      return a == b;
  }
}

std::string compare_decoders(const std::string& payload, const DecodeOptions& options = {}) {
  const Decoded fast = decode_strategy(payload, options);
  const Decoded dom = decode_strategy_dom(payload, options);
  if (fast.reasons.size() != dom.reasons.size()) return "reasons differ: " + describe(fast) + " vs " + describe(dom);
  for (std::size_t i = 0; i < fast.reasons.size(); ++i) {
    const Reason &a = fast.reasons[i], &b = dom.reasons[i];
    if (a.rule != b.rule || a.field != b.field || a.value != b.value || a.message != b.message) {
      return "reason " + std::to_string(i) + " differs: " + a.rule + " " + a.message + " vs " + b.rule + " " + b.message;
    }
  }
  if (!dom.ok()) return "";
  const StrategyRecord &x = fast.record, &y = dom.record;
  if (x.symbol != y.symbol) return "symbol";
  if (x.strategy_type != y.strategy_type) return "strategy_type";
  if (!same_json(x.parameters, y.parameters)) return "parameters " + x.parameters.dump() + " vs " + y.parameters.dump();
  if (std::memcmp(&x.score, &y.score, sizeof x.score) != 0) return "score";
  if (x.performance_metrics.has_value() != y.performance_metrics.has_value() ||
      (x.performance_metrics && !same_json(*x.performance_metrics, *y.performance_metrics))) {
    return "performance_metrics";
  }
  if (x.discovery_symbol != y.discovery_symbol) return "discovery_symbol";
  if (x.discovery_start_us != y.discovery_start_us) return "discovery_start_us";
  if (x.discovery_end_us != y.discovery_end_us) return "discovery_end_us";
  if (x.strategy_hash != y.strategy_hash) return "strategy_hash";
  return "";
}

const std::vector<std::string>& decoder_seeds() {
  static const std::vector<std::string> kSeeds = {
      kFullMessage,
      minimal().dump(),
      R"({"symbol": "ETH/USD", "strategy_type": "CMF_ZERO_LINE", "parameters": {"period": 37}, "current_score": 0.4162, "performance_metrics": {"total_return": 0.0581, "sharpe_ratio": 0.345, "max_drawdown": -0.132, "win_rate": 0.523, "profit_factor": 1.453, "total_trades": 408, "avg_trade_duration": 40.2}, "discovery_symbol": "ETH/USD", "discovery_start_time": "2026-10-19T04:42:00Z", "discovery_end_time": "2026-10-26T04:42:00Z"})",
      R"({"symbol":"SOL/USD","strategy_type":"SMA_RSI","parameters":{"movingAveragePeriod":14,"rsiPeriod":21,"overboughtThreshold":72.35,"oversoldThreshold":27.9},"score":0.88731,"current_score":0.88731,"performance_metrics":null,"discovery_symbol":null,"discovery_start_time":null,"strategy_hash":null,"extra":{"a":[1,2.5,"x",true,false,null,{}],"b":[]},"more":-0})",
      R"({"symbol": "A\"B\\C\/D\b\f\n\r\t", "strategy_type": "T", "parameters": {"s": "x\ty", "n": -12, "u": 18446744073709551615, "i": -9223372036854775808, "f": -0.0, "e": 1E+2, "g": 2.5e-3}, "score": -0, "strategy_hash": "h"})",
      R"({"symbol": "BTC/€", "strategy_type": "\u0054", "parameters": {"k\u00e9": 1}, "score": 1})",
      "\xEF\xBB\xBF" R"({"symbol": "A", "strategy_type": "T", "parameters": {}, "score": 1})",
      " \t\r\n{ \"symbol\" : \"A\" , \"strategy_type\" : \"T\" , \"parameters\" : { } , \"score\" : 1 } \n",
  };
  return kSeeds;
}

TEST(Decode, FastPathAgreesWithDomOnSeeds) {
  for (const auto& seed : decoder_seeds()) {
    EXPECT_EQ(compare_decoders(seed), "") << seed;
    for (std::size_t depth : {0, 1, 2, 3, 4, 64, 1000}) {
      DecodeOptions options;
      options.max_depth = depth;
      EXPECT_EQ(compare_decoders(seed, options), "") << "max_depth " << depth << ": " << seed;
    }
  }
}

TEST(Decode, FastPathAgreesWithDomOnMutations) {
  // Random edits of valid messages: bytes deleted, inserted, replaced, spans repeated, tokens swapped for
  // tricky ones. Most break the message somewhere; the two decoders must break it the same way.
  static const std::vector<std::string> kFragments = {
      "{", "}", "[", "]", "\"", "\\", ",", ":", " ", "\t", "\n", "0", "1", "-", ".", "e", "E", "+", "null", "true",
      "false", std::string(1, '\0'), "\x7f", "\xff", "\xc3\xa9", "\\u0000", "\\u00e9", "\\ud800", "\\n", "\\x",
      "1e400", "-1e400", "1e-400", "4.9e-324", "2.2250738585072014e-308", "18446744073709551616",
      "-9223372036854775809", "01", "1.", "-0", "-0.0", "1.7976931348623157e308", "\"symbol\": \"Z\", ",
      "\"parameters\": {\"p\": 1}, ", "\"score\": 2, ", "\"current_score\": 3, ", "\"strategy_hash\": \"\", ",
      "\"discovery_start_time\": \"2024-01-01T00:00:00Z\", ", "\"discovery_end_time\": \"bad\", ", "\"x\": 1, ",
      "\"x\": [[[[[[1]]]]]], ", "\"performance_metrics\": [1], ", "{\"a\":{\"a\":{\"a\":{}}}}"};
  std::mt19937_64 rng(424242);
  int checked = 0, accepted = 0;
  for (int i = 0; i < 40000; ++i) {
    std::string m = decoder_seeds()[rng() % decoder_seeds().size()];
    for (int edits = 1 + static_cast<int>(rng() % 3); edits > 0 && !m.empty(); --edits) {
      const std::size_t at = rng() % (m.size() + 1);
      switch (rng() % 5) {
        case 0: m.erase(std::min(at, m.size() - 1), 1 + rng() % 3); break;
        case 1: m.insert(at, kFragments[rng() % kFragments.size()]); break;
        case 2: if (at < m.size()) m[at] = kFragments[rng() % kFragments.size()][0]; break;
        case 3: m.insert(at, m.substr(rng() % m.size(), rng() % 20)); break;
        default: {
          // Replace the token at `at` (up to the next delimiter) with a fragment.
          std::size_t end = at;
          while (end < m.size() && std::strchr(",:}] ", m[end]) == nullptr) ++end;
          m.replace(at, end - at, kFragments[rng() % kFragments.size()]);
        }
      }
    }
    DecodeOptions options;
    if (rng() % 4 == 0) options.max_depth = rng() % 6;
    if (rng() % 8 == 0) options.max_message_bytes = rng() % (m.size() + 10);
    const std::string diff = compare_decoders(m, options);
    ASSERT_EQ(diff, "") << "message: " << m << " (max_depth " << options.max_depth << ")";
    ++checked;
    accepted += decode_strategy_dom(m, options).ok();
  }
  EXPECT_EQ(checked, 40000);
  EXPECT_GT(accepted, 1000) << "the edits should leave a fair share of messages valid";
}

TEST(Decode, StringsAreKeptVerbatim) {
  json msg = minimal();
  msg["symbol"] = "BTC/€\t\"quoted\"\\N";
  msg["discovery_symbol"] = "日本";
  const Decoded d = decode_strategy(msg.dump());
  ASSERT_TRUE(d.ok()) << describe(d);
  EXPECT_EQ(d.record.symbol, "BTC/€\t\"quoted\"\\N");
  EXPECT_EQ(d.record.discovery_symbol.value_or(""), "日本");
}

}  // namespace
}  // namespace strategy_consumer

namespace strategy_consumer {
namespace {

// A key or a token as long as the message gives a reason of bounded size.
TEST(DecodeBounds, AnEnormousKeyOrTokenGivesABoundedReason) {
  const std::string key(1 << 20, 'k');
  const Decoded duplicate = decode_strategy(R"({"symbol": "A", "strategy_type": "T", "parameters": {")" + key +
                                            R"(": 1, ")" + key + R"(": 2}, "score": 1})",
                                            DecodeOptions{.max_message_bytes = 4 << 20});
  ASSERT_EQ(duplicate.reasons.size(), 1u);
  EXPECT_EQ(duplicate.reasons[0].rule, "format.duplicate_key");
  EXPECT_LE(duplicate.reasons[0].field.size(), kMaxReasonFieldBytes + 3);
  EXPECT_LE(duplicate.reasons[0].value.size(), kMaxReasonValueBytes + 3);

  const Decoded unterminated = decode_strategy(R"({"symbol": ")" + std::string(1 << 20, 's'),
                                               DecodeOptions{.max_message_bytes = 4 << 20});
  ASSERT_EQ(unterminated.reasons.size(), 1u);
  EXPECT_EQ(unterminated.reasons[0].rule, "format.json");
  EXPECT_LE(unterminated.reasons[0].message.size(), kMaxReasonMessageBytes + 3);
  EXPECT_NE(unterminated.reasons[0].message.find("not valid JSON"), std::string::npos);
}

}  // namespace
}  // namespace strategy_consumer
