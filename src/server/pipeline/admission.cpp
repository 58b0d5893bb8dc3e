#include "server/pipeline/admission.hpp"

#include <algorithm>
#include <charconv>
#include <cstdlib>

#include "dialects/translate.hpp"
#include "governance/admin_api.hpp"
#include "governance/keys.hpp"
#include "governance/reservation.hpp"

namespace switchyard::server {

using core::ApiError;
using core::ErrorKind;

std::optional<ApiError> ChatInput::decode(std::size_t max_depth) {
  if (canonical) return std::nullopt;
  auto decoded = dialects::decode_client_request(client, body, max_depth);
  if (auto* e = std::get_if<ApiError>(&decoded)) return std::move(*e);
  canonical = std::make_unique<core::ChatRequest>(std::move(std::get<core::ChatRequest>(decoded)));
  return std::nullopt;
}

std::optional<ApiError> read_chat(dialects::Dialect client, std::string_view body, std::size_t max_depth,
                                  ChatInput& out) {
  out.client = client;
  out.body = body;
  if (client == dialects::Dialect::openai) {
    auto inspected = dialects::openai::inspect_chat_request(body, {max_depth});
    if (auto* e = std::get_if<ApiError>(&inspected)) return std::move(*e);
    out.info = std::move(std::get<dialects::openai::ChatRequestInfo>(inspected));
    out.model = std::move(out.info->model);  // the info's own copy is not read again
    out.stream = out.info->stream;
    out.client_wants_usage = out.info->client_wants_usage;
    return std::nullopt;
  }
  if (auto e = out.decode(max_depth)) return e;
  out.model = out.canonical->model;  // the route name; canonical->model is not sent on
  out.stream = out.canonical->stream;
  out.client_wants_usage = true;
  return std::nullopt;
}

const RouteRuntime* resolve_route(const Runtime& runtime, std::string_view model, const config::KeyConfig* key,
                                  ApiError& refused) {
  const RouteRuntime* route = runtime.find_route(model);
  if (!route) {
    // Say what the key may ask for instead (at most 20 routes' names).
    std::string known;
    std::size_t listed = 0, more = 0;
    for (const auto& r : runtime.routes()) {
      if (key && !governance::KeyStore::allows(*key, r.config->name)) continue;
      if (listed == 20) {
        ++more;
        continue;
      }
      known += (listed++ ? ", " : "") + r.config->name;
    }
    if (more) known += " and " + std::to_string(more) + " more";
    std::string message = "The model `" + std::string(model) + "` does not exist or you do not have access to it.";
    if (!known.empty()) message += " The models (routes) this key may use: " + known + ".";
    refused = ApiError::make(ErrorKind::not_found, std::move(message), "model", "model_not_found");
    return nullptr;
  }
  if (key && !governance::KeyStore::allows(*key, route->config->name)) {
    refused = ApiError::make(ErrorKind::permission, "This API key may not use the model `" + std::string(model) + "`.",
                             "model", "model_not_allowed");
    return nullptr;
  }
  if (key && !key->models.empty() &&
      std::none_of(route->candidates.begin(), route->candidates.end(),
                   [&](const DeploymentRuntime* d) { return key_may_reach(*key, *d); })) {
    refused = ApiError::make(ErrorKind::permission,
                             "This API key may not use any model behind `" + std::string(model) + "`.", "model",
                             "model_not_allowed");
    return nullptr;
  }
  if (route->candidates.empty()) {
    refused = ApiError::make(ErrorKind::unavailable,
                             "No deployment of `" + std::string(model) + "` is enabled (check the providers' api keys).",
                             {}, "no_deployment");
    return nullptr;
  }
  return route;
}

bool key_may_reach(const config::KeyConfig& key, const DeploymentRuntime& d) {
  for (const auto& m : key.models)
    if (m == d.config->model || m == d.config->name || (d.model && m == d.model->id)) return true;
  return false;
}

std::optional<ApiError> read_overrides(const OverrideHeaders& h, const config::KeyConfig* key,
                                       routing::Overrides& out) {
  if (!h.any()) return std::nullopt;
  if (key && key->overrides != config::kAllOverrides) {
    std::string which;
    if (!h.policy.empty() && !(key->overrides & config::kOverridePolicy)) which = "x-switchyard-policy";
    else if (!h.deadline_ms.empty() && !(key->overrides & config::kOverrideDeadline)) which = "x-switchyard-deadline-ms";
    else if (!h.max_cost_usd.empty() && !(key->overrides & config::kOverrideMaxCost)) which = "x-switchyard-max-cost-usd";
    if (!which.empty())
      return ApiError::make(ErrorKind::permission, "This API key may not override routing (" + which + ").", which,
                            "override_not_allowed");
  }
  if (!h.policy.empty() && !(out.objective = routing::parse_objective(h.policy)))
    return ApiError::make(ErrorKind::invalid_request,
                          "Invalid x-switchyard-policy \"" + std::string(h.policy) +
                              "\": use cost, latency, quality, balanced or ordered.",
                          "x-switchyard-policy", "invalid_header");
  if (!h.deadline_ms.empty()) {
    std::uint32_t ms = 0;
    auto [p, ec] = std::from_chars(h.deadline_ms.data(), h.deadline_ms.data() + h.deadline_ms.size(), ms);
    if (ec != std::errc{} || p != h.deadline_ms.data() + h.deadline_ms.size() || ms == 0 || ms > 86'400'000)
      return ApiError::make(ErrorKind::invalid_request,
                            "Invalid x-switchyard-deadline-ms \"" + std::string(h.deadline_ms) +
                                "\": an integer number of milliseconds from 1 to 86400000.",
                            "x-switchyard-deadline-ms", "invalid_header");
    out.deadline_ms = ms;
  }
  if (!h.max_cost_usd.empty()) {
    std::string text(h.max_cost_usd);
    char* end = nullptr;
    double usd = std::strtod(text.c_str(), &end);
    if (*end || !(usd >= 0) || usd > 1e6)
      return ApiError::make(ErrorKind::invalid_request,
                            "Invalid x-switchyard-max-cost-usd \"" + text + "\": a number of US dollars, 0 or more.",
                            "x-switchyard-max-cost-usd", "invalid_header");
    out.max_cost_usd = usd;
  }
  return std::nullopt;
}

governance::Subjects subjects_of(const config::KeyConfig& key, std::string_view user, std::string_view route) {
  governance::Subjects s;
  s[governance::Scope::key] = key.subject();
  s[governance::Scope::team] = key.team;
  s[governance::Scope::user] = user;
  s[governance::Scope::route] = route;
  return s;
}

namespace {

/// OpenAI's way of writing a wait in its `x-ratelimit-reset-*` headers: "1s", "6m0s", "250ms".
std::string duration_text(std::int64_t ms) {
  if (ms < 1000) return std::to_string(ms) + "ms";
  std::int64_t s = (ms + 999) / 1000;
  if (s < 60) return std::to_string(s) + "s";
  if (s < 3600) return std::to_string(s / 60) + "m" + std::to_string(s % 60) + "s";
  return std::to_string(s / 3600) + "h" + std::to_string(s / 60 % 60) + "m" + std::to_string(s % 60) + "s";
}

std::string subject_text(governance::Scope scope, const std::string& subject) {
  return std::string(governance::to_string(scope)) + " '" + subject + "'";
}

}  // namespace

std::optional<ApiError> check_limits(governance::Governor& g, const governance::Subjects& subjects,
                                     std::int64_t tokens, std::int64_t now_ms, dialects::Dialect client,
                                     governance::Admission& held, RefusalHeaders& headers, std::string& retry_after) {
  auto refused = g.take_limits(subjects, tokens, now_ms, held);
  if (!refused) return std::nullopt;
  return limit_refused(*refused, client, headers, retry_after);
}

ApiError limit_refused(const governance::LimitRefusal& r, dialects::Dialect client, RefusalHeaders& headers,
                       std::string& retry_after) {
  const std::string what(governance::to_string(r.kind));
  retry_after = std::to_string((r.retry_after_ms + 999) / 1000);
  headers.emplace_back("retry-after-ms", std::to_string(r.retry_after_ms));
  if (client == dialects::Dialect::anthropic) {
    // Anthropic's names; its reset is an RFC 3339 time.
    std::string kind = r.kind == governance::LimitKind::tokens ? "tokens" : "requests";
    headers.emplace_back("anthropic-ratelimit-" + kind + "-limit", std::to_string(r.allowed));
    headers.emplace_back("anthropic-ratelimit-" + kind + "-remaining", std::to_string(r.remaining));
    headers.emplace_back("anthropic-ratelimit-" + kind + "-reset",
                         governance::rfc3339(governance::unix_now_ms() + r.reset_ms));
  } else if (r.kind != governance::LimitKind::concurrent) {
    headers.emplace_back("x-ratelimit-limit-" + what, std::to_string(r.allowed));
    headers.emplace_back("x-ratelimit-remaining-" + what, std::to_string(r.remaining));
    headers.emplace_back("x-ratelimit-reset-" + what, duration_text(r.reset_ms));
  }
  std::string message;
  if (r.kind == governance::LimitKind::concurrent)
    message = "Rate limit reached for " + subject_text(r.limit.scope, r.limit.subject) + ": " +
              std::to_string(r.allowed) + " requests in flight at most. Try again when one has finished.";
  else
    message = "Rate limit reached for " + subject_text(r.limit.scope, r.limit.subject) + " on " + what +
              " per minute: limit " + std::to_string(r.allowed) + ", remaining " + std::to_string(r.remaining) +
              ". Please try again in " + duration_text(r.retry_after_ms) + ".";
  return ApiError::make(ErrorKind::rate_limited, std::move(message), {}, "rate_limit_exceeded");
}

std::optional<core::Money> plan_ceiling(const RouteRuntime& route, const routing::Plan& plan,
                                        const routing::RequestTraits& traits, std::int64_t unix_s) {
  // The router's estimate with a margin: 20 % and 16 tokens (its error on ordinary text is
  // well inside that; a prompt it undercounts further is an overrun, counted at settlement).
  const std::int64_t input = traits.input_tokens + traits.input_tokens / 5 + 16;
  std::optional<core::Money> ceiling;
  for (auto i : plan.order) {
    const DeploymentRuntime* d = route.candidates[i];
    if (!d->priced()) continue;
    std::int64_t max_output = traits.max_output_tokens;
    if (max_output <= 0) max_output = d->model && d->model->max_output > 0 ? d->model->max_output : 32768;
    auto c = governance::max_cost(*d->pricing, input, max_output, unix_s);
    if (c && (!ceiling || *c > *ceiling)) ceiling = c;
  }
  return ceiling;
}

std::optional<ApiError> reserve_budgets(governance::Governor& g, const governance::Subjects& subjects,
                                        core::Money amount, std::int64_t now_ms, governance::Admission& held,
                                        RefusalHeaders& headers) {
  auto refused = g.reserve(subjects, amount, now_ms, held);
  if (!refused) return std::nullopt;
  return budget_refused(*refused, headers);
}

ApiError budget_refused(const governance::BudgetRefusal& r, RefusalHeaders& headers) {
  headers.emplace_back("x-should-retry", "false");
  std::string message = "Budget exceeded for " + subject_text(r.budget.scope, r.budget.subject) + " (budget " +
                        r.budget.id + ", " + std::string(governance::to_string(r.budget.period)) + "): limit $" +
                        r.budget.limit.to_string() + ", spent $" + r.spent.to_string() + ", reserved by requests in flight $" +
                        r.reserved.to_string() + "; this request may cost up to $" + r.asked.to_string() + ".";
  if (r.resets_ms > 0) message += " It resets at " + governance::rfc3339(r.resets_ms) + ".";
  else message += " It does not reset (a total budget).";
  return ApiError::make(ErrorKind::rate_limited, std::move(message), {}, "budget_exceeded");
}

}  // namespace switchyard::server
