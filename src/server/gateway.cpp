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

[[gnu::cold]] ApiError upstream_failure(net::UpstreamError e, std::string_view deployment) {
  std::string what = "Upstream deployment \"" + std::string(deployment) + "\" failed: " +
                     std::string(net::to_string(e)) + ".";
  switch (e) {
    case net::UpstreamError::connect_timeout:
    case net::UpstreamError::first_byte_timeout:
    case net::UpstreamError::total_timeout:
      return ApiError::make(ErrorKind::upstream_timeout, std::move(what), {},
                            std::string(net::to_string(e)));
    case net::UpstreamError::pool_exhausted:
      return ApiError::make(ErrorKind::unavailable, std::move(what), {}, "upstream_pool_exhausted");
    case net::UpstreamError::local_resources:
      return ApiError::make(ErrorKind::unavailable,
                            "The gateway could not open a connection to deployment \"" +
                                std::string(deployment) +
                                "\": it is out of file descriptors (or local ports) itself; the "
                                "deployment was not reached. Try again later.",
                            {}, "local_resources_exhausted");
    default:
      return ApiError::make(ErrorKind::upstream_connect, std::move(what), {},
                            std::string(net::to_string(e)));
  }
}

bool looks_like_json_object(std::string_view body) {
  std::size_t first = body.find_first_not_of(" \t\r\n");
  std::size_t last = body.find_last_not_of(" \t\r\n");
  return first != std::string_view::npos && body[first] == '{' && body[last] == '}';
}

constexpr std::size_t kMaxPassedHeaders = 12;

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

/// A client request decoded into the canonical model on the heap: a coroutine frame that holds
/// it (or the variant it came in) would hold it for the whole of a stream.
std::variant<std::unique_ptr<core::ChatRequest>, ApiError> decode_on_heap(dialects::Dialect client,
                                                                          std::string_view body,
                                                                          std::size_t max_depth) {
  auto decoded = dialects::decode_client_request(client, body, max_depth);
  if (auto* e = std::get_if<ApiError>(&decoded)) return std::move(*e);
  return std::make_unique<core::ChatRequest>(std::move(std::get<core::ChatRequest>(decoded)));
}

}  // namespace

/// What one attempt came to, for health and the decision record.
struct Gateway::AttemptResult {
  bool record = false;  ///< says something about the deployment's health
  health::Outcome outcome = health::Outcome::success;
  int status = 0;
  std::int64_t retry_after_ms = -1;
  double ttft_ms = -1;
  double tokens_per_s = -1;
  health::RateLimitHeaders rate_limits;
  std::string what;
};

/// Per-request state: what the access log and the response headers report.
struct Gateway::Exchange {
  const Runtime* rt = nullptr;  ///< the runtime this request started with (pinned by handle())
  std::unique_ptr<routing::Decision> decision;  ///< chat and embeddings: the routing record
  routing::Overrides overrides;
  std::string_view policy;
  std::optional<net::Clock::time_point> deadline;
  /// Streams: the first event must come by then (the route's ttft_ms from the attempt's start).
  std::optional<net::Clock::time_point> first_event_deadline;
  std::int64_t retry_after_ms = -1;  ///< the shortest retry-after of this request's 429s
  std::int64_t backoff_ms = 0;
  bool hedge_started = false;
  const DeploymentRuntime* answered_by = nullptr;
  int answered_index = -1;  ///< its position among the route's candidates
  AttemptResult last;
  std::string estimated_cost_text, cost_text, retry_after_text, complexity_text, tier_text;
  std::string_view category;  ///< predicted task category, when the route needs one
  std::int64_t arrived_unix_s = 0;  ///< the day and hour whose prices bill the request
  /// Complexity-routed requests, when feedback is on: kept for `/v1/switchyard/feedback`.
  std::unique_ptr<routing::complexity::Pending> pending;

  void add_attempt(std::uint16_t index, std::string what, int status, double ms, bool hedge = false) {
    if (!decision) return;
    routing::AttemptRecord a;
    a.candidate = index;
    a.outcome = std::move(what);
    a.status = status;
    a.ms = ms;
    a.hedge = hedge;
    if (backoff_ms) {
      a.retry = true;
      a.backoff_ms = backoff_ms;
      backoff_ms = 0;
    }
    decision->attempts.push_back(std::move(a));
  }
  void set_estimated_cost(double usd) {
    estimated_cost_text.clear();
    if (usd >= 0) routing::append_decimal(estimated_cost_text, usd);
  }
  /// What the answer's tokens cost at the answering deployment's prices: the one price
  /// function, read by the cost header and by the accounting record. nullopt: no usage, or
  /// unpriced.
  std::optional<core::Money> cost() const {
    if (!usage.known || !answered_by || !answered_by->priced()) return std::nullopt;
    return catalog::cost(*answered_by->pricing, usage, arrived_unix_s);
  }
  /// The cost header of a JSON answer (a stream's head goes out before its usage is known).
  void set_cost_header() {
    cost_text.clear();
    if (auto c = cost()) c->append_decimal(cost_text);
  }

  std::string_view request_id;  ///< in `id_storage` (no allocation per request)
  char id_storage[128];
  std::string_view key_name;
  std::string_view route;
  std::string_view deployment;
  std::string_view upstream_model;
  dialects::Dialect client = dialects::Dialect::openai;  ///< the dialect errors are written in
  std::string dropped;  ///< parameters dropped for the deployment that answered
  int status = 0;
  int attempts = 0;
  bool stream = false;
  core::TokenUsage usage;        ///< of the answer; `known` false until read
  bool usage_estimated = false;  ///< counted here: the provider reports none
  double ttfb_ms = -1;
  std::string error;
  std::string attempts_text;

  void set_dropped(const std::vector<std::string>& names) {
    dropped.clear();
    for (const auto& n : names) {
      if (!dropped.empty()) dropped += ", ";
      dropped += n;
    }
  }
  /// Upstream headers passed on (rate limits, retry-after): views into the live upstream
  /// response, or into `passed_copies` once that is gone.
  std::array<net::HeaderField, kMaxPassedHeaders> passed{};
  std::size_t passed_count = 0;
  std::vector<std::string> passed_copies;

  /// Copies the passed headers, for a response sent after the upstream exchange ended.
  void keep_passed_headers() {
    passed_copies.clear();
    passed_copies.reserve(passed_count * 2);
    for (std::size_t i = 0; i < passed_count; ++i) {
      passed_copies.emplace_back(passed[i].name);
      passed_copies.emplace_back(passed[i].value);
    }
    for (std::size_t i = 0; i < passed_count; ++i)
      passed[i] = {passed_copies[2 * i], passed_copies[2 * i + 1]};
  }

  /// The response's own fields, in a per-thread scratch array (not in every request's state,
  /// where streams would carry it): valid until the next call on this thread. Every caller
  /// hands it straight to the response writer, which copies the fields into the head before
  /// anything can suspend.
  std::span<const net::HeaderField> headers() {
    thread_local std::array<net::HeaderField, 13 + kMaxPassedHeaders> header_storage;
    std::size_t n = 0;
    for (std::size_t i = 0; i < passed_count; ++i) header_storage[n++] = passed[i];
    header_storage[n++] = {"x-request-id", request_id};
    if (!route.empty()) header_storage[n++] = {"x-switchyard-route", route};
    if (!deployment.empty()) header_storage[n++] = {"x-switchyard-deployment", deployment};
    if (attempts > 0) {
      attempts_text = std::to_string(attempts);
      header_storage[n++] = {"x-switchyard-attempts", attempts_text};
    }
    if (!dropped.empty()) header_storage[n++] = {"x-switchyard-dropped-params", dropped};
    if (answered_by && !deployment.empty()) {
      header_storage[n++] = {"x-switchyard-model", answered_by->model ? std::string_view(answered_by->model->id)
                                                                      : std::string_view(upstream_model)};
    }
    if (!policy.empty()) header_storage[n++] = {"x-switchyard-policy", policy};
    if (!estimated_cost_text.empty())
      header_storage[n++] = {"x-switchyard-estimated-cost-usd", estimated_cost_text};
    if (!cost_text.empty()) header_storage[n++] = {"x-switchyard-cost-usd", cost_text};
    if (!retry_after_text.empty()) header_storage[n++] = {"retry-after", retry_after_text};
    if (!complexity_text.empty()) {
      header_storage[n++] = {"x-switchyard-complexity", complexity_text};
      header_storage[n++] = {"x-switchyard-tier", tier_text};
    }
    if (!category.empty()) header_storage[n++] = {"x-switchyard-category", category};
    return {header_storage.data(), n};
  }
};

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
  ex.status = error.status;
  if (ex.error.empty()) ex.error = error.code.empty() ? std::string(core::openai_type_of(error.kind)) : error.code;
  std::string body = dialects::error_body(ex.client, error, ex.request_id);
  co_await writer.send(error.status, "application/json", body, ex.headers());
}

const config::KeyConfig* Gateway::authenticate(const net::Request& request, Exchange& ex, ApiError& error) {
  const config::KeyConfig* key = find_key(request, ex);
  if (key) return key;
  if (ex.client == dialects::Dialect::anthropic) {
    if (request.header(net::http1::Known::x_api_key).empty() && request.header(net::http1::Known::authorization).empty())
      error = ApiError::make(ErrorKind::authentication, "x-api-key header is required", {}, "missing_api_key");
    else
      error = ApiError::make(ErrorKind::authentication, "invalid x-api-key", {}, "invalid_api_key");
  } else if (request.header(net::http1::Known::authorization).empty()) {
    error = ApiError::make(ErrorKind::authentication,
                           "You didn't provide an API key. You need to provide your API key in "
                           "an Authorization header using Bearer auth (i.e. Authorization: "
                           "Bearer YOUR_KEY).",
                           {}, "missing_api_key");
  } else {
    error = ApiError::make(ErrorKind::authentication, "Incorrect API key provided.", {}, "invalid_api_key");
  }
  return nullptr;
}

const config::KeyConfig* Gateway::find_key(const net::Request& request, Exchange& ex) const {
  std::string_view token;
  std::string_view auth = request.header(net::http1::Known::authorization);
  if (!auth.empty()) {
    if (auth.size() > 7 && net::http1::iequals(auth.substr(0, 7), "bearer ")) token = auth.substr(7);
    while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  } else if (ex.client == dialects::Dialect::anthropic) {
    token = request.header(net::http1::Known::x_api_key);  // Anthropic's SDK sends the key here
  }
  if (token.empty()) return nullptr;
  const config::KeyConfig* key = nullptr;
  if (auto it = key_cache_.find(token); it != key_cache_.end()) {
    key = it->second;
  } else if ((key = ex.rt->keys().find(token))) {
    if (key_cache_.size() >= 4096) key_cache_.clear();  // bounded; only valid keys get in
    key_cache_.emplace(token, key);
  }
  if (!key) return nullptr;
  ex.key_name = key->name;
  return key;
}

net::Task<> Gateway::handle(net::Request request, net::ResponseWriter& writer) {
  // A reload swapped the runtime: this loop takes the new one; requests in flight keep theirs.
  if (std::uint64_t g = shared_.runtime.generation(); g != generation_) {
    runtime_ = shared_.runtime.get();
    generation_ = g;
    key_cache_.clear();  // its entries point into the old runtime
    hedge_budgets_.clear();
  }
  std::shared_ptr<const Runtime> pinned = runtime_;
  Exchange ex;
  ex.rt = pinned.get();
  ex.arrived_unix_s = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  std::string_view given_id = request.header(net::http1::Known::x_request_id);
  if (valid_request_id(given_id)) {
    std::memcpy(ex.id_storage, given_id.data(), given_id.size());
    ex.request_id = {ex.id_storage, given_id.size()};
  } else {
    ex.request_id = make_request_id(ex.id_storage);
  }

  std::string_view path = request.path();
  std::string_view method = request.method();
  // Each known path takes one method and has one handler; another method gets a 405 naming the
  // right one, an unknown path a 404.
  using Handler = net::Task<> (Gateway::*)(net::Request&, net::ResponseWriter&, Exchange&);
  struct Endpoint {
    std::string_view path, method;
    Handler handler;
  };
  static constexpr Endpoint kEndpoints[] = {
      {"/v1/chat/completions", "POST", &Gateway::chat},
      {"/v1/messages", "POST", &Gateway::chat},
      {"/v1/messages/count_tokens", "POST", &Gateway::count_tokens},
      {"/v1/embeddings", "POST", &Gateway::embeddings},
      {"/v1/models", "GET", &Gateway::models},
      {"/v1/switchyard/health", "GET", &Gateway::health_report},
      {"/v1/switchyard/feedback", "POST", &Gateway::feedback},
      {"/v1/switchyard/decisions", "GET", &Gateway::decision_report},
      {"/healthz", "GET", &Gateway::healthz},
      {"/readyz", "GET", &Gateway::readyz},
  };
  const Endpoint* endpoint = nullptr;
  for (const Endpoint& e : kEndpoints)
    if (path == e.path) endpoint = &e;

  if (path.substr(0, 12) == "/v1/messages") ex.client = dialects::Dialect::anthropic;
  if (endpoint && method == endpoint->method) {
    co_await (this->*endpoint->handler)(request, writer, ex);
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
  ex.status = e.status;
  ex.error = e.code;
  const net::HeaderField allow[] = {{"x-request-id", ex.request_id}, {"Allow", allowed}};
  std::string body = dialects::error_body(ex.client, e, ex.request_id);
  co_await writer.send(e.status, "application/json", body, allow);
}

void Gateway::on_refused(const net::http1::RequestHead* head, const ApiError& error,
                         net::Clock::time_point received) {
  Exchange ex;
  ex.status = error.status;
  ex.error = error.code;
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
  r.request_id.assign(ex.request_id);
  r.unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count() -
              static_cast<std::int64_t>(ms_since(received));
  r.method.assign(method);
  r.path.assign(path);
  r.client_dialect.assign(ex.client == dialects::Dialect::anthropic ? "anthropic" : "openai");
  r.key.assign(ex.key_name);
  r.route.assign(ex.route);
  r.model.assign(ex.upstream_model);
  r.deployment.assign(ex.deployment);
  r.provider.clear();
  if (ex.answered_by && ex.answered_by->provider) r.provider.assign(ex.answered_by->provider->config->name);
  r.stream = ex.stream;
  r.usage = ex.usage;
  r.usage_estimated = ex.usage_estimated;
  r.cost = ex.cost();
  r.unpriced = ex.usage.known && ex.answered_by && !ex.answered_by->priced();
  r.estimated_cost.reset();
  r.latency_ms = ms_since(received);
  r.ttfb_ms = ex.ttfb_ms;
  r.hedged = false;
  r.policy.assign(ex.policy);
  r.plan.clear();
  r.excluded.clear();
  r.complexity = -1;
  r.tier = -1;
  r.category.assign(ex.category);
  r.status = ex.status;
  r.error.assign(ex.error);
  r.client_cancelled = ex.status == 499 || ex.error == "client_closed";
  std::size_t attempts = 0;
  if (ex.decision) {
    const routing::Decision& d = *ex.decision;
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
  if (!ex.decision) return;
  routing::Decision& d = *ex.decision;
  d.status = record.status;
  d.cost = record.cost;
  if (ex.answered_by && ex.status > 0 && ex.status < 400) d.chosen = ex.answered_index;
  if (ex.pending && ex.answered_by && ex.status > 0 && ex.status < 400) {
    routing::complexity::Pending& p = *ex.pending;
    p.request_id.assign(ex.request_id);
    p.key.assign(ex.key_name);
    p.route.assign(d.route);
    p.model = ex.answered_by->model ? ex.answered_by->model->id : ex.answered_by->config->model;
    p.tier = d.traits.tier;
    p.score = d.traits.complexity;
    shared_.feedback.remember(std::move(p));
  }
  auto spare = shared_.decisions.add(std::move(ex.decision), std::move(runtime));
  if (spare && decision_pool_.size() < 64) decision_pool_.push_back(std::move(spare));
}
net::Task<> Gateway::healthz(net::Request&, net::ResponseWriter& writer, Exchange& ex) {
  ex.status = 200;
  co_await writer.send(200, "application/json", R"({"status":"ok"})", ex.headers());
}

net::Task<> Gateway::readyz(net::Request&, net::ResponseWriter& writer, Exchange& ex) {
  bool ready = !loop_.draining();
  ex.status = ready ? 200 : 503;
  std::string_view body = R"({"status":"ready"})";
  if (!ready) body = R"({"status":"draining"})";
  co_await writer.send(ex.status, "application/json", body, ex.headers());
}

net::Task<> Gateway::models(net::Request& request, net::ResponseWriter& writer,
                            Exchange& ex) {
  // Anthropic's SDK lists models at the same path, with its version header: answered in its shape.
  bool anthropic = !request.header(net::http1::Known::anthropic_version).empty();
  if (anthropic) ex.client = dialects::Dialect::anthropic;
  ApiError refused;
  const config::KeyConfig* key = authenticate(request, ex, refused);
  if (!key) {
    co_await fail(writer, ex, refused);
    co_return;
  }
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
  ex.status = 200;
  co_await writer.send(200, "application/json", body, ex.headers());
}

/// The request being served, as far as every attempt needs it.
struct Gateway::Chat {
  const net::Request& request;
  dialects::Dialect client = dialects::Dialect::openai;
  std::string model;
  bool stream = false;
  bool client_wants_usage = false;
  std::optional<openai::ChatRequestInfo> info;  ///< OpenAI clients: the fast path's inspection
  std::unique_ptr<core::ChatRequest> canonical;  ///< decoded when a translation needs it (off the frame)
  Endpoint endpoint = Endpoint::chat;
  bool embeddings_base64 = false;
  dialects::anthropic::EncodeResult anthropic_encoded;  ///< of the current attempt
};

const RouteRuntime* Gateway::resolve_route(std::string_view model, const config::KeyConfig& key, Exchange& ex,
                                           ApiError& error) {
  const RouteRuntime* route = ex.rt->find_route(model);
  if (!route) {
    error = ApiError::make(ErrorKind::not_found,
                           "The model `" + std::string(model) + "` does not exist or you do not have access to it.",
                           "model", "model_not_found");
    return nullptr;
  }
  ex.route = route->config->name;
  if (!governance::KeyStore::allows(key, route->config->name)) {
    error = ApiError::make(ErrorKind::permission, "This API key may not use the model `" + std::string(model) + "`.",
                           "model", "model_not_allowed");
    return nullptr;
  }
  if (route->candidates.empty()) {
    error = ApiError::make(ErrorKind::unavailable,
                           "No deployment of `" + std::string(model) +
                               "` is enabled (check the providers' api keys).",
                           {}, "no_deployment");
    return nullptr;
  }
  return route;
}

const RouteRuntime* Gateway::admit(std::string_view model, const config::KeyConfig& key,
                                   const net::Request& request, Exchange& ex, ApiError& error) {
  const RouteRuntime* route = resolve_route(model, key, ex, error);
  if (route && !read_overrides(request, key, ex, error)) return nullptr;
  return route;
}

void Gateway::classify(const config::RouteConfig& route, const core::ChatRequest& request,
                       routing::RequestTraits& traits, Exchange& ex, bool keep_features) {
  const std::string text = prompt_text(request);
  if (route.needs_category()) {
    traits.category = static_cast<int>(routing::complexity::categorize(text).best);
    ex.category = catalog::to_string(static_cast<catalog::Category>(traits.category));
  }
  if (!route.complexity) return;
  const auto* model = route.complexity->model.get();
  thread_local routing::complexity::Sparse features;
  routing::complexity::extract(text, model->spec, features);
  routing::score_and_tier(*route.complexity, features, traits);
  if (keep_features) {
    ex.pending = std::make_unique<routing::complexity::Pending>();
    ex.pending->hash_bits = model->spec.hash_bits;
    ex.pending->words = model->spec.words;
    ex.pending->features = features;
  }
  ex.complexity_text.clear();
  routing::append_decimal(ex.complexity_text, std::round(traits.complexity * 1000) / 1000);
  ex.tier_text = std::to_string(traits.tier);
}

void Gateway::start_decision(Exchange& ex, const RouteRuntime& route, const routing::RequestTraits& traits) {
  if (decision_pool_.empty()) {
    ex.decision = std::make_unique<routing::Decision>();
  } else {
    ex.decision = std::move(decision_pool_.back());
    decision_pool_.pop_back();
    ex.decision->reset();
  }
  routing::Decision& d = *ex.decision;
  d.request_id.assign(ex.request_id);
  d.route = route.config->name;
  d.key = ex.key_name;
  d.unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::system_clock::now().time_since_epoch()).count();
  d.traits = traits;
  d.table = &route.table;
}

bool Gateway::read_overrides(const net::Request& request, const config::KeyConfig& key, Exchange& ex,
                             ApiError& out) {
  // Almost no request carries an override: one look at the names instead of three lookups.
  bool any = false;
  for (std::size_t i = 0; i < request.head->header_count && !any; ++i) {
    std::string_view name = request.head->header(i).name;
    any = name.size() > 13 && (name[0] | 0x20) == 'x' && net::http1::iequals(name.substr(0, 13), "x-switchyard-");
  }
  if (!any) return true;
  std::string_view policy = request.header("x-switchyard-policy");
  std::string_view deadline = request.header("x-switchyard-deadline-ms");
  std::string_view max_cost = request.header("x-switchyard-max-cost-usd");
  if (policy.empty() && deadline.empty() && max_cost.empty()) return true;
  std::optional<ApiError> error;
  if (!key.overrides) {
    std::string which = !policy.empty() ? "x-switchyard-policy"
                        : !deadline.empty() ? "x-switchyard-deadline-ms"
                                            : "x-switchyard-max-cost-usd";
    error = ApiError::make(ErrorKind::permission,
                           "This API key may not override routing (" + which + ").", which,
                           "override_not_allowed");
  } else if (!policy.empty() && !(ex.overrides.objective = routing::parse_objective(policy))) {
    error = ApiError::make(ErrorKind::invalid_request,
                           "Invalid x-switchyard-policy \"" + std::string(policy) +
                               "\": use cost, latency, quality, balanced or ordered.",
                           "x-switchyard-policy", "invalid_header");
  } else if (!deadline.empty()) {
    std::uint32_t ms = 0;
    auto [p, ec] = std::from_chars(deadline.data(), deadline.data() + deadline.size(), ms);
    if (ec != std::errc{} || p != deadline.data() + deadline.size() || ms == 0 || ms > 86'400'000)
      error = ApiError::make(ErrorKind::invalid_request,
                             "Invalid x-switchyard-deadline-ms \"" + std::string(deadline) +
                                 "\": an integer number of milliseconds from 1 to 86400000.",
                             "x-switchyard-deadline-ms", "invalid_header");
    else ex.overrides.deadline_ms = ms;
  }
  if (!error && !max_cost.empty() && key.overrides) {
    std::string text(max_cost);
    char* end = nullptr;
    double usd = std::strtod(text.c_str(), &end);
    if (text.empty() || *end || !(usd >= 0) || usd > 1e6)
      error = ApiError::make(ErrorKind::invalid_request,
                             "Invalid x-switchyard-max-cost-usd \"" + text +
                                 "\": a number of US dollars, 0 or more.",
                             "x-switchyard-max-cost-usd", "invalid_header");
    else ex.overrides.max_cost_usd = usd;
  }
  if (error) {
    out = std::move(*error);
    return false;
  }
  return true;
}

net::Task<> Gateway::health_report(net::Request& request, net::ResponseWriter& writer,
                                   Exchange& ex) {
  ApiError refused;
  const config::KeyConfig* key = authenticate(request, ex, refused);
  if (!key) {
    co_await fail(writer, ex, refused);
    co_return;
  }
  const std::int64_t now = health::steady_now_ms();
  std::string body = R"({"object":"switchyard.health","deployments":[)";
  bool first = true;
  for (const auto& d : ex.rt->deployments()) {
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
  ex.status = 200;
  co_await writer.send(200, "application/json", body, ex.headers());
}

net::Task<> Gateway::decision_report(net::Request& request, net::ResponseWriter& writer,
                                     Exchange& ex) {
  ApiError refused;
  const config::KeyConfig* key = authenticate(request, ex, refused);
  if (!key) {
    co_await fail(writer, ex, refused);
    co_return;
  }
  std::string_view target = request.target();
  std::string_view query = target.substr(std::min(target.size(), target.find('?') + 1));
  if (target.find('?') == std::string_view::npos) query = {};
  std::string_view id;
  while (!query.empty()) {
    std::string_view pair = query.substr(0, query.find('&'));
    query.remove_prefix(std::min(query.size(), pair.size() + 1));
    if (pair.substr(0, 11) == "request_id=") id = pair.substr(11);
  }
  if (id.empty()) {
    co_await fail(writer, ex, ApiError::make(ErrorKind::invalid_request,
                                             "Missing query parameter request_id.", "request_id",
                                             "missing_required_parameter"));
    co_return;
  }
  // Admin keys read every record; other keys only their own requests'.
  auto found = shared_.decisions.find(id, key->admin ? std::string_view{} : std::string_view(key->name),
                                     health::steady_now_ms());
  if (!found) {
    co_await fail(writer, ex, ApiError::make(ErrorKind::not_found,
                                             "No decision record for request " + std::string(id) +
                                                 " (unknown, someone else's, or no longer kept).",
                                             "request_id", "decision_not_found"));
    co_return;
  }
  ex.status = 200;
  co_await writer.send(200, "application/json", *found, ex.headers());
}

net::Task<> Gateway::feedback(net::Request& request, net::ResponseWriter& writer, Exchange& ex) {
  ApiError refused;
  const config::KeyConfig* key = authenticate(request, ex, refused);
  if (!key) {
    co_await fail(writer, ex, refused);
    co_return;
  }
  std::optional<ApiError> error;
  std::string request_id;
  double score = -1;
  auto parsed = dialects::parse_json(request.body, 8);
  if (shared_.feedback_log.empty()) {
    error = ApiError::make(ErrorKind::invalid_request,
                           "Feedback is not enabled on this gateway (server.feedback_log).", {}, "feedback_disabled");
  } else if (!parsed || !parsed->is_object()) {
    error = ApiError::make(ErrorKind::invalid_request, "We could not parse the JSON body of your request.", {},
                           "invalid_json");
  } else {
    const auto& o = parsed->get_object();
    request_id = std::string(dialects::str_or(o, "request_id"));
    if (const auto* s = o.if_contains("score"); s && s->is_number()) score = s->to_number<double>();
    else if (auto thumbs = dialects::str_or(o, "thumbs"); thumbs == "up" || thumbs == "down")
      score = thumbs == "up" ? 1.0 : 0.0;
    if (request_id.empty())
      error = ApiError::make(ErrorKind::invalid_request, "Missing required parameter: 'request_id'.", "request_id",
                             "missing_required_parameter");
    else if (!(score >= 0 && score <= 1))
      error = ApiError::make(ErrorKind::invalid_request,
                             "Give 'score' (a number from 0 to 1) or 'thumbs' (\"up\" or \"down\").", "score",
                             "invalid_value");
  }
  if (error) {
    co_await fail(writer, ex, *error);
    co_return;
  }
  auto pending = shared_.feedback.take(request_id, key->admin ? std::string_view{} : std::string_view(key->name));
  if (!pending) {
    co_await fail(writer, ex, ApiError::make(ErrorKind::not_found,
                                             "No request " + request_id +
                                                 " awaits feedback (not routed by complexity, someone else's, "
                                                 "already rated, or no longer kept).",
                                             "request_id", "feedback_not_found"));
    co_return;
  }
  std::string row = routing::complexity::feedback_row(*pending, score);
  bool written = false;
  {
    std::lock_guard lock(shared_.feedback_mutex);
    std::ofstream out(shared_.feedback_log, std::ios::app);
    written = static_cast<bool>(out << row);
  }
  if (!written) {
    co_await fail(writer, ex, ApiError::make(ErrorKind::internal, "The feedback log could not be written.", {},
                                             "feedback_write_failed"));
    co_return;
  }
  ex.status = 200;
  co_await writer.send(200, "application/json", R"({"object":"switchyard.feedback","recorded":true})", ex.headers());
}

net::Task<> Gateway::chat(net::Request& request, net::ResponseWriter& writer,
                          Exchange& ex) {
  Chat chat{request, ex.client};
  ApiError refused;
  const RouteRuntime* route = admit_chat(request, ex, chat, refused);
  if (!route) {
    co_await fail(writer, ex, refused);
    co_return;
  }
  co_await run_candidates(*route, chat, writer, ex);
}

const RouteRuntime* Gateway::admit_chat(const net::Request& request, Exchange& ex, Chat& chat, ApiError& refused) {
  const config::KeyConfig* key = authenticate(request, ex, refused);
  if (!key) return nullptr;
  const config::ServerConfig& server_config = ex.rt->config().server;
  if (ex.client == dialects::Dialect::openai) {
    auto inspected = openai::inspect_chat_request(request.body, {server_config.max_json_depth});
    if (auto* e = std::get_if<ApiError>(&inspected)) {
      refused = std::move(*e);
      return nullptr;
    }
    chat.info = std::move(std::get<openai::ChatRequestInfo>(inspected));
    chat.model = std::move(chat.info->model);  // the info's own copy is not read again
    chat.stream = chat.info->stream;
    chat.client_wants_usage = chat.info->client_wants_usage;
  } else {
    auto decoded = decode_on_heap(ex.client, request.body, server_config.max_json_depth);
    if (auto* e = std::get_if<ApiError>(&decoded)) {
      refused = std::move(*e);
      return nullptr;
    }
    chat.canonical = std::move(std::get<std::unique_ptr<core::ChatRequest>>(decoded));
    chat.model = chat.canonical->model;  // the route name; canonical->model is not sent on
    chat.stream = chat.canonical->stream;
    chat.client_wants_usage = true;
  }
  ex.stream = chat.stream;
  const RouteRuntime* route = admit(chat.model, *key, request, ex, refused);
  if (!route) return nullptr;
  routing::RequestTraits traits;
  if (chat.info) traits = traits_of(*chat.info, request.body);
  else traits = traits_of(*chat.canonical);
  if (route->config->complexity || route->config->needs_category()) {
    // The classifiers read the conversation's text: decoded once (a translation reuses it).
    if (!chat.canonical) {
      auto decoded = decode_on_heap(chat.client, request.body, server_config.max_json_depth);
      if (auto* e = std::get_if<ApiError>(&decoded)) {
        refused = std::move(*e);
        return nullptr;
      }
      chat.canonical = std::move(std::get<std::unique_ptr<core::ChatRequest>>(decoded));
    }
    classify(*route->config, *chat.canonical, traits, ex, !shared_.feedback_log.empty());
  }
  start_decision(ex, *route, traits);
  return route;
}

net::Task<> Gateway::embeddings(net::Request& request, net::ResponseWriter& writer,
                                Exchange& ex) {
  ApiError refused;
  const config::KeyConfig* key = authenticate(request, ex, refused);
  if (!key) {
    co_await fail(writer, ex, refused);
    co_return;
  }
  Chat chat{request, dialects::Dialect::openai};
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
  const RouteRuntime* route = admit(chat.model, *key, request, ex, refused);
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
  ApiError refused;
  const config::KeyConfig* key = authenticate(request, ex, refused);
  if (!key) {
    co_await fail(writer, ex, refused);
    co_return;
  }
  auto decoded = dialects::anthropic::decode_request(
      request.body, ex.rt->config().server.max_json_depth, /*require_max_tokens=*/false);
  if (auto* e = std::get_if<ApiError>(&decoded)) {
    co_await fail(writer, ex, *e);
    co_return;
  }
  const core::ChatRequest& r = std::get<core::ChatRequest>(decoded);
  const RouteRuntime* route = resolve_route(r.model, *key, ex, refused);
  if (!route) {
    co_await fail(writer, ex, refused);
    co_return;
  }
  std::string body = R"({"input_tokens":)" + std::to_string(dialects::estimate_tokens(r)) + "}";
  ex.status = 200;
  co_await writer.send(200, "application/json", body, ex.headers());
}

void Gateway::fail_attempt(Exchange& ex, Failure& failure, ApiError error) {
  failure.error = std::move(error);
  failure.status = 0;
  ex.passed_count = 0;  // headers of a failed attempt do not describe the answer
}

namespace {

/// Ids for tool calls of upstreams that give none (Gemini): unique per request.
dialects::gemini::IdSource tool_call_ids(std::string_view request_id) {
  dialects::gemini::IdSource ids;
  ids.prefix = "call_" + std::string(request_id.substr(request_id.size() > 12 ? request_id.size() - 12 : 0)) + "_";
  return ids;
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


namespace {

health::Outcome health_outcome(net::UpstreamError e) {
  switch (e) {
    case net::UpstreamError::connect_timeout:
    case net::UpstreamError::first_byte_timeout:
    case net::UpstreamError::total_timeout: return health::Outcome::timeout;
    case net::UpstreamError::bad_response: return health::Outcome::server_error;
    default: return health::Outcome::connect_error;
  }
}

/// Local conditions that say nothing about the deployment.
bool is_local(net::UpstreamError e) {
  return e == net::UpstreamError::cancelled || e == net::UpstreamError::pool_exhausted ||
         e == net::UpstreamError::local_resources;
}

/// What an HTTP status says of the deployment: a 429 is a cooldown, a 5xx a fault, the rest
/// (answers, the client's own 4xx) health.
health::Outcome health_outcome(int status) {
  return status == 429 ? health::Outcome::rate_limited
         : status >= 500 ? health::Outcome::server_error
                         : health::Outcome::success;
}

/// 2xx and the client's own 4xx are answers; 429 and 5xx are the deployment's trouble.
bool is_answer_status(int status) { return status < 500 && status != 429; }

}  // namespace

/// The request bytes for one deployment, in pooled strings.
struct Gateway::Prepared {
  explicit Prepared(StringPool& pool) : body_loan{pool}, head_loan{pool} {}
  StringPool::Loan body_loan, head_loan;
  std::string& body() { return body_loan.s; }
  std::string& head() { return head_loan.s; }
  dialects::UpstreamRequest sent;
  bool translated = false;
};

/// One side of a hedged race.
struct Gateway::Racer {
  net::UpstreamError error = net::UpstreamError::none;
  bool done = false;
  net::Timer* wake = nullptr;
};

net::Task<> Gateway::race(net::UpstreamExchange& up, std::string_view head,
                          std::string_view body, Racer& racer) {
  racer.error = co_await up.start(head, body);
  racer.done = true;
  racer.wake->cancel();
}

net::Task<> Gateway::sleep_ms(std::int64_t ms) {
  net::Timer timer(loop_.io());
  timer.expires_after(std::chrono::milliseconds(ms));
  co_await timer.async_wait(net::nothrow);
}

net::Task<> Gateway::run_candidates(const RouteRuntime& route, Chat& chat,
                                    net::ResponseWriter& writer, Exchange& ex) {
  routing::Decision& decision = *ex.decision;
  const config::RouteConfig& rc = *route.config;
  const std::int64_t planned_at = health::steady_now_ms();
  {
    thread_local std::vector<health::Snapshot> snapshots;
    snapshots.resize(route.candidates.size());
    const bool breaking = ex.rt->config().health.circuit_breaking;
    for (std::size_t i = 0; i < route.candidates.size(); ++i) {
      snapshots[i] = route.candidates[i]->health ? route.candidates[i]->health->read(planned_at)
                                                 : health::Snapshot{};
      if (!breaking) {  // observed, never excluding
        snapshots[i].state = health::State::closed;
        snapshots[i].recovers_at_ms = 0;
      }
    }
    routing::PlanContext ctx;
    ctx.now_ms = planned_at;
    ctx.seed = rng_();
    ctx.exploration = ex.rt->config().health.exploration;
    routing::make_plan(route.table, decision.traits, ex.overrides, snapshots, ctx, decision.plan);
    if (decision.plan.context_tight && (chat.info || chat.canonical)) {
      // Near a context window the quick token estimate is not good enough: count precisely
      // and plan again.
      decision.traits.input_tokens =
          chat.info ? estimate_body_tokens(chat.request.body, chat.info->has_images, true)
                    : dialects::estimate_tokens(*chat.canonical, true);
      routing::make_plan(route.table, decision.traits, ex.overrides, snapshots, ctx, decision.plan);
    }
  }
  ex.policy = routing::to_string(decision.plan.objective);
  if (decision.plan.order.empty()) {
    co_await answer_unavailable(route, writer, ex);
    co_return;
  }
  decision.estimated_cost_usd = decision.plan.scores[decision.plan.order[0]].est_cost_usd;
  ex.set_estimated_cost(decision.estimated_cost_usd);
  if (decision.plan.deadline_ms)
    ex.deadline = net::Clock::now() + std::chrono::milliseconds(decision.plan.deadline_ms);
  // Routes without hedging pay no lookup.
  routing::HedgeBudget* budget = nullptr;
  if (rc.hedge.enabled) {
    budget = &hedge_budgets_[rc.name];
    budget->on_request(rc.hedge.max_share);
  }

  // The client leaving cancels whatever upstream exchanges are in progress (two while hedging).
  net::UpstreamExchange* current[2] = {nullptr, nullptr};
  writer.watch_disconnect(
      [](void* context) {
        for (auto* up : *static_cast<net::UpstreamExchange* (*)[2]>(context))
          if (up) up->cancel();
      },
      &current);
  struct Forget {
    net::ResponseWriter& writer;
    ~Forget() { writer.forget_disconnect(); }
  } forget{writer};

  Failure failure;
  const auto& order = decision.plan.order;
  routing::CandidateSet tried(route.candidates.size());
  for (int round = 0;; ++round) {
    for (std::size_t k = 0; k < order.size(); ++k) {
      const std::uint16_t index = order[k];
      if (round == 0 && tried.has(index)) continue;  // already ran as a hedge
      if (ex.deadline && net::Clock::now() >= *ex.deadline) break;
      // The next entry not yet tried is the hedge, when the route hedges.
      int hedge_index = -1;
      if (rc.hedge.enabled)
        for (std::size_t j = k + 1; j < order.size(); ++j)
          if (!tried.has(order[j])) {
            hedge_index = order[j];
            break;
          }
      bool last = k + 1 == order.size() && round >= rc.retry.attempts;
      tried.set(index);
      Outcome outcome =
          co_await attempt(route, chat, index, hedge_index, budget, last, current, writer, ex, failure);
      if (hedge_index >= 0 && ex.hedge_started) tried.set(static_cast<std::size_t>(hedge_index));
      if (outcome == Outcome::client_gone || writer.client_gone()) {
        if (!writer.started()) ex.status = 499;
        ex.error = "client_closed";
        co_return;
      }
      if (outcome == Outcome::answered) co_return;
      if (outcome == Outcome::give_up) {
        co_await answer_failure(writer, ex, failure);
        co_return;
      }
    }
    // Every entry failed: back off and go round again while retries and the deadline allow.
    std::int64_t remaining = -1;
    if (ex.deadline)
      remaining = std::chrono::duration_cast<std::chrono::milliseconds>(*ex.deadline - net::Clock::now()).count();
    double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53;
    std::int64_t wait = routing::retry_wait_ms(rc.retry, round, u, ex.retry_after_ms, remaining);
    if (wait < 0) break;
    ex.backoff_ms = wait;
    if (wait > 0) co_await sleep_ms(wait);
    if (writer.client_gone()) {
      ex.status = 499;
      ex.error = "client_closed";
      co_return;
    }
  }
  if (ex.deadline && net::Clock::now() >= *ex.deadline && failure.status == 0) {
    fail_attempt(ex, failure,
                 ApiError::make(ErrorKind::upstream_timeout,
                                "The request's deadline of " + std::to_string(decision.plan.deadline_ms) +
                                    " ms passed before a deployment answered.",
                                {}, "deadline_exceeded"));
  }
  co_await answer_failure(writer, ex, failure);
}

net::Task<> Gateway::answer_unavailable(const RouteRuntime& route, net::ResponseWriter& writer,
                                        Exchange& ex) {
  const routing::Decision& decision = *ex.decision;
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
    ex.retry_after_text = std::to_string((wait_ms + 999) / 1000);
  } else {
    error = ApiError::make(ErrorKind::invalid_request,
                           "No deployment of `" + route.config->name + "` can serve this request (" + reasons + ").",
                           "model", "no_eligible_deployment");
  }
  co_await fail(writer, ex, error);
}

std::optional<Gateway::Outcome> Gateway::prepare(Chat& chat, const DeploymentRuntime& d, Prepared& p,
                                                 Exchange& ex, Failure& failure) {
  std::string& body = p.body();
  std::string& head = p.head();
  const dialects::Dialect upstream = d.provider->dialect();
  const auto* type = d.provider->type;
  std::optional<ApiError> refused;
  std::vector<std::string> dropped;

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
      ex.set_dropped(dropped);
    }
  } else if (chat.client == upstream) {
    // Anthropic → Anthropic: the client's body with the model replaced.
    if (!dialects::anthropic::patch_model(chat.request.body, d.config->model, body))
      refused = ApiError::make(ErrorKind::invalid_request, "The request body is not valid JSON.");
  } else {
    p.translated = true;
    if (!chat.canonical) {
      auto decoded = decode_on_heap(chat.client, chat.request.body,
                                    ex.rt->config().server.max_json_depth);
      if (auto* e = std::get_if<ApiError>(&decoded)) {
        // The client's request itself cannot be translated: no deployment will do better.
        fail_attempt(ex, failure, *e);
        return Outcome::give_up;
      }
      chat.canonical = std::move(std::get<std::unique_ptr<core::ChatRequest>>(decoded));
    }
    dialects::Target target;
    target.dialect = upstream;
    target.type = type;
    target.model = d.config->model;
    target.default_max_tokens = d.config->max_tokens;
    target.drop_unsupported = d.provider->config->drop_unsupported_params;
    refused = dialects::encode_upstream_request(*chat.canonical, target, p.sent);
    body = std::move(p.sent.body);
    ex.set_dropped(p.sent.dropped);
  }
  if (refused) {
    spdlog::info("{}: {} skipped: {}", ex.request_id, d.config->name, refused->message);
    fail_attempt(ex, failure, std::move(*refused));
    return Outcome::next;
  }

  if (chat.endpoint == Endpoint::embeddings) head += d.embeddings_head;
  else if (chat.stream) head += d.stream_head;
  else head += d.chat_head;
  head += "X-Request-Id: "sv;
  head += ex.request_id;
  head += chat.stream ? "\r\nAccept: text/event-stream\r\nContent-Length: "sv
                      : "\r\nAccept: application/json\r\nContent-Length: "sv;
  char length[24];
  head.append(length, std::to_chars(length, length + sizeof length, body.size()).ptr);
  head += "\r\n\r\n"sv;
  return std::nullopt;
}

net::Task<Gateway::Outcome> Gateway::attempt(const RouteRuntime& route, Chat& chat,
                                             std::uint16_t index, int hedge_index,
                                             routing::HedgeBudget* budget, bool last_candidate,
                                             net::UpstreamExchange** current,
                                             net::ResponseWriter& writer, Exchange& ex,
                                             Failure& failure) {
  const DeploymentRuntime& d = *route.candidates[index];
  ex.hedge_started = false;
  const auto started = net::Clock::now();
  const std::int64_t now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(started.time_since_epoch()).count();
  auto elapsed_ms = [&started] { return ms_since(started); };

  // Health may have changed since the plan (this request's own failures, or others').
  bool probe = false;
  health::Snapshot h;  // if/else, not ?: — GCC 12 mishandles conditional temporaries in coroutines
  if (d.health) h = d.health->read(now_ms);
  if (d.health && ex.rt->config().health.circuit_breaking) {
    if (h.state == health::State::open || h.state == health::State::cooling) {
      ex.add_attempt(index, "skipped: " + std::string(health::to_string(h.state)), 0, 0);
      co_return Outcome::next;
    }
    if (h.state == health::State::half_open) {
      if (!d.health->try_probe(now_ms)) {
        ex.add_attempt(index, "skipped: half_open probe in flight", 0, 0);
        co_return Outcome::next;
      }
      probe = true;
    }
  }

  Prepared p(strings_);
  if (auto early = prepare(chat, d, p, ex, failure)) {
    if (probe) d.health->release_probe(health::steady_now_ms());
    ex.add_attempt(index, "skipped: " + (failure.error ? failure.error->code : std::string("refused")), 0, 0);
    co_return *early;
  }

  ++ex.attempts;
  ex.deployment = d.config->name;
  ex.upstream_model = d.config->model;
  ex.answered_by = &d;
  ex.answered_index = index;
  const routing::Policy& policy = route.config->policy;
  std::optional<std::chrono::milliseconds> ttft_limit;
  ex.first_event_deadline.reset();
  if (policy.ttft_ms) {
    ttft_limit = std::chrono::milliseconds(policy.ttft_ms);
    ex.first_event_deadline = started + *ttft_limit;
  }

  net::UpstreamExchange up(pool_, d.provider->origin);
  up.limit(ttft_limit, ex.deadline);
  current[0] = &up;
  struct Reset {
    net::UpstreamExchange** slots;
    ~Reset() { slots[0] = slots[1] = nullptr; }
  } reset{current};
  struct InFlight {
    health::DeploymentHealth* h;
    explicit InFlight(health::DeploymentHealth* x) : h(x) { if (h) h->begin(); }
    ~InFlight() { if (h) h->end(); }
  } in_flight{d.health};

  // Hedging: if the first byte is later than the delay, a backup starts on the next entry; the
  // first usable answer wins and the other is cancelled.
  std::int64_t hedge_delay = -1;
  if (hedge_index >= 0 && budget) hedge_delay = routing::hedge_delay_ms(route.config->hedge, h.p95_ttft_ms);
  if (hedge_delay >= 0) {
    co_return co_await attempt_hedged(route, chat, index, static_cast<std::uint16_t>(hedge_index),
                                      hedge_delay, *budget, probe, p, up, last_candidate, current,
                                      writer, ex, failure);
  }
  net::UpstreamError err = co_await up.start(p.head(), p.body());
  Outcome outcome = co_await respond(chat, d, p, err, last_candidate, up, writer, ex, failure);
  settle_attempt(d, index, probe, outcome, elapsed_ms(), false, ex);
  co_return outcome;
}

net::Task<Gateway::Outcome> Gateway::attempt_hedged(
    const RouteRuntime& route, Chat& chat, std::uint16_t index, std::uint16_t hedge_index,
    std::int64_t delay_ms, routing::HedgeBudget& budget, bool probe, Prepared& p,
    net::UpstreamExchange& up, bool last_candidate, net::UpstreamExchange** current,
    net::ResponseWriter& writer, Exchange& ex, Failure& failure) {
  const DeploymentRuntime& d = *route.candidates[index];
  const DeploymentRuntime& b = *route.candidates[hedge_index];
  const auto started = net::Clock::now();
  net::Timer wake(loop_.io());
  Racer primary;
  primary.wake = &wake;
  auto log_exception = [](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      spdlog::error("hedged attempt: {}", x.what());
    }
  };
  net::spawn(loop_.io(), race(up, p.head(), p.body(), primary), log_exception);
  wake.expires_after(std::chrono::milliseconds(delay_ms));
  co_await wake.async_wait(net::nothrow);

  Racer backup;
  backup.wake = &wake;
  Prepared bp(strings_);
  std::optional<net::UpstreamExchange> bup;
  bool backup_probe = false;
  bool hedged = false;
  std::optional<net::Clock::time_point> backup_first_event;
  double backup_started_ms = 0;
  if (!primary.done && !writer.client_gone() && budget.try_spend()) {
    const std::int64_t now_ms = health::steady_now_ms();
    bool admissible = true;
    if (b.health && ex.rt->config().health.circuit_breaking) {
      health::State s = b.health->read(now_ms).state;
      if (s == health::State::open || s == health::State::cooling) admissible = false;
      else if (s == health::State::half_open) admissible = backup_probe = b.health->try_probe(now_ms);
    }
    Failure ignored;
    if (admissible && !prepare(chat, b, bp, ex, ignored)) {
      bup.emplace(pool_, b.provider->origin);
      std::optional<std::chrono::milliseconds> ttft_limit;
      if (route.config->policy.ttft_ms) ttft_limit = std::chrono::milliseconds(route.config->policy.ttft_ms);
      bup->limit(ttft_limit, ex.deadline);
      if (ttft_limit) backup_first_event = net::Clock::now() + *ttft_limit;
      current[1] = &*bup;
      if (b.health) b.health->begin();
      net::spawn(loop_.io(), race(*bup, bp.head(), bp.body(), backup), log_exception);
      hedged = true;
      ex.hedge_started = true;
      ex.decision->hedged = true;
      ++ex.attempts;
      backup_started_ms = ms_since(started);
      spdlog::debug("{}: hedging {} with {} after {} ms", ex.request_id, d.config->name, b.config->name, delay_ms);
    } else if (backup_probe) {
      b.health->release_probe(now_ms);
      backup_probe = false;
    }
  }

  // The first usable answer wins; with both failed, the primary's failure is the one reported.
  auto usable = [](const Racer& r, const net::UpstreamExchange& x) {
    return r.done && r.error == net::UpstreamError::none && is_answer_status(x.response().status);
  };
  int winner = -1;
  for (;;) {
    if (usable(primary, up)) winner = 0;
    else if (hedged && usable(backup, *bup)) winner = 1;
    else if (primary.done && (!hedged || backup.done)) winner = 0;
    if (winner >= 0) break;
    wake.expires_at(net::Timer::time_point::max());
    co_await wake.async_wait(net::nothrow);
  }
  // The loser is cancelled, and awaited: its exchange lives in this frame.
  if (winner == 1 && !primary.done) up.cancel();
  if (winner == 0 && hedged && !backup.done) bup->cancel();
  while (!primary.done || (hedged && !backup.done)) {
    wake.expires_at(net::Timer::time_point::max());
    co_await wake.async_wait(net::nothrow);
  }
  if (hedged && b.health) b.health->end();

  const double total_ms = ms_since(started);
  Outcome outcome;
  if (winner == 0) {
    ex.deployment = d.config->name;
    ex.upstream_model = d.config->model;
    ex.answered_by = &d;
    ex.answered_index = index;
    outcome = co_await respond(chat, d, p, primary.error, last_candidate && !hedged, up, writer, ex, failure);
    settle_attempt(d, index, probe, outcome, total_ms, false, ex);
    if (hedged) {
      // The backup lost: a failure of its own counts against it; a cancelled one only tells
      // that its first byte was later than this.
      ex.last = {};
      if (backup.error == net::UpstreamError::cancelled) {
        if (b.health) b.health->observe_latency(total_ms - backup_started_ms, -1);
        ex.last.what = "cancelled: the primary answered first";
      } else {
        classify_start(backup, *bup, ex.last);
      }
      settle_attempt(b, hedge_index, backup_probe, Outcome::next, total_ms - backup_started_ms, true, ex);
    }
  } else {
    ex.last = {};
    if (d.health) d.health->observe_latency(total_ms, -1);
    ex.last.what = "cancelled: the hedge answered first";
    settle_attempt(d, index, probe, Outcome::next, total_ms, false, ex);
    ex.deployment = b.config->name;
    ex.upstream_model = b.config->model;
    ex.answered_by = &b;
    ex.answered_index = hedge_index;
    ex.set_dropped(bp.sent.dropped);
    ex.first_event_deadline = backup_first_event;
    outcome = co_await respond(chat, b, bp, backup.error, last_candidate, *bup, writer, ex, failure);
    settle_attempt(b, hedge_index, backup_probe, outcome, total_ms - backup_started_ms, true, ex);
  }
  co_return outcome;
}

void Gateway::classify_start(const Racer& r, const net::UpstreamExchange& up, AttemptResult& out) {
  if (r.error != net::UpstreamError::none) {
    out.what = std::string(net::to_string(r.error));
    out.record = !is_local(r.error);
    out.outcome = health_outcome(r.error);
    return;
  }
  out.status = up.response().status;
  out.what = "http_" + std::to_string(out.status);
  out.record = true;
  out.outcome = health_outcome(out.status);
}

void Gateway::settle_attempt(const DeploymentRuntime& d, std::uint16_t index, bool probe, Outcome outcome,
                             double ms, bool hedge, Exchange& ex) {
  const std::int64_t now_ms = health::steady_now_ms();
  AttemptResult& r = ex.last;
  if (d.health) {
    if (r.record) {
      d.health->record(r.outcome, now_ms, r.retry_after_ms, r.ttft_ms, r.tokens_per_s);
      if (r.rate_limits.remaining_requests >= 0 || r.rate_limits.remaining_tokens >= 0)
        d.health->observe_rate_limits(r.rate_limits, now_ms);
    } else if (probe) {
      d.health->release_probe(now_ms);
    }
  }
  if (r.outcome == health::Outcome::rate_limited && r.retry_after_ms >= 0)
    ex.retry_after_ms = ex.retry_after_ms < 0 ? r.retry_after_ms : std::min(ex.retry_after_ms, r.retry_after_ms);
  if (r.what.empty()) r.what = outcome == Outcome::answered ? "ok" : "failed";
  ex.add_attempt(index, std::move(r.what), r.status, ms, hedge);
  r = {};
}

net::Task<Gateway::Outcome> Gateway::respond(Chat& chat, const DeploymentRuntime& d, Prepared& p,
                                             net::UpstreamError err, bool last_candidate,
                                             net::UpstreamExchange& up,
                                             net::ResponseWriter& writer, Exchange& ex,
                                             Failure& failure) {
  if (writer.client_gone()) co_return Outcome::client_gone;
  chat.anthropic_encoded = p.sent.anthropic;
  const dialects::Dialect upstream = d.provider->dialect();
  AttemptResult& result = ex.last;
  result = {};
  if (err != net::UpstreamError::none) {
    result.what = std::string(net::to_string(err));
    result.record = !is_local(err);
    result.outcome = health_outcome(err);
    spdlog::warn("{}: attempt {} on {} failed: {}{}{}", ex.request_id, ex.attempts,
                 d.config->name, net::to_string(err), up.detail().empty() ? "" : " - ",
                 up.detail());
    fail_attempt(ex, failure, upstream_failure(err, d.config->name));
    co_return Outcome::next;
  }
  ex.ttfb_ms = std::chrono::duration<double, std::milli>(up.time_to_head()).count();
  const auto& response = up.response();
  result.status = response.status;
  result.record = true;
  // One walk over the answer's fields: the ones passed on to the client, and what they say
  // about rate limits and retrying.
  ex.passed_count = 0;
  for (std::size_t i = 0; i < response.header_count; ++i) {
    const auto h = response.header(i);
    if (ex.passed_count < kMaxPassedHeaders && is_passed_header(h.name))
      ex.passed[ex.passed_count++] = {h.name, h.value};
    health::read_answer_field(h.name, h.value, result.rate_limits, result.retry_after_ms);
  }

  if (response.status >= 300 && response.status < 400) {
    result.what = "redirect";
    result.outcome = health::Outcome::server_error;
    // Redirects are not followed (the body would have to be re-sent elsewhere): a misconfigured
    // base_url, reported as a bad upstream.
    fail_attempt(ex, failure,
                 ApiError::make(ErrorKind::upstream_connect,
                                "Upstream deployment \"" + d.config->name +
                                    "\" answered with a redirect (HTTP " +
                                    std::to_string(response.status) + "); check its base_url.",
                                {}, "upstream_redirect"));
    co_return Outcome::next;
  }
  if (response.status >= 400) {
    result.what = "http_" + std::to_string(response.status);
    result.outcome = health_outcome(response.status);
    std::string error_body;
    net::UpstreamError e2 = co_await up.read_all(error_body, kMaxUpstreamErrorBody);
    if (writer.client_gone()) co_return Outcome::client_gone;
    if (e2 != net::UpstreamError::none) {
      fail_attempt(ex, failure, upstream_failure(e2, d.config->name));
      co_return Outcome::next;
    }
    bool same_dialect = chat.client == upstream && !p.translated;
    if (same_dialect) {
      failure.error.reset();
      failure.status = response.status;
      failure.body = std::move(error_body);
    } else {
      failure.error = dialects::upstream_error(response.status, error_body, d.config->name);
      failure.status = 0;
    }
    ex.keep_passed_headers();  // the answer goes out after this exchange ends
    bool retry = core::is_retryable(ErrorKind::upstream_status, response.status) && !last_candidate;
    co_return retry ? Outcome::next : Outcome::give_up;
  }

  result.outcome = health::Outcome::success;
  result.ttft_ms = std::chrono::duration<double, std::milli>(up.time_to_head()).count();
  std::string_view content_type = response.find(net::http1::Known::content_type);
  bool sse = chat.stream && content_type.substr(0, 17) == "text/event-stream";
  if (!sse) co_return co_await relay_json(chat, d, up, writer, ex, failure);

  // In its own coroutine: the translator's state is in that frame only when a stream is translated
  // (every open stream holds its frames).
  if (p.translated) co_return co_await relay_translated(chat, d, p.sent, up, writer, ex, failure);
  if (chat.client == dialects::Dialect::anthropic) {
    struct PassAnthropic final : StreamProcessor {
      core::TokenUsage usage;
      bool event(const dialects::SseEvent& e, std::string& out, Exchange& ex) override {
        if (e.name == "message_start" || e.name == "message_delta") {
          dialects::anthropic::probe_usage(e.data, usage);
          if (usage.known) ex.usage = usage;
        }
        out.append(e.raw);
        return true;
      }
      void end(std::string_view pending, std::string& out, Exchange&) override { out.append(pending); }
      void error(const ApiError& e, std::string& out, Exchange& ex) override {
        out += "event: error\ndata: ";
        out += dialects::anthropic::error_body(e, ex.request_id);
        out += "\n\n";
      }
    };
    PassAnthropic processor;
    co_return co_await relay_stream(processor, d, up, writer, ex, failure);
  }
  struct PassOpenAI final : StreamProcessor {
    bool client_wants_usage = false;
    bool event(const dialects::SseEvent& e, std::string& out, Exchange& ex) override {
      if (e.data != "[DONE]") {
        openai::UsageProbe probe = openai::probe_usage(e.data);
        if (probe.usage) {
          ex.usage = openai::to_canonical(*probe.usage);
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
  co_return co_await relay_stream(processor, d, up, writer, ex, failure);
}

net::Task<Gateway::Outcome> Gateway::relay_translated(Chat& chat, const DeploymentRuntime& d,
                                                      const dialects::UpstreamRequest& sent,
                                                      net::UpstreamExchange& up,
                                                      net::ResponseWriter& writer, Exchange& ex,
                                                      Failure& failure) {
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
      if (t.usage().known) ex.usage = t.usage();
    }
  };
  Translate processor(dialects::StreamTranslator(chat.client, d.provider->dialect(), sent,
                                                 chat.client_wants_usage, chat.model,
                                                 tool_call_ids(ex.request_id)));
  co_return co_await relay_stream(processor, d, up, writer, ex, failure);
}

net::Task<Gateway::Outcome> Gateway::relay_json(Chat& chat, const DeploymentRuntime& d,
                                                net::UpstreamExchange& up,
                                                net::ResponseWriter& writer, Exchange& ex,
                                                Failure& failure) {
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
  if (writer.client_gone()) co_return Outcome::client_gone;
  if (err != net::UpstreamError::none) {
    fail_attempt(ex, failure, upstream_failure(err, d.config->name));
    co_return Outcome::next;
  }
  // A 2xx that is not a JSON object is a broken upstream; nothing was sent yet, so try the next
  // one. (Framing already proved the body complete; a full validation would scan every byte
  // for what upstreams practically never send.)
  if (!looks_like_json_object(body)) {
    fail_attempt(ex, failure, upstream_failure(net::UpstreamError::bad_response, d.config->name));
    co_return Outcome::next;
  }
  const dialects::Dialect upstream = d.provider->dialect();
  ex.status = up.response().status;
  if (chat.endpoint == Endpoint::embeddings) {
    if (upstream == dialects::Dialect::gemini) {
      auto translated = dialects::gemini::decode_embeddings(body, chat.model, chat.embeddings_base64);
      if (auto* e = std::get_if<ApiError>(&translated)) {
        fail_attempt(ex, failure, *e);
        co_return Outcome::next;
      }
      // Gemini's embeddings API reports no tokens: the request's own estimate is billed, and the
      // record says it was estimated.
      ex.usage = {};
      ex.usage.known = true;
      ex.usage.input = ex.decision ? ex.decision->traits.input_tokens : 0;
      ex.usage_estimated = true;
      ex.set_cost_header();
      co_await writer.send(ex.status, "application/json", std::get<std::string>(translated), ex.headers());
      co_return Outcome::answered;
    }
    if (auto u = openai::probe_usage(body, false).usage) ex.usage = openai::to_canonical(*u);
  } else if (chat.client != upstream) {
    dialects::gemini::IdSource ids = tool_call_ids(ex.request_id);
    dialects::UpstreamRequest sent;
    sent.anthropic = chat.anthropic_encoded;
    core::TokenUsage usage;
    auto translated = dialects::translate_response(chat.client, upstream, body, sent, ids, usage);
    if (auto* e = std::get_if<ApiError>(&translated)) {
      if (e->kind == ErrorKind::invalid_request) {
        // A refusal (a prompt blocked by safety filters): the client's answer, not a failover.
        fail_attempt(ex, failure, *e);
        co_return Outcome::give_up;
      }
      fail_attempt(ex, failure, *e);
      co_return Outcome::next;
    }
    if (usage.known) ex.usage = usage;
    ex.set_cost_header();
    co_await writer.send(ex.status, "application/json", std::get<std::string>(translated), ex.headers());
    co_return Outcome::answered;
  } else if (upstream == dialects::Dialect::anthropic) {
    core::TokenUsage usage;
    dialects::anthropic::probe_usage(body, usage);
    if (usage.known) ex.usage = usage;
  } else if (auto u = openai::probe_usage(body, false).usage) {
    ex.usage = openai::to_canonical(*u);
  }
  ex.set_cost_header();
  std::string_view content_type = up.response().find(net::http1::Known::content_type);
  co_await writer.send(ex.status,
                       content_type.empty() ? std::string_view("application/json") : content_type,
                       body, ex.headers());
  co_return Outcome::answered;
}

net::Task<Gateway::Outcome> Gateway::relay_stream(StreamProcessor& processor,
                                                  const DeploymentRuntime& d,
                                                  net::UpstreamExchange& up,
                                                  net::ResponseWriter& writer, Exchange& ex,
                                                  Failure& failure) {
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
  if (ex.first_event_deadline) up.first_body_by(ex.first_event_deadline);
  while (!done) {
    payload.clear();
    out.clear();
    net::UpstreamError err = co_await up.read_some(payload, done);
    if (writer.client_gone()) co_return Outcome::client_gone;
    std::optional<ApiError> broken;
    if (err != net::UpstreamError::none) {
      broken = upstream_failure(err, d.config->name);
    } else {
      bool malformed = false;
      bool within_limit = splitter.feed(payload, [&](const dialects::SseEvent& event) {
        if (!processor.event(event, out, ex)) malformed = true;
      });
      if (!within_limit) {
        up.cancel();
        broken = upstream_failure(net::UpstreamError::bad_response, d.config->name);
        broken->message += " (an event larger than 8 MiB)";
      } else if (malformed) {
        up.cancel();
        broken = upstream_failure(net::UpstreamError::bad_response, d.config->name);
        broken->message += " (a malformed stream event)";
      }
    }
    if (broken) {
      // The deployment's fault either way.
      ex.last.outcome = broken->kind == ErrorKind::upstream_timeout ? health::Outcome::timeout
                                                                   : health::Outcome::server_error;
      if (!committed) {
        ex.last.what = "stream_failed_before_first_event: " + broken->code;
        fail_attempt(ex, failure, std::move(*broken));
        co_return Outcome::next;
      }
      ex.error = broken->code;
      ex.last.what = "stream_broken: " + broken->code;
      processor.error(*broken, out, ex);
      co_await writer.write_chunk(out, true);
      co_return Outcome::answered;
    }
    if (done) processor.end(splitter.pending(), out, ex);
    if (!committed) {
      if (out.empty() && !done) continue;
      committed = true;
      if (ex.first_event_deadline) up.first_body_by(std::nullopt);
      ex.status = 200;
      co_await writer.start_stream(200, "text/event-stream", ex.headers());
    }
    if ((!out.empty() || done) && !co_await writer.write_chunk(out, done)) {
      up.cancel();
      co_return Outcome::client_gone;
    }
  }
  if (ex.usage.known && ex.usage.output > 0) {
    double seconds = std::chrono::duration<double>(net::Clock::now() - head_at).count();
    if (seconds > 0.001) ex.last.tokens_per_s = static_cast<double>(ex.usage.output) / seconds;
  }
  co_return Outcome::answered;
}

net::Task<> Gateway::answer_failure(net::ResponseWriter& writer, Exchange& ex,
                                    const Failure& failure) {
  if (failure.status == 0) {
    co_await fail(writer, ex,
                  failure.error.value_or(ApiError::make(ErrorKind::internal, "No attempt was made.")));
    co_return;
  }
  ex.status = failure.status;
  ex.error = "upstream_" + std::to_string(failure.status);
  bool pass = ex.client == dialects::Dialect::anthropic
                  ? failure.body.find("\"error\"") != std::string::npos && looks_like_json_object(failure.body)
                  : is_openai_error_json(failure.body);
  if (pass) {
    co_await writer.send(failure.status, "application/json", failure.body, ex.headers());
    co_return;
  }
  ApiError e = ApiError::make(ErrorKind::upstream_status,
                              "Upstream deployment \"" + std::string(ex.deployment) +
                                  "\" answered HTTP " + std::to_string(failure.status) + ".");
  e.status = failure.status;
  std::string body = dialects::error_body(ex.client, e, ex.request_id);
  co_await writer.send(failure.status, "application/json", body, ex.headers());
}

}  // namespace switchyard::server
