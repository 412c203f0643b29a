#pragma once
// Protobuf message decoding: the binary encoding of discovery.DiscoveredStrategy (proto/discovery.proto,
// proto/strategies.proto, generated into C++ at build time) to a StrategyRecord, or the reasons it is not one.
//   strategy.strategy_name (field 3), or in messages from before 2026-01 the enum strategy.type (field 1),
//     -> strategy_type (the name the message carried: BBAND_W_R stays BBAND_W_R)
//   strategy.parameters, a google.protobuf.Any packing one of the 62 parameter messages -> parameters, by name:
//     {"shortEmaPeriod": 12, ...}, field names as in the schema, int32 as integers, doubles as numbers, repeated
//     fields as arrays, maps as objects. A field at its default value is not on the wire (proto3): it is listed
//     when the catalog names it as a parameter of the type (or when the type is not in the catalog), else left
//     out. The Any itself is kept in record.parameters_any when the options ask for the tradestream layout or
//     hash (the reference path always keeps it).
//   score -> score (current_score); symbol -> symbol and discovery_symbol (the old service's choice);
//   start_time / end_time -> discovery_start/end (UTC, microseconds, nanos truncated); unset -> absent.
// Unknown fields are ignored, as protobuf does. Rule ids of the reasons:
//   format.empty, format.size       as for JSON
//   format.unrecognized             neither JSON nor protobuf (its first byte starts no DiscoveredStrategy field)
//   protobuf.truncated              the bytes end inside a field
//   protobuf.malformed              not valid protobuf wire format (or invalid UTF-8 in a string)
//   protobuf.message_type           valid protobuf, but not a DiscoveredStrategy (a known field of another type)
//   format.required                 strategy, its type (name or enum), its parameters, or symbol missing
//   format.nul                      a NUL character in symbol or strategy_name
//   protobuf.enum_unknown           an enum number the old StrategyType did not have
//   protobuf.enum_name_mismatch     the enum and strategy_name both given, naming different types
//   protobuf.any_type               the Any's type_url names no parameter message
//   protobuf.any_value              the Any's bytes do not parse as its message (or a double is not finite)
//   protobuf.type_mismatch          the type's parameter message (catalog) is not the one the Any carries
//   protobuf.timestamp              a timestamp outside 0001-01-01..9999-12-31 or nanos outside 0..999,999,999
//   protobuf.score                  score is NaN or infinite
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "strategy_consumer/message/catalog.hpp"
#include "strategy_consumer/message/decoding.hpp"

namespace strategy_consumer {

inline constexpr std::string_view kTypeUrlPrefix = "type.googleapis.com/";

// A message as the pipeline writes it is read in one pass straight into the record (protobuf_fast_path.hpp);
// any other goes to decode_discovered_strategy_reference, which decides and explains. Both give the same result.
Decoded decode_discovered_strategy(std::string_view payload, const DecodeOptions& options = {},
                                   const Catalog* catalog = nullptr);
// The reference decoder: parse into the generated messages, then reflection. Every reason comes from here.
Decoded decode_discovered_strategy_reference(std::string_view payload, const DecodeOptions& options = {},
                                             const Catalog* catalog = nullptr);

// The named values of a packed parameter message. `spec` (may be null) says which default-valued fields to list.
// Reasons (protobuf.any_type, protobuf.any_value) when the Any is not one of the parameter messages.
std::optional<nlohmann::json> decode_parameters_any(const AnyParameters& any, const StrategyTypeSpec* spec,
                                                    Reasons& reasons);

// The 62 parameter messages of the schema ("MacdCrossoverParameters", ...), in schema order.
std::vector<std::string> parameter_message_names();
// The old enum's name for a number (nullopt for an unknown number; "UNSPECIFIED" for 0).
std::optional<std::string> strategy_type_enum_name(int number);
// The schema files (serialized FileDescriptorProto of strategies.proto and discovery.proto, in dependency
// order), for other languages to build the same messages (the Python package's strategy_consumer.protobuf).
std::vector<std::string> schema_file_descriptors();

}  // namespace strategy_consumer
