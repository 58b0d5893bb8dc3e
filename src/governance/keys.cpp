#include "governance/keys.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>

namespace switchyard::governance {

std::string sha256_hex(std::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), digest, &len, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(len * 2, '0');
  for (unsigned int i = 0; i < len; ++i) {
    out[2 * i] = kHex[digest[i] >> 4];
    out[2 * i + 1] = kHex[digest[i] & 0xF];
  }
  return out;
}

KeyStore::KeyStore(const std::vector<config::KeyConfig>& keys) {
  for (const auto& k : keys) by_prefix_[k.sha256.substr(0, 16)].push_back(k);
}

const config::KeyConfig* KeyStore::find(std::string_view presented) const {
  if (presented.empty() || presented.size() > 512) return nullptr;
  return find_hash(sha256_hex(presented));
}

const config::KeyConfig* KeyStore::find_hash(const std::string& hash) const {
  if (hash.size() != 64) return nullptr;
  auto it = by_prefix_.find(hash.substr(0, 16));
  if (it == by_prefix_.end()) return nullptr;
  for (const auto& k : it->second)
    if (k.sha256.size() == 64 && CRYPTO_memcmp(k.sha256.data(), hash.data(), 64) == 0) return &k;
  return nullptr;
}

bool KeyStore::allows(const config::KeyConfig& key, std::string_view route) {
  return std::any_of(key.routes.begin(), key.routes.end(),
                     [&](const std::string& r) { return r == "*" || r == route; });
}

}  // namespace switchyard::governance
