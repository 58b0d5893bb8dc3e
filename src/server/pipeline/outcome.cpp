#include "server/pipeline/outcome.hpp"

#include <spdlog/spdlog.h>

#include <string>

namespace switchyard::server {

using core::ErrorKind;
using health::Outcome;

Verdict verdict(net::UpstreamError e) {
  using E = net::UpstreamError;
  switch (e) {
    case E::none: return {ErrorKind::internal, Origin::upstream, false, Outcome::success};
    case E::dns:
    case E::connect:
    case E::tls:
    case E::reset: return {ErrorKind::upstream_connect, Origin::upstream, true, Outcome::connect_error};
    case E::bad_response: return {ErrorKind::upstream_connect, Origin::upstream, true, Outcome::server_error};
    case E::connect_timeout:
    case E::first_byte_timeout:
    case E::idle_timeout:
    case E::total_timeout: return {ErrorKind::upstream_timeout, Origin::upstream, true, Outcome::timeout};
    case E::pool_exhausted:
    case E::local_resources: return {ErrorKind::unavailable, Origin::local, true, std::nullopt};
    case E::cancelled: return {ErrorKind::internal, Origin::local, false, std::nullopt};
  }
  return {ErrorKind::internal, Origin::local, false, std::nullopt};
}

Verdict verdict(int status) {
  if (status >= 300 && status < 400) return {ErrorKind::upstream_connect, Origin::upstream, true, Outcome::misconfigured};
  if (status == 429) return {ErrorKind::upstream_status, Origin::upstream, true, Outcome::rate_limited};
  if (status >= 500) return {ErrorKind::upstream_status, Origin::upstream, true, Outcome::server_error};
  // The deployment's credentials (401, 403) or model id (404) are refused: the deployment is
  // misconfigured, not the request (its model is the gateway's choice). Another may serve it.
  if (status == 401 || status == 403 || status == 404)
    return {ErrorKind::upstream_connect, Origin::upstream, true, Outcome::misconfigured};
  if (status >= 400) return {ErrorKind::upstream_status, Origin::upstream, false, Outcome::success};
  return {ErrorKind::internal, Origin::upstream, false, Outcome::success};
}

core::ApiError transport_error(net::UpstreamError e, std::string_view deployment) {
  const Verdict v = verdict(e);
  if (e == net::UpstreamError::local_resources)
    return core::ApiError::make(v.kind,
                                "The gateway could not open a connection to deployment \"" + std::string(deployment) +
                                    "\": it is out of file descriptors (or local ports) itself; the "
                                    "deployment was not reached. Try again later.",
                                {}, "local_resources_exhausted");
  std::string what = "Upstream deployment \"" + std::string(deployment) + "\" failed: " +
                     std::string(net::to_string(e)) + ".";
  std::string code(net::to_string(e));
  if (e == net::UpstreamError::pool_exhausted) code = "upstream_pool_exhausted";
  return core::ApiError::make(v.kind, std::move(what), {}, std::move(code));
}

void take_out_misconfigured(health::DeploymentHealth& health, std::string_view deployment, int status,
                            std::uint32_t cooldown_ms) {
  if (health.misconfigured(status, health::steady_now_ms()))
    spdlog::error("deployment \"{}\" is misconfigured: {}; it is out of rotation for {} s (a probe then checks "
                  "whether it was fixed)",
                  deployment, health::misconfiguration(status), cooldown_ms / 1000);
}

}  // namespace switchyard::server
