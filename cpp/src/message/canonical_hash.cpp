#include "strategy_consumer/message/canonical_hash.hpp"

#include <stdexcept>

#include <openssl/evp.h>

#include "strategy_consumer/message/catalog.hpp"
#include "strategy_consumer/message/json_writer.hpp"

namespace strategy_consumer {
namespace {

using nlohmann::json;

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
  append_json(out, value, JsonNumbers::canonical);
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
  append_json(text, parameters, JsonNumbers::canonical);
  text += ",\"strategy_type\":";
  append_json_string(text, catalog_spelling(strategy_type));
  text += ",\"symbol\":";
  append_json_string(text, symbol);
  text += '}';
  return sha256_hex(text);
}

}  // namespace strategy_consumer
