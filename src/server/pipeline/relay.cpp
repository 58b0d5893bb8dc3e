// After an attempt's response head: the answer relayed to the client as it comes (JSON, SSE) or
// translated between dialects, or why the attempt failed (pipeline/outcome decides what a
// status means).
#include <spdlog/spdlog.h>

#include "core/json_scan.hpp"
#include "dialects/openai/usage.hpp"
#include "dialects/sse.hpp"
#include "dialects/translate.hpp"
#include "dialects/upstream_error.hpp"
#include "health/rate_limits.hpp"
#include "server/gateway_internal.hpp"
#include "server/pipeline/outcome.hpp"

namespace switchyard::server {

namespace openai = dialects::openai;
using core::ApiError;
using core::ErrorKind;

namespace {

constexpr std::size_t kMaxUpstreamBody = 64 * 1024 * 1024;
constexpr std::size_t kMaxUpstreamErrorBody = 1024 * 1024;

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

/// Ids for tool calls of upstreams that give none (Gemini): unique per request.
dialects::gemini::IdSource tool_call_ids(std::string_view request_id) {
  dialects::gemini::IdSource ids;
  ids.prefix = "call_" + std::string(request_id.substr(request_id.size() > 12 ? request_id.size() - 12 : 0)) + "_";
  return ids;
}

}  // namespace

void Gateway::StreamProcessor::error(const ApiError& e, std::string& out, Exchange& ex) {
  out += dialects::stream_error_event(ex.identity.client, e, ex.identity.request_id);
}

bool Gateway::read_ended_attempt(const net::ResponseWriter& writer, Exchange& ex, net::UpstreamError read,
                                 const DeploymentRuntime& d, AttemptResult& result) {
  if (writer.client_gone()) {
    result.end = AttemptEnd::client_gone;
    return true;
  }
  if (read == net::UpstreamError::none) return false;
  // A body cut short or over its limit is the deployment's failure, whatever its head said.
  result.health = verdict(read).health;
  fail_attempt(ex, result, transport_error(read, d.config->name));
  return true;
}

net::Task<> Gateway::respond(Chat& chat, const DeploymentRuntime& d, Prepared& p, net::UpstreamError err,
                             bool last_candidate, net::UpstreamExchange& up, net::ResponseWriter& writer,
                             Exchange& ex, AttemptResult& result) {
  if (writer.client_gone()) {
    result.end = AttemptEnd::client_gone;
    co_return;
  }
  chat.anthropic_encoded = p.sent.anthropic;
  chat.responses_passed = p.responses_passed;
  const dialects::Dialect upstream = d.provider->dialect();
  if (err != net::UpstreamError::none) {
    result.what = std::string(net::to_string(err));
    result.health = verdict(err).health;
    spdlog::warn("{}: attempt {} on {} failed: {}{}{}", ex.identity.request_id, ex.attempts.count,
                 d.config->name, net::to_string(err), up.detail().empty() ? "" : " - ",
                 up.detail());
    fail_attempt(ex, result, transport_error(err, d.config->name));
    co_return;
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
    co_return;
  }
  if (response.status >= 400) {
    result.what = "http_" + std::to_string(response.status);
    const Verdict v = verdict(response.status);
    result.health = v.health;
    std::string error_body;
    net::UpstreamError e2 = co_await up.read_all(error_body, kMaxUpstreamErrorBody);
    if (read_ended_attempt(writer, ex, e2, d, result)) co_return;
    // A 429 that says the request itself is over a limit (OpenAI: "Request too large for ...
    // tokens per min") is the request's fault: another deployment may have room for it, but
    // this one's health says nothing about other requests.
    if (response.status == 429 && error_body.find("Request too large") != std::string::npos)
      result.health.reset();
    if (response.status == 401 || response.status == 403 || response.status == 404) {
      // The provider refused the gateway's own credentials, or the deployment's model: when no
      // other deployment serves, the client hears it was the provider's key or model — never
      // the provider's 401, which would read as its own key refused (nor its masked key).
      const std::string& provider = d.provider->config->name;
      std::string why = response.status == 404
                            ? "its model \"" + d.config->model + "\" was not found (check deployments." +
                                  d.config->name + ".model)"
                            : "the gateway's credentials for provider \"" + provider +
                                  "\" were refused (check providers." + provider + ".api_key" +
                                  (response.status == 403 ? ", and the account's access to the model)" : ")");
      result.failure = std::make_unique<Failure>();
      result.failure->error = ApiError::make(
          v.kind, "Upstream deployment \"" + d.config->name + "\" answered HTTP " + std::to_string(response.status) +
                      ": " + why + ".",
          {}, response.status == 404 ? "upstream_model_not_found" : "upstream_credentials_refused");
      ex.reply.passed_count = 0;  // the refusal's headers do not describe the answer
      result.end = last_candidate ? AttemptEnd::give_up : AttemptEnd::next;
      co_return;
    }
    // A passed-through Responses request's errors are OpenAI's, in the Responses API's shape.
    bool same_dialect = (chat.client == upstream && !p.translated) || p.responses_passed;
    if (same_dialect) {
      result.failure = std::make_unique<Failure>();
      result.failure->status = response.status;
      result.failure->body = std::move(error_body);
    } else {
      result.failure = std::make_unique<Failure>();
      result.failure->error = dialects::upstream_error(response.status, error_body, d.config->name);
    }
    ex.reply.keep_passed_headers();  // the answer goes out after this exchange ends
    result.end = v.fail_over && !last_candidate ? AttemptEnd::next : AttemptEnd::give_up;
    co_return;
  }

  result.ttft_ms = std::chrono::duration<double, std::milli>(up.time_to_head()).count();
  std::string_view content_type = response.find(net::http1::Known::content_type);
  bool sse = chat.stream && content_type.substr(0, 17) == "text/event-stream";
  if (!sse) {
    co_await relay_json(chat, d, up, writer, ex, result);
    co_return;
  }

  // In its own coroutine: the translator's state is in that frame only when a stream is translated
  // (every open stream holds its frames).
  if (p.translated) {
    co_await relay_translated(chat, d, p.sent, up, writer, ex, result);
    co_return;
  }
  // Passed through, an event is still checked: its data must be JSON (a malformed line relayed
  // as it came makes the client's SDK throw a parse error of its own), and the upstream's own
  // error event, or a stream without its end marker, counts against the deployment.
  if (p.responses_passed) {
    // The Responses API's typed events: usage from the terminal event, which must come.
    struct PassResponses final : StreamProcessor {
      bool ended = false, upstream_error = false;
      PassResponses() { events = dialects::Dialect::responses; }
      bool event(const dialects::SseEvent& e, std::string& out, Exchange& ex) override {
        if (!e.data.empty() && !core::json::validate(e.data, 64)) return false;
        if (dialects::responses::is_terminal_event(e.name)) {
          ended = true;
          core::TokenUsage usage;
          dialects::responses::probe_usage(e.data, usage);
          if (usage.known) ex.accounting.usage = usage;
        }
        if (dialects::responses::is_error_event(e.name)) upstream_error = true;
        out.append(e.raw);
        return true;
      }
      void end(std::string_view pending, std::string& out, Exchange&) override { out.append(pending); }
      bool faulted() const override { return upstream_error || !ended; }
    };
    PassResponses processor;
    co_await relay_stream(processor, d, up, writer, ex, result);
    co_return;
  }
  if (chat.client == dialects::Dialect::anthropic) {
    struct PassAnthropic final : StreamProcessor {
      core::TokenUsage usage;
      bool ended = false, upstream_error = false;
      PassAnthropic() { events = dialects::Dialect::anthropic; }
      bool event(const dialects::SseEvent& e, std::string& out, Exchange& ex) override {
        if (!e.data.empty() && !core::json::validate(e.data, 64)) return false;
        if (e.name == "message_stop") ended = true;
        else if (e.name == "error") upstream_error = true;
        if (e.name == "message_start" || e.name == "message_delta") {
          dialects::anthropic::probe_usage(e.data, usage);
          if (usage.known) ex.accounting.usage = usage;
        }
        out.append(e.raw);
        return true;
      }
      void end(std::string_view pending, std::string& out, Exchange&) override { out.append(pending); }
      bool faulted() const override { return upstream_error || !ended; }
    };
    PassAnthropic processor;
    co_await relay_stream(processor, d, up, writer, ex, result);
    co_return;
  }
  struct PassOpenAI final : StreamProcessor {
    bool client_wants_usage = false;
    bool ended = false, upstream_error = false;
    bool event(const dialects::SseEvent& e, std::string& out, Exchange& ex) override {
      if (e.data == "[DONE]") {
        ended = true;
      } else if (!e.data.empty()) {
        // Measured: 0.2 µs for a usual 226-byte chunk (the usage probe beside it: 0.09 µs), so
        // about 4 µs on a 20-event stream; paired runs against nginx did not tell it from noise.
        if (!core::json::validate(e.data, 64)) return false;
        if (e.data.starts_with("{\"error\"")) upstream_error = true;
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
    bool faulted() const override { return upstream_error || !ended; }
  };
  PassOpenAI processor;
  processor.client_wants_usage = chat.client_wants_usage;
  co_await relay_stream(processor, d, up, writer, ex, result);
}

net::Task<> Gateway::relay_translated(Chat& chat, const DeploymentRuntime& d, const dialects::UpstreamRequest& sent,
                                      net::UpstreamExchange& up, net::ResponseWriter& writer, Exchange& ex,
                                      AttemptResult& result) {
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
  processor.events = d.provider->dialect();
  co_await relay_stream(processor, d, up, writer, ex, result);
}

net::Task<> Gateway::relay_json(Chat& chat, const DeploymentRuntime& d, net::UpstreamExchange& up,
                                net::ResponseWriter& writer, Exchange& ex, AttemptResult& result) {
  // Usually the whole answer came with its head: relayed from the connection's buffer. Else
  // read into a pooled string.
  std::string_view body;
  std::optional<StringPool::Loan> loan;
  net::UpstreamError err = net::UpstreamError::none;
  // A body read in pieces holds its share of the memory budget for bodies (server.body_memory_mb)
  // as a request's body does, until the answer is sent.
  net::MemoryBudget::Hold hold(loop_.body_budget());
  bool no_memory = false;
  up.bound_idle();  // an answer's head came: its body's bytes are due without long pauses
  if (!up.buffered_body(body, kMaxUpstreamBody)) {
    loan.emplace(strings_);
    if (!up.read_buffered(loan->s, kMaxUpstreamBody, err)) {
      for (bool done = false; !done && err == net::UpstreamError::none;) {
        err = co_await up.read_some(loan->s, done);
        if (loan->s.size() > kMaxUpstreamBody) err = net::UpstreamError::bad_response;
        else if (!hold.grow(loan->s.capacity())) no_memory = true;
        if (no_memory) break;
      }
    }
    body = loan->s;
  }
  if (no_memory) {
    // Not failed over: another deployment's answer would need the same memory.
    fail_attempt(ex, result,
                 ApiError::make(ErrorKind::unavailable,
                                "The gateway is holding as many bodies as its memory budget allows "
                                "(server.body_memory_mb); retry shortly.",
                                {}, "body_memory_exhausted"));
    result.end = AttemptEnd::give_up;
    co_return;
  }
  if (read_ended_attempt(writer, ex, err, d, result)) co_return;
  // A 2xx that is not a JSON object is a broken upstream; nothing was sent yet, so try the next
  // one. (Framing already proved the body complete; a full validation would scan every byte
  // for what upstreams practically never send.)
  if (!looks_like_json_object(body)) {
    result.health = health::Outcome::server_error;  // a 2xx that is no answer: the deployment's
    fail_attempt(ex, result, transport_error(net::UpstreamError::bad_response, d.config->name));
    co_return;
  }
  const dialects::Dialect upstream = d.provider->dialect();
  ex.reply.status = up.response().status;
  // What the client gets: the upstream's body as it came, or its translation (kept here).
  std::string_view out = body;
  std::string_view content_type = "application/json";
  std::string translated_body;
  if (chat.endpoint == Endpoint::embeddings) {
    if (upstream == dialects::Dialect::gemini) {
      auto translated = dialects::gemini::decode_embeddings(body, chat.model, chat.embeddings_base64);
      if (auto* e = std::get_if<ApiError>(&translated)) {
        fail_attempt(ex, result, *e);
        co_return;
      }
      // Gemini's embeddings API reports no tokens: the request's own estimate is billed, and the
      // record says it was estimated.
      ex.accounting.usage = {};
      ex.accounting.usage.known = true;
      ex.accounting.usage.input = ex.plan.decision ? ex.plan.decision->traits.input_tokens : 0;
      ex.accounting.usage_estimated = true;
      translated_body = std::move(std::get<std::string>(translated));
      out = translated_body;
    } else if (auto u = openai::probe_usage(body, false).usage) {
      ex.accounting.usage = openai::to_canonical(*u);
    }
  } else if (chat.responses_passed) {
    core::TokenUsage usage;
    dialects::responses::probe_usage(body, usage);
    if (usage.known) ex.accounting.usage = usage;
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
      co_return;
    }
    if (usage.known) ex.accounting.usage = usage;
    translated_body = std::move(std::get<std::string>(translated));
    out = translated_body;
  } else {
    if (upstream == dialects::Dialect::anthropic) {
      core::TokenUsage usage;
      dialects::anthropic::probe_usage(body, usage);
      if (usage.known) ex.accounting.usage = usage;
    } else if (auto u = openai::probe_usage(body, false).usage) {
      ex.accounting.usage = openai::to_canonical(*u);
    }
  }
  if (out.data() == body.data())  // relayed as it came: with the upstream's content type
    if (std::string_view ct = up.response().find(net::http1::Known::content_type); !ct.empty()) content_type = ct;
  ex.set_cost_header();
  // The end of the answer leaves once its ledger row is durable (sync and fsync durability).
  if (waits_for_ledger(ex) && !co_await commit_answer(ex)) {
    writer.abort();  // not acknowledged: its ledger row could not be made durable
    result.end = AttemptEnd::answered;
    co_return;
  }
  co_await writer.send(ex.reply.status, content_type, out, headers(ex));
  result.end = AttemptEnd::answered;
}

net::Task<> Gateway::relay_stream(StreamProcessor& processor, const DeploymentRuntime& d,
                                  net::UpstreamExchange& up, net::ResponseWriter& writer, Exchange& ex,
                                  AttemptResult& result) {
  // Event by event. Until the first event is ready nothing has reached the client, so a failure
  // up to then still fails over; after it, the stream ends with an error event.
  dialects::SseSplitter splitter;
  StringPool::Loan payload_loan{strings_}, out_loan{strings_};
  std::string& payload = payload_loan.s;
  std::string& out = out_loan.s;
  bool committed = false;
  bool done = false;
  bool content = false;  // an event with content (not only a role, a message_start, a ping) came
  const auto head_at = net::Clock::now();
  const dialects::Dialect upstream = processor.events;
  // A head that came early is not the first token, nor is an event without content: while the
  // attempt's first-content limit holds (a route's ttft_ms, or the stall limit when another
  // deployment could serve), events without content are held back, so that failing over is still
  // possible; the client's stream starts with the first content. Without a limit the stream
  // starts with the first event, as it always did.
  const bool hold = ex.attempts.first_event_deadline.has_value();
  if (hold) up.first_body_by(ex.attempts.first_event_deadline);
  result.ttft_ms = -1;  // for a stream: the time to its first content, set below
  while (!done) {
    payload.clear();
    if (committed) out.clear();
    net::UpstreamError err = co_await up.read_some(payload, done);
    if (writer.client_gone()) {
      result.end = AttemptEnd::client_gone;
      co_return;
    }
    std::optional<ApiError> broken;
    if (err != net::UpstreamError::none) {
      broken = transport_error(err, d.config->name);
    } else {
      bool malformed = false;
      bool within_limit = splitter.feed(payload, [&](const dialects::SseEvent& event) {
        if (!processor.event(event, out, ex)) malformed = true;
        else if (!content && dialects::carries_content(upstream, event)) content = true;
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
        co_return;
      }
      ex.reply.error = broken->code;
      ex.reply.error_kind = broken->kind;
      result.what = "stream_broken: " + broken->code;
      processor.error(*broken, out, ex);
      if (waits_for_ledger(ex) && !co_await commit_answer(ex)) {
        writer.abort();
        result.end = AttemptEnd::answered;
        co_return;
      }
      co_await writer.write_chunk(out, true);
      result.end = AttemptEnd::answered;
      co_return;
    }
    if (done) processor.end(splitter.pending(), out, ex);
    if (content && result.ttft_ms < 0) {
      // Content flows: from now on each read must bring bytes within the idle timeout.
      result.ttft_ms = std::chrono::duration<double, std::milli>(up.time_to_head() + (net::Clock::now() - head_at)).count();
      if (hold) up.first_body_by(std::nullopt);
      up.bound_idle();
    }
    if (!committed) {
      // What is held back is small (a role chunk, a message_start, pings): 64 KiB of it starts
      // the stream anyway.
      constexpr std::size_t kMaxHeld = 64 * 1024;
      if (!done && (out.empty() || (hold && !content && out.size() < kMaxHeld))) continue;
      committed = true;
      if (hold && !content) up.first_body_by(std::nullopt);
      ex.reply.status = 200;
      co_await writer.start_stream(200, "text/event-stream", headers(ex));
    }
    // The end of the stream leaves once its ledger row is committed (sync durability).
    if (done && waits_for_ledger(ex) && !co_await commit_answer(ex)) {
      writer.abort();
      result.end = AttemptEnd::answered;
      co_return;
    }
    if ((!out.empty() || done) && !co_await writer.write_chunk(out, done)) {
      up.cancel();
      result.end = AttemptEnd::client_gone;
      co_return;
    }
  }
  // Relayed whole, yet the upstream's own error event or a missing end marker: the deployment's.
  if (processor.faulted()) result.health = health::Outcome::server_error;
  if (ex.accounting.usage.known && ex.accounting.usage.output > 0) {
    double seconds = std::chrono::duration<double>(net::Clock::now() - head_at).count();
    if (seconds > 0.001) result.tokens_per_s = static_cast<double>(ex.accounting.usage.output) / seconds;
  }
  result.end = AttemptEnd::answered;
  co_return;
}

}  // namespace switchyard::server
