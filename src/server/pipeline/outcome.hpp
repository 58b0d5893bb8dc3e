#pragma once

#include <optional>
#include <string_view>

#include "core/error.hpp"
#include "health/circuit.hpp"
#include "health/registry.hpp"
#include "net/upstream.hpp"

/// One table decides what an attempt's failure means: from what went wrong and where (the
/// gateway itself, or the deployment), the client's status and error type when it becomes the
/// answer, whether another deployment may be tried, and what the deployment's health records.
namespace switchyard::server {

/// Where a failure comes from.
enum class Origin : std::uint8_t {
  local,     ///< the gateway (the client left, its own connection or descriptor limits)
  upstream,  ///< the deployment
};

struct Verdict {
  core::ErrorKind kind = core::ErrorKind::internal;  ///< the client's status and error type
  Origin origin = Origin::upstream;
  bool fail_over = false;  ///< another deployment may serve the request
  /// What the deployment's health records; nullopt: nothing (a local failure says nothing of it).
  std::optional<health::Outcome> health;
};

/// A failure to get a response head (or body) from the deployment.
Verdict verdict(net::UpstreamError e);
/// The deployment's HTTP status: 2xx and the client's own 4xx are answers (health: success);
/// 429 and 5xx fail over and count against it; a redirect is a misconfigured base_url.
Verdict verdict(int status);

/// The error a client gets for a transport failure, naming the deployment (never its key).
core::ApiError transport_error(net::UpstreamError e, std::string_view deployment);

/// The provider refused `deployment`'s configuration (HTTP `status`): out of rotation for the
/// long cooldown (health::Outcome::misconfigured), logged as an error the first time.
void take_out_misconfigured(health::DeploymentHealth& health, std::string_view deployment, int status,
                            std::uint32_t cooldown_ms);

}  // namespace switchyard::server
