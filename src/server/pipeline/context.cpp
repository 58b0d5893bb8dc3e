#include "server/pipeline/context.hpp"

namespace switchyard::server {

void RequestContext::Reply::keep_passed_headers() {
  passed_copies.clear();
  passed_copies.reserve(passed_count * 2);
  for (std::size_t i = 0; i < passed_count; ++i) {
    passed_copies.emplace_back(passed[i].name);
    passed_copies.emplace_back(passed[i].value);
  }
  for (std::size_t i = 0; i < passed_count; ++i) passed[i] = {passed_copies[2 * i], passed_copies[2 * i + 1]};
}

std::span<const net::HeaderField> RequestContext::headers(ReplyHeaders& scratch) {
  auto& h = scratch.fields;
  std::size_t n = 0;
  for (std::size_t i = 0; i < reply.passed_count; ++i) h[n++] = reply.passed[i];
  h[n++] = {"x-request-id", identity.request_id};
  // Anthropic's SDKs read the id from their API's own header (`err.requestID`, `_request_id`).
  if (identity.client == dialects::Dialect::anthropic) h[n++] = {"request-id", identity.request_id};
  if (!route.name.empty()) h[n++] = {"x-switchyard-route", route.name};
  if (!attempts.deployment.empty()) h[n++] = {"x-switchyard-deployment", attempts.deployment};
  if (attempts.count > 0) {
    reply.attempts_text = std::to_string(attempts.count);
    h[n++] = {"x-switchyard-attempts", reply.attempts_text};
  }
  if (!attempts.dropped.empty()) h[n++] = {"x-switchyard-dropped-params", attempts.dropped};
  if (!attempts.clamped_max_tokens.empty()) h[n++] = {"x-switchyard-max-tokens-clamped", attempts.clamped_max_tokens};
  if (const DeploymentRuntime* d = attempts.answered_by; d && !attempts.deployment.empty())
    h[n++] = {"x-switchyard-model", d->model ? std::string_view(d->model->id) : attempts.upstream_model};
  if (!plan.policy.empty()) h[n++] = {"x-switchyard-policy", plan.policy};
  if (!plan.estimated_cost_text.empty()) h[n++] = {"x-switchyard-estimated-cost-usd", plan.estimated_cost_text};
  if (!accounting.cost_text.empty()) h[n++] = {"x-switchyard-cost-usd", accounting.cost_text};
  if (!reply.retry_after_text.empty()) h[n++] = {"retry-after", reply.retry_after_text};
  if (!route.complexity_text.empty()) {
    h[n++] = {"x-switchyard-complexity", route.complexity_text};
    h[n++] = {"x-switchyard-tier", route.tier_text};
  }
  if (!route.category.empty()) h[n++] = {"x-switchyard-category", route.category};
  for (std::size_t i = 0; i < governed.headers.size() && n < h.size(); ++i)
    h[n++] = {governed.headers[i].first, governed.headers[i].second};
  return {h.data(), n};
}

}  // namespace switchyard::server
