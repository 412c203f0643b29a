#pragma once
// Reading a dead letter back (pure): the JSON value kafka/dead_letters.hpp writes, parsed into what a replay of
// dead letters needs (service/replay.hpp): the original message's bytes (base64 decoded), whether it can be
// replayed at all (a letter whose original was cut to fit, or left out, can not), the stage and the rule ids
// that refused it, where the original was read, and when the letter was written.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "strategy_consumer/model/strategy_record.hpp"

namespace strategy_consumer {

struct ReadDeadLetter {
  // Set when the value is not a letter this consumer wrote (not JSON, no stage, a bad base64 original): why.
  std::string unreadable;
  std::string original_message;  // the original's bytes, when `replayable`
  // Why the original can not be replayed: "truncated" (cut to fit the letter) or "omitted" (a minimal letter);
  // "" when it can.
  std::string not_replayable;
  std::string stage;
  std::vector<std::string> rule_ids;  // of its reasons, in order
  std::string error;                  // the reasons as text
  SourcePosition source;              // where the original was read; timestamp_ms -1 for letters without it
  std::optional<std::int64_t> letter_time_us;  // the letter's `timestamp` (when it was dead-lettered)
  std::string message_format;

  bool replayable() const { return unreadable.empty() && not_replayable.empty(); }
};

ReadDeadLetter read_dead_letter(std::string_view value);

}  // namespace strategy_consumer
