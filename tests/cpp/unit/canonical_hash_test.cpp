// The canonical form and hash of a strategy (canonical_hash.hpp). The golden values below were computed
// independently of this code:
//   printf '%s' '<canonical json>' | sha256sum
// and with Python: json.dumps(d, sort_keys=True, separators=(",", ":"), ensure_ascii=False).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "strategy_consumer/message/canonical_hash.hpp"

namespace strategy_consumer {
namespace {

using nlohmann::json;

TEST(Sha256Hex, KnownVectors) {
  // FIPS 180-2 test vector, and the hash of nothing.
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  // Binary data with NUL bytes is hashed in full (not as a C string).
  EXPECT_NE(sha256_hex(std::string("a\0b", 3)), sha256_hex("a"));
}

TEST(CanonicalJson, PinnedSample) {
  EXPECT_EQ(canonical_json(json::parse(R"({"b":1.0,"a":[2.50,{"d":1,"c":true}]})")),
            R"({"a":[2.5,{"c":true,"d":1}],"b":1})");
}

TEST(CanonicalJson, PinnedSampleWithEscapesAndNonAscii) {
  // Keys sorted by UTF-8 bytes ("z" 0x7A before "é" 0xC3), non-ASCII kept, control characters escaped.
  const json doc = json::parse(R"({"symbol":"BTC/€","strategy_type":"Mean \"Reversion\"\n",
      "parameters":{"z":"ü","é":[1.0,2.50,-3e0],"A":{"y":null,"x":false},"ctl":"\u0001\t"}})");
  EXPECT_EQ(canonical_json(doc),
            "{\"parameters\":{\"A\":{\"x\":false,\"y\":null},\"ctl\":\"\\u0001\\t\",\"z\":\"ü\",\"é\":[1,2.5,-3]},"
            "\"strategy_type\":\"Mean \\\"Reversion\\\"\\n\",\"symbol\":\"BTC/€\"}");
  EXPECT_EQ(canonical_strategy_hash("BTC/€", "Mean \"Reversion\"\n", doc["parameters"]),
            "f605a1203e8ca401bad42b61af21422e016479783329fab13916e60ee1600c6a");
}

TEST(CanonicalStrategyHash, GoldenValue) {
  // Canonical form: {"parameters":{"fast":10,"rsi":{"period":14,"threshold":0.7},"slow":30},
  //                  "strategy_type":"SMA_RSI","symbol":"BTCUSDT"}
  const json parameters = json::parse(R"({"slow": 30.0, "fast": 10, "rsi": {"threshold": 0.70, "period": 14}})");
  EXPECT_EQ(canonical_strategy_hash("BTCUSDT", "SMA_RSI", parameters),
            "57902d0d2af9f7632dff2d5c7c35d3e579087becbd492ba695d49ddcf09ce528");
  // It is exactly the SHA-256 of the canonical document described in the header.
  const json doc = {{"symbol", "BTCUSDT"}, {"strategy_type", "SMA_RSI"}, {"parameters", parameters}};
  EXPECT_EQ(canonical_json(doc),
            R"({"parameters":{"fast":10,"rsi":{"period":14,"threshold":0.7},"slow":30},)"
            R"("strategy_type":"SMA_RSI","symbol":"BTCUSDT"})");
  EXPECT_EQ(canonical_strategy_hash("BTCUSDT", "SMA_RSI", parameters), sha256_hex(canonical_json(doc)));
}

// Texts of the same parameters that must give one canonical form and one hash.
TEST(CanonicalStrategyHash, EquivalentSpellingsHashAlike) {
  struct Group {
    const char* name;
    std::vector<const char*> spellings;
  };
  const std::vector<Group> groups = {
      {"key order and white space",
       {R"({"fast":10,"slow":30})", R"({"slow":30,"fast":10})", " {\n \"slow\" : 30 ,\t\"fast\":10 } "}},
      {"1 vs 1.0 vs 1e0", {R"({"p":1})", R"({"p":1.0})", R"({"p":1e0})", R"({"p":10e-1})", R"({"p":0.1e1})"}},
      {"0.5 vs 0.50", {R"({"p":0.5})", R"({"p":0.50})", R"({"p":5e-1})", R"({"p":50E-2})"}},
      {"-0.0 vs 0", {R"({"p":0})", R"({"p":-0.0})", R"({"p":-0})", R"({"p":0.0})", R"({"p":0e5})"}},
      {"negative integers", {R"({"p":-3})", R"({"p":-3.0})", R"({"p":-3e0})"}},
      {"nested objects sorted",
       {R"({"a":{"y":1,"x":{"k2":2,"k1":1}},"b":[{"d":1,"c":2}]})",
        R"({"b":[{"c":2,"d":1}],"a":{"x":{"k1":1,"k2":2},"y":1}})"}},
  };
  for (const auto& g : groups) {
    SCOPED_TRACE(g.name);
    const json first = json::parse(g.spellings.front());
    for (const char* text : g.spellings) {
      const json other = json::parse(text);
      EXPECT_EQ(canonical_json(other), canonical_json(first)) << text;
      EXPECT_EQ(canonical_strategy_hash("S", "T", other), canonical_strategy_hash("S", "T", first)) << text;
    }
  }
}

TEST(CanonicalJson, NormalisedNumbers) {
  struct Case {
    const char* input;
    const char* canonical;
  };
  const std::vector<Case> cases = {
      {"1.0", "1"},       {"-0.0", "0"},       {"2.50", "2.5"},   {"1e3", "1000"},
      {"0.1", "0.1"},     {"-2.5", "-2.5"},    {"1e-7", "1e-07"}, {"[1.0,{\"b\":2.0,\"a\":-0.0}]", "[1,{\"a\":0,\"b\":2}]"},
      {"9007199254740991.0", "9007199254740991"},  // 2^53 - 1: still an integer
  };
  for (const auto& c : cases) {
    EXPECT_EQ(canonical_json(json::parse(c.input)), c.canonical) << c.input;
  }
}

TEST(CanonicalStrategyHash, DifferentStrategiesHashDifferently) {
  const json params = json::parse(R"({"fast":10,"slow":30,"nested":{"a":[1,2]}})");
  const std::string base = canonical_strategy_hash("BTCUSDT", "SMA", params);
  struct Case {
    const char* name;
    std::string hash;
  };
  const std::vector<Case> cases = {
      {"symbol", canonical_strategy_hash("ETHUSDT", "SMA", params)},
      {"strategy type", canonical_strategy_hash("BTCUSDT", "EMA", params)},
      {"parameter value", canonical_strategy_hash("BTCUSDT", "SMA", json::parse(R"({"fast":11,"slow":30,"nested":{"a":[1,2]}})"))},
      {"parameter value 10 vs 10.5",
       canonical_strategy_hash("BTCUSDT", "SMA", json::parse(R"({"fast":10.5,"slow":30,"nested":{"a":[1,2]}})"))},
      {"parameter name", canonical_strategy_hash("BTCUSDT", "SMA", json::parse(R"({"fastt":10,"slow":30,"nested":{"a":[1,2]}})"))},
      {"array order", canonical_strategy_hash("BTCUSDT", "SMA", json::parse(R"({"fast":10,"slow":30,"nested":{"a":[2,1]}})"))},
      {"number vs string", canonical_strategy_hash("BTCUSDT", "SMA", json::parse(R"({"fast":"10","slow":30,"nested":{"a":[1,2]}})"))},
      {"extra parameter", canonical_strategy_hash("BTCUSDT", "SMA", json::parse(R"({"fast":10,"slow":30,"nested":{"a":[1,2]},"x":null})"))},
      // The fields are kept apart: moving text from symbol to type is another strategy.
      {"field boundaries", canonical_strategy_hash("BTCUSD", "TSMA", params)},
  };
  for (const auto& c : cases) {
    EXPECT_NE(c.hash, base) << c.name;
    EXPECT_EQ(c.hash.size(), 64u) << c.name;
  }
  EXPECT_EQ(canonical_strategy_hash("BTCUSDT", "SMA", params), base) << "the hash is deterministic";
}

TEST(CanonicalStrategyHash, LowerCaseHex) {
  const std::string h = canonical_strategy_hash("A", "B", json::object());
  ASSERT_EQ(h.size(), 64u);
  for (char c : h) EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << h;
}

// canonical_json writes the canonical form directly; this is its definition spelled out the slow way (a normalised
// copy, then json::dump), to check the two agree on every kind of value.
json normalised_copy(const json& v) {
  switch (v.type()) {
    case json::value_t::object: {
      json out = json::object();
      for (const auto& [k, item] : v.items()) out[k] = normalised_copy(item);
      return out;
    }
    case json::value_t::array: {
      json out = json::array();
      for (const auto& item : v) out.push_back(normalised_copy(item));
      return out;
    }
    case json::value_t::number_float: {
      const double d = v.get<double>();
      if (std::isfinite(d) && std::trunc(d) == d && std::fabs(d) < 9007199254740992.0) {
        return json(static_cast<std::int64_t>(d));
      }
      return v;
    }
    case json::value_t::number_unsigned: {
      const auto u = v.get<std::uint64_t>();
      if (u <= static_cast<std::uint64_t>(INT64_MAX)) return json(static_cast<std::int64_t>(u));
      return v;
    }
    default:
      return v;
  }
}

json random_value(std::mt19937_64& rng, int depth) {
  static const std::vector<double> kDoubles = {0.0,  -0.0,    1.0,    -1.0,   0.5,     2.5e-7, 1e-5,   1e15,
                                               1e16, 1e21,    1e300,  -1e-300, 123.456, 0.1,    4503599627370496.5,
                                               9007199254740991.0, 9007199254740992.0, -9007199254740992.0,
                                               18446744073709551616.0, 72.35, 27.9, 1.7976931348623157e308};
  static const std::vector<std::string> kStrings = {"", "BTC/USD", "a\"b", "back\\slash", "tab\there", "ctl\x01\x1f",
                                                    "del\x7f", "€uro", "é", "newline\n", "/slash"};
  std::uniform_int_distribution<int> kind(0, depth > 3 ? 6 : 8);
  switch (kind(rng)) {
    case 0: return json(nullptr);
    case 1: return json(rng() % 2 == 0);
    case 2: return json(static_cast<std::int64_t>(rng()) >> (rng() % 64));
    case 3: return json(static_cast<std::uint64_t>(rng()) >> (rng() % 64));
    case 4: return json(kDoubles[rng() % kDoubles.size()] * ((rng() % 2) ? 1 : -1));
    case 5: return json(std::ldexp(static_cast<double>(rng() % 100000), static_cast<int>(rng() % 80) - 40));
    case 6: return json(kStrings[rng() % kStrings.size()]);
    case 7: {
      json a = json::array();
      for (int i = static_cast<int>(rng() % 4); i > 0; --i) a.push_back(random_value(rng, depth + 1));
      return a;
    }
    default: {
      json o = json::object();
      for (int i = static_cast<int>(rng() % 5); i > 0; --i) {
        o[kStrings[rng() % kStrings.size()] + std::to_string(rng() % 3)] = random_value(rng, depth + 1);
      }
      return o;
    }
  }
}

TEST(CanonicalJson, AgreesWithNormalisedDump) {
  std::mt19937_64 rng(20241115);
  for (int i = 0; i < 5000; ++i) {
    const json v = random_value(rng, 0);
    const std::string expected = normalised_copy(v).dump();
    ASSERT_EQ(canonical_json(v), expected) << v.dump();
    json doc = json::object();
    doc["parameters"] = v;
    doc["strategy_type"] = "T\"" + std::to_string(i);
    doc["symbol"] = "S€";
    ASSERT_EQ(canonical_strategy_hash("S€", "T\"" + std::to_string(i), v), sha256_hex(normalised_copy(doc).dump()))
        << v.dump();
  }
}

TEST(CanonicalJson, InvalidUtf8IsRefusedLikeDump) {
  const json bad = json(std::string("\xff"));
  EXPECT_THROW(bad.dump(), json::type_error);
  EXPECT_THROW(canonical_json(bad), json::type_error);
  EXPECT_THROW(canonical_strategy_hash("S", std::string("\xc3"), json::object()), json::type_error);
}

}  // namespace
}  // namespace strategy_consumer
