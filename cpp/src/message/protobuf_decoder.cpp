#include "strategy_consumer/message/protobuf_decoder.hpp"

#include <cmath>
#include <cstdint>
#include <memory>
#include <unordered_map>

#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/dynamic_message.h>

#include "discovery.pb.h"
#include "message/protobuf_fast_path.hpp"
#include "strategies.pb.h"
#include "strategy_consumer/message/canonical_hash.hpp"
#include "strategy_consumer/model/text.hpp"

namespace strategy_consumer {
namespace {

namespace pb = google::protobuf;
using nlohmann::json;

// Timestamp's documented range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z.
constexpr std::int64_t kMinSeconds = -62135596800;
constexpr std::int64_t kMaxSeconds = 253402300799;

// How the top level of a value reads as protobuf wire format, without a schema: enough to tell bytes that are
// not protobuf from a truncated or damaged DiscoveredStrategy.
enum class Wire { ok, truncated, invalid };

struct WireScan {
  Wire wire = Wire::ok;
  bool known_first = false;  // the first tag is one of DiscoveredStrategy's fields with its wire type
};

bool read_varint(const unsigned char*& p, const unsigned char* end, std::uint64_t& out, Wire& failure) {
  out = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    if (p == end) {
      failure = Wire::truncated;
      return false;
    }
    const unsigned char byte = *p++;
    out |= static_cast<std::uint64_t>(byte & 0x7F) << shift;
    if (!(byte & 0x80)) return true;
  }
  failure = Wire::invalid;  // longer than 10 bytes
  return false;
}

WireScan scan_top_level(std::string_view payload) {
  WireScan scan;
  auto p = reinterpret_cast<const unsigned char*>(payload.data());
  const auto end = p + payload.size();
  bool first = true;
  while (p < end) {
    std::uint64_t tag = 0;
    if (!read_varint(p, end, tag, scan.wire)) return scan;
    if (first) {
      // strategy (1, length-delimited), score (2, 64-bit), symbol, start_time, end_time (3-5, length-delimited)
      scan.known_first = tag == 0x0a || tag == 0x11 || tag == 0x1a || tag == 0x22 || tag == 0x2a;
      first = false;
    }
    if ((tag >> 3) == 0 || (tag >> 3) > 536870911) {
      scan.wire = Wire::invalid;
      return scan;
    }
    std::uint64_t skip = 0;
    switch (tag & 7) {
      case 0:
        if (!read_varint(p, end, skip, scan.wire)) return scan;
        continue;
      case 1: skip = 8; break;
      case 5: skip = 4; break;
      case 2:
        if (!read_varint(p, end, skip, scan.wire)) return scan;
        break;
      default:  // groups (not in proto3) and the wire types 6 and 7 that do not exist
        scan.wire = Wire::invalid;
        return scan;
    }
    if (skip > static_cast<std::uint64_t>(end - p)) {
      scan.wire = Wire::truncated;
      return scan;
    }
    p += skip;
  }
  return scan;
}

// A field the schema knows, sent with another wire type: the bytes are some other message.
bool has_foreign_fields(const pb::Message& m) {
  const pb::UnknownFieldSet& unknown = m.GetReflection()->GetUnknownFields(m);
  for (int i = 0; i < unknown.field_count(); ++i) {
    if (m.GetDescriptor()->FindFieldByNumber(unknown.field(i).number())) return true;
  }
  return false;
}

const pb::FileDescriptor* strategies_file() { return strategies::Strategy::descriptor()->file(); }

// The parameter message a type_url names, or null: any prefix up to the last '/', then strategies.<Message>.
const pb::Descriptor* parameter_message(std::string_view type_url) {
  const auto slash = type_url.rfind('/');
  const std::string full(slash == std::string_view::npos ? type_url : type_url.substr(slash + 1));
  const pb::Descriptor* d = pb::DescriptorPool::generated_pool()->FindMessageTypeByName(full);
  if (!d || d->file() != strategies_file() || d == strategies::Strategy::descriptor()) return nullptr;
  return d;
}

// One empty message per parameter type and thread, parsed into again and again.
pb::Message& scratch_message(const pb::Descriptor* d) {
  thread_local std::unordered_map<const pb::Descriptor*, std::unique_ptr<pb::Message>> cache;
  auto& slot = cache[d];
  if (!slot) slot.reset(pb::MessageFactory::generated_factory()->GetPrototype(d)->New());
  return *slot;
}

// One value of a field (index < 0: the singular value); false when a double is not finite.
bool field_value(const pb::Message& m, const pb::FieldDescriptor* f, int index, json& out) {
  const pb::Reflection* r = m.GetReflection();
  const bool rep = index >= 0;
  switch (f->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_INT32: out = rep ? r->GetRepeatedInt32(m, f, index) : r->GetInt32(m, f); break;
    case pb::FieldDescriptor::CPPTYPE_INT64: out = rep ? r->GetRepeatedInt64(m, f, index) : r->GetInt64(m, f); break;
    case pb::FieldDescriptor::CPPTYPE_UINT32: out = rep ? r->GetRepeatedUInt32(m, f, index) : r->GetUInt32(m, f); break;
    case pb::FieldDescriptor::CPPTYPE_UINT64: out = rep ? r->GetRepeatedUInt64(m, f, index) : r->GetUInt64(m, f); break;
    case pb::FieldDescriptor::CPPTYPE_BOOL: out = rep ? r->GetRepeatedBool(m, f, index) : r->GetBool(m, f); break;
    case pb::FieldDescriptor::CPPTYPE_ENUM:
      out = rep ? r->GetRepeatedEnumValue(m, f, index) : r->GetEnumValue(m, f);
      break;
    case pb::FieldDescriptor::CPPTYPE_STRING:
      out = rep ? r->GetRepeatedString(m, f, index) : r->GetString(m, f);
      break;
    case pb::FieldDescriptor::CPPTYPE_DOUBLE:
    case pb::FieldDescriptor::CPPTYPE_FLOAT: {
      const double d = f->cpp_type() == pb::FieldDescriptor::CPPTYPE_FLOAT
                           ? (rep ? r->GetRepeatedFloat(m, f, index) : r->GetFloat(m, f))
                           : (rep ? r->GetRepeatedDouble(m, f, index) : r->GetDouble(m, f));
      if (!std::isfinite(d)) return false;
      out = d;
      break;
    }
    case pb::FieldDescriptor::CPPTYPE_MESSAGE: {  // not in the parameter messages; kept readable all the same
      out = json::object();
      const pb::Message& sub = rep ? r->GetRepeatedMessage(m, f, index) : r->GetMessage(m, f);
      const pb::Descriptor* d = sub.GetDescriptor();
      for (int i = 0; i < d->field_count(); ++i) {
        json v;
        if (!d->field(i)->is_repeated() && !field_value(sub, d->field(i), -1, v)) return false;
        if (!d->field(i)->is_repeated()) out[d->field(i)->name()] = std::move(v);
      }
      break;
    }
  }
  return true;
}

// The named values of a parsed parameter message; false (with `bad` naming the field) for a non-finite double.
bool named_values(const pb::Message& m, const StrategyTypeSpec* spec, json& out, std::string& bad) {
  out = json::object();
  const pb::Descriptor* d = m.GetDescriptor();
  const pb::Reflection* r = m.GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const pb::FieldDescriptor* f = d->field(i);
    const bool present = f->is_repeated() ? r->FieldSize(m, f) > 0 : r->HasField(m, f);
    if (!present && spec && !spec->find(f->name())) continue;  // at its default and not a catalog parameter
    json& slot = out[f->name()];
    if (f->is_map()) {
      slot = json::object();
      const pb::FieldDescriptor* key = f->message_type()->map_key();
      const pb::FieldDescriptor* value = f->message_type()->map_value();
      for (int k = 0; k < r->FieldSize(m, f); ++k) {
        const pb::Message& entry = r->GetRepeatedMessage(m, f, k);
        json kj, vj;
        field_value(entry, key, -1, kj);
        if (!field_value(entry, value, -1, vj)) {
          bad = f->name();
          return false;
        }
        slot[kj.is_string() ? kj.get<std::string>() : kj.dump()] = std::move(vj);
      }
    } else if (f->is_repeated()) {
      slot = json::array();
      for (int k = 0; k < r->FieldSize(m, f); ++k) {
        if (!field_value(m, f, k, slot.emplace_back())) {
          bad = f->name();
          return false;
        }
      }
    } else if (!field_value(m, f, -1, slot)) {
      bad = f->name();
      return false;
    }
  }
  return true;
}

std::optional<std::int64_t> timestamp_us(const pb::Timestamp& t, const char* field, Reasons& reasons) {
  if (t.seconds() < kMinSeconds || t.seconds() > kMaxSeconds || t.nanos() < 0 || t.nanos() > 999999999) {
    reasons.push_back({"protobuf.timestamp", field,
                       std::to_string(t.seconds()) + "s " + std::to_string(t.nanos()) + "ns",
                       "a Timestamp must lie within 0001-01-01..9999-12-31 UTC with nanos in 0..999999999"});
    return std::nullopt;
  }
  return t.seconds() * 1000000 + t.nanos() / 1000;
}

bool has_nul(const std::string& s) { return s.find('\0') != std::string::npos; }

}  // namespace

std::optional<json> decode_parameters_any(const AnyParameters& any, const StrategyTypeSpec* spec, Reasons& reasons) {
  const pb::Descriptor* d = parameter_message(any.type_url);
  if (!d) {
    reasons.push_back({"protobuf.any_type", "strategy.parameters.type_url", truncate_for_reason(any.type_url),
                       "names no parameter message of the schema (type.googleapis.com/strategies.<Message>)"});
    return std::nullopt;
  }
  pb::Message& m = scratch_message(d);
  if (!m.ParseFromString(any.value) || has_foreign_fields(m)) {
    reasons.push_back({"protobuf.any_value", "strategy.parameters.value", "", "the Any's bytes do not parse as " +
                                                                                  d->full_name()});
    return std::nullopt;
  }
  json out;
  std::string bad;
  if (!named_values(m, spec && spec->parameter_message == d->name() ? spec : nullptr, out, bad)) {
    reasons.push_back({"protobuf.any_value", "parameters." + bad, "", "not a finite number"});
    return std::nullopt;
  }
  return out;
}

Decoded decode_discovered_strategy(std::string_view payload, const DecodeOptions& options, const Catalog* catalog) {
  if (!payload.empty() && payload.size() <= options.max_message_bytes) {
    Decoded out;
    out.format = "protobuf";
    const bool keep_any = options.parameters_layout == ParametersLayout::tradestream ||
                          options.hash_scheme == HashScheme::tradestream;
    if (protobuf_fast_path::decode(payload, catalog, keep_any, out.record)) return out;
  }
  return decode_discovered_strategy_reference(payload, options, catalog);
}

Decoded decode_discovered_strategy_reference(std::string_view payload, const DecodeOptions& options,
                                             const Catalog* catalog) {
  Decoded out;
  out.format = "protobuf";
  auto& reasons = out.reasons;
  if (!value_size_acceptable(payload, options, reasons)) return out;
  thread_local discovery::DiscoveredStrategy msg;
  const bool parsed = msg.ParseFromArray(payload.data(), static_cast<int>(payload.size()));
  if (!parsed || !msg.has_strategy()) {
    const WireScan scan = scan_top_level(payload);
    if (!scan.known_first && scan.wire != Wire::ok) {
      reasons.push_back({"format.unrecognized", "", truncate_for_reason(payload),
                         "neither JSON (no `{` first) nor protobuf: the bytes do not start a DiscoveredStrategy"});
    } else if (scan.wire == Wire::truncated) {
      reasons.push_back({"protobuf.truncated", "", std::to_string(payload.size()) + " bytes",
                         "protobuf message ends inside a field (truncated)"});
    } else if (scan.wire == Wire::invalid || !parsed) {
      reasons.push_back({"protobuf.malformed", "", "",
                         "not a valid protobuf encoding of discovery.DiscoveredStrategy (malformed wire data, a "
                         "damaged nested message, or a string that is not UTF-8)"});
    } else if (has_foreign_fields(msg) || !scan.known_first) {
      reasons.push_back({"protobuf.message_type", "", "",
                         "valid protobuf, but not a discovery.DiscoveredStrategy (its fields have other types)"});
    } else {
      reasons.push_back({"format.required", "strategy", "", "required field is missing"});
    }
    return out;
  }
  if (has_foreign_fields(msg) || has_foreign_fields(msg.strategy()) ||
      (msg.strategy().has_parameters() && has_foreign_fields(msg.strategy().parameters())) ||
      (msg.has_start_time() && has_foreign_fields(msg.start_time())) ||
      (msg.has_end_time() && has_foreign_fields(msg.end_time()))) {
    reasons.push_back({"protobuf.message_type", "", "",
                       "valid protobuf, but not a discovery.DiscoveredStrategy (its fields have other types)"});
    return out;
  }

  StrategyRecord& r = out.record;
  const strategies::Strategy& s = msg.strategy();
  // The type: strategy_name, or the enum of older messages; when both are there they must agree.
  std::optional<std::string> enum_name;
  if (s.type() != 0) {
    enum_name = strategy_type_enum_name(s.type());
    if (!enum_name) {
      reasons.push_back({"protobuf.enum_unknown", "strategy.type", std::to_string(s.type()),
                         "not a number of the StrategyType enum"});
    }
  }
  if (!s.strategy_name().empty()) {
    if (has_nul(s.strategy_name())) {
      reasons.push_back({"format.nul", "strategy.strategy_name", truncate_for_reason(s.strategy_name()),
                         "string contains a NUL character"});
    }
    if (enum_name && catalog_spelling(*enum_name) != catalog_spelling(s.strategy_name())) {
      reasons.push_back({"protobuf.enum_name_mismatch", "strategy.type", *enum_name,
                         "the enum names " + *enum_name + " but strategy_name is " +
                             truncate_for_reason(s.strategy_name())});
    }
    r.strategy_type = s.strategy_name();
  } else if (enum_name) {
    r.strategy_type = *enum_name;
  } else if (s.type() == 0) {
    reasons.push_back({"format.required", "strategy.strategy_name", "", "required field is missing (nor the enum)"});
  }
  if (msg.symbol().empty()) {
    reasons.push_back({"format.required", "symbol", "", "required field is missing"});
  } else if (has_nul(msg.symbol())) {
    reasons.push_back({"format.nul", "symbol", truncate_for_reason(msg.symbol()), "string contains a NUL character"});
  }
  if (!std::isfinite(msg.score())) {
    reasons.push_back({"protobuf.score", "score", std::to_string(msg.score()), "score must be a finite number"});
  }
  if (msg.has_start_time()) r.discovery_start_us = timestamp_us(msg.start_time(), "start_time", reasons);
  if (msg.has_end_time()) r.discovery_end_us = timestamp_us(msg.end_time(), "end_time", reasons);
  if (!s.has_parameters()) {
    reasons.push_back({"format.required", "strategy.parameters", "", "required field is missing"});
  } else {
    AnyParameters any{s.parameters().type_url(), s.parameters().value()};
    const StrategyTypeSpec* spec = catalog && !r.strategy_type.empty() ? catalog->find(r.strategy_type) : nullptr;
    if (const pb::Descriptor* d = parameter_message(any.type_url);
        d && spec && !spec->parameter_message.empty() && spec->parameter_message != d->name()) {
      reasons.push_back({"protobuf.type_mismatch", "strategy.parameters.type_url", truncate_for_reason(any.type_url),
                         r.strategy_type + " takes " + spec->parameter_message + ", not " + d->name()});
    }
    if (auto named = decode_parameters_any(any, spec, reasons)) r.parameters = std::move(*named);
    r.parameters_any = std::move(any);
  }
  if (!reasons.empty()) return out;

  r.symbol = msg.symbol();
  r.discovery_symbol = r.symbol;
  r.score = msg.score();
  r.strategy_hash = canonical_strategy_hash(r.symbol, r.strategy_type, r.parameters);
  return out;
}

std::vector<std::string> parameter_message_names() {
  std::vector<std::string> out;
  const pb::FileDescriptor* file = strategies_file();
  for (int i = 0; i < file->message_type_count(); ++i) {
    if (file->message_type(i) != strategies::Strategy::descriptor()) out.push_back(file->message_type(i)->name());
  }
  return out;
}

std::optional<std::string> strategy_type_enum_name(int number) {
  const pb::EnumValueDescriptor* v = strategies::StrategyType_descriptor()->FindValueByNumber(number);
  if (!v) return std::nullopt;
  return v->name();
}

std::vector<std::string> schema_file_descriptors() {
  std::vector<std::string> out;
  for (const pb::FileDescriptor* f : {strategies_file(), discovery::DiscoveredStrategy::descriptor()->file()}) {
    pb::FileDescriptorProto proto;
    f->CopyTo(&proto);
    out.push_back(proto.SerializeAsString());
  }
  return out;
}

}  // namespace strategy_consumer
