#include "server/pipeline/authenticate.hpp"

#include "net/http1.hpp"

namespace switchyard::server {

using core::ApiError;
using core::ErrorKind;

const config::KeyConfig* Authenticator::find(const Credentials& c, dialects::Dialect client, const Runtime& runtime) {
  std::string_view token;
  if (!c.authorization.empty()) {
    if (c.authorization.size() > 7 && net::http1::iequals(c.authorization.substr(0, 7), "bearer "))
      token = c.authorization.substr(7);
    while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  } else if (client == dialects::Dialect::anthropic) {
    token = c.x_api_key;
  }
  if (token.empty()) return nullptr;
  if (auto it = cache_.find(token); it != cache_.end()) return it->second;
  const config::KeyConfig* key = runtime.keys().find(token);
  if (key) {
    if (cache_.size() >= 4096) cache_.clear();  // bounded; only valid keys get in
    cache_.emplace(token, key);
  }
  return key;
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
