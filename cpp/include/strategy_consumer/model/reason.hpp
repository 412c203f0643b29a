#pragma once
// What the consumer says about a message it will not store: a list of reasons, each with a stable rule id.
// Reasons are bounded whatever the message: at most kMaxReasons of them (the rest counted in one last reason,
// rule "reasons.more"), every part cut to its limit. A message of any size and shape gives an explanation of a
// few KiB at most, so its dead letter and log line stay small.
#include <cstddef>
#include <string>
#include <string_view>
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

inline constexpr std::size_t kMaxReasons = 20;
inline constexpr std::size_t kMaxReasonRuleBytes = 100;
inline constexpr std::size_t kMaxReasonFieldBytes = 200;
inline constexpr std::size_t kMaxReasonValueBytes = 200;
inline constexpr std::size_t kMaxReasonMessageBytes = 400;
// The last reason of a list cut at kMaxReasons: its value is how many reasons were left out.
inline constexpr std::string_view kMoreReasonsRule = "reasons.more";

// The text as printable UTF-8 (text.hpp), cut to at most `max_bytes` bytes on a character boundary, the cut
// marked with "..." (so at most max_bytes + 3). Reads only the first max_bytes + 4 bytes of a longer text.
std::string truncate_text(std::string_view text, std::size_t max_bytes);
// truncate_text(text, kMaxReasonValueBytes).
std::string truncate_for_reason(std::string_view text);

// Appends a reason within the bounds: cut to the limits while fewer than kMaxReasons are there, afterwards only
// counted in the trailing "reasons.more" reason.
void add_reason(Reasons& out, Reason reason);
// True when `out` is full: a further add_reason only counts. Lets a producer of many reasons skip building them.
bool reasons_full(const Reasons& out);
// The list within the bounds, at most `max_reasons` reasons and "reasons.more" counting the rest (a
// "reasons.more" reason anywhere in it is added to the count).
Reasons bounded_reasons(Reasons reasons, std::size_t max_reasons = kMaxReasons);

// Both bound the list first (bounded_reasons).
nlohmann::json reasons_to_json(const Reasons& reasons);
// "rule: message (field)" joined with "; ", for the DLQ's `error` field and logs.
std::string reasons_to_text(const Reasons& reasons);

}  // namespace strategy_consumer
