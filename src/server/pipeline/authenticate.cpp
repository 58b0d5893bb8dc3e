#include "server/pipeline/authenticate.hpp"

#include "governance/admin_api.hpp"
#include "governance/keys.hpp"
#include "net/http1.hpp"

namespace switchyard::server {

using core::ApiError;
using core::ErrorKind;

const config::KeyConfig* Authenticator::find(const Credentials& c, dialects::Dialect client, const Runtime& runtime,
                                             const governance::Governor* governor,
                                             std::shared_ptr<const governance::KeyDirectory>& pin) {
  std::string_view token;
  if (!c.authorization.empty()) {
    if (c.authorization.size() > 7 && net::http1::iequals(c.authorization.substr(0, 7), "bearer "))
      token = c.authorization.substr(7);
    while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  } else if (client == dialects::Dialect::anthropic) {
    token = c.x_api_key;
  }
  if (token.empty() || token.size() > 512) return nullptr;
  if (governor) {
    // A change through the admin API made a new directory: what was cached may point into the
    // old one (and a disabled or rotated key must not stay usable from the cache).
    if (std::uint64_t g = governor->generation(); g != directory_generation_) {
      cache_.clear();
      directory_ = governor->directory();
      directory_generation_ = g;
    }
  }
  if (auto it = cache_.find(token); it != cache_.end()) {
    if (directory_ && !it->second->id.empty()) pin = directory_;
    return it->second;
  }
  const std::string hash = governance::sha256_hex(token);
  const config::KeyConfig* key = runtime.keys().find_hash(hash);
  if (!key && directory_) {
    key = directory_->find_hash(hash);
    if (key) pin = directory_;
  }
  if (key) {
    if (cache_.size() >= 4096) cache_.clear();  // bounded; only known keys get in
    cache_.emplace(token, key);
  }
  return key;
}

std::optional<ApiError> Authenticator::unusable(const config::KeyConfig& key, dialects::Dialect client,
                                                std::int64_t now_ms) const {
  std::string why;
  if (key.disabled) why = "This API key has been disabled.";
  else if (directory_ && directory_->team_disabled(key.team)) why = "This API key's team has been disabled.";
  else if (key.expires_ms > 0 && now_ms >= key.expires_ms) why = "This API key expired at " + governance::rfc3339(key.expires_ms) + ".";
  else return std::nullopt;
  (void)client;
  return ApiError::make(ErrorKind::authentication, std::move(why), {}, "invalid_api_key");
}

ApiError Authenticator::refusal(const Credentials& c, dialects::Dialect client) {
  if (client == dialects::Dialect::anthropic) {
    if (c.x_api_key.empty() && c.authorization.empty())
      return ApiError::make(ErrorKind::authentication, "x-api-key header is required", {}, "missing_api_key");
    return ApiError::make(ErrorKind::authentication, "invalid x-api-key", {}, "invalid_api_key");
  }
  if (c.authorization.empty())
    return ApiError::make(ErrorKind::authentication,
                          "You didn't provide an API key. You need to provide your API key in an Authorization "
                          "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                          {}, "missing_api_key");
  return ApiError::make(ErrorKind::authentication, "Incorrect API key provided.", {}, "invalid_api_key");
}

}  // namespace switchyard::server
