#include "server/gateway.hpp"

#include <spdlog/spdlog.h>

#include <array>
#include <cstring>
#include <random>

#include "dialects/translate.hpp"
#include "routing/decision.hpp"
#include "server/gateway_internal.hpp"

namespace switchyard::server {

using namespace std::string_view_literals;

namespace openai = dialects::openai;
using core::ApiError;
using core::ErrorKind;

namespace {

bool valid_request_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (unsigned char c : id)
    if (!(std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == ':')) return false;
  return true;
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
      ledger_before_end_(shared.governor && shared.governor->ledger().options().durability !=
                                                governance::LedgerOptions::Durability::async),
      pool_(loop.io(), loop.deadlines(), upstream_options(runtime_->config().upstream)),
      rng_{(static_cast<std::uint64_t>(std::random_device{}()) << 32 | std::random_device{}()) ^
           (static_cast<std::uint64_t>(loop.index()) << 56)} {
  if (shared.counters)
    redis_ = std::make_unique<shared::RedisClient>(loop.io(),
                                                   shared.counters->endpoint(runtime_->config().upstream.ca_file));
}

void Gateway::on_drain() {
  pool_.close_idle();
  for (net::UpstreamExchange* probe : probes_) probe->cancel();
}

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
  if (!ex.reply.error_kind) ex.reply.error_kind = error.kind;
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

const config::KeyConfig& Gateway::admin_listener_key() {
  static const config::KeyConfig key = [] {
    config::KeyConfig k;
    k.name = "(admin listener)";
    k.admin = true;
    return k;
  }();
  return key;
}

std::string Gateway::stream_cut_event(std::string_view target) {
  const std::string_view path = target.substr(0, target.find('?'));
  ApiError e = ApiError::make(ErrorKind::unavailable,
                              "The gateway is shutting down and cut this stream; retry the request.", {},
                              "switchyard_draining");
  return dialects::stream_error_event(client_of(path), e, {});
}

std::string Gateway::render_error(std::string_view target, const ApiError& error) {
  std::string_view path = target.substr(0, target.find('?'));
  return dialects::error_body(client_of(path), error, {});
}

dialects::Dialect Gateway::client_of(std::string_view path) {
  if (path.substr(0, 12) == "/v1/messages") return dialects::Dialect::anthropic;
  if (path.substr(0, 13) == "/v1/responses") return dialects::Dialect::responses;
  return dialects::Dialect::openai;
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
  ex.accounting.arrived_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
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
  ex.identity.method = method;
  ex.identity.path = path;
  ex.identity.received = request.received;
  // Each known path takes one method and has one handler; another method gets a 405 naming the
  // right one, an unknown path a 404.
  using Handler = net::Task<> (Gateway::*)(net::Request&, net::ResponseWriter&, Exchange&);
  // Where each endpoint is served when an admin listener is configured (server.admin): the
  // operators' reports on both (a client key sees only its own routes and decisions; the admin
  // listener sees everything, without a key), the admin API on the admin listener only, the
  // client API on the public listener only. Without an admin listener, all on the public one.
  enum Where : std::uint8_t { kPublic = 1, kAdminListener = 2, kBoth = 3 };
  struct Endpoint {
    std::string_view path, method;
    Handler handler;
    bool needs_key;
    Where where;
  };
  static constexpr Endpoint kEndpoints[] = {
      {"/v1/chat/completions", "POST", &Gateway::chat, true, kPublic},
      {"/v1/messages", "POST", &Gateway::chat, true, kPublic},
      {"/v1/responses", "POST", &Gateway::chat, true, kPublic},
      {"/v1/messages/count_tokens", "POST", &Gateway::count_tokens, true, kPublic},
      {"/v1/embeddings", "POST", &Gateway::embeddings, true, kPublic},
      {"/v1/models", "GET", &Gateway::models, true, kPublic},
      {"/v1/switchyard/health", "GET", &Gateway::health_report, true, kBoth},
      {"/v1/switchyard/feedback", "POST", &Gateway::feedback, true, kPublic},
      {"/v1/switchyard/decisions", "GET", &Gateway::decision_report, true, kBoth},
      {"/healthz", "GET", &Gateway::healthz, false, kBoth},
      {"/readyz", "GET", &Gateway::readyz, false, kBoth},
  };
  static constexpr Endpoint kAdmin{"/admin/v1/", "", &Gateway::admin_api, false, kAdminListener};
  const Endpoint* endpoint = nullptr;
  for (const Endpoint& e : kEndpoints)
    if (path == e.path) endpoint = &e;
  // The admin API: every method, its own credential (checked by the handler).
  if (!endpoint && (path.substr(0, 10) == "/admin/v1/" || path == "/admin/v1")) endpoint = &kAdmin;
  if (endpoint && ex.rt->config().server.admin.enabled &&
      !(endpoint->where & (request.admin_listener ? kAdminListener : kPublic)))
    endpoint = nullptr;  // not served on this listener: a 404 like any unknown path

  ex.identity.client = client_of(path);
  // Anthropic's SDK lists models at the same path as OpenAI's, with its version header.
  if (path == "/v1/models" && !request.header(net::http1::Known::anthropic_version).empty())
    ex.identity.client = dialects::Dialect::anthropic;
  if (endpoint && (method == endpoint->method || endpoint->method.empty())) {
    std::optional<ApiError> unusable;
    if (endpoint->needs_key && request.admin_listener) {
      // The admin listener's network position is its credential: the reports' whole view.
      ex.identity.key = &admin_listener_key();
      ex.identity.key_name = ex.identity.key->name;
    } else if (endpoint->needs_key) {
      ex.identity.key = auth_.find(credentials_of(request), ex.identity.client, *ex.rt, shared_.governor,
                                   ex.identity.key_pin);
      if (ex.identity.key) {
        ex.identity.key_name = ex.identity.key->name;
        if (ex.identity.key->disabled || ex.identity.key->expires_ms || !ex.identity.key->team.empty())
          unusable = auth_.unusable(*ex.identity.key, ex.identity.client, ex.accounting.arrived_unix_ms);
        if (!unusable) writer.authenticated();
      }
    }
    if (endpoint->needs_key && !ex.identity.key) co_await refuse_unauthenticated(request, writer, ex);
    else if (unusable) co_await fail(writer, ex, *unusable);
    else co_await (this->*endpoint->handler)(request, writer, ex);
  } else {
    std::string_view allowed;  // if, not ?: — GCC 12 mishandles conditional temporaries in coroutines
    if (endpoint) allowed = endpoint->method;
    co_await refuse_endpoint(method, path, allowed, writer, ex);
  }
  const core::AccountingRecord& record = settle(method, path, ex, request.received);
  if (const DeploymentRuntime* d = ex.attempts.answered_by; d && d->quota && record.usage.known)
    d->quota->charge_tokens(record.usage.output, governance::unix_now_ms());
  finish_governance(ex, record);
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
  ex.reply.error_kind = e.kind;
  const net::HeaderField allow[] = {{"x-request-id", ex.identity.request_id}, {"Allow", allowed}};
  std::string body = dialects::error_body(ex.identity.client, e, ex.identity.request_id);
  co_await writer.send(e.status, "application/json", body, allow);
}

void Gateway::on_refused(const net::http1::RequestHead* head, const ApiError& error,
                         net::Clock::time_point received) {
  Exchange ex;
  ex.accounting.arrived_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count() -
                                  static_cast<std::int64_t>(ms_since(received));
  ex.reply.status = error.status;
  ex.reply.error = error.code;
  ex.reply.error_kind = error.kind;
  std::string_view target = head ? head->target : std::string_view{};
  const core::AccountingRecord& record =
      settle(head ? head->method : std::string_view{}, target.substr(0, target.find('?')), ex, received);
  if (log_.enabled()) log_.write(record);
}

const core::AccountingRecord& Gateway::settle(std::string_view method, std::string_view path, Exchange& ex,
                                              net::Clock::time_point received) {
  // One record per request, filled in the loop's reused record (its strings and vector keep
  // their capacity: no allocation per request once warm). Consumers read it before the next
  // request on this loop; one that keeps it (a ledger queue) copies it.
  core::AccountingRecord& r = record_;
  r.request_id = ex.identity.request_id;
  r.unix_ms = ex.accounting.arrived_unix_ms;
  r.method = method;
  r.path = path;
  r.client_dialect = ex.identity.client == dialects::Dialect::anthropic ? "anthropic" : "openai";
  r.key = ex.identity.key_name;
  r.route = ex.route.name;
  r.model = ex.attempts.upstream_model;
  r.deployment = ex.attempts.deployment;
  const DeploymentRuntime* answered = ex.attempts.answered_by;
  r.provider = answered && answered->provider ? std::string_view(answered->provider->config->name) : std::string_view{};
  r.stream = ex.reply.stream;
  r.usage = ex.accounting.usage;
  r.usage_estimated = ex.accounting.usage_estimated;
  r.cost = ex.cost();
  r.unpriced = ex.accounting.usage.known && answered && !answered->priced();
  r.estimated_cost.reset();
  r.latency_ms = ms_since(received);
  r.ttfb_ms = ex.attempts.ttfb_ms;
  r.hedged = false;
  r.policy = ex.plan.policy;
  r.plan.clear();
  r.excluded.clear();
  r.complexity = -1;
  r.tier = -1;
  r.category = ex.route.category;
  r.status = ex.reply.status;
  r.error = ex.reply.error;
  r.error_kind = ex.reply.error_kind;
  r.client_cancelled = ex.reply.status == 499 || ex.reply.error == "client_closed";
  r.attempts.clear();
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
    for (const auto& a : d.attempts)
      r.attempts.push_back({d.table->candidates[a.candidate].deployment, a.outcome, a.status, a.ms, a.hedge});
    r.hedged = d.hedged;
    r.complexity = d.traits.complexity;
    r.tier = d.traits.tier;
  }
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
  d.unix_ms = ex.accounting.arrived_unix_ms;
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

void Gateway::fail_attempt(Exchange& ex, AttemptResult& result, ApiError error) {
  result.failure = std::make_unique<Failure>();
  result.failure->error = std::move(error);
  result.end = AttemptEnd::next;
  ex.reply.passed_count = 0;  // headers of a failed attempt do not describe the answer
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

net::Task<> Gateway::answer_failure(net::ResponseWriter& writer, Exchange& ex, const Failure* failed) {
  if (!failed) {
    // Every entry of the plan was skipped when its turn came: health changed since planning
    // (a circuit opened by other requests, a probe in flight). Unavailable for a moment, not an
    // internal error.
    ex.reply.retry_after_text = "1";
    co_await fail(writer, ex,
                  ApiError::make(ErrorKind::unavailable,
                                 "Every deployment this request could use became unavailable before it was tried "
                                 "(a circuit opened, or a recovery probe is in flight); retry shortly.",
                                 {}, "no_deployment_available"));
    co_return;
  }
  const Failure& failure = *failed;
  if (failure.status == 0) {
    // if, not ?: — GCC 12 mishandles conditional temporaries in coroutines (a double free).
    if (failure.error) {
      co_await fail(writer, ex, *failure.error);
    } else {
      const ApiError unknown = ApiError::make(ErrorKind::internal, "The attempt failed.");
      co_await fail(writer, ex, unknown);
    }
    co_return;
  }
  ex.reply.status = failure.status;
  ex.reply.error = "upstream_" + std::to_string(failure.status);
  ex.reply.error_kind = ErrorKind::upstream_status;
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
