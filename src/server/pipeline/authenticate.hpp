#pragma once

#include <string>
#include <string_view>
#include <unordered_map>

#include "config/config.hpp"
#include "core/error.hpp"
#include "dialects/providers.hpp"
#include "governance/governor.hpp"
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
  /// none or it is neither a key of `runtime` nor one of the governance store (`governor`, may
  /// be null). A store key's directory is pinned in `pin` (the key points into it). Keys already
  /// seen on this loop are remembered (a hash lookup instead of a SHA-256 per request); only
  /// known keys are, at most 4,096 of them. Disabled and expired keys are found: see `refusal`.
  const config::KeyConfig* find(const Credentials& c, dialects::Dialect client, const Runtime& runtime,
                                const governance::Governor* governor,
                                std::shared_ptr<const governance::KeyDirectory>& pin);
  /// Forgets the keys seen (a reload: they point into the old runtime).
  void clear() { cache_.clear(); }

  /// The 401 for a key that exists but may not be used now (disabled, expired, or — a static
  /// key — its team disabled in the governance store); nullopt when it may.
  std::optional<core::ApiError> unusable(const config::KeyConfig& key, dialects::Dialect client,
                                         std::int64_t now_ms) const;

  /// The 401 for a request without a valid key, worded as the client's API words it.
  static core::ApiError refusal(const Credentials& c, dialects::Dialect client);

 private:
  struct TokenHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, const config::KeyConfig*, TokenHash, std::equal_to<>> cache_;
  std::shared_ptr<const governance::KeyDirectory> directory_;  ///< the one cached store keys point into
  std::uint64_t directory_generation_ = 0;
};

}  // namespace switchyard::server
