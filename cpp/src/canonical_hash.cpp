#include "strategy_consumer/canonical_hash.hpp"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <stdexcept>

#include <openssl/evp.h>

namespace strategy_consumer {
namespace {

using nlohmann::json;

constexpr double kTwoTo53 = 9007199254740992.0;

template <class Integer>
void append_integer(std::string& out, Integer v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

// A string as json::dump writes it. Printable ASCII without '"' and '\\' needs no escape; anything else goes
// through nlohmann's own serializer so that escapes (and its error on invalid UTF-8) stay exactly its own.
void append_string(std::string& out, std::string_view s) {
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7F || c == '"' || c == '\\') {
      out += json(std::string(s)).dump();
      return;
    }
  }
  out += '"';
  out += s;
  out += '"';
}

// The canonical JSON of `v`, written straight into `out`: what json::dump writes for a copy of `v` whose numbers
// were normalised (integral doubles below 2^53 as integers, -0 as 0), without building that copy. Objects are
// std::map: keys already sorted by their bytes.
void append_canonical(std::string& out, const json& v) {
  switch (v.type()) {
    case json::value_t::object: {
      out += '{';
      bool first = true;
      for (const auto& [k, item] : v.get_ref<const json::object_t&>()) {
        if (!first) out += ',';
        first = false;
        append_string(out, k);
        out += ':';
        append_canonical(out, item);
      }
      out += '}';
      return;
    }
    case json::value_t::array: {
      out += '[';
      bool first = true;
      for (const auto& item : v.get_ref<const json::array_t&>()) {
        if (!first) out += ',';
        first = false;
        append_canonical(out, item);
      }
      out += ']';
      return;
    }
    case json::value_t::string:
      append_string(out, v.get_ref<const std::string&>());
      return;
    case json::value_t::number_integer:
      append_integer(out, v.get<std::int64_t>());
      return;
    case json::value_t::number_unsigned:
      append_integer(out, v.get<std::uint64_t>());
      return;
    case json::value_t::number_float: {
      const double d = v.get<double>();
      if (std::isfinite(d) && std::trunc(d) == d && std::fabs(d) < kTwoTo53) {
        append_integer(out, static_cast<std::int64_t>(d));  // also turns -0.0 into 0
        return;
      }
      if (!std::isfinite(d)) {
        out += "null";  // as json::dump writes them
        return;
      }
      char buf[64];
      char* end = nlohmann::detail::to_chars(buf, buf + sizeof buf, d);  // json::dump's own float formatting
      out.append(buf, end);
      return;
    }
    case json::value_t::null:
      out += "null";
      return;
    case json::value_t::boolean:
      out += v.get<bool>() ? "true" : "false";
      return;
    default:  // binary (parsed JSON never holds it) and discarded
      out += v.dump();
      return;
  }
}

// One SHA-256 context per thread, reused: creating a context and looking the digest up in OpenSSL 3's provider
// tables costs more than hashing a short canonical form.
class Sha256 {
 public:
  Sha256() : md_(EVP_MD_fetch(nullptr, "SHA256", nullptr)), ctx_(EVP_MD_CTX_new()) {
    if (!md_ || !ctx_) throw std::runtime_error("OpenSSL: SHA-256 is not available");
  }
  ~Sha256() {
    EVP_MD_CTX_free(ctx_);
    EVP_MD_free(md_);
  }
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  std::string hex(std::string_view data) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_DigestInit_ex2(ctx_, md_, nullptr) != 1 || EVP_DigestUpdate(ctx_, data.data(), data.size()) != 1 ||
        EVP_DigestFinal_ex(ctx_, digest, &len) != 1) {
      throw std::runtime_error("OpenSSL: SHA-256 failed");
    }
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out(len * 2, '0');
    for (unsigned i = 0; i < len; ++i) {
      out[2 * i] = kHex[digest[i] >> 4];
      out[2 * i + 1] = kHex[digest[i] & 0xF];
    }
    return out;
  }

 private:
  EVP_MD* md_;
  EVP_MD_CTX* ctx_;
};

Sha256& thread_sha256() {
  thread_local Sha256 sha;
  return sha;
}

}  // namespace

std::string canonical_json(const json& value) {
  std::string out;
  append_canonical(out, value);
  return out;
}

std::string sha256_hex(std::string_view data) { return thread_sha256().hex(data); }

std::string canonical_strategy_hash(std::string_view symbol, std::string_view strategy_type,
                                    const json& parameters) {
  // The canonical JSON of {"parameters": ..., "strategy_type": ..., "symbol": ...} (keys in sorted order),
  // written into a buffer each thread keeps.
  thread_local std::string text;
  text.clear();
  text += "{\"parameters\":";
  append_canonical(text, parameters);
  text += ",\"strategy_type\":";
  append_string(text, strategy_type);
  text += ",\"symbol\":";
  append_string(text, symbol);
  text += '}';
  return sha256_hex(text);
}

}  // namespace strategy_consumer
