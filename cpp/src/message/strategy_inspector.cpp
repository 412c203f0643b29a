#include "strategy_consumer/message/strategy_inspector.hpp"

#include <algorithm>
#include <cmath>

#include "strategy_consumer/message/tradestream_compat.hpp"
#include "strategy_consumer/message/json_writer.hpp"
#include "strategy_consumer/model/timestamp.hpp"

namespace strategy_consumer {
namespace {

using nlohmann::json;

// Below this many trades a backtest's score says little.
constexpr double kFewTrades = 30;
constexpr double kSuspiciousWinRate = 0.9;
constexpr double kSuspiciousSharpe = 4.0;

const json* metric(const StrategyRecord& r, const char* name) {
  if (!r.performance_metrics) return nullptr;
  auto it = r.performance_metrics->find(name);
  return it == r.performance_metrics->end() || !it->is_number() ? nullptr : &*it;
}

json parameter_summary(const json& parameters, const StrategyTypeSpec* spec, json& warnings) {
  json out = json::array();
  if (!spec) {
    for (const auto& [name, value] : parameters.items()) out.push_back({{"name", name}, {"value", value}});
    return out;
  }
  for (const auto& p : spec->parameters) {
    json entry{{"name", p.name},
               {"type", p.type == ParameterType::integer ? "INTEGER" : "DOUBLE"},
               {"min", p.min},
               {"max", p.max},
               {"default", p.default_value}};
    auto it = parameters.find(p.name);
    if (it == parameters.end() || !it->is_number()) {
      entry["value"] = it == parameters.end() ? json(nullptr) : *it;
      entry["in_range"] = false;
      out.push_back(entry);
      continue;
    }
    const double v = it->get<double>();
    entry["value"] = *it;
    entry["in_range"] = v >= p.min && v <= p.max;
    entry["position"] = p.max > p.min ? json((v - p.min) / (p.max - p.min)) : json(nullptr);
    entry["is_default"] = v == p.default_value;
    entry["at_bound"] = v == p.min || v == p.max;
    if (v == p.min || v == p.max) {
      warnings.push_back(p.name + " sits on the edge of its search range [" + format_double(p.min) + ", " +
                         format_double(p.max) + "]: the optimum may lie outside it");
    }
    out.push_back(entry);
  }
  return out;
}

void metric_warnings(const StrategyRecord& r, json& warnings) {
  if (!r.performance_metrics) {
    warnings.push_back("no performance metrics: the score cannot be checked");
    return;
  }
  if (auto t = metric(r, "total_trades"); t && t->get<double>() < kFewTrades) {
    warnings.push_back("only " + t->dump() + " trades: too few for the score to mean much");
  }
  if (auto w = metric(r, "win_rate"); w && w->get<double>() > kSuspiciousWinRate) {
    warnings.push_back("win rate " + w->dump() + " is suspiciously high (overfitting or look-ahead?)");
  }
  if (auto s = metric(r, "sharpe_ratio"); s && s->get<double>() > kSuspiciousSharpe) {
    warnings.push_back("Sharpe ratio " + s->dump() + " is suspiciously high");
  }
  auto ret = metric(r, "total_return");
  auto dd = metric(r, "max_drawdown");
  if (ret && dd && std::fabs(dd->get<double>()) > std::max(ret->get<double>(), 0.0)) {
    warnings.push_back("max drawdown " + dd->dump() + " is larger than the total return " + ret->dump());
  }
}

}  // namespace

StrategyInspector::StrategyInspector(std::shared_ptr<const Catalog> catalog, ValidatorOptions validator_options,
                                     DecodeOptions decode_options)
    : validator_(std::move(catalog), validator_options), decode_options_(decode_options) {}

Inspection StrategyInspector::inspect(std::string_view message, std::int64_t now) const {
  Inspection out;
  Decoded decoded = decode_message(message, decode_options_, &validator_.catalog());
  out.message_format = decoded.format;
  if (!decoded.ok()) {
    out.stage = "decode";
    out.reasons = bounded_reasons(std::move(decoded.reasons));
    return out;
  }
  out.record = std::move(decoded.record);
  out.reasons = validator_.validate(out.record, now);
  if (out.reasons.empty()) {
    out.reasons = apply_hash_and_layout(out.record, decoded.hash_given, validator_.catalog(), decode_options_);
  }
  if (!out.reasons.empty()) out.stage = "validate";
  return out;
}

Reasons StrategyInspector::validate(std::string_view message) const { return inspect(message, now_us()).reasons; }

bool StrategyInspector::validate_strategy(std::string_view message) const { return validate(message).empty(); }

Reasons StrategyInspector::validate_parameters(const json& parameters,
                                               const std::optional<std::string>& strategy_type) const {
  if (!parameters.is_object()) {
    return {{"format.type", "parameters", truncate_for_reason(parameters.dump()), "parameters must be an object"}};
  }
  if (strategy_type) {
    const StrategyTypeSpec* spec = validator_.catalog().find(*strategy_type);
    if (!spec) {
      return {{"metadata.strategy_type", "strategy_type", truncate_for_reason(*strategy_type),
               "not a strategy type of the catalog"}};
    }
    return validator_.validate_parameters(parameters, *spec);
  }
  // No type given: the types with exactly these parameter names are the candidates; one that accepts suffices.
  std::optional<Reasons> best;
  for (const auto& [name, spec] : validator_.catalog().types()) {
    if (spec.parameters.size() != parameters.size()) continue;
    bool same_names = std::all_of(spec.parameters.begin(), spec.parameters.end(),
                                  [&](const ParameterSpec& p) { return parameters.contains(p.name); });
    if (!same_names) continue;
    Reasons reasons = validator_.validate_parameters(parameters, spec);
    if (reasons.empty()) return reasons;
    if (!best || reasons.size() < best->size()) best = std::move(reasons);
  }
  if (best) return *best;
  return {{"parameters.unknown", "parameters", truncate_for_reason(parameters.dump()),
           "no strategy type of the catalog has exactly these parameters"}};
}

json StrategyInspector::extract_performance_metrics(std::string_view message) const {
  Decoded decoded = decode_message(message, decode_options_, &validator_.catalog());
  json out = json::object();
  for (const char* name : kStandardMetrics) out[name] = nullptr;
  if (!decoded.ok() || !decoded.record.performance_metrics) return out;
  for (const auto& [name, value] : decoded.record.performance_metrics->items()) out[name] = value;
  return out;
}

json StrategyInspector::analyze_strategy(std::string_view message) const {
  Inspection inspection = inspect(message, now_us());
  json out{{"valid", inspection.ok()}, {"stage", inspection.stage}, {"reasons", reasons_to_json(inspection.reasons)}};
  if (inspection.stage == "decode") return out;
  const StrategyRecord& r = inspection.record;
  const StrategyTypeSpec* spec = validator_.catalog().find(r.strategy_type);
  json warnings = json::array();
  out["symbol"] = r.symbol;
  out["strategy_type"] = r.strategy_type;
  out["known_type"] = spec != nullptr;
  out["family"] = spec && !spec->family.empty() ? json(spec->family) : json(nullptr);
  out["strategy_hash"] = r.strategy_hash;
  out["score"] = r.score;
  out["parameters"] = parameter_summary(r.parameters, spec, warnings);
  out["performance_metrics"] = extract_performance_metrics(message);
  if (r.discovery_start_us && r.discovery_end_us) {
    out["discovery_window_days"] = static_cast<double>(*r.discovery_end_us - *r.discovery_start_us) / 86400e6;
  }
  metric_warnings(r, warnings);
  out["warnings"] = warnings;
  return out;
}

}  // namespace strategy_consumer
