#include "strategy_consumer/message/tradestream_compat.hpp"

#include <cmath>
#include <limits>
#include <memory>

#include <google/protobuf/any.pb.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/message.h>

#include "strategy_consumer/message/canonical_hash.hpp"
#include "strategy_consumer/message/protobuf_decoder.hpp"

namespace strategy_consumer {
namespace {

namespace pb = google::protobuf;
using nlohmann::json;

std::string serialize_deterministic(const pb::Message& m) {
  std::string out;
  {
    pb::io::StringOutputStream stream(&out);
    pb::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    m.SerializeToCodedStream(&coded);
  }
  return out;
}

// Sets one value (index: a repeated field's element is added); false when the JSON value does not fit.
bool set_value(pb::Message& m, const pb::FieldDescriptor* f, const json& v) {
  const pb::Reflection* r = m.GetReflection();
  const bool rep = f->is_repeated();
  switch (f->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_INT32: {
      if (!v.is_number()) return false;
      const double d = v.get<double>();
      if (!std::isfinite(d) || std::trunc(d) != d || d < std::numeric_limits<std::int32_t>::min() ||
          d > std::numeric_limits<std::int32_t>::max()) {
        return false;
      }
      const auto i = static_cast<std::int32_t>(v.is_number_integer() ? v.get<std::int64_t>() : d);
      rep ? r->AddInt32(&m, f, i) : r->SetInt32(&m, f, i);
      return true;
    }
    case pb::FieldDescriptor::CPPTYPE_DOUBLE: {
      if (!v.is_number() || !std::isfinite(v.get<double>())) return false;
      rep ? r->AddDouble(&m, f, v.get<double>()) : r->SetDouble(&m, f, v.get<double>());
      return true;
    }
    case pb::FieldDescriptor::CPPTYPE_BOOL:
      if (!v.is_boolean()) return false;
      rep ? r->AddBool(&m, f, v.get<bool>()) : r->SetBool(&m, f, v.get<bool>());
      return true;
    case pb::FieldDescriptor::CPPTYPE_STRING:
      if (!v.is_string()) return false;
      rep ? r->AddString(&m, f, v.get<std::string>()) : r->SetString(&m, f, v.get<std::string>());
      return true;
    default:  // the parameter messages hold no other field types
      return false;
  }
}

bool set_field(pb::Message& m, const pb::FieldDescriptor* f, const json& v) {
  if (f->is_map()) {
    if (!v.is_object()) return false;
    const pb::FieldDescriptor* key = f->message_type()->map_key();
    const pb::FieldDescriptor* value = f->message_type()->map_value();
    for (const auto& [k, item] : v.items()) {
      pb::Message* entry = m.GetReflection()->AddMessage(&m, f);
      if (!set_value(*entry, key, json(k)) || !set_value(*entry, value, item)) return false;
    }
    return true;
  }
  if (f->is_repeated()) {
    if (!v.is_array()) return false;
    for (const auto& item : v) {
      if (!set_value(m, f, item)) return false;
    }
    return true;
  }
  return set_value(m, f, v);
}

}  // namespace

std::string lower_hex(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(bytes.size() * 2, '0');
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const auto b = static_cast<unsigned char>(bytes[i]);
    out[2 * i] = kHex[b >> 4];
    out[2 * i + 1] = kHex[b & 0xF];
  }
  return out;
}

std::optional<AnyParameters> encode_parameters_any(const std::string& message_name, const json& named,
                                                   Reasons& reasons) {
  const std::string full = "strategies." + message_name;
  const pb::Descriptor* d = pb::DescriptorPool::generated_pool()->FindMessageTypeByName(full);
  if (!d) {
    reasons.push_back({"parameters.protobuf", "parameters", message_name,
                       "the schema has no parameter message " + full});
    return std::nullopt;
  }
  std::unique_ptr<pb::Message> m(pb::MessageFactory::generated_factory()->GetPrototype(d)->New());
  if (!named.is_object()) {
    reasons.push_back({"parameters.protobuf", "parameters", "", "parameters must be an object"});
    return std::nullopt;
  }
  for (const auto& [name, value] : named.items()) {
    const pb::FieldDescriptor* f = d->FindFieldByName(name);
    if (!f) {
      reasons.push_back({"parameters.protobuf", "parameters." + name, truncate_for_reason(value.dump()),
                         full + " has no field " + name + ": the parameters do not fit the protobuf message"});
    } else if (!set_field(*m, f, value)) {
      reasons.push_back({"parameters.protobuf", "parameters." + name, truncate_for_reason(value.dump()),
                         "does not fit " + full + "." + name + " (" + f->cpp_type_name() + ")"});
    }
  }
  if (!reasons.empty()) return std::nullopt;
  return AnyParameters{std::string(kTypeUrlPrefix) + full, serialize_deterministic(*m)};
}

std::string serialize_any(const AnyParameters& any) {
  pb::Any message;
  message.set_type_url(any.type_url);
  message.set_value(any.value);
  return message.SerializeAsString();
}

std::string tradestream_strategy_hash(const AnyParameters& any) { return sha256_hex(serialize_any(any)); }

json tradestream_parameters(const AnyParameters& any, const json& named) {
  const std::string hex = lower_hex(any.value);
  return json{{"protobuf_type", any.type_url},
              {"protobuf_data", hex},
              {"raw_parameters", {{"type_url", any.type_url}, {"value", hex}}},
              {"named", named}};
}

Reasons apply_hash_and_layout(StrategyRecord& record, bool hash_given, const Catalog& catalog,
                              const DecodeOptions& options) {
  Reasons reasons;
  record.parameters_layout = options.parameters_layout;
  const bool old_hash = options.hash_scheme == HashScheme::tradestream;
  if (!old_hash && options.parameters_layout == ParametersLayout::named) return reasons;
  if (!record.parameters_any) {
    const StrategyTypeSpec* spec = catalog.find(record.strategy_type);
    if (!spec || spec->parameter_message.empty()) {
      reasons.push_back({"parameters.protobuf", "strategy_type", truncate_for_reason(record.strategy_type),
                         "the type has no parameter message in the catalog: no tradestream Any can be built"});
      return reasons;
    }
    record.parameters_any = encode_parameters_any(spec->parameter_message, record.parameters, reasons);
    if (!record.parameters_any) return reasons;
  }
  if (old_hash && !hash_given) record.strategy_hash = tradestream_strategy_hash(*record.parameters_any);
  return reasons;
}

}  // namespace strategy_consumer
