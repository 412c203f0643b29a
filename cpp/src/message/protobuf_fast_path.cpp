#include "message/protobuf_fast_path.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include <google/protobuf/descriptor.h>

#include "strategies.pb.h"
#include "strategy_consumer/message/canonical_hash.hpp"
#include "strategy_consumer/model/text.hpp"

namespace strategy_consumer::protobuf_fast_path {
namespace {

namespace pb = google::protobuf;
using nlohmann::json;

constexpr std::int64_t kMinSeconds = -62135596800;  // 0001-01-01T00:00:00Z
constexpr std::int64_t kMaxSeconds = 253402300799;  // 9999-12-31T23:59:59Z

enum class Kind { int32, real, boolean };

struct FieldInfo {
  std::uint32_t number;
  std::string name;
  Kind kind;
};

// A parameter message the fast path can read: singular int32, double and bool fields only.
struct ParamInfo {
  std::string name;  // "MacdCrossoverParameters"
  std::vector<FieldInfo> fields;
};

struct Hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
};

// The schema's tables, built once from the generated descriptors and read-only after.
struct Schema {
  std::unordered_map<std::string, ParamInfo, Hash, std::equal_to<>> params;  // by full name, strategies.X
  std::vector<std::string> enum_names;                                       // by number; "" where none

  Schema() {
    const pb::FileDescriptor* file = strategies::Strategy::descriptor()->file();
    for (int i = 0; i < file->message_type_count(); ++i) {
      const pb::Descriptor* d = file->message_type(i);
      if (d == strategies::Strategy::descriptor()) continue;
      ParamInfo info{d->name(), {}};
      bool simple = true;
      for (int f = 0; f < d->field_count() && simple; ++f) {
        const pb::FieldDescriptor* field = d->field(f);
        if (field->is_repeated()) simple = false;
        else if (field->type() == pb::FieldDescriptor::TYPE_INT32) info.fields.push_back({static_cast<std::uint32_t>(field->number()), field->name(), Kind::int32});
        else if (field->type() == pb::FieldDescriptor::TYPE_DOUBLE) info.fields.push_back({static_cast<std::uint32_t>(field->number()), field->name(), Kind::real});
        else if (field->type() == pb::FieldDescriptor::TYPE_BOOL) info.fields.push_back({static_cast<std::uint32_t>(field->number()), field->name(), Kind::boolean});
        else simple = false;
      }
      if (simple) params.emplace(d->full_name(), std::move(info));
    }
    const pb::EnumDescriptor* e = strategies::StrategyType_descriptor();
    for (int i = 0; i < e->value_count(); ++i) {
      const auto n = static_cast<std::size_t>(e->value(i)->number());
      if (n >= enum_names.size()) enum_names.resize(n + 1);
      enum_names[n] = e->value(i)->name();
    }
  }
};

const Schema& schema() {
  static const Schema kSchema;
  return kSchema;
}

class Reader {
 public:
  explicit Reader(std::string_view bytes)
      : p_(reinterpret_cast<const unsigned char*>(bytes.data())), end_(p_ + bytes.size()) {}
  bool done() const { return p_ == end_; }
  bool varint(std::uint64_t& out) {
    out = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ == end_) return false;
      const unsigned char b = *p_++;
      out |= static_cast<std::uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return true;
    }
    return false;
  }
  bool fixed64(std::uint64_t& out) {
    if (end_ - p_ < 8) return false;
    std::memcpy(&out, p_, 8);  // little-endian, as x86-64 and protobuf
    p_ += 8;
    return true;
  }
  bool bytes(std::string_view& out) {
    std::uint64_t n = 0;
    if (!varint(n) || n > static_cast<std::uint64_t>(end_ - p_)) return false;
    out = std::string_view(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return true;
  }

 private:
  const unsigned char* p_;
  const unsigned char* end_;
};

bool good_string(std::string_view s) { return s.find('\0') == std::string_view::npos && is_valid_utf8(s); }

// A Timestamp, in range, as microseconds.
bool timestamp(std::string_view bytes, std::int64_t& us) {
  Reader r(bytes);
  std::uint64_t seconds = 0, nanos = 0, tag = 0;
  bool has_seconds = false, has_nanos = false;
  while (!r.done()) {
    if (!r.varint(tag)) return false;
    if (tag == 0x08 && !has_seconds) {
      if (!r.varint(seconds)) return false;
      has_seconds = true;
    } else if (tag == 0x10 && !has_nanos) {
      if (!r.varint(nanos)) return false;
      has_nanos = true;
    } else {
      return false;
    }
  }
  const auto s = static_cast<std::int64_t>(seconds);
  const auto n = static_cast<std::int32_t>(nanos);
  if (s < kMinSeconds || s > kMaxSeconds || n < 0 || n > 999999999) return false;
  us = s * 1000000 + n / 1000;
  return true;
}

// The named values of a parameter message, as the reference path lists them.
bool parameters(const ParamInfo& info, std::string_view value, const StrategyTypeSpec* spec, json& out) {
  constexpr std::size_t kMaxFields = 16;
  if (info.fields.size() > kMaxFields) return false;
  std::uint64_t raw[kMaxFields] = {};
  bool seen[kMaxFields] = {};
  Reader r(value);
  std::uint64_t tag = 0;
  while (!r.done()) {
    if (!r.varint(tag)) return false;
    std::size_t i = 0;
    while (i < info.fields.size() && info.fields[i].number != (tag >> 3)) ++i;
    if (i == info.fields.size() || seen[i]) return false;
    seen[i] = true;
    const bool ok = info.fields[i].kind == Kind::real ? (tag & 7) == 1 && r.fixed64(raw[i])
                                                      : (tag & 7) == 0 && r.varint(raw[i]);
    if (!ok) return false;
  }
  out = json::object();
  auto& object = out.get_ref<json::object_t&>();
  for (std::size_t i = 0; i < info.fields.size(); ++i) {
    const FieldInfo& f = info.fields[i];
    // proto3 has no presence for scalars: a field is "set" when it is not zero, as reflection's HasField says.
    const bool set = seen[i] && raw[i] != 0;
    if (!set && spec && !spec->find(f.name)) continue;
    switch (f.kind) {
      case Kind::int32: object.emplace(f.name, static_cast<std::int32_t>(raw[i])); break;
      case Kind::boolean: object.emplace(f.name, raw[i] != 0); break;
      case Kind::real: {
        double d = 0;
        std::memcpy(&d, &raw[i], 8);
        if (!std::isfinite(d)) return false;
        object.emplace(f.name, d);
        break;
      }
    }
  }
  return true;
}

}  // namespace

bool decode(std::string_view payload, const Catalog* catalog, bool keep_any, StrategyRecord& r) {
  std::string_view strategy, symbol, start, end, any, name, type_url, value;
  std::uint64_t score_bits = 0, enum_number = 0, tag = 0;
  unsigned seen = 0;
  auto once = [&seen](unsigned bit) { return !(seen & bit) && (seen |= bit); };

  Reader top(payload);
  while (!top.done()) {
    if (!top.varint(tag)) return false;
    bool ok = false;
    switch (tag) {
      case 0x0a: ok = once(1) && top.bytes(strategy); break;
      case 0x11: ok = once(2) && top.fixed64(score_bits); break;
      case 0x1a: ok = once(4) && top.bytes(symbol); break;
      case 0x22: ok = once(8) && top.bytes(start); break;
      case 0x2a: ok = once(16) && top.bytes(end); break;
    }
    if (!ok) return false;
  }
  if (!(seen & 1) || symbol.empty() || !good_string(symbol)) return false;
  Reader s(strategy);
  while (!s.done()) {
    if (!s.varint(tag)) return false;
    bool ok = false;
    switch (tag) {
      case 0x08: ok = once(32) && s.varint(enum_number); break;
      case 0x12: ok = once(64) && s.bytes(any); break;
      case 0x1a: ok = once(128) && s.bytes(name); break;
    }
    if (!ok) return false;
  }
  if (!(seen & 64)) return false;
  Reader a(any);
  while (!a.done()) {
    if (!a.varint(tag)) return false;
    bool ok = false;
    switch (tag) {
      case 0x0a: ok = once(256) && a.bytes(type_url); break;
      case 0x12: ok = once(512) && a.bytes(value); break;
    }
    if (!ok) return false;
  }

  // The type: the name, or the enum; both must agree when both are there.
  const Schema& sc = schema();
  const auto number = static_cast<std::int32_t>(enum_number);
  std::string_view enum_name;
  if (number != 0) {
    if (number < 0 || static_cast<std::size_t>(number) >= sc.enum_names.size()) return false;
    enum_name = sc.enum_names[static_cast<std::size_t>(number)];
    if (enum_name.empty()) return false;
  }
  if (!good_string(name)) return false;
  if (!name.empty() && !enum_name.empty() && catalog_spelling(name) != catalog_spelling(enum_name)) return false;
  const std::string_view type = name.empty() ? enum_name : name;
  if (type.empty()) return false;
  // The names of the table are ASCII: only a type_url with another prefix needs its UTF-8 checked.
  if (!type_url.starts_with("type.googleapis.com/strategies.") && !good_string(type_url)) return false;

  const auto slash = type_url.rfind('/');
  auto it = sc.params.find(slash == std::string_view::npos ? type_url : type_url.substr(slash + 1));
  if (it == sc.params.end()) return false;
  const ParamInfo& info = it->second;
  const StrategyTypeSpec* spec = catalog ? catalog->find(type) : nullptr;
  if (spec && !spec->parameter_message.empty() && spec->parameter_message != info.name) return false;

  double score = 0;
  std::memcpy(&score, &score_bits, 8);
  if (!std::isfinite(score)) return false;
  std::int64_t start_us = 0, end_us = 0;
  if ((seen & 8) && !timestamp(start, start_us)) return false;
  if ((seen & 16) && !timestamp(end, end_us)) return false;
  if (!parameters(info, value, spec && spec->parameter_message == info.name ? spec : nullptr, r.parameters)) {
    return false;
  }

  r.symbol.assign(symbol);
  r.discovery_symbol = r.symbol;
  r.strategy_type.assign(type);
  r.score = score;
  if (seen & 8) r.discovery_start_us = start_us;
  if (seen & 16) r.discovery_end_us = end_us;
  if (keep_any) r.parameters_any = AnyParameters{std::string(type_url), std::string(value)};
  r.strategy_hash = canonical_strategy_hash(r.symbol, r.strategy_type, r.parameters);
  return true;
}

}  // namespace strategy_consumer::protobuf_fast_path
