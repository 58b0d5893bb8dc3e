#include "governance/keys.hpp"

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
  for (const auto& k : keys) by_hash_.emplace(k.sha256, k);
}

const config::KeyConfig* KeyStore::find(std::string_view presented) const {
  if (presented.empty() || presented.size() > 512) return nullptr;
  auto it = by_hash_.find(sha256_hex(presented));
  return it == by_hash_.end() ? nullptr : &it->second;
}

bool KeyStore::allows(const config::KeyConfig& key, std::string_view route) {
  return std::any_of(key.routes.begin(), key.routes.end(),
                     [&](const std::string& r) { return r == "*" || r == route; });
}

}  // namespace switchyard::governance
