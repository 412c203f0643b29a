#pragma once
// Conversions between the core's values and Python objects.
#include <pybind11/pybind11.h>

#include <nlohmann/json.hpp>

#include "strategy_consumer/postgres/client.hpp"
#include "strategy_consumer/message/decoding.hpp"
#include "strategy_consumer/model/reason.hpp"

namespace strategy_consumer::bindings {

pybind11::object to_python(const nlohmann::json& value);
pybind11::list to_python(const Reasons& reasons);
// A row as a dict: uuid.UUID, timezone-aware UTC datetimes, floats, parsed JSON.
pybind11::dict to_python(const StoredStrategy& row);
// A score history row as a dict (the same conversions).
pybind11::dict to_python(const ScoreHistoryEntry& row);
pybind11::object utc_datetime(std::int64_t micros);
// A decoded record as the row would hold it (parameters in the record's layout), plus message_format.
pybind11::dict to_python(const StrategyRecord& record);
// The options from the flag texts (message/decoding.hpp); ConfigError for other values.
DecodeOptions decode_options(const std::string& message_format, const std::string& parameters_layout,
                             const std::string& strategy_hash_scheme);

}  // namespace strategy_consumer::bindings
