#pragma once
// JSON message decoding: one Kafka value (UTF-8 JSON) to a StrategyRecord, or the reasons it is not one.
// This checks the contract of the message (shared/DESIGN.md "The message"); the catalog checks of parameters
// and metrics belong to the validator.
#include <cstddef>
#include <string_view>

#include "strategy_consumer/message/decoding.hpp"  // DecodeOptions, Decoded
#include "strategy_consumer/model/strategy_record.hpp"
#include "strategy_consumer/model/reason.hpp"

namespace strategy_consumer {

// A message the discovery pipeline would send (ASCII JSON, no \u escapes, no reasons) is read in one pass straight
// into the record; any other goes to decode_strategy_dom, which decides and explains. Both give the same result
// for every input.
Decoded decode_strategy(std::string_view payload, const DecodeOptions& options = {});
// The reference decoder: nlohmann's SAX parser building a strict DOM (depth limit, duplicate keys, NUL and number
// range refused), then the contract checks on that DOM. Every reason comes from here.
Decoded decode_strategy_dom(std::string_view payload, const DecodeOptions& options = {});

}  // namespace strategy_consumer
