// Validator: every built-in catalog type against its own ranges, and a failing example for each rule id of
// validator.hpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "strategy_consumer/message/catalog.hpp"
#include "strategy_consumer/message/validator.hpp"

namespace strategy_consumer {
namespace {

using nlohmann::json;

constexpr std::int64_t kNow = 1705307400LL * 1000000;  // 2024-01-15T08:30:00Z
constexpr std::int64_t kHourUs = 3600LL * 1000000;
constexpr std::int64_t kDayUs = 24 * kHourUs;

std::string describe(const Reasons& reasons) {
  if (reasons.empty()) return "no reasons";
  std::string out;
  for (const auto& r : reasons) {
    out += "[" + r.rule + " field='" + r.field + "' value='" + r.value + "' message='" + r.message + "'] ";
  }
  return out;
}

// Exactly one reason with this rule and field, explaining itself.
void expect_single(const Reasons& reasons, const std::string& rule, const std::string& field) {
  ASSERT_EQ(reasons.size(), 1u) << describe(reasons);
  EXPECT_EQ(reasons[0].rule, rule) << describe(reasons);
  EXPECT_EQ(reasons[0].field, field) << describe(reasons);
  EXPECT_FALSE(reasons[0].message.empty()) << describe(reasons);
}

const StrategyTypeSpec& spec_of(const std::string& type) {
  const StrategyTypeSpec* spec = Catalog::builtin()->find(type);
  if (!spec) throw std::logic_error("no catalog type " + type);
  return *spec;
}

// Every parameter of the type at its default, INTEGER ones as JSON integers.
json defaults_of(const StrategyTypeSpec& spec) {
  json out = json::object();
  for (const auto& p : spec.parameters) {
    if (p.type == ParameterType::integer) out[p.name] = static_cast<std::int64_t>(p.default_value);
    else out[p.name] = p.default_value;
  }
  return out;
}

// A record that passes every check: defaults, sane metadata, healthy metrics, a window in the past.
StrategyRecord good_record(const std::string& type = "MACD_CROSSOVER") {
  StrategyRecord r;
  r.symbol = "BTCUSDT";
  r.strategy_type = type;
  r.parameters = defaults_of(spec_of(type));
  r.score = 0.85;
  r.performance_metrics = json{{"total_return", 0.15}, {"sharpe_ratio", 1.8},  {"max_drawdown", -0.05},
                               {"win_rate", 0.6},      {"profit_factor", 1.9}, {"total_trades", 120},
                               {"avg_trade_duration", 3600}};
  r.discovery_symbol = "ETHUSDT";
  r.discovery_start_us = kNow - 30 * kDayUs;
  r.discovery_end_us = kNow - kDayUs;
  r.strategy_hash = "hash";
  return r;
}

// The value just outside a bound: one below an INTEGER min, a relative 1e-9 past a DOUBLE one.
json just_outside(const ParameterSpec& p, double bound, int direction) {
  if (p.type == ParameterType::integer) return static_cast<std::int64_t>(bound) + direction;
  return bound + direction * 1e-9 * std::max(1.0, std::fabs(bound));
}

json exactly(const ParameterSpec& p, double bound) {
  if (p.type == ParameterType::integer) return static_cast<std::int64_t>(bound);
  return bound;
}

std::vector<std::string> builtin_type_names() {
  std::vector<std::string> out;
  for (const auto& [name, type] : Catalog::builtin()->types()) out.push_back(name);
  return out;
}

TEST(ValidatorCatalog, BuiltinHasSixtyTypes) {
  EXPECT_EQ(builtin_type_names().size(), 60u);
  ASSERT_NE(Catalog::builtin()->find("RAINBOW_OSCILLATOR"), nullptr);
  EXPECT_TRUE(Catalog::builtin()->find("RAINBOW_OSCILLATOR")->parameters.empty());
}

// One instance per built-in type; the test name carries the type, SCOPED_TRACE the parameter.
class ValidatorCatalogType : public ::testing::TestWithParam<std::string> {
 protected:
  const StrategyTypeSpec& spec() const { return spec_of(GetParam()); }
  Validator validator_;
};

TEST_P(ValidatorCatalogType, AcceptsAllDefaults) {
  const json params = defaults_of(spec());
  EXPECT_TRUE(validator_.validate_parameters(params, spec()).empty())
      << params.dump() << ": " << describe(validator_.validate_parameters(params, spec()));
  const StrategyRecord r = good_record(GetParam());
  EXPECT_TRUE(validator_.validate(r, kNow).empty()) << describe(validator_.validate(r, kNow));
}

TEST_P(ValidatorCatalogType, AcceptsEachBoundExactly) {
  for (const auto& p : spec().parameters) {
    for (double bound : {p.min, p.max}) {
      SCOPED_TRACE(GetParam() + "." + p.name + " = " + exactly(p, bound).dump());
      json params = defaults_of(spec());
      params[p.name] = exactly(p, bound);
      const Reasons reasons = validator_.validate_parameters(params, spec());
      EXPECT_TRUE(reasons.empty()) << describe(reasons);
    }
  }
}

TEST_P(ValidatorCatalogType, RejectsJustOutsideEachBound) {
  for (const auto& p : spec().parameters) {
    for (auto [bound, direction] : {std::pair{p.min, -1}, std::pair{p.max, +1}}) {
      const json value = just_outside(p, bound, direction);
      SCOPED_TRACE(GetParam() + "." + p.name + " = " + value.dump());
      ASSERT_NE(value.get<double>(), bound) << "epsilon vanished";
      json params = defaults_of(spec());
      params[p.name] = value;
      const Reasons reasons = validator_.validate_parameters(params, spec());
      expect_single(reasons, "parameters.range", "parameters." + p.name);
      if (!reasons.empty()) {
        EXPECT_NE(reasons[0].message.find(GetParam()), std::string::npos) << reasons[0].message;
        EXPECT_FALSE(reasons[0].value.empty());
      }
    }
  }
}

TEST_P(ValidatorCatalogType, RangeViolationReachesTheWholeRecordCheck) {
  for (const auto& p : spec().parameters) {
    SCOPED_TRACE(GetParam() + "." + p.name);
    StrategyRecord r = good_record(GetParam());
    r.parameters[p.name] = just_outside(p, p.max, +1);
    expect_single(validator_.validate(r, kNow), "parameters.range", "parameters." + p.name);
  }
}

TEST_P(ValidatorCatalogType, IntegerParametersRefuseFractions) {
  for (const auto& p : spec().parameters) {
    if (p.type != ParameterType::integer) continue;
    for (const json& value : {json(14.5), json(p.default_value + 0.5)}) {
      SCOPED_TRACE(GetParam() + "." + p.name + " = " + value.dump());
      json params = defaults_of(spec());
      params[p.name] = value;
      expect_single(validator_.validate_parameters(params, spec()), "parameters.type", "parameters." + p.name);
    }
  }
}

TEST_P(ValidatorCatalogType, NumbersGivenAsStringsAreRefused) {
  for (const auto& p : spec().parameters) {
    for (const json& value : {json("14"), json(exactly(p, p.default_value).dump())}) {
      SCOPED_TRACE(GetParam() + "." + p.name + " = " + value.dump());
      json params = defaults_of(spec());
      params[p.name] = value;
      expect_single(validator_.validate_parameters(params, spec()), "parameters.type", "parameters." + p.name);
    }
  }
}

TEST_P(ValidatorCatalogType, OtherNonNumbersAreRefused) {
  for (const auto& p : spec().parameters) {
    for (const json& value : {json(true), json::array({14}), json::object({{"value", 14}})}) {
      SCOPED_TRACE(GetParam() + "." + p.name + " = " + value.dump());
      json params = defaults_of(spec());
      params[p.name] = value;
      expect_single(validator_.validate_parameters(params, spec()), "parameters.type", "parameters." + p.name);
    }
  }
}

TEST_P(ValidatorCatalogType, MissingParameterIsReported) {
  for (const auto& p : spec().parameters) {
    SCOPED_TRACE(GetParam() + "." + p.name);
    json params = defaults_of(spec());
    params.erase(p.name);
    expect_single(validator_.validate_parameters(params, spec()), "parameters.missing", "parameters." + p.name);
    params[p.name] = nullptr;  // null is as good as absent
    expect_single(validator_.validate_parameters(params, spec()), "parameters.missing", "parameters." + p.name);
  }
}

TEST_P(ValidatorCatalogType, ExtraParameterIsReported) {
  SCOPED_TRACE(GetParam());
  json params = defaults_of(spec());
  params["notAParameterOfAnyType"] = 1;
  const Reasons reasons = validator_.validate_parameters(params, spec());
  expect_single(reasons, "parameters.unknown", "parameters.notAParameterOfAnyType");
  if (!reasons.empty()) EXPECT_EQ(reasons[0].value, "1");
}

TEST_P(ValidatorCatalogType, EveryProblemIsReported) {
  // Each parameter broken in a different way, all reported together, plus an extra one.
  json params = defaults_of(spec());
  std::set<std::pair<std::string, std::string>> expected;
  int i = 0;
  for (const auto& p : spec().parameters) {
    const std::string field = "parameters." + p.name;
    switch (i++ % 3) {
      case 0:
        params[p.name] = just_outside(p, p.min, -1);
        expected.emplace("parameters.range", field);
        break;
      case 1:
        params.erase(p.name);
        expected.emplace("parameters.missing", field);
        break;
      default:
        params[p.name] = "x";
        expected.emplace("parameters.type", field);
    }
  }
  params["extra"] = 0;
  expected.emplace("parameters.unknown", "parameters.extra");
  const Reasons reasons = validator_.validate_parameters(params, spec());
  std::set<std::pair<std::string, std::string>> got;
  for (const auto& r : reasons) got.emplace(r.rule, r.field);
  EXPECT_EQ(reasons.size(), expected.size()) << describe(reasons);
  EXPECT_EQ(got, expected) << describe(reasons);
}

INSTANTIATE_TEST_SUITE_P(ValidatorBuiltin, ValidatorCatalogType, ::testing::ValuesIn(builtin_type_names()),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

TEST(ValidatorCatalogTable, DoubleParametersTakeJsonIntegers) {
  const Validator v;
  const StrategyTypeSpec& spec = spec_of("ATR_TRAILING_STOP");  // multiplier DOUBLE [1.0, 5.0]
  expect_single(v.validate_parameters(json{{"atrPeriod", 14}, {"multiplier", 6}}, spec), "parameters.range",
                "parameters.multiplier");
  EXPECT_TRUE(v.validate_parameters(json{{"atrPeriod", 14}, {"multiplier", 3}}, spec).empty());
  EXPECT_TRUE(v.validate_parameters(json{{"atrPeriod", 14}, {"multiplier", 4.75}}, spec).empty());
}

TEST(ValidatorCatalogTable, RangeReasonShowsTheValueAndTheRange) {
  const Validator v;
  const Reasons reasons = v.validate_parameters(json{{"adxPeriod", 31}, {"diPeriod", 14}}, spec_of("ADX_DMI"));
  expect_single(reasons, "parameters.range", "parameters.adxPeriod");
  ASSERT_FALSE(reasons.empty());
  EXPECT_EQ(reasons[0].value, "31");
  EXPECT_NE(reasons[0].message.find("10"), std::string::npos) << reasons[0].message;
  EXPECT_NE(reasons[0].message.find("30"), std::string::npos) << reasons[0].message;
}

// --- metadata.symbol -------------------------------------------------------------------------------------------

TEST(ValidatorSymbol, GoodRecordPasses) {
  const Validator v;
  EXPECT_TRUE(v.validate(good_record(), kNow).empty()) << describe(v.validate(good_record(), kNow));
}

TEST(ValidatorSymbol, EmptyIsRefused) {
  const Validator v;
  StrategyRecord r = good_record();
  r.symbol = "";
  const Reasons reasons = v.validate(r, kNow);
  expect_single(reasons, "metadata.symbol", "symbol");
  if (!reasons.empty()) EXPECT_NE(reasons[0].message.find("empty"), std::string::npos) << reasons[0].message;
}

TEST(ValidatorSymbol, TenThousandCharactersAreRefusedAndTruncated) {
  const Validator v;
  StrategyRecord r = good_record();
  r.symbol = std::string(10000, 'A');
  const Reasons reasons = v.validate(r, kNow);
  expect_single(reasons, "metadata.symbol", "symbol");
  ASSERT_FALSE(reasons.empty());
  EXPECT_NE(reasons[0].message.find("32"), std::string::npos) << reasons[0].message;
  EXPECT_LE(reasons[0].value.size(), kMaxReasonValueBytes + 3);
  EXPECT_EQ(reasons[0].value.substr(0, 10), "AAAAAAAAAA");
}

TEST(ValidatorSymbol, LengthLimitIsInclusive) {
  const Validator v;
  StrategyRecord r = good_record();
  r.symbol = std::string(32, 'B');
  EXPECT_TRUE(v.validate(r, kNow).empty()) << describe(v.validate(r, kNow));
  r.symbol = std::string(33, 'B');
  expect_single(v.validate(r, kNow), "metadata.symbol", "symbol");

  ValidatorOptions options;
  options.max_symbol_length = 4;
  const Validator short_symbols(Catalog::builtin(), options);
  r.discovery_symbol = "ETH";
  r.symbol = "ABCD";
  EXPECT_TRUE(short_symbols.validate(r, kNow).empty());
  r.symbol = "ABCDE";
  expect_single(short_symbols.validate(r, kNow), "metadata.symbol", "symbol");
}

TEST(ValidatorSymbol, SpaceIsRefused) {
  const Validator v;
  StrategyRecord r = good_record();
  r.symbol = "BTC USD";
  const Reasons reasons = v.validate(r, kNow);
  expect_single(reasons, "metadata.symbol", "symbol");
  if (!reasons.empty()) EXPECT_EQ(reasons[0].value, "BTC USD");
}

TEST(ValidatorSymbol, CharacterSetIsLettersDigitsAndPunctuationOfTickers) {
  const Validator v;
  for (const char* ok : {"BTC/USDT", "BRK.B", "ES=F", "^GSPC", "BINANCE:BTCUSDT", "BTC-USD", "btc_usd", "X9"}) {
    SCOPED_TRACE(ok);
    StrategyRecord r = good_record();
    r.symbol = ok;
    EXPECT_TRUE(v.validate(r, kNow).empty()) << describe(v.validate(r, kNow));
  }
  for (const char* bad : {"BTC\tUSD", "BTC,USD", "BTC$", "BTC\xC3\x9CSD", "'; DROP TABLE x;--", "BTC\nUSD", "a*b"}) {
    SCOPED_TRACE(bad);
    StrategyRecord r = good_record();
    r.symbol = bad;
    expect_single(v.validate(r, kNow), "metadata.symbol", "symbol");
  }
}

TEST(ValidatorSymbol, DiscoverySymbolHasTheSameChecks) {
  const Validator v;
  for (const std::string& bad : {std::string(""), std::string(10000, 'E'), std::string("BTC USD")}) {
    SCOPED_TRACE(bad.substr(0, 20));
    StrategyRecord r = good_record();
    r.discovery_symbol = bad;
    expect_single(v.validate(r, kNow), "metadata.symbol", "discovery_symbol");
  }
  StrategyRecord r = good_record();
  r.discovery_symbol.reset();
  EXPECT_TRUE(v.validate(r, kNow).empty()) << "discovery_symbol is optional";
}

// --- metadata.strategy_type ------------------------------------------------------------------------------------

TEST(ValidatorStrategyType, UnknownTypeIsRefused) {
  const Validator v;
  for (const char* type : {"NOT_A_TYPE", "macd_crossover", ""}) {
    SCOPED_TRACE(type);
    StrategyRecord r = good_record();
    r.strategy_type = type;
    const Reasons reasons = v.validate(r, kNow);
    expect_single(reasons, "metadata.strategy_type", "strategy_type");
    if (!reasons.empty()) EXPECT_EQ(reasons[0].value, type);
  }
}

TEST(ValidatorStrategyType, UnknownTypeIsAcceptedWhenAllowedWithAnyParameters) {
  ValidatorOptions options;
  options.allow_unknown_strategy_types = true;
  const Validator v(Catalog::builtin(), options);
  EXPECT_TRUE(v.options().allow_unknown_strategy_types);
  StrategyRecord r = good_record();
  r.strategy_type = "MY_OWN_STRATEGY";
  r.parameters = json{{"anything", "goes"}, {"period", -5}};
  EXPECT_TRUE(v.validate(r, kNow).empty()) << describe(v.validate(r, kNow));
  // Known types are still checked against the catalog.
  StrategyRecord known = good_record();
  known.parameters["signalPeriod"] = 100;
  expect_single(v.validate(known, kNow), "parameters.range", "parameters.signalPeriod");
}

TEST(ValidatorStrategyType, OverriddenCatalogDecides) {
  Catalog mine = Catalog::parse(
      "strategy_type\tparameter_message\tparameter\ttype\tmin\tmax\tdefault\n"
      "MY_TYPE\tMyParameters\tlength\tINTEGER\t1\t3\t2\n",
      "mine");
  const Validator v(std::make_shared<const Catalog>(mine));
  EXPECT_EQ(v.catalog().types().size(), 1u);
  StrategyRecord r = good_record();
  expect_single(v.validate(r, kNow), "metadata.strategy_type", "strategy_type");
  r.strategy_type = "MY_TYPE";
  r.parameters = json{{"length", 3}};
  EXPECT_TRUE(v.validate(r, kNow).empty()) << describe(v.validate(r, kNow));
  r.parameters = json{{"length", 4}};
  expect_single(v.validate(r, kNow), "parameters.range", "parameters.length");
}

// --- metadata.discovery_window / discovery_future ---------------------------------------------------------------

TEST(ValidatorDiscoveryWindow, EndBeforeStartIsRefused) {
  const Validator v;
  StrategyRecord r = good_record();
  r.discovery_start_us = kNow - kDayUs;
  r.discovery_end_us = kNow - 2 * kDayUs;
  const Reasons reasons = v.validate(r, kNow);
  expect_single(reasons, "metadata.discovery_window", "discovery_end_time");
  ASSERT_FALSE(reasons.empty());
  EXPECT_EQ(reasons[0].value, "2024-01-13 08:30:00");
  EXPECT_NE(reasons[0].message.find("2024-01-14 08:30:00"), std::string::npos) << reasons[0].message;
}

TEST(ValidatorDiscoveryWindow, EqualStartAndEndIsRefused) {
  const Validator v;
  StrategyRecord r = good_record();
  r.discovery_start_us = kNow - kDayUs;
  r.discovery_end_us = kNow - kDayUs;
  expect_single(v.validate(r, kNow), "metadata.discovery_window", "discovery_end_time");
  r.discovery_end_us = kNow - kDayUs + 1;  // one microsecond is a window
  EXPECT_TRUE(v.validate(r, kNow).empty()) << describe(v.validate(r, kNow));
}

TEST(ValidatorDiscoveryWindow, HalfAWindowIsNotChecked) {
  const Validator v;
  StrategyRecord r = good_record();
  r.discovery_start_us.reset();
  EXPECT_TRUE(v.validate(r, kNow).empty());
  r = good_record();
  r.discovery_end_us.reset();
  EXPECT_TRUE(v.validate(r, kNow).empty());
}

TEST(ValidatorDiscoveryFuture, EndAnHourFromNowIsRefused) {
  const Validator v;
  StrategyRecord r = good_record();
  r.discovery_end_us = kNow + kHourUs;
  const Reasons reasons = v.validate(r, kNow);
  expect_single(reasons, "metadata.discovery_future", "discovery_end_time");
  if (!reasons.empty()) EXPECT_EQ(reasons[0].value, "2024-01-15 09:30:00");
}

TEST(ValidatorDiscoveryFuture, StartAndEndInTheFutureAreBothReported) {
  const Validator v;
  StrategyRecord r = good_record();
  r.discovery_start_us = kNow + kHourUs;
  r.discovery_end_us = kNow + 2 * kHourUs;
  const Reasons reasons = v.validate(r, kNow);
  ASSERT_EQ(reasons.size(), 2u) << describe(reasons);
  EXPECT_EQ(reasons[0].rule, "metadata.discovery_future");
  EXPECT_EQ(reasons[0].field, "discovery_start_time");
  EXPECT_EQ(reasons[1].rule, "metadata.discovery_future");
  EXPECT_EQ(reasons[1].field, "discovery_end_time");
}

TEST(ValidatorDiscoveryFuture, FiveMinutesOfClockSkewAreAllowed) {
  const Validator v;
  EXPECT_EQ(v.options().future_skew, std::chrono::seconds(300));
  StrategyRecord r = good_record();
  r.discovery_end_us = kNow + 4 * 60 * 1000000LL;
  EXPECT_TRUE(v.validate(r, kNow).empty()) << describe(v.validate(r, kNow));
  r.discovery_end_us = kNow + 300 * 1000000LL;
  EXPECT_TRUE(v.validate(r, kNow).empty()) << "exactly the skew is still fine: " << describe(v.validate(r, kNow));
  r.discovery_end_us = kNow + 300 * 1000000LL + 1;
  expect_single(v.validate(r, kNow), "metadata.discovery_future", "discovery_end_time");
}

TEST(ValidatorDiscoveryFuture, SkewIsAnOption) {
  ValidatorOptions options;
  options.future_skew = std::chrono::seconds(0);
  const Validator v(Catalog::builtin(), options);
  StrategyRecord r = good_record();
  r.discovery_end_us = kNow;
  EXPECT_TRUE(v.validate(r, kNow).empty());
  r.discovery_end_us = kNow + 1;
  expect_single(v.validate(r, kNow), "metadata.discovery_future", "discovery_end_time");
}

// --- metrics ---------------------------------------------------------------------------------------------------

// The reasons for a good record whose metrics have `name` set to `value`.
Reasons with_metric(const std::string& name, const json& value) {
  StrategyRecord r = good_record();
  (*r.performance_metrics)[name] = value;
  return Validator().validate(r, kNow);
}

TEST(ValidatorMetrics, NonNumbersAreMetricsType) {
  for (const char* name : {"sharpe_ratio", "total_return", "win_rate", "total_trades", "my_metric"}) {
    for (const json& value : {json("1.8"), json(true), json::array({1}), json::object({{"v", 1}})}) {
      SCOPED_TRACE(std::string(name) + " = " + value.dump());
      const Reasons reasons = with_metric(name, value);
      expect_single(reasons, "metrics.type", std::string("performance_metrics.") + name);
    }
  }
  const Reasons reasons = with_metric("sharpe_ratio", "1.8");
  ASSERT_FALSE(reasons.empty());
  EXPECT_EQ(reasons[0].value, "1.8");
}

TEST(ValidatorMetrics, NullMetricsAreAbsentOnes) {
  EXPECT_TRUE(with_metric("win_rate", nullptr).empty());
  StrategyRecord r = good_record();
  r.performance_metrics.reset();
  EXPECT_TRUE(Validator().validate(r, kNow).empty());
  r.performance_metrics = json::object();
  EXPECT_TRUE(Validator().validate(r, kNow).empty());
}

TEST(ValidatorMetrics, NonFiniteNumbersAreMetricsType) {
  const Validator v;
  for (double bad : {std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(),
                     std::numeric_limits<double>::quiet_NaN()}) {
    for (const char* name : {"sharpe_ratio", "total_return", "avg_trade_duration"}) {
      SCOPED_TRACE(std::string(name) + " = " + std::to_string(bad));
      expect_single(v.validate_metrics(json{{name, bad}}), "metrics.type", std::string("performance_metrics.") + name);
    }
  }
}

TEST(ValidatorMetrics, WinRateOutsideZeroToOne) {
  for (double bad : {1.2, -0.1, 1.0000001}) {
    SCOPED_TRACE(bad);
    const Reasons reasons = with_metric("win_rate", bad);
    expect_single(reasons, "metrics.win_rate", "performance_metrics.win_rate");
    if (!reasons.empty()) EXPECT_EQ(reasons[0].value, json(bad).dump());
  }
  for (double ok : {0.0, 1.0, 0.5}) EXPECT_TRUE(with_metric("win_rate", ok).empty()) << ok;
}

TEST(ValidatorMetrics, MaxDrawdownOutsideMinusOneToZero) {
  for (double bad : {0.1, -1.5, 1.0}) {
    SCOPED_TRACE(bad);
    expect_single(with_metric("max_drawdown", bad), "metrics.max_drawdown", "performance_metrics.max_drawdown");
  }
  for (double ok : {-1.0, 0.0, -0.3}) EXPECT_TRUE(with_metric("max_drawdown", ok).empty()) << ok;
}

TEST(ValidatorMetrics, TotalTradesNotANonNegativeInteger) {
  for (const json& bad : {json(-1), json(10.5), json(-0.5)}) {
    SCOPED_TRACE(bad.dump());
    expect_single(with_metric("total_trades", bad), "metrics.total_trades", "performance_metrics.total_trades");
  }
  for (const json& ok : {json(0), json(1), json(10.0), json(1000000)}) {
    EXPECT_TRUE(with_metric("total_trades", ok).empty()) << ok.dump();
  }
}

TEST(ValidatorMetrics, NegativeProfitFactor) {
  expect_single(with_metric("profit_factor", -0.1), "metrics.profit_factor", "performance_metrics.profit_factor");
  EXPECT_TRUE(with_metric("profit_factor", 0.0).empty());
  EXPECT_TRUE(with_metric("profit_factor", 25.0).empty());
}

TEST(ValidatorMetrics, UnrangedMetricsTakeAnyFiniteNumber) {
  for (const char* name : {"total_return", "sharpe_ratio", "avg_trade_duration", "calmar_ratio"}) {
    for (double v : {-5.0, 0.0, 1e6}) EXPECT_TRUE(with_metric(name, v).empty()) << name << " = " << v;
  }
}

TEST(ValidatorMetrics, EveryBadMetricIsReported) {
  const Reasons reasons = Validator().validate_metrics(
      json{{"win_rate", 1.2}, {"max_drawdown", 0.1}, {"total_trades", -1}, {"profit_factor", -0.1}, {"x", "y"}});
  std::set<std::string> rules;
  for (const auto& r : reasons) rules.insert(r.rule);
  EXPECT_EQ(reasons.size(), 5u) << describe(reasons);
  EXPECT_EQ(rules, (std::set<std::string>{"metrics.win_rate", "metrics.max_drawdown", "metrics.total_trades",
                                          "metrics.profit_factor", "metrics.type"}));
}

// --- all reasons together --------------------------------------------------------------------------------------

TEST(ValidatorAllReasons, FourProblemsGiveFourReasons) {
  StrategyRecord r = good_record();
  r.symbol = "";
  r.parameters["signalPeriod"] = 13;  // MACD_CROSSOVER signalPeriod is [5, 12]
  (*r.performance_metrics)["win_rate"] = 1.2;
  r.discovery_end_us = *r.discovery_start_us - kDayUs;
  const Reasons reasons = Validator().validate(r, kNow);
  ASSERT_EQ(reasons.size(), 4u) << describe(reasons);
  std::set<std::pair<std::string, std::string>> got;
  for (const auto& reason : reasons) got.emplace(reason.rule, reason.field);
  EXPECT_EQ(got, (std::set<std::pair<std::string, std::string>>{
                     {"metadata.symbol", "symbol"},
                     {"parameters.range", "parameters.signalPeriod"},
                     {"metrics.win_rate", "performance_metrics.win_rate"},
                     {"metadata.discovery_window", "discovery_end_time"}}));
}

TEST(ValidatorAllReasons, OneOfEveryRule) {
  StrategyRecord r = good_record();
  r.symbol = "BTC USD";
  r.discovery_start_us = kNow + 2 * kHourUs;  // after the end, and in the future
  r.discovery_end_us = kNow + kHourUs;
  r.parameters.erase("shortEmaPeriod");
  r.parameters["longEmaPeriod"] = "26";
  r.parameters["signalPeriod"] = 4;
  r.parameters["extra"] = 1;
  r.performance_metrics = json{{"sharpe_ratio", "high"}, {"win_rate", -0.1},     {"max_drawdown", -1.5},
                               {"total_trades", 10.5},   {"profit_factor", -0.1}};
  const Reasons reasons = Validator().validate(r, kNow);
  std::multiset<std::string> rules;
  for (const auto& reason : reasons) {
    rules.insert(reason.rule);
    EXPECT_FALSE(reason.message.empty()) << describe({reason});
  }
  EXPECT_EQ(rules, (std::multiset<std::string>{"metadata.symbol", "metadata.discovery_window",
                                               "metadata.discovery_future", "metadata.discovery_future",
                                               "parameters.missing", "parameters.type", "parameters.range",
                                               "parameters.unknown", "metrics.type", "metrics.win_rate",
                                               "metrics.max_drawdown", "metrics.total_trades",
                                               "metrics.profit_factor"}))
      << describe(reasons);
  // An unknown type replaces the parameter checks: they cannot be made without a spec.
  r.strategy_type = "NOT_A_TYPE";
  std::set<std::string> unknown_rules;
  for (const auto& reason : Validator().validate(r, kNow)) unknown_rules.insert(reason.rule);
  EXPECT_TRUE(unknown_rules.count("metadata.strategy_type"));
  EXPECT_FALSE(unknown_rules.count("parameters.range"));
}

}  // namespace
}  // namespace strategy_consumer

// ---- bounds: no message, whatever its size and shape, gives an unbounded explanation ----

namespace strategy_consumer {
namespace {

std::size_t text_bytes(const Reasons& reasons) {
  std::size_t n = 0;
  for (const auto& r : reasons) n += r.rule.size() + r.field.size() + r.value.size() + r.message.size();
  return n;
}

TEST(ValidatorBounds, ThousandsOfUnknownKeysGiveTheCapAndACount) {
  const Validator v;
  StrategyRecord r = good_record();
  for (int i = 0; i < 5000; ++i) r.parameters["unknown_" + std::to_string(i)] = i;
  const Reasons reasons = v.validate(r, kNow);
  ASSERT_EQ(reasons.size(), kMaxReasons + 1) << describe(reasons);
  for (std::size_t i = 0; i < kMaxReasons; ++i) EXPECT_EQ(reasons[i].rule, "parameters.unknown");
  EXPECT_EQ(reasons.back().rule, kMoreReasonsRule);
  EXPECT_EQ(reasons.back().value, std::to_string(5000 - kMaxReasons));
  EXPECT_NE(reasons.back().message.find(std::to_string(5000 - kMaxReasons)), std::string::npos);
  EXPECT_LT(reasons_to_text(reasons).size(), 8000u);
}

TEST(ValidatorBounds, AnEnormousUnknownKeyIsCut) {
  const Validator v;
  StrategyRecord r = good_record();
  const std::string key(1 << 20, 'k');
  r.parameters[key] = std::string(1 << 20, 'v');
  const Reasons reasons = v.validate(r, kNow);
  ASSERT_EQ(reasons.size(), 1u) << reasons.size();
  EXPECT_EQ(reasons[0].rule, "parameters.unknown");
  EXPECT_EQ(reasons[0].field.rfind("parameters.kkkk", 0), 0u) << reasons[0].field.substr(0, 40);
  EXPECT_LE(reasons[0].field.size(), kMaxReasonFieldBytes + 3);
  EXPECT_LE(reasons[0].value.size(), kMaxReasonValueBytes + 3);
  EXPECT_LE(reasons[0].message.size(), kMaxReasonMessageBytes + 3);
  EXPECT_LT(text_bytes(reasons), 1200u);
}

TEST(ValidatorBounds, ManyBadParametersAndMetricsTogetherAreCountedOnce) {
  const Validator v;
  StrategyRecord r = good_record();
  for (auto& [name, value] : r.parameters.items()) value = -1e9;  // every catalog parameter out of range
  const std::size_t out_of_range = r.parameters.size();
  for (int i = 0; i < 300; ++i) r.parameters["x" + std::to_string(i)] = "bad";
  for (int i = 0; i < 300; ++i) (*r.performance_metrics)["m" + std::to_string(i)] = "not a number";
  const Reasons reasons = v.validate(r, kNow);
  ASSERT_EQ(reasons.size(), kMaxReasons + 1) << describe(reasons);
  EXPECT_EQ(reasons[0].rule, "parameters.range");
  EXPECT_EQ(reasons.back().rule, kMoreReasonsRule);
  EXPECT_EQ(reasons.back().value, std::to_string(out_of_range + 600 - kMaxReasons));
}

TEST(ReasonBounds, BoundedReasonsCutsEveryPartAndMergesCounts) {
  Reasons many;
  for (int i = 0; i < 30; ++i) {
    many.push_back({"rule." + std::string(500, 'r'), std::string(5000, 'f'), std::string(5000, 'v'),
                    std::string(5000, 'm')});
  }
  many.push_back({std::string(kMoreReasonsRule), "", "100", "100 more"});
  const Reasons b = bounded_reasons(many);
  ASSERT_EQ(b.size(), kMaxReasons + 1);
  for (std::size_t i = 0; i < kMaxReasons; ++i) {
    EXPECT_LE(b[i].rule.size(), kMaxReasonRuleBytes + 3);
    EXPECT_LE(b[i].field.size(), kMaxReasonFieldBytes + 3);
    EXPECT_LE(b[i].value.size(), kMaxReasonValueBytes + 3);
    EXPECT_LE(b[i].message.size(), kMaxReasonMessageBytes + 3);
  }
  EXPECT_EQ(b.back().value, std::to_string(30 - kMaxReasons + 100));
  EXPECT_EQ(bounded_reasons(b).size(), b.size()) << "bounding twice changes nothing";
  EXPECT_EQ(bounded_reasons(b).back().value, b.back().value);
  const Reasons one = bounded_reasons(many, 1);
  ASSERT_EQ(one.size(), 2u);
  EXPECT_EQ(one.back().value, std::to_string(29 + 100));
}

TEST(ReasonBounds, TruncateTextKeepsUtf8WholeAndReadsOnlyAPrefix) {
  std::string euros;
  for (int i = 0; i < 1000; ++i) euros += "€";
  const std::string cut = truncate_text(euros, 100);
  EXPECT_LE(cut.size(), 103u);
  EXPECT_EQ(cut.substr(cut.size() - 3), "...");
  EXPECT_EQ((cut.size() - 3) % 3, 0u) << "no character cut in half";
  EXPECT_EQ(truncate_text("short", 100), "short");
  EXPECT_EQ(truncate_text(std::string("a\x01") + "b", 100), "a\\x01b");
}

}  // namespace
}  // namespace strategy_consumer
