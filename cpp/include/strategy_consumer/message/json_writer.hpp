#pragma once
// JSON text written straight into a string: the bytes nlohmann::json::dump() returns (compact, object keys in
// their sorted order, nlohmann's own number and string spelling), without building that string first. The
// row encoder writes `parameters` and `performance_metrics` with it, the canonical hash its canonical form.
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace strategy_consumer {

// Shortest text that reads back as the same double.
std::string format_double(double value);

enum class JsonNumbers {
  as_dumped,  // exactly as dump() writes them
  canonical,  // integral doubles below 2^53 as integers, -0 as 0 (1 == 1.0: the canonical hash's form)
};

// Throws nlohmann::json::type_error for a string that is not UTF-8, as dump() does.
void append_json(std::string& out, const nlohmann::json& value, JsonNumbers numbers = JsonNumbers::as_dumped);
// A string as dump() writes it.
void append_json_string(std::string& out, std::string_view s);

}  // namespace strategy_consumer
