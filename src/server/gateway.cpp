#include "server/gateway.hpp"

#include <spdlog/spdlog.h>

#include <array>
#include <vector>
#include <charconv>
#include <cstring>
#include <fstream>

#include "dialects/openai/chat_request.hpp"
#include "dialects/openai/usage.hpp"
#include "dialects/json_util.hpp"
#include "dialects/sse.hpp"
#include "dialects/translate.hpp"
#include "dialects/upstream_error.hpp"
#include "health/rate_limits.hpp"
#include "core/token_estimate.hpp"
#include "routing/complexity/category.hpp"
#include "routing/complexity/model.hpp"
#include "routing/tiers.hpp"
#include "server/admin/health.hpp"
#include "server/pipeline/outcome.hpp"
#include "server/pipeline/plan.hpp"
#include "server/pipeline/traits.hpp"

namespace switchyard::server {

using namespace std::string_view_literals;

namespace asio = boost::asio;
namespace openai = dialects::openai;
using core::ApiError;
using core::ErrorKind;

namespace {

constexpr std::size_t kMaxUpstreamBody = 64 * 1024 * 1024;
constexpr std::size_t kMaxUpstreamErrorBody = 1024 * 1024;

bool valid_request_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (unsigned char c : id)
    if (!(std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == ':')) return false;
  return true;
}

double ms_since(net::Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(net::Clock::now() - t).count();
}

bool looks_like_json_object(std::string_view body) {
  std::size_t first = body.find_first_not_of(" \t\r\n");
  std::size_t last = body.find_last_not_of(" \t\r\n");
  return first != std::string_view::npos && body[first] == '{' && body[last] == '}';
}


/// Upstream response headers a client may act on: rate-limit state and retry hints.
bool is_passed_header(std::string_view name) {
  // Called for every field of every upstream answer: told apart by first byte and size first.
  if (name.size() < 11) return false;
  switch (name[0] | 0x20) {
    case 'x': return name.size() >= 12 && net::http1::iequals(name.substr(0, 12), "x-ratelimit-");
    case 'r':
      return (name.size() == 11 && net::http1::iequals(name, "retry-after")) ||
             (name.size() == 14 && net::http1::iequals(name, "retry-after-ms"));
    default: return false;
  }
}


/// True when an upstream error body is already an OpenAI error object we can pass on as is.
bool is_openai_error_json(std::string_view body) {
  std::size_t p = body.find_first_not_of(" \t\r\n");
  return p != std::string_view::npos && body[p] == '{' && body.find("\"error\"") != std::string_view::npos;
}

}  // namespace


Gateway::Gateway(net::Loop& loop, Shared& shared)
    : loop_(loop),
      shared_(shared),
      runtime_(shared.runtime.get()),
      generation_(shared.runtime.generation()),
      log_(shared.log),
      pool_(loop.io(), loop.deadlines(), upstream_options(runtime_->config().upstream)),
      rng_{(static_cast<std::uint64_t>(std::random_device{}()) << 32 | std::random_device{}()) ^
           (static_cast<std::uint64_t>(loop.index()) << 56)} {}

void Gateway::on_drain() { pool_.close_idle(); }

std::string_view Gateway::make_request_id(char (&out)[128]) {
  // 64 random bits and a per-loop counter: unique without coordination between loops.
  // Two hex digits per table entry.
  static constexpr auto kHexPairs = [] {
    std::array<char, 512> t{};
    constexpr char kHex[] = "0123456789abcdef";
    for (int b = 0; b < 256; ++b) {
      t[static_cast<std::size_t>(2 * b)] = kHex[b >> 4];
      t[static_cast<std::size_t>(2 * b + 1)] = kHex[b & 0xF];
    }
    return t;
  }();
  std::uint64_t r = rng_();
  std::uint64_t c = ++counter_;
  std::memcpy(out, "req_", 4);
  for (int i = 0; i < 8; ++i)
    std::memcpy(out + 4 + 2 * i, &kHexPairs[2 * ((r >> (56 - 8 * i)) & 0xFF)], 2);
  for (int i = 0; i < 3; ++i)
    std::memcpy(out + 20 + 2 * i, &kHexPairs[2 * ((c >> (16 - 8 * i)) & 0xFF)], 2);
  return {out, 26};
}

net::Task<> Gateway::fail(net::ResponseWriter& writer, Exchange& ex, const ApiError& error) {
  ex.reply.status = error.status;
  if (ex.reply.error.empty()) ex.reply.error = error.code.empty() ? std::string(core::openai_type_of(error.kind)) : error.code;
  std::string body = dialects::error_body(ex.identity.client, error, ex.identity.request_id);
  co_await writer.send(error.status, "application/json", body, headers(ex));
}

namespace {
Credentials credentials_of(const net::Request& request) {
  return {request.header(net::http1::Known::authorization), request.header(net::http1::Known::x_api_key)};
}
}  // namespace

net::Task<> Gateway::refuse_unauthenticated(const net::Request& request, net::ResponseWriter& writer, Exchange& ex) {
  co_await fail(writer, ex, Authenticator::refusal(credentials_of(request), ex.identity.client));
}

std::string Gateway::render_error(std::string_view target, const ApiError& error) {
  std::string_view path = target.substr(0, target.find('?'));
  return dialects::error_body(client_of(path), error, {});
}

dialects::Dialect Gateway::client_of(std::string_view path) {
  return path.substr(0, 12) == "/v1/messages" ? dialects::Dialect::anthropic : dialects::Dialect::openai;
}

net::Task<> Gateway::handle(net::Request request, net::ResponseWriter& writer) {
  // A reload swapped the runtime: this loop takes the new one; requests in flight keep theirs.
  if (std::uint64_t g = shared_.runtime.generation(); g != generation_) {
    runtime_ = shared_.runtime.get();
    generation_ = g;
    auth_.clear();  // its entries point into the old runtime
    hedge_budgets_.clear();
  }
  std::shared_ptr<const Runtime> pinned = runtime_;
  Exchange ex;
  ex.rt = pinned.get();
  ex.accounting.arrived_unix_s = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  std::string_view given_id = request.header(net::http1::Known::x_request_id);
  if (valid_request_id(given_id)) {
    std::memcpy(ex.identity.id_storage, given_id.data(), given_id.size());
    ex.identity.request_id = {ex.identity.id_storage, given_id.size()};
  } else {
    ex.identity.request_id = make_request_id(ex.identity.id_storage);
  }

  std::string_view path = request.path();
  std::string_view method = request.method();
  // Each known path takes one method and has one handler; another method gets a 405 naming the
  // right one, an unknown path a 404.
  using Handler = net::Task<> (Gateway::*)(net::Request&, net::ResponseWriter&, Exchange&);
  struct Endpoint {
    std::string_view path, method;
    Handler handler;
    bool needs_key;
  };
  static constexpr Endpoint kEndpoints[] = {
      {"/v1/chat/completions", "POST", &Gateway::chat, true},
      {"/v1/messages", "POST", &Gateway::chat, true},
      {"/v1/messages/count_tokens", "POST", &Gateway::count_tokens, true},
      {"/v1/embeddings", "POST", &Gateway::embeddings, true},
      {"/v1/models", "GET", &Gateway::models, true},
      {"/v1/switchyard/health", "GET", &Gateway::health_report, true},
      {"/v1/switchyard/feedback", "POST", &Gateway::feedback, true},
      {"/v1/switchyard/decisions", "GET", &Gateway::decision_report, true},
      {"/healthz", "GET", &Gateway::healthz, false},
      {"/readyz", "GET", &Gateway::readyz, false},
  };
  const Endpoint* endpoint = nullptr;
  for (const Endpoint& e : kEndpoints)
    if (path == e.path) endpoint = &e;

  ex.identity.client = client_of(path);
  // Anthropic's SDK lists models at the same path as OpenAI's, with its version header.
  if (path == "/v1/models" && !request.header(net::http1::Known::anthropic_version).empty())
    ex.identity.client = dialects::Dialect::anthropic;
  if (endpoint && method == endpoint->method) {
    if (endpoint->needs_key) {
      ex.identity.key = auth_.find(credentials_of(request), ex.identity.client, *ex.rt);
      if (ex.identity.key) ex.identity.key_name = ex.identity.key->name;
    }
    if (endpoint->needs_key && !ex.identity.key) co_await refuse_unauthenticated(request, writer, ex);
    else co_await (this->*endpoint->handler)(request, writer, ex);
  } else {
    std::string_view allowed;  // if, not ?: — GCC 12 mishandles conditional temporaries in coroutines
    if (endpoint) allowed = endpoint->method;
    co_await refuse_endpoint(method, path, allowed, writer, ex);
  }
  const core::AccountingRecord& record = settle(method, path, ex, request.received);
  if (log_.enabled()) log_.write(record);
  record_decision(ex, record, std::move(pinned));
}

net::Task<> Gateway::refuse_endpoint(std::string_view method, std::string_view path, std::string_view allowed,
                                     net::ResponseWriter& writer, Exchange& ex) {
  if (allowed.empty()) {
    co_await fail(writer, ex, ApiError::make(ErrorKind::not_found,
                                             "Unknown request URL: " + std::string(method) + " " +
                                                 std::string(path) + ". Please check the URL.",
                                             {}, "unknown_url"));
    co_return;
  }
  ApiError e = ApiError::make(ErrorKind::method_not_allowed,
                              "Method " + std::string(method) + " is not allowed on " + std::string(path) +
                                  "; use " + std::string(allowed) + ".",
                              {}, "method_not_allowed");
  ex.reply.status = e.status;
  ex.reply.error = e.code;
  const net::HeaderField allow[] = {{"x-request-id", ex.identity.request_id}, {"Allow", allowed}};
  std::string body = dialects::error_body(ex.identity.client, e, ex.identity.request_id);
  co_await writer.send(e.status, "application/json", body, allow);
}

void Gateway::on_refused(const net::http1::RequestHead* head, const ApiError& error,
                         net::Clock::time_point received) {
  Exchange ex;
  ex.reply.status = error.status;
  ex.reply.error = error.code;
  std::string_view target = head ? head->target : std::string_view{};
  const core::AccountingRecord& record =
      settle(head ? head->method : std::string_view{}, target.substr(0, target.find('?')), ex, received);
  if (log_.enabled()) log_.write(record);
}

const core::AccountingRecord& Gateway::settle(std::string_view method, std::string_view path, const Exchange& ex,
                                              net::Clock::time_point received) {
  // One record per request, filled in the loop's reused record (its strings and vector keep
  // their capacity: no allocation per request once warm). Consumers read it before the next
  // request on this loop; one that keeps it (a ledger queue) copies it.
  core::AccountingRecord& r = record_;
  r.request_id.assign(ex.identity.request_id);
  r.unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count() -
              static_cast<std::int64_t>(ms_since(received));
  r.method.assign(method);
  r.path.assign(path);
  r.client_dialect.assign(ex.identity.client == dialects::Dialect::anthropic ? "anthropic" : "openai");
  r.key.assign(ex.identity.key_name);
  r.route.assign(ex.route.name);
  r.model.assign(ex.attempts.upstream_model);
  r.deployment.assign(ex.attempts.deployment);
  r.provider.clear();
  if (ex.attempts.answered_by && ex.attempts.answered_by->provider) r.provider.assign(ex.attempts.answered_by->provider->config->name);
  r.stream = ex.reply.stream;
  r.usage = ex.accounting.usage;
  r.usage_estimated = ex.accounting.usage_estimated;
  r.cost = ex.cost();
  r.unpriced = ex.accounting.usage.known && ex.attempts.answered_by && !ex.attempts.answered_by->priced();
  r.estimated_cost.reset();
  r.latency_ms = ms_since(received);
  r.ttfb_ms = ex.attempts.ttfb_ms;
  r.hedged = false;
  r.policy.assign(ex.plan.policy);
  r.plan.clear();
  r.excluded.clear();
  r.complexity = -1;
  r.tier = -1;
  r.category.assign(ex.route.category);
  r.status = ex.reply.status;
  r.error.assign(ex.reply.error);
  r.client_cancelled = ex.reply.status == 499 || ex.reply.error == "client_closed";
  std::size_t attempts = 0;
  if (ex.plan.decision) {
    const routing::Decision& d = *ex.plan.decision;
    if (d.estimated_cost_usd >= 0)
      r.estimated_cost = core::Money::nanos(static_cast<std::int64_t>(std::llround(d.estimated_cost_usd * 1e9)));
    for (auto i : d.plan.order) {
      if (!r.plan.empty()) r.plan += '>';
      r.plan += d.table->candidates[i].deployment;
    }
    std::size_t shown = 0, more = 0;
    for (std::size_t i = 0; i < d.plan.scores.size(); ++i) {
      if (d.plan.scores[i].excluded == routing::Exclusion::none) continue;
      if (shown == 8) {
        ++more;
        continue;
      }
      if (shown++) r.excluded += ',';
      r.excluded += d.table->candidates[i].deployment;
      r.excluded += ':';
      r.excluded += routing::to_string(d.plan.scores[i].excluded);
    }
    if (more) r.excluded += ",+" + std::to_string(more);
    r.attempts.resize(d.attempts.size());
    for (const auto& a : d.attempts) {
      core::AttemptOutcome& o = r.attempts[attempts++];
      o.deployment.assign(d.table->candidates[a.candidate].deployment);
      o.outcome.assign(a.outcome);
      o.status = a.status;
      o.ms = a.ms;
      o.hedge = a.hedge;
    }
    r.hedged = d.hedged;
    r.complexity = d.traits.complexity;
    r.tier = d.traits.tier;
  }
  r.attempts.resize(attempts);
  return r;
}

void Gateway::record_decision(Exchange& ex, const core::AccountingRecord& record,
                              std::shared_ptr<const Runtime> runtime) {
  if (!ex.plan.decision) return;
  routing::Decision& d = *ex.plan.decision;
  d.status = record.status;
  d.cost = record.cost;
  if (ex.attempts.answered_by && ex.reply.status > 0 && ex.reply.status < 400) d.chosen = ex.attempts.answered_index;
  if (ex.route.pending && ex.attempts.answered_by && ex.reply.status > 0 && ex.reply.status < 400) {
    routing::complexity::Pending& p = *ex.route.pending;
    p.request_id.assign(ex.identity.request_id);
    p.key.assign(ex.identity.key_name);
    p.route.assign(d.route);
    p.model = ex.attempts.answered_by->model ? ex.attempts.answered_by->model->id : ex.attempts.answered_by->config->model;
    p.tier = d.traits.tier;
    p.score = d.traits.complexity;
    shared_.feedback.remember(std::move(p));
  }
  auto spare = shared_.decisions.add(std::move(ex.plan.decision), std::move(runtime));
  if (spare && decision_pool_.size() < 64) decision_pool_.push_back(std::move(spare));
}
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

/// The request being served, as far as every attempt needs it.
struct Gateway::Chat : ChatInput {
  explicit Chat(const net::Request& r) : request(r) {}
  const net::Request& request;
  Endpoint endpoint = Endpoint::chat;
  bool embeddings_base64 = false;
  dialects::anthropic::EncodeResult anthropic_encoded;  ///< of the current attempt
};

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
  if (auto e = check_limits(ex.identity.key, *route)) {
    refused = std::move(*e);
    return nullptr;
  }
  return route;
}

void Gateway::start_decision(Exchange& ex, const RouteRuntime& route, const routing::RequestTraits& traits) {
  if (decision_pool_.empty()) {
    ex.plan.decision = std::make_unique<routing::Decision>();
  } else {
    ex.plan.decision = std::move(decision_pool_.back());
    decision_pool_.pop_back();
    ex.plan.decision->reset();
  }
  routing::Decision& d = *ex.plan.decision;
  d.request_id.assign(ex.identity.request_id);
  d.route = route.config->name;
  d.key = ex.identity.key_name;
  d.unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::system_clock::now().time_since_epoch()).count();
  d.traits = traits;
  d.table = &route.table;
}

OverrideHeaders Gateway::override_headers(const net::Request& request) {
  // Almost no request carries an override: one look at the names instead of three lookups.
  bool any = false;
  for (std::size_t i = 0; i < request.head->header_count && !any; ++i) {
    std::string_view name = request.head->header(i).name;
    any = name.size() > 13 && (name[0] | 0x20) == 'x' && net::http1::iequals(name.substr(0, 13), "x-switchyard-");
  }
  OverrideHeaders h;
  if (!any) return h;
  h.policy = request.header("x-switchyard-policy");
  h.deadline_ms = request.header("x-switchyard-deadline-ms");
  h.max_cost_usd = request.header("x-switchyard-max-cost-usd");
  return h;
}

net::Task<> Gateway::health_report(net::Request&, net::ResponseWriter& writer, Exchange& ex) {
  std::string body = admin::health_json(*ex.rt, health::steady_now_ms());
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

void Gateway::fail_attempt(Exchange& ex, AttemptResult& result, ApiError error) {
  result.failure.error = std::move(error);
  result.failure.status = 0;
  result.end = AttemptEnd::next;
  ex.reply.passed_count = 0;  // headers of a failed attempt do not describe the answer
}

namespace {

/// Ids for tool calls of upstreams that give none (Gemini): unique per request.
dialects::gemini::IdSource tool_call_ids(std::string_view request_id) {
  dialects::gemini::IdSource ids;
  ids.prefix = "call_" + std::string(request_id.substr(request_id.size() > 12 ? request_id.size() - 12 : 0)) + "_";
  return ids;
}

std::int64_t steady_ms(net::Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

}  // namespace

/// Turns upstream SSE events into the client's bytes.
struct Gateway::StreamProcessor {
  virtual ~StreamProcessor() = default;
  /// Appends what the client gets for this event; false when the event is malformed.
  virtual bool event(const dialects::SseEvent& e, std::string& out, Exchange& ex) = 0;
  /// The upstream's stream ended; `pending` is an unterminated tail.
  virtual void end(std::string_view pending, std::string& out, Exchange& ex) = 0;
  /// The upstream failed after the client's stream started.
  virtual void error(const ApiError& e, std::string& out, Exchange& ex) = 0;
};


/// The request bytes for one deployment, in pooled strings.
struct Gateway::Prepared {
  explicit Prepared(StringPool& pool) : body_loan{pool}, head_loan{pool} {}
  StringPool::Loan body_loan, head_loan;
  std::string& body() { return body_loan.s; }
  std::string& head() { return head_loan.s; }
  dialects::UpstreamRequest sent;  ///< `sent.dropped`: parameters left out for this deployment
  bool translated = false;
};

/// The executor's upstream side on sockets: up to two attempts (a primary and its hedge), each
/// a deployment's prepared request on an exchange from the loop's pool. The client leaving
/// cancels both.
class Gateway::Attempts final : public AttemptPort, net::ResponseWriter::DisconnectWatcher {
 public:
  Attempts(Gateway& gateway, const RouteRuntime& route, Chat& chat, net::ResponseWriter& writer, Exchange& ex)
      : g_(gateway), route_(route), chat_(chat), writer_(writer), ex_(ex), wake_(gateway.loop_.io()) {
    writer_.watch_disconnect(*this);
  }
  ~Attempts() override { writer_.forget_disconnect(); }

  /// The client left: whatever upstream exchanges are in progress (two while hedging) stop.
  void on_client_gone() override {
    for (auto* up : current_)
      if (up) up->cancel();
  }

  std::int64_t now_ms() override { return steady_ms(net::Clock::now()); }
  bool client_gone() override { return writer_.client_gone(); }
  net::Task<> sleep_ms(std::int64_t ms) override { co_await g_.sleep_ms(ms); }

  std::optional<AttemptResult> claim(int slot, std::uint16_t index) override {
    const DeploymentRuntime& d = *route_.candidates[index];
    Slot& s = slots_[slot];
    const std::int64_t now = health::steady_now_ms();
    // Health may have changed since the plan (this request's own failures, or others').
    bool probe = false;
    if (d.health && ex_.rt->config().health.circuit_breaking) {
      const health::State state = d.health->read(now).state;
      if (state == health::State::open || state == health::State::cooling)
        return skipped("skipped: " + std::string(health::to_string(state)));
      if (state == health::State::half_open) {
        if (!d.health->try_probe(now)) return skipped("skipped: half_open probe in flight");
        probe = true;
      }
    }
    s.prepared.emplace(g_.strings_);
    if (auto refused = g_.prepare(chat_, d, *s.prepared, ex_)) {
      if (probe) d.health->release_probe(health::steady_now_ms());
      s.prepared.reset();
      return refused;
    }
    s.d = &d;
    s.index = index;
    s.probe = probe;
    return std::nullopt;
  }

  double p95_ttft_ms(std::uint16_t index) override {
    const DeploymentRuntime& d = *route_.candidates[index];
    return d.health ? d.health->read(health::steady_now_ms()).p95_ttft_ms : -1;
  }

  net::Task<> start_now(int slot) override {
    Slot& s = begin(slot);
    s.error = co_await s.up->start(s.prepared->head(), s.prepared->body());
    s.done = true;
  }

  void start(int slot) override {
    begin(slot);
    net::spawn(g_.loop_.io(), race(slot), [](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        spdlog::error("hedged attempt: {}", x.what());
      }
    });
  }

  net::Task<> wait(std::int64_t until_ms) override {
    // A start that finished since the last look returns at once (it may have finished before
    // anyone waited, when its failure came without suspending).
    if (done_mask() & ~reported_) {
      reported_ = done_mask();
      co_return;
    }
    if (until_ms < 0) wake_.expires_at(net::Timer::time_point::max());
    else wake_.expires_at(net::Timer::time_point(std::chrono::milliseconds(until_ms)));
    co_await wake_.async_wait(net::nothrow);
    reported_ = done_mask();
  }

  bool started(int slot) override { return slots_[slot].done; }
  bool usable(int slot) override {
    const Slot& s = slots_[slot];
    if (!s.done || s.error != net::UpstreamError::none) return false;
    const int status = s.up->response().status;
    return status < 300 || !verdict(status).fail_over;
  }
  void cancel(int slot) override {
    if (slots_[slot].up) slots_[slot].up->cancel();
  }

  net::Task<AttemptResult> respond(int slot, bool last) override {
    Slot& s = slots_[slot];
    ex_.attempts.deployment = s.d->config->name;
    ex_.attempts.upstream_model = s.d->config->model;
    ex_.attempts.answered_by = s.d;
    ex_.attempts.answered_index = s.index;
    ex_.attempts.set_dropped(s.prepared->sent.dropped);
    ex_.attempts.first_event_deadline = s.first_event_deadline;
    co_return co_await g_.respond(chat_, *s.d, *s.prepared, s.error, last, *s.up, writer_, ex_);
  }

  AttemptResult lost(int slot) override {
    Slot& s = slots_[slot];
    AttemptResult r;
    if (s.error == net::UpstreamError::cancelled) {
      // Cancelled: it tells only that its first byte was later than the winner's.
      if (s.d->health) s.d->health->observe_latency(ms_since(s.started), -1);
      r.what = slot == kHedge ? "cancelled: the primary answered first" : "cancelled: the hedge answered first";
    } else if (s.error != net::UpstreamError::none) {
      r.what = std::string(net::to_string(s.error));
      r.health = verdict(s.error).health;
    } else {
      r.status = s.up->response().status;
      r.what = "http_" + std::to_string(r.status);
      r.health = verdict(r.status).health;
    }
    return r;
  }

  void release(int slot, const AttemptResult& r) override {
    Slot& s = slots_[slot];
    const DeploymentRuntime& d = *s.d;
    if (d.health) {
      const std::int64_t now = health::steady_now_ms();
      if (r.health) {
        d.health->record(*r.health, now, r.retry_after_ms, r.ttft_ms, r.tokens_per_s);
        if (r.rate_limits.remaining_requests >= 0 || r.rate_limits.remaining_tokens >= 0)
          d.health->observe_rate_limits(r.rate_limits, now);
      } else if (s.probe) {
        d.health->release_probe(now);
      }
      if (s.in_flight) d.health->end();
    }
    current_[slot] = nullptr;
    s.reset();
  }

 private:
  struct Slot {
    const DeploymentRuntime* d = nullptr;
    std::uint16_t index = 0;
    bool probe = false;      ///< it holds the deployment's half-open probe
    bool in_flight = false;  ///< counted in the deployment's requests in flight
    bool done = false;       ///< its start finished
    net::UpstreamError error = net::UpstreamError::none;
    net::Clock::time_point started;
    std::optional<net::Clock::time_point> first_event_deadline;  ///< streams: the route's ttft
    std::optional<Prepared> prepared;
    std::optional<net::UpstreamExchange> up;

    void reset() {
      up.reset();
      prepared.reset();
      d = nullptr;
      index = 0;
      probe = in_flight = done = false;
      error = net::UpstreamError::none;
      first_event_deadline.reset();
    }
  };

  static AttemptResult skipped(std::string what) {
    AttemptResult r;
    r.end = AttemptEnd::skipped;
    r.what = std::move(what);
    return r;
  }

  Slot& begin(int slot) {
    Slot& s = slots_[slot];
    ++ex_.attempts.count;
    s.started = net::Clock::now();
    if (slot == kPrimary) {
      ex_.attempts.deployment = s.d->config->name;
      ex_.attempts.upstream_model = s.d->config->model;
      ex_.attempts.answered_by = s.d;
      ex_.attempts.answered_index = s.index;
    }
    std::optional<std::chrono::milliseconds> ttft_limit;
    if (route_.config->policy.ttft_ms) {
      ttft_limit = std::chrono::milliseconds(route_.config->policy.ttft_ms);
      s.first_event_deadline = s.started + *ttft_limit;
    }
    s.up.emplace(g_.pool_, s.d->provider->origin);
    s.up->limit(ttft_limit, ex_.plan.deadline);
    current_[slot] = &*s.up;
    if (s.d->health) {
      s.d->health->begin();
      s.in_flight = true;
    }
    return s;
  }

  net::Task<> race(int slot) {
    Slot& s = slots_[slot];
    s.error = co_await s.up->start(s.prepared->head(), s.prepared->body());
    s.done = true;
    wake_.cancel();
  }

  unsigned done_mask() const { return (slots_[0].done ? 1u : 0u) | (slots_[1].done ? 2u : 0u); }

  Gateway& g_;
  const RouteRuntime& route_;
  Chat& chat_;
  net::ResponseWriter& writer_;
  Exchange& ex_;
  net::Timer wake_;
  unsigned reported_ = 0;
  Slot slots_[2];
  net::UpstreamExchange* current_[2] = {nullptr, nullptr};  ///< what the client leaving cancels
};

net::Task<> Gateway::sleep_ms(std::int64_t ms) {
  net::Timer timer(loop_.io());
  timer.expires_after(std::chrono::milliseconds(ms));
  co_await timer.async_wait(net::nothrow);
}

net::Task<> Gateway::run_candidates(const RouteRuntime& route, Chat& chat,
                                    net::ResponseWriter& writer, Exchange& ex) {
  routing::Decision& decision = *ex.plan.decision;
  const config::RouteConfig& rc = *route.config;
  routing::PlanContext ctx;
  ctx.now_ms = health::steady_now_ms();
  ctx.seed = rng_();
  ctx.exploration = ex.rt->config().health.exploration;
  const ChatInput* input = nullptr;  // if, not ?: — GCC 12 mishandles conditional temporaries in coroutines
  if (chat.info || chat.canonical) input = &chat;
  plan_request(route, input, ex.route.overrides, ex.rt->config().health.circuit_breaking, ctx, decision.traits,
               decision.plan);
  ex.plan.policy = routing::to_string(decision.plan.objective);
  if (decision.plan.order.empty()) {
    co_await answer_unavailable(route, writer, ex);
    co_return;
  }
  decision.estimated_cost_usd = decision.plan.scores[decision.plan.order[0]].est_cost_usd;
  ex.plan.set_estimated_cost(decision.estimated_cost_usd);
  if (decision.plan.deadline_ms)
    ex.plan.deadline = net::Clock::now() + std::chrono::milliseconds(decision.plan.deadline_ms);

  ExecutionOptions options;
  options.retry = rc.retry;
  options.hedge = rc.hedge;
  if (rc.hedge.enabled) {  // routes without hedging pay no lookup
    options.budget = &hedge_budgets_[rc.name];
    options.budget->on_request(rc.hedge.max_share);
  }
  if (ex.plan.deadline) options.deadline_ms = steady_ms(*ex.plan.deadline);
  options.deadline_budget_ms = decision.plan.deadline_ms;
  options.seed = rng_();
  Attempts attempts(*this, route, chat, writer, ex);
  Execution done = co_await execute(decision.plan.order, route.candidates.size(), options, attempts,
                                    decision.attempts);
  decision.hedged = done.hedged;
  if (done.end == AttemptEnd::client_gone) {
    if (!writer.started()) ex.reply.status = 499;
    ex.reply.error = "client_closed";
    co_return;
  }
  if (done.end == AttemptEnd::answered) co_return;
  co_await answer_failure(writer, ex, done.failure);
}

net::Task<> Gateway::answer_unavailable(const RouteRuntime& route, net::ResponseWriter& writer,
                                        Exchange& ex) {
  const routing::Decision& decision = *ex.plan.decision;
  const std::int64_t now = health::steady_now_ms();
  bool health_bound = false;
  std::string reasons;
  for (std::size_t i = 0; i < route.table.candidates.size(); ++i) {
    const auto& s = decision.plan.scores[i];
    if (s.excluded == routing::Exclusion::circuit_open || s.excluded == routing::Exclusion::rate_limited)
      health_bound = true;
    if (!reasons.empty()) reasons += "; ";
    reasons += route.table.candidates[i].deployment;
    reasons += ": ";
    reasons += routing::exclusion_reason(route.table.candidates[i], s, decision.traits, decision.plan, now);
  }
  ApiError error;
  if (route.candidates.empty()) {
    error = ApiError::make(ErrorKind::unavailable,
                           "No deployment of `" + route.config->name + "` is enabled (check the providers' api keys).",
                           {}, "no_deployment");
  } else if (health_bound) {
    // Everything is waiting on health: say when the first one is back, in words and in
    // retry-after (which the SDKs honour).
    std::int64_t wait_ms = decision.plan.earliest_recovery_ms > now ? decision.plan.earliest_recovery_ms - now : 0;
    char when[64];
    std::snprintf(when, sizeof when, "%.1f s", static_cast<double>(wait_ms) / 1000.0);
    error = ApiError::make(ErrorKind::unavailable,
                           "No deployment of `" + route.config->name + "` is available now (" + reasons +
                               "). The earliest recovers in " + when + ".",
                           {}, "no_deployment_available");
    ex.reply.retry_after_text = std::to_string((wait_ms + 999) / 1000);
  } else {
    error = ApiError::make(ErrorKind::invalid_request,
                           "No deployment of `" + route.config->name + "` can serve this request (" + reasons + ").",
                           "model", "no_eligible_deployment");
  }
  co_await fail(writer, ex, error);
}

std::optional<AttemptResult> Gateway::prepare(Chat& chat, const DeploymentRuntime& d, Prepared& p,
                                              Exchange& ex) {
  std::string& body = p.body();
  std::string& head = p.head();
  const dialects::Dialect upstream = d.provider->dialect();
  const auto* type = d.provider->type;
  std::optional<ApiError> refused;
  std::vector<std::string>& dropped = p.sent.dropped;  // parameters dropped for this deployment

  if (chat.endpoint == Endpoint::embeddings) {
    if (d.embeddings_head.empty()) {
      refused = ApiError::make(ErrorKind::invalid_request,
                               "Deployment \"" + d.config->name + "\" (" + std::string(type->name) +
                                   ") has no embeddings API.",
                               "model", "unsupported_endpoint");
    } else if (upstream == dialects::Dialect::gemini) {
      auto encoded = dialects::gemini::encode_embeddings(chat.request.body, d.config->model);
      if (auto* e = std::get_if<ApiError>(&encoded)) refused = *e;
      else body = std::move(std::get<std::string>(encoded));
      p.translated = true;
    } else {
      refused = openai::adapt_for_vendor(chat.request.body, d.config->model, {}, {}, type->name,
                                         false, body, dropped);
    }
  } else if (chat.client == upstream && upstream == dialects::Dialect::openai) {
    if ((chat.info->params & d.provider->rejected_params) == 0) {
      openai::patch_chat_request(chat.request.body, *chat.info, d.model_json, body);
    } else {
      refused = openai::adapt_for_vendor(chat.request.body, d.config->model, type->rejected,
                                         type->renamed, type->name,
                                         d.provider->config->drop_unsupported_params, body, dropped);
    }
  } else if (chat.client == upstream) {
    // Anthropic → Anthropic: the client's body with the model replaced.
    if (!dialects::anthropic::patch_model(chat.request.body, d.config->model, body))
      refused = ApiError::make(ErrorKind::invalid_request, "The request body is not valid JSON.");
  } else {
    p.translated = true;
    if (auto e = chat.decode(ex.rt->config().server.max_json_depth)) {
      // The client's request itself cannot be translated: no deployment will do better.
      AttemptResult r;
      r.what = "skipped: " + e->code;
      fail_attempt(ex, r, std::move(*e));
      r.end = AttemptEnd::give_up;
      return r;
    }
    dialects::Target target;
    target.dialect = upstream;
    target.type = type;
    target.model = d.config->model;
    target.default_max_tokens = d.config->max_tokens;
    target.drop_unsupported = d.provider->config->drop_unsupported_params;
    refused = dialects::encode_upstream_request(*chat.canonical, target, p.sent);
    body = std::move(p.sent.body);
  }
  if (refused) {
    spdlog::info("{}: {} skipped: {}", ex.identity.request_id, d.config->name, refused->message);
    AttemptResult r;
    r.what = "skipped: " + (refused->code.empty() ? std::string("refused") : refused->code);
    fail_attempt(ex, r, std::move(*refused));
    r.end = AttemptEnd::skipped;
    return r;
  }

  if (chat.endpoint == Endpoint::embeddings) head += d.embeddings_head;
  else if (chat.stream) head += d.stream_head;
  else head += d.chat_head;
  head += "X-Request-Id: "sv;
  head += ex.identity.request_id;
  head += chat.stream ? "\r\nAccept: text/event-stream\r\nContent-Length: "sv
                      : "\r\nAccept: application/json\r\nContent-Length: "sv;
  char length[24];
  head.append(length, std::to_chars(length, length + sizeof length, body.size()).ptr);
  head += "\r\n\r\n"sv;
  return std::nullopt;
}

net::Task<AttemptResult> Gateway::respond(Chat& chat, const DeploymentRuntime& d, Prepared& p,
                                          net::UpstreamError err, bool last_candidate,
                                          net::UpstreamExchange& up,
                                          net::ResponseWriter& writer, Exchange& ex) {
  AttemptResult result;
  if (writer.client_gone()) {
    result.end = AttemptEnd::client_gone;
    co_return result;
  }
  chat.anthropic_encoded = p.sent.anthropic;
  const dialects::Dialect upstream = d.provider->dialect();
  if (err != net::UpstreamError::none) {
    result.what = std::string(net::to_string(err));
    result.health = verdict(err).health;
    spdlog::warn("{}: attempt {} on {} failed: {}{}{}", ex.identity.request_id, ex.attempts.count,
                 d.config->name, net::to_string(err), up.detail().empty() ? "" : " - ",
                 up.detail());
    fail_attempt(ex, result, transport_error(err, d.config->name));
    co_return result;
  }
  ex.attempts.ttfb_ms = std::chrono::duration<double, std::milli>(up.time_to_head()).count();
  const auto& response = up.response();
  result.status = response.status;
  result.health = health::Outcome::success;
  // One walk over the answer's fields: the ones passed on to the client, and what they say
  // about rate limits and retrying.
  ex.reply.passed_count = 0;
  for (std::size_t i = 0; i < response.header_count; ++i) {
    const auto h = response.header(i);
    if (ex.reply.passed_count < kMaxPassedHeaders && is_passed_header(h.name))
      ex.reply.passed[ex.reply.passed_count++] = {h.name, h.value};
    health::read_answer_field(h.name, h.value, result.rate_limits, result.retry_after_ms);
  }

  if (response.status >= 300 && response.status < 400) {
    result.what = "redirect";
    result.health = verdict(response.status).health;
    // Redirects are not followed (the body would have to be re-sent elsewhere): a misconfigured
    // base_url, reported as a bad upstream.
    fail_attempt(ex, result,
                 ApiError::make(verdict(response.status).kind,
                                "Upstream deployment \"" + d.config->name +
                                    "\" answered with a redirect (HTTP " +
                                    std::to_string(response.status) + "); check its base_url.",
                                {}, "upstream_redirect"));
    co_return result;
  }
  if (response.status >= 400) {
    result.what = "http_" + std::to_string(response.status);
    const Verdict v = verdict(response.status);
    result.health = v.health;
    std::string error_body;
    net::UpstreamError e2 = co_await up.read_all(error_body, kMaxUpstreamErrorBody);
    if (writer.client_gone()) {
      result.end = AttemptEnd::client_gone;
      co_return result;
    }
    if (e2 != net::UpstreamError::none) {
      fail_attempt(ex, result, transport_error(e2, d.config->name));
      co_return result;
    }
    bool same_dialect = chat.client == upstream && !p.translated;
    if (same_dialect) {
      result.failure.status = response.status;
      result.failure.body = std::move(error_body);
    } else {
      result.failure.error = dialects::upstream_error(response.status, error_body, d.config->name);
    }
    ex.reply.keep_passed_headers();  // the answer goes out after this exchange ends
    result.end = v.fail_over && !last_candidate ? AttemptEnd::next : AttemptEnd::give_up;
    co_return result;
  }

  result.ttft_ms = std::chrono::duration<double, std::milli>(up.time_to_head()).count();
  std::string_view content_type = response.find(net::http1::Known::content_type);
  bool sse = chat.stream && content_type.substr(0, 17) == "text/event-stream";
  if (!sse) co_return co_await relay_json(chat, d, up, writer, ex, std::move(result));

  // In its own coroutine: the translator's state is in that frame only when a stream is translated
  // (every open stream holds its frames).
  if (p.translated) co_return co_await relay_translated(chat, d, p.sent, up, writer, ex, std::move(result));
  if (chat.client == dialects::Dialect::anthropic) {
    struct PassAnthropic final : StreamProcessor {
      core::TokenUsage usage;
      bool event(const dialects::SseEvent& e, std::string& out, Exchange& ex) override {
        if (e.name == "message_start" || e.name == "message_delta") {
          dialects::anthropic::probe_usage(e.data, usage);
          if (usage.known) ex.accounting.usage = usage;
        }
        out.append(e.raw);
        return true;
      }
      void end(std::string_view pending, std::string& out, Exchange&) override { out.append(pending); }
      void error(const ApiError& e, std::string& out, Exchange& ex) override {
        out += "event: error\ndata: ";
        out += dialects::anthropic::error_body(e, ex.identity.request_id);
        out += "\n\n";
      }
    };
    PassAnthropic processor;
    co_return co_await relay_stream(processor, d, up, writer, ex, std::move(result));
  }
  struct PassOpenAI final : StreamProcessor {
    bool client_wants_usage = false;
    bool event(const dialects::SseEvent& e, std::string& out, Exchange& ex) override {
      if (e.data != "[DONE]") {
        openai::UsageProbe probe = openai::probe_usage(e.data);
        if (probe.usage) {
          ex.accounting.usage = openai::to_canonical(*probe.usage);
          // The usage-only chunk exists because the gateway asked for it; a client that did
          // not ask does not get it.
          if (probe.no_choices && !client_wants_usage) return true;
        }
      }
      out.append(e.raw);
      return true;
    }
    void end(std::string_view pending, std::string& out, Exchange&) override { out.append(pending); }
    void error(const ApiError& e, std::string& out, Exchange&) override {
      out += "data: ";
      out += core::openai_error_body(e);
      out += "\n\n";
    }
  };
  PassOpenAI processor;
  processor.client_wants_usage = chat.client_wants_usage;
  co_return co_await relay_stream(processor, d, up, writer, ex, std::move(result));
}

net::Task<AttemptResult> Gateway::relay_translated(Chat& chat, const DeploymentRuntime& d,
                                                   const dialects::UpstreamRequest& sent,
                                                   net::UpstreamExchange& up,
                                                   net::ResponseWriter& writer, Exchange& ex,
                                                   AttemptResult result) {
  struct Translate final : StreamProcessor {
    dialects::StreamTranslator t;
    explicit Translate(dialects::StreamTranslator tr) : t(std::move(tr)) {}
    bool event(const dialects::SseEvent& e, std::string& out, Exchange&) override {
      bool ok = t.feed(e);
      out.append(t.out());
      t.out().clear();
      return ok;
    }
    void end(std::string_view, std::string& out, Exchange& ex) override {
      t.finish();
      take(out, ex);
    }
    void error(const ApiError& e, std::string& out, Exchange& ex) override {
      t.fail(e);
      take(out, ex);
    }
    void take(std::string& out, Exchange& ex) {
      out.append(t.out());
      t.out().clear();
      if (t.usage().known) ex.accounting.usage = t.usage();
    }
  };
  Translate processor(dialects::StreamTranslator(chat.client, d.provider->dialect(), sent,
                                                 chat.client_wants_usage, chat.model,
                                                 tool_call_ids(ex.identity.request_id)));
  co_return co_await relay_stream(processor, d, up, writer, ex, std::move(result));
}

net::Task<AttemptResult> Gateway::relay_json(Chat& chat, const DeploymentRuntime& d,
                                             net::UpstreamExchange& up,
                                             net::ResponseWriter& writer, Exchange& ex,
                                             AttemptResult result) {
  // Usually the whole answer came with its head: relayed from the connection's buffer. Else
  // read into a pooled string.
  std::string_view body;
  std::optional<StringPool::Loan> loan;
  net::UpstreamError err = net::UpstreamError::none;
  if (!up.buffered_body(body, kMaxUpstreamBody)) {
    loan.emplace(strings_);
    if (!up.read_buffered(loan->s, kMaxUpstreamBody, err))
      err = co_await up.read_all(loan->s, kMaxUpstreamBody);
    body = loan->s;
  }
  if (writer.client_gone()) {
    result.end = AttemptEnd::client_gone;
    co_return result;
  }
  if (err != net::UpstreamError::none) {
    fail_attempt(ex, result, transport_error(err, d.config->name));
    co_return result;
  }
  // A 2xx that is not a JSON object is a broken upstream; nothing was sent yet, so try the next
  // one. (Framing already proved the body complete; a full validation would scan every byte
  // for what upstreams practically never send.)
  if (!looks_like_json_object(body)) {
    fail_attempt(ex, result, transport_error(net::UpstreamError::bad_response, d.config->name));
    co_return result;
  }
  const dialects::Dialect upstream = d.provider->dialect();
  ex.reply.status = up.response().status;
  if (chat.endpoint == Endpoint::embeddings) {
    if (upstream == dialects::Dialect::gemini) {
      auto translated = dialects::gemini::decode_embeddings(body, chat.model, chat.embeddings_base64);
      if (auto* e = std::get_if<ApiError>(&translated)) {
        fail_attempt(ex, result, *e);
        co_return result;
      }
      // Gemini's embeddings API reports no tokens: the request's own estimate is billed, and the
      // record says it was estimated.
      ex.accounting.usage = {};
      ex.accounting.usage.known = true;
      ex.accounting.usage.input = ex.plan.decision ? ex.plan.decision->traits.input_tokens : 0;
      ex.accounting.usage_estimated = true;
      ex.set_cost_header();
      co_await writer.send(ex.reply.status, "application/json", std::get<std::string>(translated), headers(ex));
      result.end = AttemptEnd::answered;
      co_return result;
    }
    if (auto u = openai::probe_usage(body, false).usage) ex.accounting.usage = openai::to_canonical(*u);
  } else if (chat.client != upstream) {
    dialects::gemini::IdSource ids = tool_call_ids(ex.identity.request_id);
    dialects::UpstreamRequest sent;
    sent.anthropic = chat.anthropic_encoded;
    core::TokenUsage usage;
    auto translated = dialects::translate_response(chat.client, upstream, body, sent, ids, usage);
    if (auto* e = std::get_if<ApiError>(&translated)) {
      const bool refusal = e->kind == ErrorKind::invalid_request;
      fail_attempt(ex, result, *e);
      // A refusal (a prompt blocked by safety filters) is the client's answer, not a failover.
      if (refusal) result.end = AttemptEnd::give_up;
      co_return result;
    }
    if (usage.known) ex.accounting.usage = usage;
    ex.set_cost_header();
    co_await writer.send(ex.reply.status, "application/json", std::get<std::string>(translated), headers(ex));
    result.end = AttemptEnd::answered;
    co_return result;
  } else if (upstream == dialects::Dialect::anthropic) {
    core::TokenUsage usage;
    dialects::anthropic::probe_usage(body, usage);
    if (usage.known) ex.accounting.usage = usage;
  } else if (auto u = openai::probe_usage(body, false).usage) {
    ex.accounting.usage = openai::to_canonical(*u);
  }
  ex.set_cost_header();
  std::string_view content_type = up.response().find(net::http1::Known::content_type);
  co_await writer.send(ex.reply.status,
                       content_type.empty() ? std::string_view("application/json") : content_type,
                       body, headers(ex));
  result.end = AttemptEnd::answered;
  co_return result;
}

net::Task<AttemptResult> Gateway::relay_stream(StreamProcessor& processor,
                                               const DeploymentRuntime& d,
                                               net::UpstreamExchange& up,
                                               net::ResponseWriter& writer, Exchange& ex,
                                               AttemptResult result) {
  // Event by event. Until the first event is ready nothing has reached the client, so a failure
  // up to then still fails over; after it, the stream ends with an error event.
  dialects::SseSplitter splitter;
  StringPool::Loan payload_loan{strings_}, out_loan{strings_};
  std::string& payload = payload_loan.s;
  std::string& out = out_loan.s;
  bool committed = false;
  bool done = false;
  const auto head_at = net::Clock::now();
  // A head that came early does not count as the first token: the route's time-to-first-token
  // limit holds until the first event is ready (and failover is still possible).
  if (ex.attempts.first_event_deadline) up.first_body_by(ex.attempts.first_event_deadline);
  while (!done) {
    payload.clear();
    out.clear();
    net::UpstreamError err = co_await up.read_some(payload, done);
    if (writer.client_gone()) {
      result.end = AttemptEnd::client_gone;
      co_return result;
    }
    std::optional<ApiError> broken;
    if (err != net::UpstreamError::none) {
      broken = transport_error(err, d.config->name);
    } else {
      bool malformed = false;
      bool within_limit = splitter.feed(payload, [&](const dialects::SseEvent& event) {
        if (!processor.event(event, out, ex)) malformed = true;
      });
      if (!within_limit) {
        up.cancel();
        broken = transport_error(net::UpstreamError::bad_response, d.config->name);
        broken->message += " (an event larger than 8 MiB)";
      } else if (malformed) {
        up.cancel();
        broken = transport_error(net::UpstreamError::bad_response, d.config->name);
        broken->message += " (a malformed stream event)";
      }
    }
    if (broken) {
      // The deployment's fault either way.
      result.health = broken->kind == ErrorKind::upstream_timeout ? health::Outcome::timeout
                                                                  : health::Outcome::server_error;
      if (!committed) {
        result.what = "stream_failed_before_first_event: " + broken->code;
        fail_attempt(ex, result, std::move(*broken));
        co_return result;
      }
      ex.reply.error = broken->code;
      result.what = "stream_broken: " + broken->code;
      processor.error(*broken, out, ex);
      co_await writer.write_chunk(out, true);
      result.end = AttemptEnd::answered;
      co_return result;
    }
    if (done) processor.end(splitter.pending(), out, ex);
    if (!committed) {
      if (out.empty() && !done) continue;
      committed = true;
      if (ex.attempts.first_event_deadline) up.first_body_by(std::nullopt);
      ex.reply.status = 200;
      co_await writer.start_stream(200, "text/event-stream", headers(ex));
    }
    if ((!out.empty() || done) && !co_await writer.write_chunk(out, done)) {
      up.cancel();
      result.end = AttemptEnd::client_gone;
      co_return result;
    }
  }
  if (ex.accounting.usage.known && ex.accounting.usage.output > 0) {
    double seconds = std::chrono::duration<double>(net::Clock::now() - head_at).count();
    if (seconds > 0.001) result.tokens_per_s = static_cast<double>(ex.accounting.usage.output) / seconds;
  }
  result.end = AttemptEnd::answered;
  co_return result;
}

net::Task<> Gateway::answer_failure(net::ResponseWriter& writer, Exchange& ex,
                                    const Failure& failure) {
  if (failure.status == 0) {
    co_await fail(writer, ex,
                  failure.error.value_or(ApiError::make(ErrorKind::internal, "No attempt was made.")));
    co_return;
  }
  ex.reply.status = failure.status;
  ex.reply.error = "upstream_" + std::to_string(failure.status);
  bool pass = ex.identity.client == dialects::Dialect::anthropic
                  ? failure.body.find("\"error\"") != std::string::npos && looks_like_json_object(failure.body)
                  : is_openai_error_json(failure.body);
  if (pass) {
    co_await writer.send(failure.status, "application/json", failure.body, headers(ex));
    co_return;
  }
  ApiError e = ApiError::make(ErrorKind::upstream_status,
                              "Upstream deployment \"" + std::string(ex.attempts.deployment) +
                                  "\" answered HTTP " + std::to_string(failure.status) + ".");
  e.status = failure.status;
  std::string body = dialects::error_body(ex.identity.client, e, ex.identity.request_id);
  co_await writer.send(failure.status, "application/json", body, headers(ex));
}

}  // namespace switchyard::server
