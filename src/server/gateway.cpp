#include "server/gateway.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include <array>
#include <vector>
#include <charconv>
#include <cstring>

#include "dialects/openai/chat_request.hpp"
#include "dialects/openai/usage.hpp"
#include "dialects/json_util.hpp"
#include "dialects/sse.hpp"
#include "dialects/translate.hpp"
#include "dialects/upstream_error.hpp"

namespace switchyard::server {

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

ApiError upstream_failure(net::UpstreamError e, std::string_view deployment) {
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
  auto starts = [&](std::string_view prefix) {
    return name.size() >= prefix.size() && net::http1::iequals(name.substr(0, prefix.size()), prefix);
  };
  return starts("x-ratelimit-") || net::http1::iequals(name, "retry-after") ||
         net::http1::iequals(name, "retry-after-ms");
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

/// Per-request state: what the access log and the response headers report.
struct Gateway::Exchange {
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
  std::optional<openai::Usage> usage;
  double ttfb_ms = -1;
  std::string error;
  std::string attempts_text;
  std::array<net::HeaderField, 5 + kMaxPassedHeaders> header_storage;

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

  void pass_upstream_headers(const net::http1::ResponseHead& response) {
    passed_count = 0;
    for (std::size_t i = 0; i < response.header_count && passed_count < kMaxPassedHeaders; ++i) {
      const auto& h = response.headers[i];
      if (is_passed_header(h.name)) passed[passed_count++] = {h.name, h.value};
    }
  }

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

  std::span<const net::HeaderField> headers() {
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
    return {header_storage.data(), n};
  }
};

Gateway::Gateway(net::Loop& loop, std::shared_ptr<const Runtime> runtime, telemetry::AccessLog& log)
    : loop_(loop),
      runtime_(std::move(runtime)),
      log_(log),
      pool_(loop.io(), loop.deadlines(), upstream_options(runtime_->config().upstream)),
      rng_(std::random_device{}() ^ (static_cast<std::uint64_t>(loop.index()) << 32)) {}

void Gateway::on_drain() { pool_.close_idle(); }

std::string_view Gateway::make_request_id(char (&out)[128]) {
  // 64 random bits and a per-loop counter: unique without coordination between loops.
  static constexpr char kHex[] = "0123456789abcdef";
  std::uint64_t r = rng_();
  std::uint64_t c = ++counter_;
  std::memcpy(out, "req_", 4);
  for (int i = 0; i < 16; ++i) out[4 + i] = kHex[(r >> (60 - 4 * i)) & 0xF];
  for (int i = 0; i < 6; ++i) out[20 + i] = kHex[(c >> (20 - 4 * i)) & 0xF];
  return {out, 26};
}

asio::awaitable<void> Gateway::fail(net::ResponseWriter& writer, Exchange& ex, const ApiError& error) {
  ex.status = error.status;
  if (ex.error.empty()) ex.error = error.code.empty() ? std::string(core::openai_type_of(error.kind)) : error.code;
  std::string body = dialects::error_body(ex.client, error, ex.request_id);
  co_await writer.send(error.status, "application/json", body, ex.headers());
}

asio::awaitable<const config::KeyConfig*> Gateway::authenticate(const net::Request& request,
                                                                net::ResponseWriter& writer,
                                                                Exchange& ex) {
  const config::KeyConfig* key = find_key(request, ex);
  if (!key) {
    // if/else, not ?: — GCC 12 mishandles conditional temporaries in coroutines.
    ApiError error;
    if (ex.client == dialects::Dialect::anthropic) {
      if (request.header("x-api-key").empty() && request.header("authorization").empty())
        error = ApiError::make(ErrorKind::authentication, "x-api-key header is required", {},
                               "missing_api_key");
      else
        error = ApiError::make(ErrorKind::authentication, "invalid x-api-key", {}, "invalid_api_key");
    } else if (request.header("authorization").empty())
      error = ApiError::make(ErrorKind::authentication,
                             "You didn't provide an API key. You need to provide your API key in "
                             "an Authorization header using Bearer auth (i.e. Authorization: "
                             "Bearer YOUR_KEY).",
                             {}, "missing_api_key");
    else
      error = ApiError::make(ErrorKind::authentication, "Incorrect API key provided.", {},
                             "invalid_api_key");
    co_await fail(writer, ex, error);
  }
  co_return key;
}

const config::KeyConfig* Gateway::find_key(const net::Request& request, Exchange& ex) const {
  std::string_view token;
  std::string_view auth = request.header("authorization");
  if (!auth.empty()) {
    if (auth.size() > 7 && net::http1::iequals(auth.substr(0, 7), "bearer ")) token = auth.substr(7);
    while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  } else if (ex.client == dialects::Dialect::anthropic) {
    token = request.header("x-api-key");  // Anthropic's SDK sends the key here
  }
  if (token.empty()) return nullptr;
  const config::KeyConfig* key = nullptr;
  if (auto it = key_cache_.find(token); it != key_cache_.end()) {
    key = it->second;
  } else if ((key = runtime_->keys().find(token))) {
    if (key_cache_.size() >= 4096) key_cache_.clear();  // bounded; only valid keys get in
    key_cache_.emplace(token, key);
  }
  if (!key) return nullptr;
  ex.key_name = key->name;
  return key;
}

asio::awaitable<void> Gateway::handle(net::Request request, net::ResponseWriter& writer) {
  Exchange ex;
  std::string_view given_id = request.header("x-request-id");
  if (valid_request_id(given_id)) {
    std::memcpy(ex.id_storage, given_id.data(), given_id.size());
    ex.request_id = {ex.id_storage, given_id.size()};
  } else {
    ex.request_id = make_request_id(ex.id_storage);
  }

  std::string_view path = request.path();
  std::string_view method = request.method();
  // Each known path takes one method; another gets a 405 naming it.
  auto allowed = [&](std::string_view expected) -> asio::awaitable<bool> {
    if (method == expected) co_return true;
    ApiError e = ApiError::make(ErrorKind::method_not_allowed,
                                "Method " + std::string(method) + " is not allowed on " +
                                    std::string(path) + "; use " + std::string(expected) + ".",
                                {}, "method_not_allowed");
    ex.status = e.status;
    ex.error = e.code;
    const net::HeaderField allow[] = {{"x-request-id", ex.request_id}, {"Allow", expected}};
    std::string body = dialects::error_body(ex.client, e, ex.request_id);
    co_await writer.send(e.status, "application/json", body, allow);
    co_return false;
  };

  if (path.substr(0, 12) == "/v1/messages") ex.client = dialects::Dialect::anthropic;
  if (path == "/v1/chat/completions") {
    if (co_await allowed("POST")) co_await chat(request, writer, ex);
  } else if (path == "/v1/messages") {
    if (co_await allowed("POST")) co_await chat(request, writer, ex);
  } else if (path == "/v1/messages/count_tokens") {
    if (co_await allowed("POST")) co_await count_tokens(request, writer, ex);
  } else if (path == "/v1/embeddings") {
    if (co_await allowed("POST")) co_await embeddings(request, writer, ex);
  } else if (path == "/v1/models") {
    if (co_await allowed("GET")) co_await models(request, writer, ex);
  } else if (path == "/healthz") {
    if (co_await allowed("GET")) {
      ex.status = 200;
      co_await writer.send(200, "application/json", R"({"status":"ok"})", ex.headers());
    }
  } else if (path == "/readyz") {
    if (co_await allowed("GET")) {
      bool ready = !loop_.draining();
      ex.status = ready ? 200 : 503;
      std::string_view body = ready ? R"({"status":"ready"})" : R"({"status":"draining"})";
      co_await writer.send(ex.status, "application/json", body, ex.headers());
    }
  } else {
    co_await fail(writer, ex, ApiError::make(ErrorKind::not_found,
                                             "Unknown request URL: " + std::string(method) + " " +
                                                 std::string(path) + ". Please check the URL.",
                                             {}, "unknown_url"));
  }
  log_access(method, path, ex, request.received);
}

void Gateway::on_refused(const net::http1::RequestHead* head, const ApiError& error,
                         net::Clock::time_point received) {
  Exchange ex;
  ex.status = error.status;
  ex.error = error.code;
  std::string_view target = head ? head->target : std::string_view{};
  log_access(head ? head->method : std::string_view{}, target.substr(0, target.find('?')),
             ex, received);
}

void Gateway::log_access(std::string_view method, std::string_view path,
                         const Exchange& ex, net::Clock::time_point received) {
  if (!log_.enabled()) return;
  telemetry::AccessRecord r;
  r.request_id = ex.request_id;
  r.method = method;
  r.path = path;
  r.key_name = ex.key_name;
  r.route = ex.route;
  r.model = ex.upstream_model;
  r.deployment = ex.deployment;
  r.status = ex.status;
  r.stream = ex.stream;
  r.attempts = ex.attempts;
  if (ex.usage) {
    r.prompt_tokens = ex.usage->prompt_tokens;
    r.completion_tokens = ex.usage->completion_tokens;
    r.total_tokens = ex.usage->total_tokens;
    r.cached_tokens = ex.usage->cached_tokens;
    r.reasoning_tokens = ex.usage->reasoning_tokens;
  }
  r.latency_ms = ms_since(received);
  r.upstream_ttfb_ms = ex.ttfb_ms;
  r.error = ex.error;
  log_.write(r);
}

asio::awaitable<void> Gateway::models(net::Request& request, net::ResponseWriter& writer,
                                      Exchange& ex) {
  // Anthropic's SDK lists models at the same path, with its version header: answered in its shape.
  bool anthropic = !request.header("anthropic-version").empty();
  if (anthropic) ex.client = dialects::Dialect::anthropic;
  const config::KeyConfig* key = co_await authenticate(request, writer, ex);
  if (!key) co_return;
  std::string body = anthropic ? R"({"data":[)" : R"({"object":"list","data":[)";
  std::string_view first_id, last_id;
  for (const auto& route : runtime_->routes()) {
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

asio::awaitable<const RouteRuntime*> Gateway::resolve_route(std::string_view model,
                                                            const config::KeyConfig& key,
                                                            net::ResponseWriter& writer,
                                                            Exchange& ex) {
  const RouteRuntime* route = runtime_->find_route(model);
  if (!route) {
    co_await fail(writer, ex, ApiError::make(ErrorKind::not_found,
                                             "The model `" + std::string(model) +
                                                 "` does not exist or you do not have access to it.",
                                             "model", "model_not_found"));
    co_return nullptr;
  }
  ex.route = route->config->name;
  if (!governance::KeyStore::allows(key, route->config->name)) {
    co_await fail(writer, ex, ApiError::make(ErrorKind::permission,
                                             "This API key may not use the model `" +
                                                 std::string(model) + "`.",
                                             "model", "model_not_allowed"));
    co_return nullptr;
  }
  if (route->candidates.empty()) {
    co_await fail(writer, ex, ApiError::make(ErrorKind::unavailable,
                                             "No deployment of `" + std::string(model) +
                                                 "` is enabled (check the providers' api keys).",
                                             {}, "no_deployment"));
    co_return nullptr;
  }
  co_return route;
}

asio::awaitable<void> Gateway::chat(net::Request& request, net::ResponseWriter& writer,
                                    Exchange& ex) {
  const config::KeyConfig* key = co_await authenticate(request, writer, ex);
  if (!key) co_return;
  const config::ServerConfig& server_config = runtime_->config().server;
  Chat chat{request, ex.client};
  if (ex.client == dialects::Dialect::openai) {
    auto inspected = openai::inspect_chat_request(request.body, {server_config.max_json_depth});
    if (auto* e = std::get_if<ApiError>(&inspected)) {
      co_await fail(writer, ex, *e);
      co_return;
    }
    chat.info = std::move(std::get<openai::ChatRequestInfo>(inspected));
    chat.model = std::move(chat.info->model);  // the info's own copy is not read again
    chat.stream = chat.info->stream;
    chat.client_wants_usage = chat.info->client_wants_usage;
  } else {
    auto decoded = decode_on_heap(ex.client, request.body, server_config.max_json_depth);
    if (auto* e = std::get_if<ApiError>(&decoded)) {
      co_await fail(writer, ex, *e);
      co_return;
    }
    chat.canonical = std::move(std::get<std::unique_ptr<core::ChatRequest>>(decoded));
    chat.model = chat.canonical->model;  // the route name; canonical->model is not sent on
    chat.stream = chat.canonical->stream;
    chat.client_wants_usage = true;
  }
  ex.stream = chat.stream;
  const RouteRuntime* route = co_await resolve_route(chat.model, *key, writer, ex);
  if (!route) co_return;
  co_await run_candidates(*route, chat, writer, ex);
}

asio::awaitable<void> Gateway::embeddings(net::Request& request, net::ResponseWriter& writer,
                                          Exchange& ex) {
  const config::KeyConfig* key = co_await authenticate(request, writer, ex);
  if (!key) co_return;
  Chat chat{request, dialects::Dialect::openai};
  chat.endpoint = Endpoint::embeddings;
  {
    auto parsed = dialects::parse_json(request.body, runtime_->config().server.max_json_depth + 1);
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
  const RouteRuntime* route = co_await resolve_route(chat.model, *key, writer, ex);
  if (!route) co_return;
  co_await run_candidates(*route, chat, writer, ex);
}

asio::awaitable<void> Gateway::count_tokens(net::Request& request, net::ResponseWriter& writer,
                                            Exchange& ex) {
  const config::KeyConfig* key = co_await authenticate(request, writer, ex);
  if (!key) co_return;
  auto decoded = dialects::anthropic::decode_request(
      request.body, runtime_->config().server.max_json_depth, /*require_max_tokens=*/false);
  if (auto* e = std::get_if<ApiError>(&decoded)) {
    co_await fail(writer, ex, *e);
    co_return;
  }
  const core::ChatRequest& r = std::get<core::ChatRequest>(decoded);
  const RouteRuntime* route = co_await resolve_route(r.model, *key, writer, ex);
  if (!route) co_return;
  std::string body = R"({"input_tokens":)" + std::to_string(dialects::estimate_tokens(r)) + "}";
  ex.status = 200;
  co_await writer.send(200, "application/json", body, ex.headers());
}

asio::awaitable<void> Gateway::run_candidates(const RouteRuntime& route, Chat& chat,
                                              net::ResponseWriter& writer, Exchange& ex) {
  // The client leaving cancels whatever upstream exchange is in progress.
  net::UpstreamExchange* current = nullptr;
  writer.watch_disconnect([&current] {
    if (current) current->cancel();
  });
  struct Forget {
    net::ResponseWriter& writer;
    ~Forget() { writer.forget_disconnect(); }
  } forget{writer};

  Failure failure;
  for (std::size_t i = 0; i < route.candidates.size(); ++i) {
    const DeploymentRuntime& d = *route.candidates[i];
    ++ex.attempts;
    ex.deployment = d.config->name;
    ex.upstream_model = d.config->model;

    net::UpstreamExchange up(pool_, d.provider->origin);
    current = &up;
    struct Reset {
      net::UpstreamExchange*& ref;
      ~Reset() { ref = nullptr; }
    } reset{current};

    Outcome outcome = co_await attempt(chat, d, i + 1 == route.candidates.size(), up, writer, ex,
                                       failure);
    if (outcome == Outcome::client_gone || writer.client_gone()) {
      if (!writer.started()) ex.status = 499;
      ex.error = "client_closed";
      co_return;
    }
    if (outcome == Outcome::answered) co_return;
    if (outcome == Outcome::give_up) break;
  }
  co_await answer_failure(writer, ex, failure);
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

openai::Usage to_openai_usage(const core::TokenUsage& u) {
  openai::Usage o;
  o.prompt_tokens = u.input;
  o.completion_tokens = u.output;
  o.total_tokens = u.input + u.output;
  o.cached_tokens = u.cache_read;
  o.reasoning_tokens = u.reasoning;
  return o;
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


asio::awaitable<Gateway::Outcome> Gateway::attempt(Chat& chat, const DeploymentRuntime& d,
                                                   bool last_candidate, net::UpstreamExchange& up,
                                                   net::ResponseWriter& writer, Exchange& ex,
                                                   Failure& failure) {
  StringPool::Loan body_loan{strings_}, head_loan{strings_};
  std::string& body = body_loan.s;
  std::string& head = head_loan.s;
  const dialects::Dialect upstream = d.provider->dialect();
  const auto* type = d.provider->type;
  bool translated = false;
  dialects::UpstreamRequest sent;
  std::optional<ApiError> refused;

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
      translated = true;
    } else {
      std::vector<std::string> dropped;
      refused = openai::adapt_for_vendor(chat.request.body, d.config->model, {}, {}, type->name,
                                         false, body, dropped);
    }
  } else if (chat.client == upstream && upstream == dialects::Dialect::openai) {
    if ((chat.info->params & d.provider->rejected_params) == 0) {
      openai::patch_chat_request(chat.request.body, *chat.info, d.config->model, body);
    } else {
      std::vector<std::string> dropped;
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
    translated = true;
    if (!chat.canonical) {
      auto decoded = decode_on_heap(chat.client, chat.request.body,
                                    runtime_->config().server.max_json_depth);
      if (auto* e = std::get_if<ApiError>(&decoded)) {
        // The client's request itself cannot be translated: no deployment will do better.
        fail_attempt(ex, failure, *e);
        co_return Outcome::give_up;
      }
      chat.canonical = std::move(std::get<std::unique_ptr<core::ChatRequest>>(decoded));
    }
    dialects::Target target;
    target.dialect = upstream;
    target.type = type;
    target.model = d.config->model;
    target.default_max_tokens = d.config->max_tokens;
    target.drop_unsupported = d.provider->config->drop_unsupported_params;
    refused = dialects::encode_upstream_request(*chat.canonical, target, sent);
    body = std::move(sent.body);
    chat.anthropic_encoded = sent.anthropic;
    ex.set_dropped(sent.dropped);
  }
  if (refused) {
    spdlog::info("{}: {} skipped: {}", ex.request_id, d.config->name, refused->message);
    fail_attempt(ex, failure, std::move(*refused));
    co_return Outcome::next;
  }

  if (chat.endpoint == Endpoint::embeddings) head += d.embeddings_head;
  else if (chat.stream) head += d.stream_head;
  else head += d.chat_head;
  head += "X-Request-Id: ";
  head += ex.request_id;
  head += chat.stream ? "\r\nAccept: text/event-stream\r\nContent-Length: "
                      : "\r\nAccept: application/json\r\nContent-Length: ";
  head += std::to_string(body.size());
  head += "\r\n\r\n";

  net::UpstreamError err = co_await up.start(head, body);
  if (writer.client_gone()) co_return Outcome::client_gone;
  if (err != net::UpstreamError::none) {
    spdlog::warn("{}: attempt {} on {} failed: {}{}{}", ex.request_id, ex.attempts,
                 d.config->name, net::to_string(err), up.detail().empty() ? "" : " - ",
                 up.detail());
    fail_attempt(ex, failure, upstream_failure(err, d.config->name));
    co_return Outcome::next;
  }
  ex.ttfb_ms = std::chrono::duration<double, std::milli>(up.time_to_head()).count();
  const auto& response = up.response();
  ex.pass_upstream_headers(response);

  if (response.status >= 300 && response.status < 400) {
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
    std::string error_body;
    net::UpstreamError e2 = co_await up.read_all(error_body, kMaxUpstreamErrorBody);
    if (writer.client_gone()) co_return Outcome::client_gone;
    if (e2 != net::UpstreamError::none) {
      fail_attempt(ex, failure, upstream_failure(e2, d.config->name));
      co_return Outcome::next;
    }
    bool same_dialect = chat.client == upstream && !translated;
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

  std::string_view content_type = response.find("content-type");
  bool sse = chat.stream && content_type.substr(0, 17) == "text/event-stream";
  if (!sse) co_return co_await relay_json(chat, d, up, writer, ex, failure);

  // In its own coroutine: the translator's state is in that frame only when a stream is translated
  // (every open stream holds its frames).
  if (translated) co_return co_await relay_translated(chat, d, sent, up, writer, ex, failure);
  if (chat.client == dialects::Dialect::anthropic) {
    struct PassAnthropic final : StreamProcessor {
      core::TokenUsage usage;
      bool event(const dialects::SseEvent& e, std::string& out, Exchange& ex) override {
        if (e.name == "message_start" || e.name == "message_delta") {
          dialects::anthropic::probe_usage(e.data, usage);
          if (usage.known) ex.usage = to_openai_usage(usage);
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
          ex.usage = probe.usage;
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

asio::awaitable<Gateway::Outcome> Gateway::relay_translated(Chat& chat, const DeploymentRuntime& d,
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
      if (t.usage().known) ex.usage = to_openai_usage(t.usage());
    }
  };
  Translate processor(dialects::StreamTranslator(chat.client, d.provider->dialect(), sent,
                                                 chat.client_wants_usage, chat.model,
                                                 tool_call_ids(ex.request_id)));
  co_return co_await relay_stream(processor, d, up, writer, ex, failure);
}

asio::awaitable<Gateway::Outcome> Gateway::relay_json(Chat& chat, const DeploymentRuntime& d,
                                                      net::UpstreamExchange& up,
                                                      net::ResponseWriter& writer, Exchange& ex,
                                                      Failure& failure) {
  StringPool::Loan loan{strings_};
  std::string& body = loan.s;
  net::UpstreamError err = co_await up.read_all(body, kMaxUpstreamBody);
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
      co_await writer.send(ex.status, "application/json", std::get<std::string>(translated), ex.headers());
      co_return Outcome::answered;
    }
    ex.usage = openai::probe_usage(body).usage;
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
    if (usage.known) ex.usage = to_openai_usage(usage);
    co_await writer.send(ex.status, "application/json", std::get<std::string>(translated), ex.headers());
    co_return Outcome::answered;
  } else if (upstream == dialects::Dialect::anthropic) {
    core::TokenUsage usage;
    dialects::anthropic::probe_usage(body, usage);
    if (usage.known) ex.usage = to_openai_usage(usage);
  } else {
    ex.usage = openai::probe_usage(body).usage;
  }
  std::string_view content_type = up.response().find("content-type");
  co_await writer.send(ex.status,
                       content_type.empty() ? std::string_view("application/json") : content_type,
                       body, ex.headers());
  co_return Outcome::answered;
}

asio::awaitable<Gateway::Outcome> Gateway::relay_stream(StreamProcessor& processor,
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
      if (!committed) {
        fail_attempt(ex, failure, std::move(*broken));
        co_return Outcome::next;
      }
      ex.error = broken->code;
      processor.error(*broken, out, ex);
      co_await writer.write_chunk(out, true);
      co_return Outcome::answered;
    }
    if (done) processor.end(splitter.pending(), out, ex);
    if (!committed) {
      if (out.empty() && !done) continue;
      committed = true;
      ex.status = 200;
      co_await writer.start_stream(200, "text/event-stream", ex.headers());
    }
    if ((!out.empty() || done) && !co_await writer.write_chunk(out, done)) {
      up.cancel();
      co_return Outcome::client_gone;
    }
  }
  co_return Outcome::answered;
}

asio::awaitable<void> Gateway::answer_failure(net::ResponseWriter& writer, Exchange& ex,
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
