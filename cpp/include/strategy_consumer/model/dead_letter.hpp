#pragma once
// A message the consumer will not store, as the pipeline hands it to its dead-letter sink
// (pipeline/dead_letter_sink.hpp): the original bytes, the stage that refused it, why, and where it was read.
// kafka/dead_letters.hpp writes it to the dead-letter topic as JSON; kafka/dead_letter_reading.hpp reads it back.
#include <string>

#include "strategy_consumer/model/reason.hpp"
#include "strategy_consumer/model/strategy_record.hpp"

namespace strategy_consumer {

struct DeadLetter {
  std::string original_message;
  std::string stage;  // decode, validate, rule:<name>, database
  Reasons reasons;
  SourcePosition source;
  std::string message_format;  // "json" or "protobuf": what decoding tried; "" to leave it out
};

}  // namespace strategy_consumer
