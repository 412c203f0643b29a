#pragma once
// The fast path of protobuf decoding (protobuf_decoder.cpp calls it first): one pass over the wire bytes of a
// DiscoveredStrategy as the discovery pipeline writes it, straight into a StrategyRecord, without parsing into
// generated messages or going through reflection. It accepts a message only when it is sure the reference path
// (parse + reflection) would accept it with exactly this record, and declines (returns false) everything else
// for that path to decide and explain: unknown or repeated fields, maps and repeated parameters, wire types other
// than the schema's, strings that are not UTF-8 or hold NUL, any reason at all.
#include <string_view>

#include "strategy_consumer/message/catalog.hpp"
#include "strategy_consumer/model/strategy_record.hpp"

namespace strategy_consumer::protobuf_fast_path {

// keep_any: also fill record.parameters_any (the tradestream layout and hash need it; otherwise it is not kept).
bool decode(std::string_view payload, const Catalog* catalog, bool keep_any, StrategyRecord& record);

}  // namespace strategy_consumer::protobuf_fast_path
