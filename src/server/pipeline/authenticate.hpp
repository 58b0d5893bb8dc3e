#pragma once

#include <string>
#include <string_view>
#include <unordered_map>

#include "config/config.hpp"
#include "core/error.hpp"
#include "dialects/providers.hpp"
#include "server/runtime.hpp"

/// The pipeline's first step: who is calling. One per event loop.
namespace switchyard::server {

/// The credentials a request carries.
struct Credentials {
  std::string_view authorization;  ///< the Authorization header
  std::string_view x_api_key;      ///< Anthropic's SDKs send the key here
};

class Authenticator {
 public:
  /// The caller's key: a bearer token, or (Anthropic clients) `x-api-key`; nullptr when there is
  /// none or it is not a key of `runtime`. Keys already seen on this loop are remembered (a hash
  /// lookup instead of a SHA-256 per request); only valid keys are, at most 4,096 of them.
  const config::KeyConfig* find(const Credentials& c, dialects::Dialect client, const Runtime& runtime);
  /// Forgets the keys seen (a reload: they point into the old runtime).
  void clear() { cache_.clear(); }

  /// The 401 for a request without a valid key, worded as the client's API words it.
  static core::ApiError refusal(const Credentials& c, dialects::Dialect client);

 private:
  struct TokenHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, const config::KeyConfig*, TokenHash, std::equal_to<>> cache_;
};

}  // namespace switchyard::server
