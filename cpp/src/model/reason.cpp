#include "strategy_consumer/model/reason.hpp"

#include "strategy_consumer/model/text.hpp"

namespace strategy_consumer {

std::string truncate_for_reason(std::string_view raw) {
  const std::string printable = printable_utf8(raw);
  std::string_view text = printable;
  if (text.size() <= kMaxReasonValueBytes) return std::string(text);
  std::size_t cut = kMaxReasonValueBytes;
  // Back up to the start of a UTF-8 character so the value stays valid UTF-8.
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return std::string(text.substr(0, cut)) + "...";
}

nlohmann::json reasons_to_json(const Reasons& reasons) {
  auto out = nlohmann::json::array();
  for (const auto& r : reasons) {
    out.push_back({{"rule", r.rule}, {"field", r.field}, {"value", r.value}, {"message", r.message}});
  }
  return out;
}

std::string reasons_to_text(const Reasons& reasons) {
  std::string out;
  for (const auto& r : reasons) {
    if (!out.empty()) out += "; ";
    out += r.rule + ": " + r.message;
    if (!r.field.empty()) out += " (" + r.field + ")";
  }
  return out;
}

}  // namespace strategy_consumer
