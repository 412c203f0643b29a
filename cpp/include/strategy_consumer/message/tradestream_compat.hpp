#pragma once
// What the old TradeStream strategy consumer stored, for a database it filled (--parameters_layout=tradestream,
// --strategy_hash_scheme=tradestream; README "Switching from the old service"):
//   parameters    = {"protobuf_type": <type_url>, "protobuf_data": <Any.value, lower-case hex>,
//                    "raw_parameters": {"type_url": <type_url>, "value": <same hex>},
//                    "named": <the named values, as the named layout stores them>}
//                   ("named" is ours: analysts read the values without a protobuf decoder; the old readers
//                   ignore it)
//   strategy_hash = SHA-256 (lower-case hex) of the serialized google.protobuf.Any (type_url and value as
//                   protobuf serializes them); symbol and type are not part of it.
// A protobuf message brings its Any. For a JSON message the Any is encoded from the named parameters into the
// type's parameter message (the catalog's parameter_message), deterministically (fields in number order, map
// entries sorted, fields at their default value omitted, as the Java producer does), so one strategy has one
// hash whichever format brought it. Parameters that do not fit the message (a name it has no field for, a
// fraction or an out-of-range number for an int32, a type without a parameter message) are refused with
// rule `parameters.protobuf` (stage validate): the row could not be what the old readers decode.
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "strategy_consumer/message/catalog.hpp"
#include "strategy_consumer/message/decoding.hpp"

namespace strategy_consumer {

// The named values packed as strategies.<message_name> in an Any; nullopt and a reason when they do not fit.
std::optional<AnyParameters> encode_parameters_any(const std::string& message_name, const nlohmann::json& named,
                                                   Reasons& reasons);
// The google.protobuf.Any message's bytes (field 1 type_url, field 2 value).
std::string serialize_any(const AnyParameters& any);
std::string tradestream_strategy_hash(const AnyParameters& any);
// The old service's parameters column, plus "named".
nlohmann::json tradestream_parameters(const AnyParameters& any, const nlohmann::json& named);
std::string lower_hex(std::string_view bytes);

// After validation: the Any for a JSON message when the options need it, the tradestream hash (unless the
// message gave its own), and the layout to store. Returns the reasons when the parameters do not fit.
Reasons apply_hash_and_layout(StrategyRecord& record, bool hash_given, const Catalog& catalog,
                              const DecodeOptions& options);

}  // namespace strategy_consumer
