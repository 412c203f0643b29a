#pragma once
// What the consumer says about a message it will not store: a list of reasons, each with a stable rule id.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace strategy_consumer {

struct Reason {
  std::string rule;     // stable id, e.g. "format.json", "format.required"
  std::string field;    // JSON field the reason is about ("" for the whole message)
  std::string value;    // the offending value, truncated to kMaxReasonValueBytes
  std::string message;  // human-readable explanation
};

using Reasons = std::vector<Reason>;

inline constexpr std::size_t kMaxReasonValueBytes = 200;

// The value as printable UTF-8 (text.hpp), cut to at most kMaxReasonValueBytes bytes on a character boundary,
// the cut marked with "...".
std::string truncate_for_reason(std::string_view text);

nlohmann::json reasons_to_json(const Reasons& reasons);
// "rule: message (field)" joined with "; ", for the DLQ's `error` field and logs.
std::string reasons_to_text(const Reasons& reasons);

}  // namespace strategy_consumer
