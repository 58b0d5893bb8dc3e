#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/config.hpp"
#include "dialects/providers.hpp"
#include "governance/keys.hpp"
#include "net/upstream.hpp"

namespace switchyard::server {

/// A provider ready for the hot path: its origin, dialect and the header lines with its
/// credentials, built once.
struct ProviderRuntime {
  const config::ProviderConfig* config = nullptr;
  const dialects::ProviderType* type = nullptr;
  net::Origin origin;
  std::string header_lines;  ///< "Host: ...\r\n<auth>\r\nContent-Type: ...\r\n..."
  /// Bits of `openai::ChatRequestInfo::params` this vendor refuses or renames.
  std::uint32_t rejected_params = 0;
  dialects::Dialect dialect() const { return type->dialect; }
};

/// A deployment with its request heads prebuilt: request line + provider headers, up to (not
/// including) the per-request headers.
struct DeploymentRuntime {
  const config::DeploymentConfig* config = nullptr;
  const ProviderRuntime* provider = nullptr;
  std::string chat_head;        ///< chat, JSON answer
  std::string stream_head;      ///< chat, streamed answer (differs for Gemini)
  std::string embeddings_head;  ///< embeddings
};

struct RouteRuntime {
  const config::RouteConfig* config = nullptr;
  std::vector<const DeploymentRuntime*> candidates;  ///< enabled deployments, in order
};

/// An immutable snapshot of everything the request path needs, built from a validated config
/// and shared by every event loop.
class Runtime {
 public:
  explicit Runtime(config::Config config);
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  const config::Config& config() const { return config_; }
  const governance::KeyStore& keys() const { return keys_; }
  const RouteRuntime* find_route(std::string_view name) const;
  const std::vector<RouteRuntime>& routes() const { return routes_; }

 private:
  config::Config config_;
  governance::KeyStore keys_;
  std::vector<ProviderRuntime> providers_;
  std::vector<DeploymentRuntime> deployments_;
  std::vector<RouteRuntime> routes_;
  std::unordered_map<std::string_view, const RouteRuntime*> route_index_;
};

net::UpstreamOptions upstream_options(const config::UpstreamConfig& c);

}  // namespace switchyard::server
