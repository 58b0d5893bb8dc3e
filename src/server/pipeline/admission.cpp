#include "server/pipeline/admission.hpp"

#include <charconv>
#include <cstdlib>

#include "dialects/translate.hpp"
#include "governance/keys.hpp"

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
    refused = ApiError::make(ErrorKind::not_found,
                             "The model `" + std::string(model) + "` does not exist or you do not have access to it.",
                             "model", "model_not_found");
    return nullptr;
  }
  if (key && !governance::KeyStore::allows(*key, route->config->name)) {
    refused = ApiError::make(ErrorKind::permission, "This API key may not use the model `" + std::string(model) + "`.",
                             "model", "model_not_allowed");
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

std::optional<ApiError> read_overrides(const OverrideHeaders& h, const config::KeyConfig* key,
                                       routing::Overrides& out) {
  if (!h.any()) return std::nullopt;
  if (key && !key->overrides) {
    std::string which = !h.policy.empty()        ? "x-switchyard-policy"
                        : !h.deadline_ms.empty() ? "x-switchyard-deadline-ms"
                                                 : "x-switchyard-max-cost-usd";
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

std::optional<ApiError> check_limits(const config::KeyConfig*, const RouteRuntime&) { return std::nullopt; }

bool reserve(const config::KeyConfig*, const RouteRuntime&, const routing::Plan&, Reservation&) { return true; }

}  // namespace switchyard::server
