#pragma once
// Row encoding for PostgreSQL's COPY text format: one line per record, columns separated by tabs, NULL as \N,
// and backslash, tab, newline and carriage return escaped, so any string arrives byte for byte.
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "strategy_consumer/message/json_writer.hpp"  // append_json, which the row encoder uses
#include "strategy_consumer/model/strategy_record.hpp"

namespace strategy_consumer {

// The columns of the staging table, in the order encode_copy_row writes them.
inline constexpr std::string_view kCopyColumns =
    "symbol, strategy_type, parameters, current_score, strategy_hash, discovery_symbol, "
    "discovery_start_time, discovery_end_time, performance_metrics, message_timestamp";

void append_copy_field(std::string& out, std::string_view text);
// Appends one line (without the trailing newline, as pqxx::stream_to::write_raw_line wants it).
void encode_copy_row(std::string& out, const StrategyRecord& record);

}  // namespace strategy_consumer
