#pragma once
// The built-in checks a decoded strategy must pass before it is stored (after decoding's format checks).
// Every reason carries a stable rule id:
//   metadata.symbol            symbol / discovery_symbol empty, too long, or outside [A-Za-z0-9/._:^=-]
//   metadata.strategy_type     not in the catalog (unless unknown types are allowed)
//   metadata.discovery_window  discovery_start_time not before discovery_end_time
//   metadata.discovery_future  a discovery time later than now + the allowed clock skew
//   parameters.missing         a catalog parameter is absent
//   parameters.type            not a number, or a fraction where the catalog says INTEGER
//   parameters.range           outside the catalog's [min, max]
//   parameters.unknown         a parameter the catalog does not know for this type
//   metrics.type               a performance metric that is not a finite number
//   metrics.win_rate           outside [0, 1]
//   metrics.max_drawdown       outside [-1, 0]
//   metrics.total_trades       not a non-negative integer
//   metrics.profit_factor      negative
// All reasons of a strategy are reported, not only the first, within the bounds of reason.hpp (at most
// kMaxReasons, the rest counted in "reasons.more"). Pure: no I/O, no clock (now is a parameter).
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include <nlohmann/json.hpp>

#include "strategy_consumer/message/catalog.hpp"
#include "strategy_consumer/model/strategy_record.hpp"
#include "strategy_consumer/model/reason.hpp"

namespace strategy_consumer {

struct ValidatorOptions {
  bool allow_unknown_strategy_types = false;
  std::size_t max_symbol_length = 32;
  std::chrono::seconds future_skew{300};
};

class Validator {
 public:
  explicit Validator(std::shared_ptr<const Catalog> catalog = Catalog::builtin(), ValidatorOptions options = {});

  Reasons validate(const StrategyRecord& record, std::int64_t now_us) const;
  // The parameter checks alone, against one type's spec (field names are "parameters.<name>").
  Reasons validate_parameters(const nlohmann::json& parameters, const StrategyTypeSpec& spec) const;
  Reasons validate_metrics(const nlohmann::json& metrics) const;

  const Catalog& catalog() const { return *catalog_; }
  const ValidatorOptions& options() const { return options_; }

 private:
  void check_symbol(std::string_view field, std::string_view symbol, Reasons& out) const;

  std::shared_ptr<const Catalog> catalog_;
  ValidatorOptions options_;
};

}  // namespace strategy_consumer
