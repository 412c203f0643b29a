#pragma once
// UTF-8 helpers for text that reaches logs and dead letters.
#include <optional>
#include <string>
#include <string_view>

namespace strategy_consumer {

bool is_valid_utf8(std::string_view text);
// The text with every byte that is not part of valid UTF-8, and every control character, written as \xNN:
// safe to put in a log line or a JSON string whatever the input was.
std::string printable_utf8(std::string_view text);

// Base64 (RFC 4648, padded): how dead letters keep bytes that are not UTF-8 text.
std::string base64_encode(std::string_view bytes);
// nullopt when `text` is not padded base64 (whitespace is not allowed either).
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace strategy_consumer
