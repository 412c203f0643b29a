#include "strategy_consumer/message/json_decoder.hpp"

#include <charconv>
#include <cmath>
#include <cstdint>

#include "strategy_consumer/message/canonical_hash.hpp"
#include "strategy_consumer/message/json_writer.hpp"
#include "strategy_consumer/model/text.hpp"
#include "strategy_consumer/model/timestamp.hpp"

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
        failure = Reason{"format.number", truncate_text(current_path(), kMaxReasonFieldBytes), "",
                         "number is out of the range of a double"};
        return false;
      }
      // nlohmann's text starts with "[json.exception.parse_error.101] parse error at line 1, column 2: ".
      if (auto colon = what.find("]"); colon != std::string::npos) what = what.substr(colon + 2);
      // Its "last read" part quotes the input (a whole token: a string of a megabyte), which may not be UTF-8.
      failure = Reason{"format.json", "", "",
                       truncate_text("not valid JSON (byte " + std::to_string(position) + "): " + what,
                                     kMaxReasonMessageBytes)};
    }
    return false;
  }

 private:
  bool fail(std::string rule, std::string_view value, std::string message) {
    // A key can be as long as the message: the path is cut like any value.
    failure = Reason{std::move(rule), truncate_text(current_path(), kMaxReasonFieldBytes), truncate_for_reason(value),
                     std::move(message)};
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

// Reads the fields of the message's DOM; objects are moved out of it (each field is read once).
class FieldReader {
 public:
  FieldReader(json& doc, Reasons& reasons) : doc_(doc), reasons_(reasons) {}

  json* find(const char* name) const {
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
    json* v = find(name);
    if (!v) {
      if (required) missing(name);
      return std::nullopt;
    }
    if (!v->is_string()) {
      mistyped(name, *v, "a string");
      return std::nullopt;
    }
    return std::move(v->get_ref<std::string&>());
  }
  std::optional<json> object(const char* name, bool required) {
    json* v = find(name);
    if (!v) {
      if (required) missing(name);
      return std::nullopt;
    }
    if (!v->is_object()) {
      mistyped(name, *v, "an object");
      return std::nullopt;
    }
    return std::move(*v);
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
  json& doc_;
  Reasons& reasons_;
};


// The fast path for the messages the discovery pipeline sends: one pass over the text straight into a
// StrategyRecord, building JSON values only for parameters and performance_metrics. It accepts a message only
// when it is sure the DOM path (decode_strategy_dom) would accept it with exactly this record, and declines
// everything else (returns false) for that path to decide and explain: any syntax it does not read itself
// (\u escapes, bytes outside ASCII, a byte order mark, integers beyond 64 bits, numbers that strtod would round
// to 0 or infinity), any reason at all, a duplicate key, nesting deeper than the limit or than kMaxDepth.
class FastDecoder {
 public:
  FastDecoder(std::string_view text, std::size_t max_depth)
      : p_(text.data()), end_(text.data() + text.size()), max_depth_(std::min(max_depth, kMaxDepth)) {}

  bool decode(StrategyRecord& r, bool& hash_given) {
    if (max_depth_ < 2 || !peek('{')) return false;  // parameters must be able to open at level 2
    ++p_;
    enum Field : unsigned {
      kSymbol = 1, kType = 2, kParameters = 4, kScore = 8, kCurrentScore = 16, kMetrics = 32,
      kDiscoverySymbol = 64, kStart = 128, kEnd = 256, kHash = 512,
    };
    unsigned seen = 0, present = 0;  // keys read; keys with a value other than null
    json score, current_score;
    std::string_view start_text, end_text;
    std::vector<std::string_view> other_keys;  // unknown keys: read and ignored, but never twice
    if (peek('}')) return false;  // {} lacks the required fields
    while (true) {
      std::string_view k;
      if (!key(k) || !peek(':')) return false;
      ++p_;
      skip_ws();
      const unsigned f = field_of(k);
      if (f == 0) {
        for (auto other : other_keys) {
          if (other == k) return false;
        }
        other_keys.push_back(k);
        json ignored;
        if (!value(ignored, 1)) return false;
      } else {
        if (seen & f) return false;
        seen |= f;
        if (p_ < end_ && *p_ == 'n') {
          if (!literal("null")) return false;  // null is as good as absent
        } else {
          present |= f;
          bool ok = false;
          switch (f) {
            case kSymbol: ok = string(r.symbol); break;
            case kType: ok = string(r.strategy_type); break;
            case kParameters: ok = peek('{') && value(r.parameters, 1); break;
            case kScore: ok = number(score); break;
            case kCurrentScore: ok = number(current_score); break;
            case kMetrics: ok = peek('{') && value(r.performance_metrics.emplace(), 1); break;
            case kDiscoverySymbol: ok = string(r.discovery_symbol.emplace()); break;
            case kStart: ok = plain_string(start_text); break;
            case kEnd: ok = plain_string(end_text); break;
            case kHash: ok = string(r.strategy_hash); break;
          }
          if (!ok) return false;
        }
      }
      if (peek(',')) {
        ++p_;
        continue;
      }
      if (!peek('}')) return false;
      ++p_;
      break;
    }
    skip_ws();
    if (p_ != end_) return false;

    if ((present & (kSymbol | kType | kParameters)) != (kSymbol | kType | kParameters)) return false;
    if (!(present & (kScore | kCurrentScore))) return false;
    if ((present & kScore) && (present & kCurrentScore) && score.get<double>() != current_score.get<double>()) {
      return false;
    }
    r.score = (present & kCurrentScore) ? current_score.get<double>() : score.get<double>();
    if (!(present & kMetrics)) r.performance_metrics.reset();
    if (!(present & kDiscoverySymbol)) r.discovery_symbol.reset();
    if (present & kStart) {
      r.discovery_start_us = parse_rfc3339_us(start_text);
      if (!r.discovery_start_us) return false;
    }
    if (present & kEnd) {
      r.discovery_end_us = parse_rfc3339_us(end_text);
      if (!r.discovery_end_us) return false;
    }
    hash_given = (present & kHash) != 0;
    if (present & kHash) {
      if (r.strategy_hash.empty() || r.strategy_hash.size() > 256) return false;
    } else {
      r.strategy_hash = canonical_strategy_hash(r.symbol, r.strategy_type, r.parameters);
    }
    return true;
  }

 private:
  // Deeper JSON is left to the DOM path, which does not recurse.
  static constexpr std::size_t kMaxDepth = 32;

  static unsigned field_of(std::string_view k) {
    static constexpr std::pair<std::string_view, unsigned> kFields[] = {
        {"symbol", 1}, {"strategy_type", 2}, {"parameters", 4}, {"score", 8}, {"current_score", 16},
        {"performance_metrics", 32}, {"discovery_symbol", 64}, {"discovery_start_time", 128},
        {"discovery_end_time", 256}, {"strategy_hash", 512},
    };
    for (const auto& [name, bit] : kFields) {
      if (name == k) return bit;
    }
    return 0;
  }

  // JSON white space (RFC 8259: space, tab, line feed, carriage return).
  void skip_ws() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }
  bool peek(char c) {
    skip_ws();
    return p_ < end_ && *p_ == c;
  }
  bool literal(std::string_view word) {
    if (static_cast<std::size_t>(end_ - p_) < word.size() || std::string_view(p_, word.size()) != word) return false;
    p_ += word.size();
    return true;
  }
  static bool plain(char c) {
    const auto u = static_cast<unsigned char>(c);
    return u >= 0x20 && u < 0x80 && c != '"' && c != '\\';
  }

  // A string of printable ASCII without escapes, as a view into the message (keys and timestamps).
  bool plain_string(std::string_view& out) {
    if (!peek('"')) return false;
    const char* start = ++p_;
    while (p_ < end_ && plain(*p_)) ++p_;
    if (p_ == end_ || *p_ != '"') return false;
    out = std::string_view(start, static_cast<std::size_t>(p_ - start));
    ++p_;
    return true;
  }
  bool key(std::string_view& out) { return plain_string(out); }

  // An ASCII string; the escapes other than \u are decoded here.
  bool string(std::string& out) {
    if (!peek('"')) return false;
    ++p_;
    out.clear();
    while (true) {
      const char* run = p_;
      while (p_ < end_ && plain(*p_)) ++p_;
      out.append(run, static_cast<std::size_t>(p_ - run));
      if (p_ == end_) return false;
      if (*p_ == '"') {
        ++p_;
        return true;
      }
      if (*p_ != '\\' || end_ - p_ < 2) return false;  // a control character or a byte beyond ASCII
      switch (p_[1]) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        default: return false;  // \u (NUL, surrogates, UTF-8 to check) and invalid escapes
      }
      p_ += 2;
    }
  }

  static bool digit(char c) { return c >= '0' && c <= '9'; }

  // A JSON number with the type nlohmann gives it: unsigned for a non-negative integer, signed for a negative
  // one, double when it has a fraction or an exponent.
  bool number(json& out) {
    skip_ws();
    const char* start = p_;
    const bool negative = p_ < end_ && *p_ == '-';
    if (negative) ++p_;
    if (p_ == end_) return false;
    if (*p_ == '0') {
      ++p_;
    } else if (digit(*p_)) {
      while (p_ < end_ && digit(*p_)) ++p_;
    } else {
      return false;
    }
    bool real = false;
    if (p_ < end_ && *p_ == '.') {
      ++p_;
      if (p_ == end_ || !digit(*p_)) return false;
      while (p_ < end_ && digit(*p_)) ++p_;
      real = true;
    }
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      ++p_;
      if (p_ < end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (p_ == end_ || !digit(*p_)) return false;
      while (p_ < end_ && digit(*p_)) ++p_;
      real = true;
    }
    if (real) {
      // Correctly rounded, as strtod is; out of range (to infinity, or to 0 or a subnormal) is declined.
      double d = 0;
      auto [ptr, ec] = std::from_chars(start, p_, d);
      if (ec != std::errc() || ptr != p_ || !std::isfinite(d)) return false;
      out = d;
    } else if (negative) {
      std::int64_t v = 0;
      auto [ptr, ec] = std::from_chars(start, p_, v);
      if (ec != std::errc() || ptr != p_) return false;  // beyond int64: nlohmann makes it a double
      out = v;
    } else {
      std::uint64_t v = 0;
      auto [ptr, ec] = std::from_chars(start, p_, v);
      if (ec != std::errc() || ptr != p_) return false;
      out = v;
    }
    return true;
  }

  // Any JSON value; `depth` is the number of containers already open around it.
  bool value(json& out, std::size_t depth) {
    skip_ws();
    if (p_ == end_) return false;
    switch (*p_) {
      case '"': {
        std::string text;
        if (!string(text)) return false;
        out = std::move(text);
        return true;
      }
      case '{': {
        if (depth >= max_depth_) return false;
        ++p_;
        out = json::object();
        auto& object = out.get_ref<json::object_t&>();
        if (peek('}')) {
          ++p_;
          return true;
        }
        while (true) {
          std::string_view k;
          if (!key(k) || !peek(':')) return false;
          ++p_;
          auto [it, inserted] = object.try_emplace(std::string(k));
          if (!inserted || !value(it->second, depth + 1)) return false;
          if (peek(',')) {
            ++p_;
            continue;
          }
          if (!peek('}')) return false;
          ++p_;
          return true;
        }
      }
      case '[': {
        if (depth >= max_depth_) return false;
        ++p_;
        out = json::array();
        auto& array = out.get_ref<json::array_t&>();
        if (peek(']')) {
          ++p_;
          return true;
        }
        while (true) {
          if (!value(array.emplace_back(), depth + 1)) return false;
          if (peek(',')) {
            ++p_;
            continue;
          }
          if (!peek(']')) return false;
          ++p_;
          return true;
        }
      }
      case 't':
        out = true;
        return literal("true");
      case 'f':
        out = false;
        return literal("false");
      case 'n':
        out = nullptr;
        return literal("null");
      default:
        return number(out);
    }
  }

  const char* p_;
  const char* end_;
  std::size_t max_depth_;
};

}  // namespace

Decoded decode_strategy_dom(std::string_view payload, const DecodeOptions& options) {
  Decoded out;
  auto& reasons = out.reasons;
  if (!value_size_acceptable(payload, options, reasons)) return out;
  StrictDomBuilder builder(options.max_depth);
  json::sax_parse(payload.begin(), payload.end(), &builder);
  if (builder.failure) {
    reasons.push_back(std::move(*builder.failure));
    return out;
  }
  json& doc = builder.root;
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
  out.hash_given = hash.has_value();
  r.strategy_hash = hash ? std::move(*hash) : canonical_strategy_hash(r.symbol, r.strategy_type, r.parameters);
  return out;
}

Decoded decode_strategy(std::string_view payload, const DecodeOptions& options) {
  if (!payload.empty() && payload.size() <= options.max_message_bytes) {
    Decoded out;
    if (FastDecoder(payload, options.max_depth).decode(out.record, out.hash_given)) return out;
  }
  return decode_strategy_dom(payload, options);
}

}  // namespace strategy_consumer
