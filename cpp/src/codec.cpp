#include "strategy_consumer/codec.hpp"

#include <cmath>

#include "strategy_consumer/canonical_hash.hpp"
#include "strategy_consumer/copy_encoder.hpp"
#include "strategy_consumer/text.hpp"
#include "strategy_consumer/timestamp.hpp"

namespace strategy_consumer {
namespace {

using nlohmann::json;

// Builds the DOM like nlohmann's own parser, but refuses what that parser lets through or would recurse on:
// nesting deeper than max_depth, a key given twice in one object, NUL characters (PostgreSQL text and JSONB
// cannot hold them) and numbers beyond double range (1e400 would become infinity).
class StrictDomBuilder {
 public:
  explicit StrictDomBuilder(std::size_t max_depth) : max_depth_(max_depth) {}

  json root;
  std::optional<Reason> failure;

  bool null() { return put(json(nullptr)); }
  bool boolean(bool v) { return put(json(v)); }
  bool number_integer(json::number_integer_t v) { return put(json(v)); }
  bool number_unsigned(json::number_unsigned_t v) { return put(json(v)); }
  bool number_float(json::number_float_t v, const json::string_t& text) {
    if (!std::isfinite(v)) return fail("format.number", text, "number is out of the range of a double");
    return put(json(v));
  }
  bool string(json::string_t& v) {
    if (v.find('\0') != std::string::npos) return fail("format.nul", v, "string contains a NUL character");
    return put(json(std::move(v)));
  }
  bool binary(json::binary_t&) { return fail("format.json", "", "binary values are not JSON"); }
  bool start_object(std::size_t) { return open(json::object()); }
  bool key(json::string_t& k) {
    if (k.find('\0') != std::string::npos) return fail("format.nul", k, "key contains a NUL character");
    if (stack_.back()->contains(k)) return fail("format.duplicate_key", k, "key appears twice in one object");
    key_ = std::move(k);
    return true;
  }
  bool end_object() { return close(); }
  bool start_array(std::size_t) { return open(json::array()); }
  bool end_array() { return close(); }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& ex) {
    if (!failure) {
      std::string what = ex.what();
      if (ex.id == 406) {  // out_of_range.406: a number beyond double range, e.g. 1e400
        failure = Reason{"format.number", current_path(), "", "number is out of the range of a double"};
        return false;
      }
      // nlohmann's text starts with "[json.exception.parse_error.101] parse error at line 1, column 2: ".
      if (auto colon = what.find("]"); colon != std::string::npos) what = what.substr(colon + 2);
      // Its "last read" part quotes the input, which may not be UTF-8.
      failure = Reason{"format.json", "", "",
                       "not valid JSON (byte " + std::to_string(position) + "): " + printable_utf8(what)};
    }
    return false;
  }

 private:
  bool fail(std::string rule, std::string_view value, std::string message) {
    failure = Reason{std::move(rule), current_path(), truncate_for_reason(value), std::move(message)};
    return false;
  }
  // Dotted path of the value being read, e.g. "parameters.period"; array elements show as "[]".
  std::string current_path() const {
    std::string out;
    for (std::size_t i = 1; i < path_.size(); ++i) out += (out.empty() ? "" : ".") + path_[i];
    if (!stack_.empty() && stack_.back()->is_object()) out += (out.empty() ? "" : ".") + key_;
    return out;
  }

  json* place(json&& v) {
    if (stack_.empty()) {
      root = std::move(v);
      return &root;
    }
    json* top = stack_.back();
    if (top->is_array()) {
      top->push_back(std::move(v));
      return &top->back();
    }
    json& slot = (*top)[key_];
    slot = std::move(v);
    return &slot;
  }
  bool put(json&& v) {
    place(std::move(v));
    return true;
  }
  bool open(json&& container) {
    if (stack_.size() >= max_depth_) {
      return fail("format.depth", "", "JSON is nested deeper than " + std::to_string(max_depth_) + " levels");
    }
    path_.push_back(stack_.empty() ? "" : (stack_.back()->is_array() ? "[]" : key_));
    stack_.push_back(place(std::move(container)));
    return true;
  }
  bool close() {
    stack_.pop_back();
    path_.pop_back();
    return true;
  }

  std::size_t max_depth_;
  std::vector<json*> stack_;
  std::vector<std::string> path_;
  std::string key_;
};

class FieldReader {
 public:
  FieldReader(const json& doc, Reasons& reasons) : doc_(doc), reasons_(reasons) {}

  const json* find(const char* name) const {
    auto it = doc_.find(name);
    if (it == doc_.end() || it->is_null()) return nullptr;
    return &*it;
  }
  void missing(const char* name) { reasons_.push_back({"format.required", name, "", "required field is missing"}); }
  void mistyped(const char* name, const json& v, const char* want) {
    reasons_.push_back({"format.type", name, truncate_for_reason(v.dump()),
                        std::string("must be ") + want + ", not " + v.type_name()});
  }

  std::optional<std::string> string(const char* name, bool required) {
    const json* v = find(name);
    if (!v) {
      if (required) missing(name);
      return std::nullopt;
    }
    if (!v->is_string()) {
      mistyped(name, *v, "a string");
      return std::nullopt;
    }
    return v->get<std::string>();
  }
  std::optional<json> object(const char* name, bool required) {
    const json* v = find(name);
    if (!v) {
      if (required) missing(name);
      return std::nullopt;
    }
    if (!v->is_object()) {
      mistyped(name, *v, "an object");
      return std::nullopt;
    }
    return *v;
  }
  std::optional<double> number(const char* name) {
    const json* v = find(name);
    if (!v) return std::nullopt;
    if (!v->is_number()) {
      mistyped(name, *v, "a number");
      return std::nullopt;
    }
    return v->get<double>();
  }
  std::optional<std::int64_t> timestamp(const char* name) {
    auto text = string(name, false);
    if (!text) return std::nullopt;
    auto us = parse_rfc3339_us(*text);
    if (!us) {
      reasons_.push_back({"format.timestamp", name, truncate_for_reason(*text),
                          "not an RFC 3339 timestamp with a zone, e.g. 2024-01-15T10:30:00Z"});
    }
    return us;
  }

 private:
  const json& doc_;
  Reasons& reasons_;
};

}  // namespace

Decoded decode_strategy(std::string_view payload, const DecodeOptions& options) {
  Decoded out;
  auto& reasons = out.reasons;
  if (payload.empty()) {
    reasons.push_back({"format.empty", "", "", "message value is empty"});
    return out;
  }
  if (payload.size() > options.max_message_bytes) {
    reasons.push_back({"format.size", "", std::to_string(payload.size()) + " bytes",
                       "message is larger than " + std::to_string(options.max_message_bytes) + " bytes"});
    return out;
  }
  StrictDomBuilder builder(options.max_depth);
  json::sax_parse(payload.begin(), payload.end(), &builder);
  if (builder.failure) {
    reasons.push_back(std::move(*builder.failure));
    return out;
  }
  const json& doc = builder.root;
  if (!doc.is_object()) {
    reasons.push_back({"format.object", "", truncate_for_reason(doc.dump()),
                       std::string("message must be a JSON object, not ") + doc.type_name()});
    return out;
  }

  FieldReader read(doc, reasons);
  StrategyRecord& r = out.record;
  auto symbol = read.string("symbol", true);
  auto type = read.string("strategy_type", true);
  auto parameters = read.object("parameters", true);
  auto score = read.number("score");
  auto current_score = read.number("current_score");
  if (!read.find("score") && !read.find("current_score")) read.missing("score");
  if (score && current_score && *score != *current_score) {
    reasons.push_back({"format.score", "current_score", format_double(*current_score),
                       "score and current_score disagree; send one of them"});
  }
  r.performance_metrics = read.object("performance_metrics", false);
  r.discovery_symbol = read.string("discovery_symbol", false);
  r.discovery_start_us = read.timestamp("discovery_start_time");
  r.discovery_end_us = read.timestamp("discovery_end_time");
  auto hash = read.string("strategy_hash", false);
  if (hash && (hash->empty() || hash->size() > 256)) {
    reasons.push_back({"format.hash", "strategy_hash", truncate_for_reason(*hash),
                       "strategy_hash must be 1 to 256 characters"});
  }
  if (!reasons.empty()) return out;

  r.symbol = std::move(*symbol);
  r.strategy_type = std::move(*type);
  r.parameters = std::move(*parameters);
  r.score = current_score ? *current_score : *score;
  r.strategy_hash = hash ? std::move(*hash) : canonical_strategy_hash(r.symbol, r.strategy_type, r.parameters);
  return out;
}

}  // namespace strategy_consumer
