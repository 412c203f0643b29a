#include "strategy_consumer/message/catalog.hpp"

#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>

#include "strategy_consumer/model/errors.hpp"

namespace strategy_consumer {
namespace {

std::vector<std::string_view> split_tabs(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (;;) {
    auto tab = line.find('\t', start);
    out.push_back(line.substr(start, tab == std::string_view::npos ? std::string_view::npos : tab - start));
    if (tab == std::string_view::npos) return out;
    start = tab + 1;
  }
}

double parse_number(std::string_view text, const std::string& where, const char* column) {
  double v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty() || !std::isfinite(v)) {
    throw ConfigError(where + ": column " + column + " is not a number: '" + std::string(text) + "'");
  }
  return v;
}

}  // namespace

const ParameterSpec* StrategyTypeSpec::find(std::string_view parameter) const {
  for (const auto& p : parameters) {
    if (p.name == parameter) return &p;
  }
  return nullptr;
}

Catalog Catalog::parse(std::string_view text, const std::string& source) {
  static const std::vector<std::string_view> kColumns{"strategy_type", "parameter_message", "parameter", "type",
                                                      "min",           "max",               "default"};
  Catalog catalog;
  std::size_t line_no = 0;
  std::size_t pos = 0;
  bool header_seen = false;
  while (pos < text.size()) {
    auto nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line.front() == '#') continue;
    const std::string where = source + ":" + std::to_string(line_no);
    auto cols = split_tabs(line);
    if (!header_seen) {
      header_seen = true;
      for (std::size_t i = 0; i < kColumns.size(); ++i) {
        if (i >= cols.size() || cols[i] != kColumns[i]) {
          throw ConfigError(where + ": the header must start with strategy_type, parameter_message, parameter, "
                                    "type, min, max, default (tab-separated)");
        }
      }
      continue;
    }
    if (cols.size() < 7 || cols.size() > 8) {
      throw ConfigError(where + ": expected 7 or 8 tab-separated columns, found " + std::to_string(cols.size()));
    }
    if (cols[0].empty()) throw ConfigError(where + ": strategy_type is empty");
    auto& type = catalog.types_[std::string(cols[0])];
    type.name = cols[0];
    type.parameter_message = cols[1];
    if (cols.size() == 8 && !cols[7].empty()) type.family = cols[7];
    if (cols[2].empty()) continue;  // a type without parameters
    if (type.find(cols[2])) throw ConfigError(where + ": parameter " + std::string(cols[2]) + " given twice");
    ParameterSpec p;
    p.name = cols[2];
    if (cols[3] == "INTEGER") p.type = ParameterType::integer;
    else if (cols[3] == "DOUBLE") p.type = ParameterType::real;
    else throw ConfigError(where + ": type must be INTEGER or DOUBLE, not '" + std::string(cols[3]) + "'");
    p.min = parse_number(cols[4], where, "min");
    p.max = parse_number(cols[5], where, "max");
    p.default_value = parse_number(cols[6], where, "default");
    if (p.min > p.max) throw ConfigError(where + ": min is greater than max");
    if (p.default_value < p.min || p.default_value > p.max) {
      throw ConfigError(where + ": default is outside [min, max]");
    }
    type.parameters.push_back(std::move(p));
  }
  if (!header_seen) throw ConfigError(source + ": empty catalog");
  return catalog;
}

Catalog Catalog::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError("--strategy_catalog: cannot read " + path);
  std::stringstream text;
  text << in.rdbuf();
  return parse(text.str(), path);
}

std::shared_ptr<const Catalog> Catalog::builtin() {
  static const auto kBuiltin = std::make_shared<const Catalog>(parse(builtin_catalog_tsv(), "builtin catalog"));
  return kBuiltin;
}

std::shared_ptr<const Catalog> Catalog::with_overrides(const std::string& path) {
  if (path.empty()) return builtin();
  auto merged = std::make_shared<Catalog>(*builtin());
  merged->merge(load(path));
  return merged;
}

void Catalog::merge(const Catalog& other) {
  for (const auto& [name, type] : other.types_) types_[name] = type;
}

std::string_view catalog_spelling(std::string_view strategy_type) {
  // The discovery pipeline and its enum spell it BBAND_W_R; the YAML definitions BBAND_WILLIAMS_R.
  return strategy_type == "BBAND_W_R" ? std::string_view("BBAND_WILLIAMS_R") : strategy_type;
}

const StrategyTypeSpec* Catalog::find(std::string_view strategy_type) const {
  auto it = types_.find(strategy_type);
  if (it == types_.end()) it = types_.find(catalog_spelling(strategy_type));
  return it == types_.end() ? nullptr : &it->second;
}

}  // namespace strategy_consumer
