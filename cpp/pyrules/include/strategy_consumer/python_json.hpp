#pragma once
// The one conversion of the core's JSON values to Python objects (None, bool, int, float, str, list, dict), used
// by the rule engine for the records it hands to analyst rules and by the _core module's bindings. Needs the GIL.
#include <pybind11/pybind11.h>

#include <nlohmann/json.hpp>

namespace strategy_consumer {

pybind11::object json_to_python(const nlohmann::json& value);

}  // namespace strategy_consumer
