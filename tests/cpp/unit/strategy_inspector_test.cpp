// StrategyInspector: the inspector's operations on JSON text, through the decoder and validator the pipeline runs.
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "strategy_consumer/message/catalog.hpp"
#include "strategy_consumer/message/strategy_inspector.hpp"
#include "strategy_consumer/model/timestamp.hpp"

namespace strategy_consumer {
namespace {

using nlohmann::json;

constexpr std::int64_t kHourUs = 3600LL * 1000000;

std::string describe(const Reasons& reasons) {
  if (reasons.empty()) return "no reasons";
  std::string out;
  for (const auto& r : reasons) out += "[" + r.rule + " field='" + r.field + "' value='" + r.value + "'] ";
  return out;
}

void expect_single(const Reasons& reasons, const std::string& rule, const std::string& field) {
  ASSERT_EQ(reasons.size(), 1u) << describe(reasons);
  EXPECT_EQ(reasons[0].rule, rule) << describe(reasons);
  EXPECT_EQ(reasons[0].field, field) << describe(reasons);
}

bool has_rule(const Reasons& reasons, const std::string& rule) {
  for (const auto& r : reasons) {
    if (r.rule == rule) return true;
  }
  return false;
}

json defaults_of(const std::string& type) {
  json out = json::object();
  for (const auto& p : Catalog::builtin()->find(type)->parameters) {
    if (p.type == ParameterType::integer) out[p.name] = static_cast<std::int64_t>(p.default_value);
    else out[p.name] = p.default_value;
  }
  return out;
}

// A message every check accepts, as a JSON object to change before dumping.
json good(const std::string& type = "MACD_CROSSOVER") {
  return json{{"symbol", "BTCUSDT"},
              {"strategy_type", type},
              {"parameters", defaults_of(type)},
              {"score", 0.85},
              {"performance_metrics",
               {{"total_return", 0.15},
                {"sharpe_ratio", 1.8},
                {"max_drawdown", -0.05},
                {"win_rate", 0.6},
                {"profit_factor", 1.9},
                {"total_trades", 120},
                {"avg_trade_duration", 3600}}},
              {"discovery_symbol", "ETHUSDT"},
              {"discovery_start_time", "2024-01-01T00:00:00Z"},
              {"discovery_end_time", "2024-01-31T12:00:00Z"}};
}

// RFC 3339 text for a time, as a message carries it.
std::string rfc3339(std::int64_t us) { return format_timestamp_us(us) + "Z"; }

const json* parameter_entry(const json& analysis, const std::string& name) {
  for (const auto& entry : analysis.at("parameters")) {
    if (entry.at("name") == name) return &entry;
  }
  return nullptr;
}

bool has_warning(const json& analysis, const std::string& text) {
  for (const auto& w : analysis.at("warnings")) {
    if (w.get<std::string>().find(text) != std::string::npos) return true;
  }
  return false;
}

// --- validate_strategy / validate / inspect --------------------------------------------------------------------

TEST(StrategyInspectorValidate, GoodMessageIsValid) {
  const StrategyInspector inspector;
  EXPECT_TRUE(inspector.validate_strategy(good().dump())) << describe(inspector.validate(good().dump()));
  EXPECT_TRUE(inspector.validate(good().dump()).empty());
}

TEST(StrategyInspectorValidate, EveryBuiltinTypeWithDefaultsIsValid) {
  const StrategyInspector inspector;
  for (const auto& [name, type] : Catalog::builtin()->types()) {
    SCOPED_TRACE(name);
    EXPECT_TRUE(inspector.validate_strategy(good(name).dump())) << describe(inspector.validate(good(name).dump()));
  }
}

TEST(StrategyInspectorValidate, EachBadMessageIsInvalidWithItsRule) {
  struct Case {
    std::string name;
    std::string message;
    std::string rule;
  };
  auto changed = [](auto change) {
    json m = good();
    change(m);
    return m.dump();
  };
  const std::vector<Case> cases{
      {"broken JSON", R"({"symbol": "BTC)", "format.json"},
      {"empty", "", "format.empty"},
      {"array", "[1, 2]", "format.object"},
      {"no symbol", changed([](json& m) { m.erase("symbol"); }), "format.required"},
      {"empty symbol", changed([](json& m) { m["symbol"] = ""; }), "metadata.symbol"},
      {"long symbol", changed([](json& m) { m["symbol"] = std::string(10000, 'A'); }), "metadata.symbol"},
      {"symbol with space", changed([](json& m) { m["symbol"] = "BTC USD"; }), "metadata.symbol"},
      {"discovery_symbol with space", changed([](json& m) { m["discovery_symbol"] = "ETH USD"; }),
       "metadata.symbol"},
      {"unknown type", changed([](json& m) { m["strategy_type"] = "NOT_A_TYPE"; }), "metadata.strategy_type"},
      {"below range", changed([](json& m) { m["parameters"]["signalPeriod"] = 4; }), "parameters.range"},
      {"above range", changed([](json& m) { m["parameters"]["longEmaPeriod"] = 33; }), "parameters.range"},
      {"fraction", changed([](json& m) { m["parameters"]["signalPeriod"] = 9.5; }), "parameters.type"},
      {"number as string", changed([](json& m) { m["parameters"]["signalPeriod"] = "9"; }), "parameters.type"},
      {"missing parameter", changed([](json& m) { m["parameters"].erase("signalPeriod"); }), "parameters.missing"},
      {"extra parameter", changed([](json& m) { m["parameters"]["extra"] = 1; }), "parameters.unknown"},
      {"window reversed", changed([](json& m) { m["discovery_end_time"] = "2023-12-31T00:00:00Z"; }),
       "metadata.discovery_window"},
      {"end an hour ahead", changed([](json& m) { m["discovery_end_time"] = rfc3339(now_us() + kHourUs); }),
       "metadata.discovery_future"},
      {"metric as string", changed([](json& m) { m["performance_metrics"]["sharpe_ratio"] = "1.8"; }),
       "metrics.type"},
      {"win rate 1.2", changed([](json& m) { m["performance_metrics"]["win_rate"] = 1.2; }), "metrics.win_rate"},
      {"drawdown 0.1", changed([](json& m) { m["performance_metrics"]["max_drawdown"] = 0.1; }),
       "metrics.max_drawdown"},
      {"trades -1", changed([](json& m) { m["performance_metrics"]["total_trades"] = -1; }),
       "metrics.total_trades"},
      {"profit factor -0.1", changed([](json& m) { m["performance_metrics"]["profit_factor"] = -0.1; }),
       "metrics.profit_factor"},
  };
  const StrategyInspector inspector;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_FALSE(inspector.validate_strategy(c.message));
    const Reasons reasons = inspector.validate(c.message);
    EXPECT_TRUE(has_rule(reasons, c.rule)) << "want " << c.rule << ", got " << describe(reasons);
  }
}

TEST(StrategyInspectorValidate, EndWithinTheSkewIsValid) {
  const StrategyInspector inspector;
  json m = good();
  m["discovery_end_time"] = rfc3339(now_us() + 4 * 60 * 1000000LL);
  EXPECT_TRUE(inspector.validate_strategy(m.dump())) << describe(inspector.validate(m.dump()));
}

TEST(StrategyInspectorValidate, OptionsReachTheValidatorAndDecoder) {
  json unknown = good();
  unknown["strategy_type"] = "MY_OWN_STRATEGY";
  ValidatorOptions allow;
  allow.allow_unknown_strategy_types = true;
  EXPECT_FALSE(StrategyInspector().validate_strategy(unknown.dump()));
  EXPECT_TRUE(StrategyInspector(Catalog::builtin(), allow).validate_strategy(unknown.dump()));

  DecodeOptions tiny;
  tiny.max_message_bytes = 64;
  const StrategyInspector small(Catalog::builtin(), {}, tiny);
  const Inspection i = small.inspect(good().dump(), now_us());
  EXPECT_EQ(i.stage, "decode");
  EXPECT_TRUE(has_rule(i.reasons, "format.size")) << describe(i.reasons);
}

TEST(StrategyInspectorValidate, UsesTheGivenCatalog) {
  auto mine = std::make_shared<Catalog>(Catalog::parse(
      "strategy_type\tparameter_message\tparameter\ttype\tmin\tmax\tdefault\n"
      "MY_TYPE\tMyParameters\tlength\tINTEGER\t1\t3\t2\n",
      "mine"));
  const StrategyInspector inspector(mine);
  json m = good();
  EXPECT_FALSE(inspector.validate_strategy(m.dump())) << "MACD_CROSSOVER is not in this catalog";
  m["strategy_type"] = "MY_TYPE";
  m["parameters"] = {{"length", 3}};
  EXPECT_TRUE(inspector.validate_strategy(m.dump())) << describe(inspector.validate(m.dump()));
  EXPECT_EQ(&inspector.validator().catalog(), mine.get());
}

TEST(StrategyInspectorInspect, GoodMessageHasNoStageAndItsRecord) {
  const StrategyInspector inspector;
  const Inspection i = inspector.inspect(good().dump(), now_us());
  EXPECT_TRUE(i.ok()) << describe(i.reasons);
  EXPECT_EQ(i.stage, "");
  EXPECT_EQ(i.record.symbol, "BTCUSDT");
  EXPECT_EQ(i.record.strategy_type, "MACD_CROSSOVER");
  EXPECT_EQ(i.record.parameters, defaults_of("MACD_CROSSOVER"));
  EXPECT_DOUBLE_EQ(i.record.score, 0.85);
  EXPECT_FALSE(i.record.strategy_hash.empty());
}

TEST(StrategyInspectorInspect, BrokenJsonIsStageDecode) {
  const StrategyInspector inspector;
  for (const std::string& broken : {std::string(R"({"symbol": "BTC)"), std::string("{"), std::string("not json"),
                                    good().dump().substr(0, 40)}) {
    SCOPED_TRACE(broken);
    const Inspection i = inspector.inspect(broken, now_us());
    EXPECT_FALSE(i.ok());
    EXPECT_EQ(i.stage, "decode");
    expect_single(i.reasons, "format.json", "");
  }
}

TEST(StrategyInspectorInspect, RangeViolationIsStageValidate) {
  const StrategyInspector inspector;
  json m = good();
  m["parameters"]["shortEmaPeriod"] = 17;  // [8, 16]
  const Inspection i = inspector.inspect(m.dump(), now_us());
  EXPECT_FALSE(i.ok());
  EXPECT_EQ(i.stage, "validate");
  expect_single(i.reasons, "parameters.range", "parameters.shortEmaPeriod");
  EXPECT_EQ(i.record.symbol, "BTCUSDT") << "the decoded record is kept for the dead letter";
}

TEST(StrategyInspectorInspect, NowIsTheGivenOne) {
  const StrategyInspector inspector;
  json m = good();
  m["discovery_end_time"] = "2024-01-31T13:00:00Z";
  const std::int64_t just_before = *parse_rfc3339_us("2024-01-31T12:00:00Z");
  const Inspection early = inspector.inspect(m.dump(), just_before);
  EXPECT_EQ(early.stage, "validate");
  expect_single(early.reasons, "metadata.discovery_future", "discovery_end_time");
  EXPECT_TRUE(inspector.inspect(m.dump(), now_us()).ok());
}

TEST(StrategyInspectorInspect, AllReasonsOfAMessageTogether) {
  const StrategyInspector inspector;
  json m = good();
  m["symbol"] = "";
  m["parameters"]["signalPeriod"] = 13;
  m["performance_metrics"]["win_rate"] = 1.2;
  m["discovery_end_time"] = "2023-12-31T00:00:00Z";
  const Inspection i = inspector.inspect(m.dump(), now_us());
  EXPECT_EQ(i.stage, "validate");
  std::set<std::string> rules;
  for (const auto& r : i.reasons) rules.insert(r.rule);
  EXPECT_EQ(i.reasons.size(), 4u) << describe(i.reasons);
  EXPECT_EQ(rules, (std::set<std::string>{"metadata.symbol", "parameters.range", "metrics.win_rate",
                                          "metadata.discovery_window"}));
}

// --- validate_parameters ---------------------------------------------------------------------------------------

TEST(StrategyInspectorParameters, WithTypeChecksAgainstThatType) {
  const StrategyInspector inspector;
  EXPECT_TRUE(inspector.validate_parameters(defaults_of("MACD_CROSSOVER"), "MACD_CROSSOVER").empty());
  json p = defaults_of("MACD_CROSSOVER");
  p["signalPeriod"] = 13;
  expect_single(inspector.validate_parameters(p, "MACD_CROSSOVER"), "parameters.range", "parameters.signalPeriod");
  // EMA_MACD has the same names but signalPeriod [6, 12]: the type given decides.
  p["signalPeriod"] = 5;
  EXPECT_TRUE(inspector.validate_parameters(p, "MACD_CROSSOVER").empty());
  expect_single(inspector.validate_parameters(p, "EMA_MACD"), "parameters.range", "parameters.signalPeriod");
  // Another type's parameters: each of this type's is missing, each of the other's unknown.
  const Reasons wrong = inspector.validate_parameters(defaults_of("ADX_DMI"), "MACD_CROSSOVER");
  std::multiset<std::string> rules;
  for (const auto& r : wrong) rules.insert(r.rule);
  EXPECT_EQ(rules, (std::multiset<std::string>{"parameters.missing", "parameters.missing", "parameters.missing",
                                               "parameters.unknown", "parameters.unknown"}))
      << describe(wrong);
}

TEST(StrategyInspectorParameters, WithUnknownTypeIsStrategyType) {
  const StrategyInspector inspector;
  expect_single(inspector.validate_parameters(json{{"period", 20}}, std::string("NOT_A_TYPE")),
                "metadata.strategy_type", "strategy_type");
}

TEST(StrategyInspectorParameters, NotAnObjectIsFormatType) {
  const StrategyInspector inspector;
  for (const json& bad : {json::array({14, 14}), json(14), json("period"), json(nullptr)}) {
    SCOPED_TRACE(bad.dump());
    expect_single(inspector.validate_parameters(bad), "format.type", "parameters");
    expect_single(inspector.validate_parameters(bad, "ADX_DMI"), "format.type", "parameters");
  }
}

TEST(StrategyInspectorParameters, WithoutTypeEveryBuiltinTypesDefaultsFit) {
  const StrategyInspector inspector;
  for (const auto& [name, type] : Catalog::builtin()->types()) {
    SCOPED_TRACE(name);
    const Reasons reasons = inspector.validate_parameters(defaults_of(name));
    EXPECT_TRUE(reasons.empty()) << describe(reasons);
  }
}

TEST(StrategyInspectorParameters, WithoutTypePeriodFitsSeveralTypes) {
  std::vector<std::string> period_only;
  for (const auto& [name, type] : Catalog::builtin()->types()) {
    if (type.parameters.size() == 1 && type.parameters[0].name == "period") period_only.push_back(name);
  }
  EXPECT_GT(period_only.size(), 5u);
  const StrategyInspector inspector;
  EXPECT_TRUE(inspector.validate_parameters(json{{"period", 20}}).empty());
  EXPECT_TRUE(inspector.validate_parameters(json{{"period", 2}}).empty()) << "HEIKEN_ASHI's range starts at 2";
  EXPECT_TRUE(inspector.validate_parameters(json{{"period", 100}}).empty()) << "FIBONACCI_RETRACEMENTS ends at 100";
  expect_single(inspector.validate_parameters(json{{"period", 1}}), "parameters.range", "parameters.period");
  expect_single(inspector.validate_parameters(json{{"period", 101}}), "parameters.range", "parameters.period");
  expect_single(inspector.validate_parameters(json{{"period", 20.5}}), "parameters.type", "parameters.period");
  expect_single(inspector.validate_parameters(json{{"period", "20"}}), "parameters.type", "parameters.period");
}

TEST(StrategyInspectorParameters, WithoutTypeAdxDmiByItsNames) {
  const StrategyInspector inspector;
  EXPECT_TRUE(inspector.validate_parameters(json{{"adxPeriod", 14}, {"diPeriod", 14}}).empty());
  expect_single(inspector.validate_parameters(json{{"adxPeriod", 14}, {"diPeriod", 31}}), "parameters.range",
                "parameters.diPeriod");
}

TEST(StrategyInspectorParameters, WithoutTypeNoMatchingNameSetIsUnknown) {
  const StrategyInspector inspector;
  for (const json& params : {json{{"nope", 1}}, json{{"adxPeriod", 14}},
                             json{{"adxPeriod", 14}, {"diPeriod", 14}, {"extra", 1}}}) {
    SCOPED_TRACE(params.dump());
    const Reasons reasons = inspector.validate_parameters(params);
    expect_single(reasons, "parameters.unknown", "parameters");
    if (!reasons.empty()) EXPECT_FALSE(reasons[0].message.empty());
  }
}

TEST(StrategyInspectorParameters, WithoutTypeNoParametersIsRainbowOscillator) {
  EXPECT_TRUE(StrategyInspector().validate_parameters(json::object()).empty());
}

// --- analyze_strategy ------------------------------------------------------------------------------------------

TEST(StrategyInspectorAnalyze, CleanStrategyHasItsFamilyAndNoWarnings) {
  const json a = StrategyInspector().analyze_strategy(good().dump());
  EXPECT_EQ(a.at("valid"), true);
  EXPECT_EQ(a.at("stage"), "");
  EXPECT_TRUE(a.at("reasons").empty());
  EXPECT_EQ(a.at("symbol"), "BTCUSDT");
  EXPECT_EQ(a.at("strategy_type"), "MACD_CROSSOVER");
  EXPECT_EQ(a.at("known_type"), true);
  EXPECT_EQ(a.at("family"), "trend");
  EXPECT_DOUBLE_EQ(a.at("score").get<double>(), 0.85);
  EXPECT_FALSE(a.at("strategy_hash").get<std::string>().empty());
  EXPECT_EQ(a.at("parameters").size(), 3u);
  EXPECT_TRUE(a.at("warnings").empty()) << a.at("warnings").dump();
}

TEST(StrategyInspectorAnalyze, FamilyOfEachBuiltinType) {
  const StrategyInspector inspector;
  for (const auto& [name, type] : Catalog::builtin()->types()) {
    SCOPED_TRACE(name);
    const json a = inspector.analyze_strategy(good(name).dump());
    EXPECT_EQ(a.at("valid"), true);
    EXPECT_EQ(a.at("family"), type.family);
    ASSERT_EQ(a.at("parameters").size(), type.parameters.size());
    for (const auto& p : type.parameters) {
      SCOPED_TRACE(p.name);
      const json* e = parameter_entry(a, p.name);
      ASSERT_NE(e, nullptr);
      EXPECT_EQ(e->at("in_range"), true);
      EXPECT_EQ(e->at("is_default"), true);
      const double position = e->at("position").get<double>();
      EXPECT_NEAR(position, (p.default_value - p.min) / (p.max - p.min), 1e-12);
      const bool at_bound = p.default_value == p.min || p.default_value == p.max;
      EXPECT_EQ(e->at("at_bound"), at_bound);
      EXPECT_EQ(has_warning(a, p.name), at_bound) << a.at("warnings").dump();
    }
  }
}

TEST(StrategyInspectorAnalyze, PositionOfEachParameterInItsRange) {
  json m = good();
  m["parameters"] = {{"shortEmaPeriod", 8}, {"longEmaPeriod", 32}, {"signalPeriod", 9}};  // [8,16] [20,32] [5,12]
  const json a = StrategyInspector().analyze_strategy(m.dump());
  EXPECT_EQ(a.at("valid"), true) << a.dump();

  const json* low = parameter_entry(a, "shortEmaPeriod");
  ASSERT_NE(low, nullptr);
  EXPECT_DOUBLE_EQ(low->at("position").get<double>(), 0.0);
  EXPECT_EQ(low->at("at_bound"), true);
  EXPECT_EQ(low->at("value"), 8);
  EXPECT_EQ(low->at("type"), "INTEGER");
  EXPECT_EQ(low->at("min").get<double>(), 8);
  EXPECT_EQ(low->at("max").get<double>(), 16);
  EXPECT_EQ(low->at("default").get<double>(), 12);
  EXPECT_EQ(low->at("is_default"), false);

  const json* high = parameter_entry(a, "longEmaPeriod");
  ASSERT_NE(high, nullptr);
  EXPECT_DOUBLE_EQ(high->at("position").get<double>(), 1.0);
  EXPECT_EQ(high->at("at_bound"), true);

  const json* mid = parameter_entry(a, "signalPeriod");
  ASSERT_NE(mid, nullptr);
  EXPECT_DOUBLE_EQ(mid->at("position").get<double>(), 4.0 / 7.0);
  EXPECT_EQ(mid->at("at_bound"), false);
  EXPECT_EQ(mid->at("is_default"), true);

  EXPECT_TRUE(has_warning(a, "shortEmaPeriod")) << a.at("warnings").dump();
  EXPECT_TRUE(has_warning(a, "longEmaPeriod")) << a.at("warnings").dump();
  EXPECT_FALSE(has_warning(a, "signalPeriod")) << a.at("warnings").dump();
  EXPECT_EQ(a.at("warnings").size(), 2u) << a.at("warnings").dump();
}

TEST(StrategyInspectorAnalyze, DoubleParameterPosition) {
  json m = good("ATR_TRAILING_STOP");  // multiplier DOUBLE [1.0, 5.0]
  m["parameters"]["multiplier"] = 2.0;
  const json a = StrategyInspector().analyze_strategy(m.dump());
  const json* e = parameter_entry(a, "multiplier");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->at("type"), "DOUBLE");
  EXPECT_DOUBLE_EQ(e->at("position").get<double>(), 0.25);
  EXPECT_EQ(a.at("family"), "volatility");
}

TEST(StrategyInspectorAnalyze, MetricWarnings) {
  json m = good();
  m["performance_metrics"]["total_trades"] = 5;
  m["performance_metrics"]["win_rate"] = 0.95;
  const json a = StrategyInspector().analyze_strategy(m.dump());
  EXPECT_EQ(a.at("valid"), true) << "warnings never reject";
  EXPECT_TRUE(has_warning(a, "trades")) << a.at("warnings").dump();
  EXPECT_TRUE(has_warning(a, "win rate")) << a.at("warnings").dump();
  EXPECT_EQ(a.at("warnings").size(), 2u) << a.at("warnings").dump();

  json sharpe = good();
  sharpe["performance_metrics"]["sharpe_ratio"] = 5.0;
  EXPECT_TRUE(has_warning(StrategyInspector().analyze_strategy(sharpe.dump()), "Sharpe"));

  json drawdown = good();
  drawdown["performance_metrics"]["max_drawdown"] = -0.3;
  drawdown["performance_metrics"]["total_return"] = 0.1;
  EXPECT_TRUE(has_warning(StrategyInspector().analyze_strategy(drawdown.dump()), "drawdown"));

  json none = good();
  none.erase("performance_metrics");
  EXPECT_TRUE(has_warning(StrategyInspector().analyze_strategy(none.dump()), "no performance metrics"));
}

TEST(StrategyInspectorAnalyze, DiscoveryWindowDays) {
  const json a = StrategyInspector().analyze_strategy(good().dump());  // Jan 1 00:00 to Jan 31 12:00
  EXPECT_DOUBLE_EQ(a.at("discovery_window_days").get<double>(), 30.5);
  json m = good();
  m.erase("discovery_start_time");
  EXPECT_FALSE(StrategyInspector().analyze_strategy(m.dump()).contains("discovery_window_days"));
}

TEST(StrategyInspectorAnalyze, DecodeFailureIsInvalidAtStageDecode) {
  const json a = StrategyInspector().analyze_strategy(R"({"symbol": )");
  EXPECT_EQ(a.at("valid"), false);
  EXPECT_EQ(a.at("stage"), "decode");
  ASSERT_EQ(a.at("reasons").size(), 1u) << a.dump();
  EXPECT_EQ(a.at("reasons")[0].at("rule"), "format.json");
  EXPECT_FALSE(a.contains("family"));
  EXPECT_FALSE(a.contains("parameters"));
}

TEST(StrategyInspectorAnalyze, ValidationFailureStillAnalyses) {
  json m = good();
  m["parameters"]["signalPeriod"] = 13;
  const json a = StrategyInspector().analyze_strategy(m.dump());
  EXPECT_EQ(a.at("valid"), false);
  EXPECT_EQ(a.at("stage"), "validate");
  ASSERT_EQ(a.at("reasons").size(), 1u) << a.dump();
  EXPECT_EQ(a.at("reasons")[0].at("rule"), "parameters.range");
  EXPECT_EQ(a.at("reasons")[0].at("field"), "parameters.signalPeriod");
  EXPECT_EQ(a.at("family"), "trend");
  const json* e = parameter_entry(a, "signalPeriod");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->at("in_range"), false);
  EXPECT_GT(e->at("position").get<double>(), 1.0);
}

TEST(StrategyInspectorAnalyze, UnknownTypeHasNoFamily) {
  json m = good();
  m["strategy_type"] = "MY_OWN_STRATEGY";
  m["parameters"] = {{"length", 7}};
  const json refused = StrategyInspector().analyze_strategy(m.dump());
  EXPECT_EQ(refused.at("valid"), false);
  EXPECT_EQ(refused.at("stage"), "validate");
  EXPECT_EQ(refused.at("known_type"), false);
  EXPECT_TRUE(refused.at("family").is_null());

  ValidatorOptions allow;
  allow.allow_unknown_strategy_types = true;
  const json allowed = StrategyInspector(Catalog::builtin(), allow).analyze_strategy(m.dump());
  EXPECT_EQ(allowed.at("valid"), true);
  EXPECT_EQ(allowed.at("known_type"), false);
  EXPECT_TRUE(allowed.at("family").is_null());
  const json* e = parameter_entry(allowed, "length");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->at("value"), 7);
}

// --- extract_performance_metrics -------------------------------------------------------------------------------

TEST(StrategyInspectorMetrics, SevenStandardKeysPlusExtras) {
  json m = good();
  m["performance_metrics"]["calmar_ratio"] = 2.5;
  const json metrics = StrategyInspector().extract_performance_metrics(m.dump());
  EXPECT_EQ(metrics.size(), 8u) << metrics.dump();
  for (const char* name : kStandardMetrics) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(metrics.contains(name));
    EXPECT_EQ(metrics.at(name), m["performance_metrics"][name]);
  }
  EXPECT_EQ(metrics.at("calmar_ratio"), 2.5);
}

TEST(StrategyInspectorMetrics, AbsentStandardMetricsAreNull) {
  json m = good();
  m["performance_metrics"] = {{"win_rate", 0.6}, {"my_metric", 1}};
  const json metrics = StrategyInspector().extract_performance_metrics(m.dump());
  EXPECT_EQ(metrics.size(), 8u) << metrics.dump();
  EXPECT_EQ(metrics.at("win_rate"), 0.6);
  EXPECT_EQ(metrics.at("my_metric"), 1);
  for (const char* name : kStandardMetrics) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(metrics.contains(name));
    if (std::string(name) != "win_rate") EXPECT_TRUE(metrics.at(name).is_null());
  }
}

TEST(StrategyInspectorMetrics, NoMetricsOrUndecodableMessageGivesSevenNulls) {
  json none = good();
  none.erase("performance_metrics");
  for (const std::string& message : {none.dump(), std::string("{broken"), std::string("")}) {
    SCOPED_TRACE(message);
    const json metrics = StrategyInspector().extract_performance_metrics(message);
    EXPECT_EQ(metrics.size(), 7u) << metrics.dump();
    for (const char* name : kStandardMetrics) {
      ASSERT_TRUE(metrics.contains(name)) << name;
      EXPECT_TRUE(metrics.at(name).is_null()) << name;
    }
  }
}

TEST(StrategyInspectorMetrics, AnalysisCarriesTheSameMetrics) {
  const json a = StrategyInspector().analyze_strategy(good().dump());
  EXPECT_EQ(a.at("performance_metrics"), StrategyInspector().extract_performance_metrics(good().dump()));
}

}  // namespace
}  // namespace strategy_consumer
