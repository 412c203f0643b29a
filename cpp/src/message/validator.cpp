#include "strategy_consumer/message/validator.hpp"

#include <cmath>

#include "strategy_consumer/message/json_writer.hpp"
#include "strategy_consumer/model/timestamp.hpp"

namespace strategy_consumer {
namespace {

using nlohmann::json;

std::string shown(const json& v) { return truncate_for_reason(v.is_string() ? v.get<std::string>() : v.dump()); }

bool is_integral(const json& v) {
  if (v.is_number_integer()) return true;
  if (!v.is_number_float()) return false;
  const double d = v.get<double>();
  return std::isfinite(d) && std::trunc(d) == d;
}

std::string bound(double v) { return format_double(v); }

}  // namespace

Validator::Validator(std::shared_ptr<const Catalog> catalog, ValidatorOptions options)
    : catalog_(std::move(catalog)), options_(options) {}

void Validator::check_symbol(std::string_view field, std::string_view symbol, Reasons& out) const {
  const std::string f(field);
  if (symbol.empty()) {
    add_reason(out, {"metadata.symbol", f, "", "must not be empty"});
    return;
  }
  if (symbol.size() > options_.max_symbol_length) {
    add_reason(out, {"metadata.symbol", f, truncate_for_reason(symbol),
                   "longer than " + std::to_string(options_.max_symbol_length) + " characters"});
    return;
  }
  for (char c : symbol) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '/' ||
                    c == '.' || c == '_' || c == ':' || c == '^' || c == '=' || c == '-';
    if (!ok) {
      add_reason(out, {"metadata.symbol", f, truncate_for_reason(symbol),
                     "may hold only letters, digits and / . _ : ^ = -"});
      return;
    }
  }
}

Reasons Validator::validate_parameters(const json& parameters, const StrategyTypeSpec& spec) const {
  // Field names are built only for a reason: a valid strategy allocates nothing here.
  Reasons out;
  for (const auto& p : spec.parameters) {
    auto field = [&] { return "parameters." + p.name; };
    auto it = parameters.find(p.name);
    if (it == parameters.end() || it->is_null()) {
      add_reason(out, {"parameters.missing", field(), "", spec.name + " requires " + p.name});
      continue;
    }
    if (!it->is_number()) {
      add_reason(out, {"parameters.type", field(), shown(*it), std::string("must be a number, not ") + it->type_name()});
      continue;
    }
    if (p.type == ParameterType::integer && !is_integral(*it)) {
      add_reason(out, {"parameters.type", field(), shown(*it), "must be an integer"});
      continue;
    }
    const double v = it->get<double>();
    if (v < p.min || v > p.max) {
      add_reason(out, {"parameters.range", field(), shown(*it),
                     "outside the catalog's range [" + bound(p.min) + ", " + bound(p.max) + "] for " + spec.name});
    }
  }
  // A message may hold thousands of unknown keys, or one of a megabyte: past the cap they are only counted,
  // and a name is cut before it is copied into a reason.
  auto unknown = [&](const std::string& name, const json& value) {
    if (spec.find(name)) return;
    if (reasons_full(out)) {
      add_reason(out, {"parameters.unknown", "", "", ""});
      return;
    }
    const std::string shown_name = truncate_text(name, kMaxReasonFieldBytes / 2);
    add_reason(out, {"parameters.unknown", "parameters." + shown_name, shown(value),
                     spec.name + " has no parameter " + shown_name});
  };
  if (parameters.is_object()) {
    for (const auto& [name, value] : parameters.get_ref<const json::object_t&>()) unknown(name, value);
  } else {
    for (const auto& [name, value] : parameters.items()) unknown(name, value);
  }
  return out;
}

Reasons Validator::validate_metrics(const json& metrics) const {
  Reasons out;
  auto check = [&](const std::string& name, const json& value) {
    auto field = [&] { return "performance_metrics." + truncate_text(name, kMaxReasonFieldBytes / 2); };
    if (value.is_null()) return;
    if (!value.is_number() || !std::isfinite(value.get<double>())) {
      add_reason(out, {"metrics.type", field(), shown(value), "must be a finite number"});
      return;
    }
    const double v = value.get<double>();
    if (name == "win_rate" && !(v >= 0 && v <= 1)) {
      add_reason(out, {"metrics.win_rate", field(), shown(value), "must be between 0 and 1"});
    } else if (name == "max_drawdown" && !(v >= -1 && v <= 0)) {
      add_reason(out, {"metrics.max_drawdown", field(), shown(value), "must be between -1 and 0 (a loss is negative)"});
    } else if (name == "total_trades" && !(is_integral(value) && v >= 0)) {
      add_reason(out, {"metrics.total_trades", field(), shown(value), "must be a non-negative integer"});
    } else if (name == "profit_factor" && !(v >= 0)) {
      add_reason(out, {"metrics.profit_factor", field(), shown(value), "must not be negative"});
    }
  };
  if (metrics.is_object()) {
    for (const auto& [name, value] : metrics.get_ref<const json::object_t&>()) check(name, value);
  } else {
    for (const auto& [name, value] : metrics.items()) check(name, value);
  }
  return out;
}

Reasons Validator::validate(const StrategyRecord& r, std::int64_t now_us) const {
  Reasons out;
  check_symbol("symbol", r.symbol, out);
  if (r.discovery_symbol) check_symbol("discovery_symbol", *r.discovery_symbol, out);

  const StrategyTypeSpec* spec = catalog_->find(r.strategy_type);
  if (!spec && !options_.allow_unknown_strategy_types) {
    add_reason(out, {"metadata.strategy_type", "strategy_type", truncate_for_reason(r.strategy_type),
                   "not a strategy type of the catalog"});
  }
  if (spec) {
    for (auto& reason : validate_parameters(r.parameters, *spec)) add_reason(out, std::move(reason));
  }

  if (r.discovery_start_us && r.discovery_end_us && *r.discovery_start_us >= *r.discovery_end_us) {
    add_reason(out, {"metadata.discovery_window", "discovery_end_time", format_timestamp_us(*r.discovery_end_us),
                   "discovery_end_time must be after discovery_start_time (" +
                       format_timestamp_us(*r.discovery_start_us) + ")"});
  }
  const std::int64_t latest = now_us + std::chrono::duration_cast<std::chrono::microseconds>(options_.future_skew).count();
  for (auto [field, t] : {std::pair{"discovery_start_time", r.discovery_start_us},
                          std::pair{"discovery_end_time", r.discovery_end_us}}) {
    if (t && *t > latest) {
      add_reason(out, {"metadata.discovery_future", field, format_timestamp_us(*t), "lies in the future"});
    }
  }
  if (r.performance_metrics) {
    for (auto& reason : validate_metrics(*r.performance_metrics)) add_reason(out, std::move(reason));
  }
  return out;
}

}  // namespace strategy_consumer
