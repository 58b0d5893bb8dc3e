#include "server/admin/health.hpp"

#include <algorithm>
#include <cmath>
#include <unordered_set>

#include "core/error.hpp"
#include "governance/keys.hpp"
#include "routing/decision.hpp"

namespace switchyard::server::admin {

std::string health_json(const Runtime& runtime, std::int64_t now, const config::KeyConfig* key) {
  std::string body = R"({"object":"switchyard.health","deployments":[)";
  bool first = true;
  // A key that is not an admin sees the deployments of its own routes only.
  std::unordered_set<const DeploymentRuntime*> visible;
  const bool filtered = key && !key->admin;
  if (filtered)
    for (const auto& r : runtime.routes())
      if (governance::KeyStore::allows(*key, r.config->name)) visible.insert(r.candidates.begin(), r.candidates.end());
  for (const auto& d : runtime.deployments()) {
    if (filtered && !visible.count(&d)) continue;
    if (!first) body += ',';
    first = false;
    body += R"({"deployment":)";
    core::append_json_string(body, d.config->name);
    body += R"(,"provider":)";
    core::append_json_string(body, d.config->provider);
    body += R"(,"model":)";
    core::append_json_string(body, d.model ? std::string_view(d.model->id) : std::string_view(d.config->model));
    body += R"(,"enabled":)";
    body += d.config->enabled && d.provider && d.provider->config->enabled ? "true" : "false";
    if (d.health) {
      health::Snapshot s = d.health->read(now);
      health::DeploymentHealth::Details x = d.health->details(now);
      body += R"(,"state":")";
      body += health::to_string(s.state);
      body += '"';
      if (s.recovers_at_ms) {
        body += R"(,"recovers_in_ms":)";
        body += std::to_string(std::max<std::int64_t>(0, s.recovers_at_ms - now));
      }
      body += R"(,"in_flight":)" + std::to_string(s.in_flight);
      body += R"(,"error_rate":)";
      routing::append_decimal(body, x.error_rate);
      body += R"(,"window_requests":)" + std::to_string(x.window_count);
      body += R"(,"consecutive_failure_points":)" + std::to_string(x.consecutive_failure_points);
      body += R"(,"times_opened":)" + std::to_string(x.times_opened);
      body += R"(,"successes":)" + std::to_string(x.successes);
      body += R"(,"failures":)" + std::to_string(x.failures);
      if (x.failures) {
        body += R"(,"last_failure":")";
        body += health::to_string(x.last_failure);
        body += '"';
      }
      if (x.misconfigured_status) {
        // Loud on purpose: no retry fixes it, an operator must (docs/routing.md, "Who is blamed").
        body += R"(,"misconfigured":)";
        core::append_json_string(body, health::misconfiguration(x.misconfigured_status));
      }
      if (s.ttft_ms >= 0) {
        body += R"(,"ttft_ms_ewma":)";
        routing::append_decimal(body, std::round(s.ttft_ms * 10) / 10);
      }
      if (s.p95_ttft_ms >= 0) {
        body += R"(,"ttft_ms_p95":)";
        routing::append_decimal(body, std::round(s.p95_ttft_ms * 10) / 10);
      }
      if (s.tokens_per_s > 0) {
        body += R"(,"tokens_per_s_ewma":)";
        routing::append_decimal(body, std::round(s.tokens_per_s * 10) / 10);
      }
      if (s.rl_remaining_requests >= 0) body += R"(,"ratelimit_remaining_requests":)" + std::to_string(s.rl_remaining_requests);
      if (s.rl_remaining_tokens >= 0) body += R"(,"ratelimit_remaining_tokens":)" + std::to_string(s.rl_remaining_tokens);
    }
    body += '}';
  }
  body += "]}";
  return body;
}

}  // namespace switchyard::server::admin
