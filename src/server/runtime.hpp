#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "catalog/catalog.hpp"
#include "config/config.hpp"
#include "dialects/providers.hpp"
#include "governance/keys.hpp"
#include "governance/limits.hpp"
#include "health/registry.hpp"
#include "net/upstream.hpp"
#include "routing/planner.hpp"

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
  std::string responses_head;   ///< the Responses API, passed through (OpenAI's own API only)
  std::string model_json;       ///< the upstream model name as a JSON string literal (quoted)
  const catalog::ModelInfo* model = nullptr;  ///< its catalogue entry, when known
  /// The deployment's prices, else its catalogue entry's; null or empty: unpriced.
  const catalog::Pricing* pricing = nullptr;
  bool priced() const { return pricing && pricing->priced(); }
  health::DeploymentHealth* health = nullptr;  ///< null without a registry (check, explain)
  /// The provider's quota on it, counted on this node; null when none is configured.
  governance::DeploymentQuota* quota = nullptr;
};

struct RouteRuntime {
  const config::RouteConfig* config = nullptr;
  std::vector<const DeploymentRuntime*> candidates;  ///< enabled deployments, in order written
  routing::RouteTable table;                         ///< the same candidates, for the router
  bool has_quotas = false;  ///< a candidate has a quota (the plan then puts exhausted ones last)
  /// What savings are measured against: the route's `reference`, else its dearest priced
  /// candidate (enabled or not); null when none is priced.
  const DeploymentRuntime* reference = nullptr;
};

/// An immutable snapshot of everything the request path needs, built from a validated config
/// and shared by every event loop.
class Runtime {
 public:
  /// `health` and `quotas` (may be null: no live state) must outlive the runtime.
  Runtime(config::Config config, health::Registry* health, governance::QuotaRegistry* quotas = nullptr);
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  const config::Config& config() const { return config_; }
  const governance::KeyStore& keys() const { return keys_; }
  const RouteRuntime* find_route(std::string_view name) const;
  const std::vector<RouteRuntime>& routes() const { return routes_; }
  const std::vector<DeploymentRuntime>& deployments() const { return deployments_; }
  const catalog::Catalog& catalog() const { return catalog_; }
  health::Registry* health() const { return health_; }

 private:
  config::Config config_;
  health::Registry* health_;
  catalog::Catalog catalog_;
  governance::KeyStore keys_;
  std::vector<ProviderRuntime> providers_;
  std::vector<DeploymentRuntime> deployments_;
  std::vector<RouteRuntime> routes_;
  std::unordered_map<std::string_view, const RouteRuntime*> route_index_;
};

net::UpstreamOptions upstream_options(const config::UpstreamConfig& c);
health::BreakerOptions breaker_options(const config::HealthConfig& c);

/// The runtime in force, swapped whole on a reload. Requests hold the snapshot they started
/// with; loops notice a new one by its generation without locking.
class RuntimeSource {
 public:
  explicit RuntimeSource(std::shared_ptr<const Runtime> initial) : current_(std::move(initial)) {}
  std::shared_ptr<const Runtime> get() const {
    std::lock_guard lock(mutex_);
    return current_;
  }
  std::uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
  void set(std::shared_ptr<const Runtime> next) {
    {
      std::lock_guard lock(mutex_);
      current_ = std::move(next);
    }
    generation_.fetch_add(1, std::memory_order_release);
  }

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const Runtime> current_;
  std::atomic<std::uint64_t> generation_{0};
};

}  // namespace switchyard::server
