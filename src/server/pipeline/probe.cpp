// Half-open probes of the gateway's own (health.synthetic_probes): when a deployment's cooldown
// is over, the request that finds it half-open does not test it — it goes on to the next plan
// entry, and a one-token request of the gateway's tests the deployment instead, so a deployment
// that still fails costs no client an error (docs/routing.md, "Health").
#include <spdlog/spdlog.h>

#include <charconv>

#include "core/error.hpp"
#include "health/rate_limits.hpp"
#include "server/gateway_internal.hpp"
#include "server/pipeline/outcome.hpp"

namespace switchyard::server {

namespace {

/// The smallest request that exercises what clients use: the chat endpoint, the model, the key.
std::string probe_body(dialects::Dialect dialect, std::string_view model) {
  std::string body;
  switch (dialect) {
    case dialects::Dialect::openai:
    case dialects::Dialect::responses:
      body = R"({"model":)";
      core::append_json_string(body, model);
      body += R"(,"messages":[{"role":"user","content":"Reply with OK."}],"max_tokens":1})";
      break;
    case dialects::Dialect::anthropic:
      body = R"({"model":)";
      core::append_json_string(body, model);
      body += R"(,"max_tokens":1,"messages":[{"role":"user","content":"Reply with OK."}]})";
      break;
    case dialects::Dialect::gemini:
      body = R"({"contents":[{"role":"user","parts":[{"text":"Reply with OK."}]}],"generationConfig":{"maxOutputTokens":1}})";
      break;
  }
  return body;
}

}  // namespace

net::Task<> Gateway::probe(std::string deployment) {
  // The loop's runtime keeps the deployment alive while the probe runs (a reload may come).
  const std::shared_ptr<const Runtime> rt = runtime_;
  const DeploymentRuntime* d = nullptr;
  for (const DeploymentRuntime& x : rt->deployments())
    if (x.config->name == deployment) d = &x;
  health::DeploymentHealth& health = shared_.health.get(deployment);
  if (!d || !d->provider) {
    health.release_probe(health::steady_now_ms());
    co_return;
  }
  const std::string body = probe_body(d->provider->dialect(), d->config->model);
  std::string head = d->chat_head;
  head += "X-Request-Id: switchyard-probe\r\nAccept: application/json\r\nContent-Length: ";
  char length[24];
  head.append(length, std::to_chars(length, length + sizeof length, body.size()).ptr);
  head += "\r\n\r\n";

  net::UpstreamExchange up(pool_, d->provider->origin);
  probes_.push_back(&up);
  struct Forget {
    std::vector<net::UpstreamExchange*>& probes;
    net::UpstreamExchange* up;
    ~Forget() { std::erase(probes, up); }
  } forget{probes_, &up};
  const std::uint32_t stall = rt->config().health.stall_ms;
  if (stall) up.limit(std::chrono::milliseconds(std::min(stall, rt->config().upstream.first_byte_timeout_ms)), {});
  const net::Clock::time_point started = net::Clock::now();
  net::UpstreamError err = co_await up.start(head, body);
  std::optional<health::Outcome> outcome;
  int status = 0;
  std::int64_t retry_after_ms = -1;
  if (err != net::UpstreamError::none) {
    outcome = verdict(err).health;
  } else {
    status = up.response().status;
    health::RateLimitHeaders limits;
    for (std::size_t i = 0; i < up.response().header_count; ++i) {
      const auto h = up.response().header(i);
      health::read_answer_field(h.name, h.value, limits, retry_after_ms);
    }
    std::string answer;
    up.bound_idle();
    err = co_await up.read_all(answer, 1024 * 1024);
    outcome = verdict(status).health;
    if (err != net::UpstreamError::none) outcome = verdict(err).health;
    else if (status >= 200 && status < 300 && !looks_like_json_object(answer)) outcome = health::Outcome::server_error;
  }
  const std::int64_t now = health::steady_now_ms();
  if (!outcome) {
    health.release_probe(now);  // cancelled, or the gateway's own shortage: nothing of the deployment
  } else if (*outcome == health::Outcome::misconfigured) {
    take_out_misconfigured(health, deployment, status, rt->config().health.misconfigured_cooldown_ms);
  } else {
    const double ms = std::chrono::duration<double, std::milli>(net::Clock::now() - started).count();
    health.record(*outcome, now, retry_after_ms, *outcome == health::Outcome::success ? ms : -1);
  }
  spdlog::info("probe of deployment \"{}\": {}", deployment,
               status ? "HTTP " + std::to_string(status) : std::string(net::to_string(err)));
}

}  // namespace switchyard::server
