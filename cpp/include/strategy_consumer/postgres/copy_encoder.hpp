#pragma once
// Row encoding for PostgreSQL's COPY text format: one line per record, columns separated by tabs, NULL as \N,
// and backslash, tab, newline and carriage return escaped, so any string arrives byte for byte.
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "strategy_consumer/message/json_writer.hpp"  // append_json, which the row encoder uses
#include "strategy_consumer/model/strategy_record.hpp"
#include "strategy_consumer/postgres/statements.hpp"

namespace strategy_consumer {

// The columns of the staging table, in the order encode_copy_row writes them (statements.hpp).
using statements::kCopyColumns;

void append_copy_field(std::string& out, std::string_view text);
// Appends one line (without the trailing newline, as pqxx::stream_to::write_raw_line wants it).
void encode_copy_row(std::string& out, const StrategyRecord& record);
// With the score history on, the rest of the line (statements.hpp, kHistoryCopyColumns): where the message was
// read (NULLs when `source` is null), whether the line is a row to upsert and whether it goes into the history.
void encode_history_fields(std::string& out, const SourcePosition* source, bool is_row, bool in_history);

}  // namespace strategy_consumer
