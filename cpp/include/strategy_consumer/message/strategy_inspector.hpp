#pragma once
// StrategyInspector: the operations of the original service's inspector, on the same code the pipeline runs.
// A message (JSON text or protobuf bytes, as it arrives from Kafka) is decoded (decoding.hpp) and then validated
// (validator.hpp), then given the tradestream hash and layout when the options ask (tradestream_compat.hpp);
// analysis adds where each parameter sits in its catalog range, a metrics summary and warnings, which never
// reject anything.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "strategy_consumer/message/catalog.hpp"
#include "strategy_consumer/message/decoding.hpp"
#include "strategy_consumer/message/validator.hpp"

namespace strategy_consumer {

// The seven metrics the discovery pipeline reports.
inline constexpr const char* kStandardMetrics[] = {"total_return", "sharpe_ratio",  "max_drawdown",
                                                   "win_rate",     "profit_factor", "total_trades",
                                                   "avg_trade_duration"};

struct Inspection {
  StrategyRecord record;  // meaningful when stage is not "decode"
  std::string stage;      // "" when ok, else "decode" or "validate"
  Reasons reasons;
  const char* message_format = "";  // the format the message was read as: "json" or "protobuf"
  bool ok() const { return reasons.empty(); }
};

class StrategyInspector {
 public:
  explicit StrategyInspector(std::shared_ptr<const Catalog> catalog = Catalog::builtin(),
                             ValidatorOptions validator_options = {}, DecodeOptions decode_options = {});

  // Decode, then validate: what the pipeline does with every message.
  Inspection inspect(std::string_view message, std::int64_t now_us) const;
  Reasons validate(std::string_view message) const;
  bool validate_strategy(std::string_view message) const;
  // Without a type, the parameters must fit a catalog type that has exactly these parameter names.
  Reasons validate_parameters(const nlohmann::json& parameters,
                              const std::optional<std::string>& strategy_type = std::nullopt) const;
  nlohmann::json analyze_strategy(std::string_view message) const;
  // The standard metrics (null when absent) and any other metrics the message carries.
  nlohmann::json extract_performance_metrics(std::string_view message) const;

  const Validator& validator() const { return validator_; }
  const DecodeOptions& decode_options() const { return decode_options_; }

 private:
  Validator validator_;
  DecodeOptions decode_options_;
};

}  // namespace strategy_consumer
