// The endpoints' handlers: chat in both dialects and embeddings up to the plan (admission,
// traits, the decision record begun), token counting, the model list, and the gateway's own
// endpoints (liveness, readiness, and the admin reports of server/admin).
#include <cmath>

#include "core/token_estimate.hpp"
#include "dialects/json_util.hpp"
#include "governance/keys.hpp"
#include "server/admin/health.hpp"
#include "server/gateway_internal.hpp"
#include "server/pipeline/plan.hpp"

namespace switchyard::server {

using core::ApiError;
using core::ErrorKind;

net::Task<> Gateway::healthz(net::Request&, net::ResponseWriter& writer, Exchange& ex) {
  ex.reply.status = 200;
  co_await writer.send(200, "application/json", R"({"status":"ok"})", headers(ex));
}

net::Task<> Gateway::readyz(net::Request&, net::ResponseWriter& writer, Exchange& ex) {
  bool ready = !loop_.draining();
  ex.reply.status = ready ? 200 : 503;
  std::string_view body = R"({"status":"ready"})";
  if (!ready) body = R"({"status":"draining"})";
  co_await writer.send(ex.reply.status, "application/json", body, headers(ex));
}

net::Task<> Gateway::models(net::Request&, net::ResponseWriter& writer,
                            Exchange& ex) {
  // Anthropic's SDK lists models at the same path, with its version header: answered in its shape.
  const bool anthropic = ex.identity.client == dialects::Dialect::anthropic;
  const config::KeyConfig* key = ex.identity.key;
  std::string body = anthropic ? R"({"data":[)" : R"({"object":"list","data":[)";
  std::string_view first_id, last_id;
  for (const auto& route : ex.rt->routes()) {
    if (!governance::KeyStore::allows(*key, route.config->name) || route.candidates.empty()) continue;
    if (!first_id.empty()) body += ',';
    if (first_id.empty()) first_id = route.config->name;
    last_id = route.config->name;
    if (anthropic) {
      body += R"({"type":"model","id":)";
      core::append_json_string(body, route.config->name);
      body += R"(,"display_name":)";
      core::append_json_string(body, route.config->name);
      body += R"(,"created_at":"1970-01-01T00:00:00Z"})";
    } else {
      body += R"({"id":)";
      core::append_json_string(body, route.config->name);
      body += R"(,"object":"model","created":0,"owned_by":"switchyard"})";
    }
  }
  body += "]";
  if (anthropic) {
    body += R"(,"has_more":false,"first_id":)";
    if (first_id.empty()) body += "null";
    else core::append_json_string(body, first_id);
    body += R"(,"last_id":)";
    if (last_id.empty()) body += "null";
    else core::append_json_string(body, last_id);
  }
  body += "}";
  ex.reply.status = 200;
  co_await writer.send(200, "application/json", body, headers(ex));
}

const RouteRuntime* Gateway::admit(std::string_view model, const net::Request& request, Exchange& ex,
                                   ApiError& refused) {
  const RouteRuntime* route = resolve_route(*ex.rt, model, ex.identity.key, refused);
  if (route) ex.route.name = route->config->name;
  else if (const RouteRuntime* named = ex.rt->find_route(model)) ex.route.name = named->config->name;
  if (!route) return nullptr;
  if (auto e = read_overrides(override_headers(request), ex.identity.key, ex.route.overrides)) {
    refused = std::move(*e);
    return nullptr;
  }
  // A key's default objective, when the request names none.
  if (!ex.route.overrides.objective && ex.identity.key && !ex.identity.key->policy.empty())
    ex.route.overrides.objective = routing::parse_objective(ex.identity.key->policy);
  return route;
}

net::Task<> Gateway::health_report(net::Request&, net::ResponseWriter& writer, Exchange& ex) {
  std::string body = admin::health_json(*ex.rt, health::steady_now_ms(), ex.identity.key);
  if (shared_.counters && ex.identity.key && ex.identity.key->admin) {
    // The shared counters' state: Redis reachable or not, and what the failure modes did.
    const shared::SharedCounters::Stats s = shared_.counters->stats();
    body.pop_back();  // the closing brace
    body += R"(,"shared_counters":{"redis":)";
    body += s.redis_up ? R"("up")" : R"("unreachable")";
    body += R"(,"nodes":)" + std::to_string(s.nodes);
    body += R"(,"unavailable_events":)" + std::to_string(s.unavailable_events);
    body += R"(,"unavailable_calls":)" + std::to_string(s.unavailable_calls);
    body += R"(,"fail_open_admissions":)" + std::to_string(s.fail_open_admissions);
    body += R"(,"fail_open_refusals":)" + std::to_string(s.fail_open_refusals);
    body += R"(,"fail_closed_refusals":)" + std::to_string(s.fail_closed_refusals);
    body += R"(,"missed_settlements":)" + std::to_string(s.missed_settlements);
    body += R"(,"reconciliations":)" + std::to_string(s.reconciliations);
    body += "}}";
  }
  ex.reply.status = 200;
  co_await writer.send(200, "application/json", body, headers(ex));
}

net::Task<> Gateway::decision_report(net::Request& request, net::ResponseWriter& writer, Exchange& ex) {
  co_await send_report(writer, ex,
                       admin::decision_report(shared_.decisions, request.target(), *ex.identity.key,
                                              health::steady_now_ms()));
}

net::Task<> Gateway::feedback(net::Request& request, net::ResponseWriter& writer, Exchange& ex) {
  admin::FeedbackLog log{shared_.feedback_log, shared_.feedback, shared_.feedback_mutex};
  co_await send_report(writer, ex, admin::record_feedback(request.body, *ex.identity.key, log));
}

net::Task<> Gateway::send_report(net::ResponseWriter& writer, Exchange& ex, admin::Report report) {
  if (auto* e = std::get_if<ApiError>(&report)) {
    co_await fail(writer, ex, *e);
    co_return;
  }
  ex.reply.status = 200;
  co_await writer.send(200, "application/json", std::get<std::string>(report), headers(ex));
}

net::Task<> Gateway::chat(net::Request& request, net::ResponseWriter& writer,
                          Exchange& ex) {
  Chat chat{request};
  chat.client = ex.identity.client;
  ApiError refused;
  const RouteRuntime* route = admit_chat(request, ex, chat, refused);
  if (!route) {
    co_await fail(writer, ex, refused);
    co_return;
  }
  co_await run_candidates(*route, chat, writer, ex);
}

const RouteRuntime* Gateway::admit_chat(const net::Request& request, Exchange& ex, Chat& chat, ApiError& refused) {
  const std::size_t max_depth = ex.rt->config().server.max_json_depth;
  if (auto e = read_chat(ex.identity.client, request.body, max_depth, chat)) {
    refused = std::move(*e);
    return nullptr;
  }
  ex.reply.stream = chat.stream;
  const RouteRuntime* route = admit(chat.model, request, ex, refused);
  if (!route) return nullptr;
  routing::RequestTraits traits;
  Assessment assessment;
  if (auto e = assess_chat(*route, chat, max_depth, !shared_.feedback_log.empty(), traits, assessment)) {
    refused = std::move(*e);
    return nullptr;
  }
  std::string_view body_user;  // the end user the body names
  if (chat.info) body_user = chat.info->user;
  else if (chat.canonical) body_user = chat.canonical->user;
  if (auto e = govern(request, ex, traits, body_user)) {
    refused = std::move(*e);
    return nullptr;
  }
  ex.route.category = assessment.category;
  ex.route.pending = std::move(assessment.pending);
  if (traits.tier >= 0) {
    ex.route.complexity_text.clear();
    routing::append_decimal(ex.route.complexity_text, std::round(traits.complexity * 1000) / 1000);
    ex.route.tier_text = std::to_string(traits.tier);
  }
  start_decision(ex, *route, traits);
  return route;
}

net::Task<> Gateway::embeddings(net::Request& request, net::ResponseWriter& writer,
                                Exchange& ex) {
  Chat chat{request};
  chat.endpoint = Endpoint::embeddings;
  {
    auto parsed = dialects::parse_json(request.body, ex.rt->config().server.max_json_depth + 1);
    std::optional<ApiError> error;
    if (!parsed || !parsed->is_object()) {
      error = ApiError::make(ErrorKind::invalid_request,
                             "We could not parse the JSON body of your request.", {}, "invalid_json");
    } else {
      const auto& o = parsed->get_object();
      chat.model = std::string(dialects::str_or(o, "model"));
      chat.embeddings_base64 = dialects::str_or(o, "encoding_format") == "base64";
      const auto* input = o.if_contains("input");
      if (chat.model.empty())
        error = ApiError::make(ErrorKind::invalid_request, "Missing required parameter: 'model'.",
                               "model", "missing_required_parameter");
      else if (!input || !(input->is_string() || input->is_array()))
        error = ApiError::make(ErrorKind::invalid_request,
                               "'input' must be a string or an array.", "input", "invalid_type");
    }
    if (error) {
      co_await fail(writer, ex, *error);
      co_return;
    }
  }
  ApiError refused;
  const RouteRuntime* route = admit(chat.model, request, ex, refused);
  if (!route) {
    co_await fail(writer, ex, refused);
    co_return;
  }
  routing::RequestTraits traits;
  traits.needs = catalog::kEmbeddings;
  traits.input_tokens = static_cast<std::int64_t>(core::quick_text_tokens(request.body));
  traits.max_output_tokens = 0;
  if (auto e = govern(request, ex, traits, {})) {
    co_await fail(writer, ex, *e);
    co_return;
  }
  start_decision(ex, *route, traits);
  co_await run_candidates(*route, chat, writer, ex);
}

net::Task<> Gateway::count_tokens(net::Request& request, net::ResponseWriter& writer,
                                  Exchange& ex) {
  const config::KeyConfig* key = ex.identity.key;
  auto decoded = dialects::anthropic::decode_request(
      request.body, ex.rt->config().server.max_json_depth, /*require_max_tokens=*/false);
  if (auto* e = std::get_if<ApiError>(&decoded)) {
    co_await fail(writer, ex, *e);
    co_return;
  }
  const core::ChatRequest& r = std::get<core::ChatRequest>(decoded);
  ApiError refused;
  const RouteRuntime* route = resolve_route(*ex.rt, r.model, key, refused);
  if (const RouteRuntime* named = ex.rt->find_route(r.model)) ex.route.name = named->config->name;
  if (!route) {
    co_await fail(writer, ex, refused);
    co_return;
  }
  std::string body = R"({"input_tokens":)" + std::to_string(dialects::estimate_tokens(r)) + "}";
  ex.reply.status = 200;
  co_await writer.send(200, "application/json", body, headers(ex));
}

}  // namespace switchyard::server
