#pragma once
// The strategy catalog: every strategy type the discovery pipeline searches, each parameter with its type and the
// range the genetic algorithm draws from. A value outside its range cannot come from a healthy search.
//
// File format (tab-separated, one header line, one row per parameter; a type without parameters has one row with
// the parameter columns empty):
//   strategy_type  parameter_message  parameter  type  min  max  default  [family]
// type is INTEGER or DOUBLE; family (trend, momentum, volatility, volume, price_action, ...) is optional.
// The default catalog (data/strategy_catalog.tsv) is compiled into the library; --strategy_catalog FILE adds
// types or replaces them whole.
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace strategy_consumer {

enum class ParameterType { integer, real };

struct ParameterSpec {
  std::string name;
  ParameterType type = ParameterType::integer;
  double min = 0;
  double max = 0;
  double default_value = 0;
};

struct StrategyTypeSpec {
  std::string name;
  std::string parameter_message;
  std::string family;
  std::vector<ParameterSpec> parameters;

  const ParameterSpec* find(std::string_view parameter) const;
};

class Catalog {
 public:
  // Parses the text of a catalog file; `source` names it in errors. Throws ConfigError "source:line: ...".
  static Catalog parse(std::string_view text, const std::string& source);
  static Catalog load(const std::string& path);
  // The compiled-in default catalog.
  static std::shared_ptr<const Catalog> builtin();
  // The default catalog with the types of `path` added or replacing theirs ("" for the default alone).
  static std::shared_ptr<const Catalog> with_overrides(const std::string& path);

  void merge(const Catalog& other);
  const StrategyTypeSpec* find(std::string_view strategy_type) const;  // also by the other spelling
  const std::map<std::string, StrategyTypeSpec, std::less<>>& types() const { return types_; }

 private:
  std::map<std::string, StrategyTypeSpec, std::less<>> types_;
};

// One type, two spellings: the name the catalog uses for `strategy_type` (BBAND_W_R, as the discovery pipeline
// sends it, is the catalog's BBAND_WILLIAMS_R); any other name unchanged. find() accepts both spellings, and the
// canonical hash hashes this one, so either spelling gives one strategy.
std::string_view catalog_spelling(std::string_view strategy_type);

// The text of the compiled-in catalog (generated from data/strategy_catalog.tsv at build time).
std::string_view builtin_catalog_tsv();

}  // namespace strategy_consumer
