#include "strategy_consumer/model/reason.hpp"

#include <algorithm>
#include <charconv>

#include "strategy_consumer/model/text.hpp"

namespace strategy_consumer {
namespace {

bool is_more(const Reason& r) { return r.rule == kMoreReasonsRule; }

std::size_t more_count(const Reason& r) {
  std::size_t n = 0;
  const auto [_, ec] = std::from_chars(r.value.data(), r.value.data() + r.value.size(), n);
  return ec == std::errc() ? n : 1;
}

Reason more_reason(std::size_t n) {
  return {std::string(kMoreReasonsRule), "", std::to_string(n),
          std::to_string(n) + " more reason(s) not shown (at most " + std::to_string(kMaxReasons) + " are)"};
}

Reason bounded(Reason r) {
  auto cut = [](std::string& s, std::size_t max) {
    // Reasons built here are printable already; cutting is the common case only for outside text.
    if (s.size() > max) s = truncate_text(s, max);
  };
  cut(r.rule, kMaxReasonRuleBytes);
  cut(r.field, kMaxReasonFieldBytes);
  cut(r.value, kMaxReasonValueBytes);
  cut(r.message, kMaxReasonMessageBytes);
  return r;
}

}  // namespace

std::string truncate_text(std::string_view raw, std::size_t max_bytes) {
  // Escaping only lengthens text, so the first max_bytes + 4 bytes hold everything kept (the + 4: a character
  // cut at the end of the prefix is escaped beyond max_bytes, never kept).
  const bool longer = raw.size() > max_bytes;
  const std::string printable = printable_utf8(raw.substr(0, max_bytes + 4));
  if (!longer && printable.size() <= max_bytes) return printable;
  std::size_t cut = std::min(max_bytes, printable.size());
  // Back up to the start of a UTF-8 character so the text stays valid UTF-8.
  while (cut > 0 && cut < printable.size() && (static_cast<unsigned char>(printable[cut]) & 0xC0) == 0x80) --cut;
  return printable.substr(0, cut) + "...";
}

std::string truncate_for_reason(std::string_view raw) { return truncate_text(raw, kMaxReasonValueBytes); }

bool reasons_full(const Reasons& out) { return out.size() >= kMaxReasons; }

void add_reason(Reasons& out, Reason reason) {
  if (!out.empty() && is_more(out.back())) {
    out.back() = more_reason(more_count(out.back()) + (is_more(reason) ? more_count(reason) : 1));
  } else if (is_more(reason)) {
    out.push_back(more_reason(more_count(reason)));
  } else if (out.size() < kMaxReasons) {
    out.push_back(bounded(std::move(reason)));
  } else {
    out.push_back(more_reason(1));
  }
}

Reasons bounded_reasons(Reasons reasons, std::size_t max_reasons) {
  max_reasons = std::min(max_reasons, kMaxReasons);
  bool within = reasons.size() <= max_reasons;
  for (const auto& r : reasons) {
    within = within && !is_more(r) && r.rule.size() <= kMaxReasonRuleBytes && r.field.size() <= kMaxReasonFieldBytes &&
             r.value.size() <= kMaxReasonValueBytes && r.message.size() <= kMaxReasonMessageBytes;
  }
  if (within) return reasons;
  Reasons out;
  std::size_t more = 0;
  for (auto& r : reasons) {
    if (is_more(r)) more += more_count(r);
    else if (out.size() < max_reasons) out.push_back(bounded(std::move(r)));
    else ++more;
  }
  if (more > 0) out.push_back(more_reason(more));
  return out;
}

nlohmann::json reasons_to_json(const Reasons& reasons) {
  auto out = nlohmann::json::array();
  for (const auto& r : bounded_reasons(reasons)) {
    out.push_back({{"rule", r.rule}, {"field", r.field}, {"value", r.value}, {"message", r.message}});
  }
  return out;
}

std::string reasons_to_text(const Reasons& reasons) {
  std::string out;
  for (const auto& r : bounded_reasons(reasons)) {
    if (!out.empty()) out += "; ";
    out += r.rule + ": " + r.message;
    if (!r.field.empty()) out += " (" + r.field + ")";
  }
  return out;
}

}  // namespace strategy_consumer
