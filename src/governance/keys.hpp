#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/config.hpp"

namespace switchyard::governance {

/// Lowercase hex SHA-256 of `text`.
std::string sha256_hex(std::string_view text);

/// The client keys of a configuration, known only by their SHA-256: found by its first 16 hex
/// digits, then compared whole in constant time (a lookup's timing tells nothing of the rest).
class KeyStore {
 public:
  explicit KeyStore(const std::vector<config::KeyConfig>& keys);

  /// The key presented by a client (the bearer token), or nullptr when unknown.
  const config::KeyConfig* find(std::string_view presented) const;
  /// The key whose SHA-256 (lowercase hex) is `hash`, or nullptr.
  const config::KeyConfig* find_hash(const std::string& hash) const;

  /// Whether the key may use the route.
  static bool allows(const config::KeyConfig& key, std::string_view route);

 private:
  std::unordered_map<std::string, std::vector<config::KeyConfig>> by_prefix_;
};

}  // namespace switchyard::governance
