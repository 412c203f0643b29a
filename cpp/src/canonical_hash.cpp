#include "strategy_consumer/canonical_hash.hpp"

#include <cmath>
#include <openssl/evp.h>

namespace strategy_consumer {
namespace {

using nlohmann::json;

constexpr double kTwoTo53 = 9007199254740992.0;

// Rewrites numbers so that equal values have one spelling. Objects are std::map: keys already sorted.
json normalise(const json& v) {
  switch (v.type()) {
    case json::value_t::object: {
      json out = json::object();
      for (const auto& [k, item] : v.items()) out[k] = normalise(item);
      return out;
    }
    case json::value_t::array: {
      json out = json::array();
      for (const auto& item : v) out.push_back(normalise(item));
      return out;
    }
    case json::value_t::number_float: {
      const double d = v.get<double>();
      if (std::isfinite(d) && std::trunc(d) == d && std::fabs(d) < kTwoTo53) {
        return json(static_cast<std::int64_t>(d));  // also turns -0.0 into 0
      }
      return v;
    }
    case json::value_t::number_unsigned: {
      const auto u = v.get<std::uint64_t>();
      if (u <= static_cast<std::uint64_t>(INT64_MAX)) return json(static_cast<std::int64_t>(u));
      return v;
    }
    default:
      return v;
  }
}

}  // namespace

std::string canonical_json(const json& value) { return normalise(value).dump(); }

std::string sha256_hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(len * 2, '0');
  for (unsigned i = 0; i < len; ++i) {
    out[2 * i] = kHex[digest[i] >> 4];
    out[2 * i + 1] = kHex[digest[i] & 0xF];
  }
  return out;
}

std::string canonical_strategy_hash(std::string_view symbol, std::string_view strategy_type,
                                    const json& parameters) {
  json doc = json::object();
  doc["parameters"] = parameters;
  doc["strategy_type"] = std::string(strategy_type);
  doc["symbol"] = std::string(symbol);
  return sha256_hex(canonical_json(doc));
}

}  // namespace strategy_consumer
