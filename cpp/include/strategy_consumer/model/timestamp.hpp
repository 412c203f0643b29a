#pragma once
// RFC 3339 timestamps in, UTC microseconds inside, PostgreSQL TIMESTAMP text out.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace strategy_consumer {

// Parses "2024-01-15T10:30:00Z", "2024-01-15T10:30:00.123456+02:00", "2024-01-15 10:30:00z" (RFC 3339 allows
// a space and lower case). A timezone offset is required: a time without one has no UTC meaning.
// Fractions beyond microseconds are truncated. Returns nullopt when the text is not such a timestamp.
std::optional<std::int64_t> parse_rfc3339_us(std::string_view text);

// "2024-01-15 08:30:00.123456" (UTC, no zone; the fraction only when not zero), as a TIMESTAMP column takes it.
std::string format_timestamp_us(std::int64_t micros_since_epoch);
// The same text appended to `out`.
void append_timestamp_us(std::string& out, std::int64_t micros_since_epoch);

std::int64_t now_us();

}  // namespace strategy_consumer
