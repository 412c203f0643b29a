#pragma once
// The strategy hash when a message has none: SHA-256 (lower-case hex) of the canonical JSON of
//   {"parameters": <parameters>, "strategy_type": <type>, "symbol": <symbol>}
// Canonical JSON: object keys sorted by their UTF-8 bytes, no white space, strings as JSON escapes them
// (non-ASCII kept as UTF-8), numbers normalised so that 1, 1.0 and 1e0 are the same: a finite number with no
// fractional part and magnitude below 2^53 is written as an integer (-0 as 0), any other number in its shortest
// round-trip form. The type is hashed in the catalog's spelling (catalog.hpp: BBAND_W_R as BBAND_WILLIAMS_R).
// The Python package calls this same code.
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace strategy_consumer {

std::string canonical_json(const nlohmann::json& value);
std::string sha256_hex(std::string_view data);
std::string canonical_strategy_hash(std::string_view symbol, std::string_view strategy_type,
                                    const nlohmann::json& parameters);

}  // namespace strategy_consumer
