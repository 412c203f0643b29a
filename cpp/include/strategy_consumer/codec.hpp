#pragma once
// Message decoding: one Kafka value (UTF-8 JSON) to a StrategyRecord, or the reasons it is not one.
// This checks the contract of the message (shared/DESIGN.md "The message"); the catalog checks of parameters
// and metrics belong to the validator.
#include <cstddef>
#include <string_view>

#include "strategy_consumer/strategy.hpp"
#include "strategy_consumer/verdict.hpp"

namespace strategy_consumer {

struct DecodeOptions {
  std::size_t max_message_bytes = 1 << 20;  // larger values are rejected before parsing
  std::size_t max_depth = 64;               // deeper JSON is rejected while parsing, never recursed into
};

struct Decoded {
  StrategyRecord record;  // meaningful only when ok()
  Reasons reasons;
  bool ok() const { return reasons.empty(); }
};

Decoded decode_strategy(std::string_view payload, const DecodeOptions& options = {});

}  // namespace strategy_consumer
