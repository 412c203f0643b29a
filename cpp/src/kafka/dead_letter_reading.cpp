// A dead letter's JSON read back (pure): the inverse of dead_letter_encoding.cpp.
#include "strategy_consumer/kafka/dead_letter_reading.hpp"

#include <nlohmann/json.hpp>

#include "strategy_consumer/model/text.hpp"
#include "strategy_consumer/model/timestamp.hpp"

namespace strategy_consumer {
namespace {

using nlohmann::json;

std::string text_of(const json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::optional<std::int64_t> integer_of(const json& j, const char* key) {
  const auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer()) return std::nullopt;
  return it->get<std::int64_t>();
}

bool flag_of(const json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_boolean() && it->get<bool>();
}

}  // namespace

ReadDeadLetter read_dead_letter(std::string_view value) {
  ReadDeadLetter out;
  const json j = json::parse(value.begin(), value.end(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) {
    out.unreadable = "not a JSON object";
    return out;
  }
  out.stage = text_of(j, "stage");
  if (out.stage.empty()) {
    out.unreadable = "no stage";
    return out;
  }
  out.error = text_of(j, "error");
  out.message_format = text_of(j, "message_format");
  if (const auto reasons = j.find("reasons"); reasons != j.end() && reasons->is_array()) {
    for (const auto& r : *reasons) {
      if (r.is_object()) out.rule_ids.push_back(text_of(r, "rule"));
    }
  }
  out.source.topic = text_of(j, "source_topic");
  out.source.partition = static_cast<std::int32_t>(integer_of(j, "source_partition").value_or(-1));
  out.source.offset = integer_of(j, "source_offset").value_or(-1);
  out.source.timestamp_ms = integer_of(j, "source_timestamp_ms").value_or(-1);
  out.letter_time_us = parse_rfc3339_us(text_of(j, "timestamp"));

  if (flag_of(j, "original_message_omitted")) {
    out.not_replayable = "omitted";
    return out;
  }
  if (flag_of(j, "original_message_truncated")) {
    out.not_replayable = "truncated";
    return out;
  }
  const auto original = j.find("original_message");
  if (original == j.end() || !original->is_string()) {
    out.unreadable = "no original_message";
    return out;
  }
  if (text_of(j, "original_message_encoding") == "base64") {
    auto bytes = base64_decode(original->get_ref<const std::string&>());
    if (!bytes) {
      out.unreadable = "original_message is not base64";
      return out;
    }
    out.original_message = std::move(*bytes);
  } else {
    out.original_message = original->get<std::string>();
  }
  return out;
}

}  // namespace strategy_consumer
