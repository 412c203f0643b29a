// The dead letter's JSON (pure): the full letter within a byte budget, and the minimal one.
#include <algorithm>
#include <cstdint>

#include <nlohmann/json.hpp>

#include "strategy_consumer/kafka/dead_letters.hpp"
#include "strategy_consumer/model/text.hpp"
#include "strategy_consumer/model/timestamp.hpp"

namespace strategy_consumer {
namespace {

using nlohmann::json;

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string timestamp_text(std::int64_t now) { return format_timestamp_us(now).replace(10, 1, "T") + "Z"; }

}  // namespace

std::string encode_dead_letter(const DeadLetter& letter, std::int64_t now, std::size_t max_bytes) {
  json j;
  // Bytes read as protobuf are binary whatever they happen to look like: always base64.
  const bool utf8 = letter.message_format != "protobuf" && is_valid_utf8(letter.original_message);
  j["original_message"] = utf8 ? letter.original_message : base64_encode(letter.original_message);
  if (!utf8) j["original_message_encoding"] = "base64";
  const Reasons reasons = bounded_reasons(letter.reasons);
  j["error"] = reasons_to_text(reasons);
  j["timestamp"] = timestamp_text(now);
  j["stage"] = truncate_text(letter.stage, kMaxReasonRuleBytes);
  j["reasons"] = reasons_to_json(reasons);
  j["source_topic"] = letter.source.topic;
  j["source_partition"] = letter.source.partition;
  j["source_offset"] = letter.source.offset;
  if (!letter.message_format.empty()) j["message_format"] = letter.message_format;
  if (letter.source.timestamp_ms >= 0) j["source_timestamp_ms"] = letter.source.timestamp_ms;
  std::string out = dump(j);
  if (out.size() <= max_bytes) return out;

  // Over the budget. The reasons are bounded already (a few KiB at most); only when they take more than half of
  // a small budget are they cut further, to the first one (the rest counted). The original is cut last.
  const std::string original = j["original_message"].get<std::string>();
  const std::size_t escaped = dump(json(original)).size();
  if (out.size() - escaped > max_bytes / 2 && reasons.size() > 1) {
    const Reasons first = bounded_reasons(reasons, 1);
    j["error"] = reasons_to_text(first);
    j["reasons"] = reasons_to_json(first);
    out = dump(j);
    if (out.size() <= max_bytes) return out;
  }

  // Then keep as much of the original as fits. Escaping can make text longer in JSON than raw, so the first cut
  // is scaled by how much this original grows when escaped; shrink by a tenth until the letter fits.
  const std::size_t overhead = out.size() - escaped;
  const double growth = static_cast<double>(escaped) / static_cast<double>(std::max<std::size_t>(original.size(), 1));
  const std::size_t budget = max_bytes > overhead + 256 ? max_bytes - overhead - 256 : 0;
  std::size_t keep = static_cast<std::size_t>(static_cast<double>(budget) / std::max(growth, 1.0));
  j["original_message_truncated"] = true;
  j["original_message_bytes"] = letter.original_message.size();
  for (;;) {
    std::string cut = original.substr(0, keep);
    if (utf8) {
      // Never end inside a UTF-8 character.
      while (!cut.empty() && (static_cast<unsigned char>(cut.back()) & 0xC0) == 0x80) cut.pop_back();
      if (!cut.empty() && static_cast<unsigned char>(cut.back()) >= 0xC0) cut.pop_back();
    } else {
      cut.resize(cut.size() / 4 * 4);  // whole base64 quanta: the kept part decodes
    }
    j["original_message"] = std::move(cut);
    out = dump(j);
    if (out.size() <= max_bytes) return out;
    if (keep == 0) break;
    keep -= std::max<std::size_t>(keep / 10, 1);
  }
  // Not even the reason fits: the minimal letter.
  return encode_minimal_dead_letter(letter, "the letter does not fit in " + std::to_string(max_bytes) + " bytes", now);
}

std::string encode_minimal_dead_letter(const DeadLetter& letter, std::string_view refusal, std::int64_t now,
                                       std::size_t original_bytes) {
  json j;
  j["error"] = truncate_text(reasons_to_text(bounded_reasons(letter.reasons, 1)), 300);
  j["timestamp"] = timestamp_text(now);
  j["stage"] = truncate_text(letter.stage, kMaxReasonRuleBytes);
  j["source_topic"] = letter.source.topic;
  j["source_partition"] = letter.source.partition;
  j["source_offset"] = letter.source.offset;
  j["original_message_bytes"] = original_bytes == std::string::npos ? letter.original_message.size() : original_bytes;
  j["original_message_omitted"] = true;
  if (!letter.message_format.empty()) j["message_format"] = letter.message_format;
  if (letter.source.timestamp_ms >= 0) j["source_timestamp_ms"] = letter.source.timestamp_ms;
  j["refused"] = truncate_text(refusal, 300);
  return dump(j);
}

}  // namespace strategy_consumer
