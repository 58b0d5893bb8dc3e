// The executor's socket side (Gateway::Attempts: two slots of prepared requests on the loop's
// upstream pool) and the step that runs it: plan, then execute (pipeline/executor).
#include <spdlog/spdlog.h>

#include <charconv>

#include "dialects/translate.hpp"
#include "server/gateway_internal.hpp"
#include "server/pipeline/outcome.hpp"
#include "server/pipeline/plan.hpp"

namespace switchyard::server {

using namespace std::string_view_literals;

namespace openai = dialects::openai;
using core::ApiError;
using core::ErrorKind;

/// The executor's upstream side on sockets: up to two attempts (a primary and its hedge), each
/// a deployment's prepared request on an exchange from the loop's pool. The client leaving
/// cancels both.
class Gateway::Attempts final : public AttemptPort, net::ResponseWriter::DisconnectWatcher {
 public:
  Attempts(Gateway& gateway, const RouteRuntime& route, Chat& chat, net::ResponseWriter& writer, Exchange& ex)
      : g_(gateway), route_(route), chat_(chat), writer_(writer), ex_(ex) {
    writer_.watch_disconnect(*this);
  }
  ~Attempts() override {
    writer_.forget_disconnect();
    settle_blame();
  }

  /// The client left: whatever upstream exchanges are in progress (two while hedging) stop.
  void on_client_gone() override {
    for (auto* up : current_)
      if (up) up->cancel();
  }

  double now_ms() override { return steady_ms(net::Clock::now()); }
  bool client_gone() override { return writer_.client_gone(); }
  net::Task<> sleep_ms(std::int64_t ms) override { co_await g_.sleep_ms(ms); }

  std::optional<AttemptResult> claim(int slot, std::uint16_t index) override {
    const DeploymentRuntime& d = *route_.candidates[index];
    Slot& s = slot_(slot);
    const std::int64_t now = health::steady_now_ms();
    // Health may have changed since the plan (this request's own failures, or others').
    bool probe = false;
    // A last resort (the plan's panic tail) is tried whatever its breaker says.
    const bool last_resort = ex_.plan.decision && index < ex_.plan.decision->plan.scores.size() &&
                             ex_.plan.decision->plan.scores[index].last_resort;
    if (d.health && ex_.rt->config().health.circuit_breaking && !last_resort) {
      const health::State state = d.health->read(now).state;
      if (state == health::State::open || state == health::State::cooling)
        return skipped("skipped: " + std::string(health::to_string(state)));
      if (state == health::State::half_open) {
        if (!d.health->try_probe(now)) return skipped("skipped: half_open probe in flight");
        if (ex_.rt->config().health.synthetic_probes && !last_in_plan(index)) {
          // Another deployment may serve this request: the gateway's own request tests this one.
          net::spawn(g_.loop_.io(), g_.probe(d.config->name));
          return skipped("skipped: half_open, probed by the gateway");
        }
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

  net::Task<AttemptResult> run(int slot, bool last) override {
    Slot& s = begin(slot, last);
    s.error = co_await s.up->start(s.prepared->head(), s.prepared->body());
    s.done = true;
    answering(s);
    AttemptResult result;
    co_await g_.respond(chat_, *s.d, *s.prepared, s.error, last, *s.up, writer_, ex_, result);
    co_return result;
  }

  void start(int slot, bool last) override {
    if (!wake_) wake_.emplace(g_.loop_.io());  // only a hedge race waits on it
    begin(slot, last);
    net::spawn(g_.loop_.io(), race(slot), [](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        spdlog::error("hedged attempt: {}", x.what());
      }
    });
  }

  net::Task<> wait(double until_ms) override {
    // A start that finished since the last look returns at once (it may have finished before
    // anyone waited, when its failure came without suspending).
    if (done_mask() & ~reported_) {
      reported_ = done_mask();
      co_return;
    }
    if (until_ms < 0) wake_->expires_at(net::Timer::time_point::max());
    else
      wake_->expires_at(net::Timer::time_point(
          std::chrono::duration_cast<net::Timer::duration>(std::chrono::duration<double, std::milli>(until_ms))));
    co_await wake_->async_wait(net::nothrow);
    reported_ = done_mask();
  }

  bool started(int slot) override { return slot_(slot).done; }
  bool usable(int slot) override {
    const Slot& s = slot_(slot);
    if (!s.done || s.error != net::UpstreamError::none) return false;
    return !verdict(s.up->response().status).fail_over;
  }
  void cancel(int slot) override {
    if (slot_(slot).up) slot_(slot).up->cancel();
  }

  net::Task<AttemptResult> respond(int slot, bool last) override {
    Slot& s = slot_(slot);
    answering(s);
    AttemptResult result;
    co_await g_.respond(chat_, *s.d, *s.prepared, s.error, last, *s.up, writer_, ex_, result);
    co_return result;
  }

  AttemptResult lost(int slot) override {
    Slot& s = slot_(slot);
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
    Slot& s = slot_(slot);
    const DeploymentRuntime& d = *s.d;
    if (d.health) {
      const std::int64_t now = health::steady_now_ms();
      if (r.rate_limits.remaining_requests >= 0 || r.rate_limits.remaining_tokens >= 0)
        d.health->observe_rate_limits(r.rate_limits, now);
      if (r.health && maybe_the_requests(*r.health, r.status)) {
        // Whose fault it is shows only at the request's end (settle_blame).
        deferred_.push_back({&d, *r.health, r.retry_after_ms});
        if (s.probe) d.health->release_probe(now);
      } else if (r.health == health::Outcome::misconfigured) {
        take_out_misconfigured(*d.health, d.config->name, r.status, ex_.rt->config().health.misconfigured_cooldown_ms);
      } else if (r.health) {
        // A stall cut by the first-content limit: its wait is a lower bound of the deployment's
        // latency, so a slow deployment's limit grows (and latency routing sees it slow).
        if (*r.health == health::Outcome::timeout && s.first_event_deadline && r.ttft_ms < 0)
          d.health->observe_latency(ms_since(s.started), -1);
        d.health->record(*r.health, now, r.retry_after_ms, r.ttft_ms, r.tokens_per_s);
        if (*r.health == health::Outcome::success) served_ = true;
      } else if (s.probe) {
        d.health->release_probe(now);
      }
      if (s.in_flight) d.health->end();
    }
    current_[slot] = nullptr;
    s.reset();
  }

 private:
  /// A 5xx may be the request's fault rather than the deployment's: a request that makes every
  /// provider fail must not bench deployments that serve everyone else. Connect errors, timeouts,
  /// configuration faults (401, 403, 404, redirects) and rate limits (a 429 is the deployment's
  /// state; one that blames the request itself records nothing: relay.cpp) are the deployment's
  /// whatever the request.
  static bool maybe_the_requests(health::Outcome o, int status) {
    return o == health::Outcome::server_error && status >= 500;
  }

  /// The request is over: its deferred 5xx are the deployments' when another deployment served
  /// it, or when only one deployment answered one (nothing to compare with); when two or more
  /// deployments answered it with a 5xx and none served it, the request is blamed and health
  /// records nothing. (docs/routing.md, "Who is blamed")
  void settle_blame() {
    if (deferred_.empty()) return;
    bool several = false;
    for (const Deferred& f : deferred_) several |= f.d != deferred_.front().d;
    if (!served_ && several) return;
    const std::int64_t now = health::steady_now_ms();
    for (const Deferred& f : deferred_) f.d->health->record(f.outcome, now, f.retry_after_ms);
  }

  struct Deferred {
    const DeploymentRuntime* d;
    health::Outcome outcome;
    std::int64_t retry_after_ms;
  };
  std::vector<Deferred> deferred_;  ///< failures whose blame waits for the request's end
  bool served_ = false;             ///< an attempt of this request succeeded

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

  /// The slot's deployment is the one whose answer the client gets (or whose failure it is told).
  void answering(const Slot& s) {
    ex_.attempts.deployment = s.d->config->name;
    ex_.attempts.upstream_model = s.d->config->model;
    ex_.attempts.answered_by = s.d;
    ex_.attempts.answered_index = s.index;
    ex_.attempts.set_dropped(s.prepared->sent.dropped);
    ex_.attempts.clamped_max_tokens.clear();
    if (s.prepared->max_tokens_cap > 0) ex_.attempts.clamped_max_tokens = std::to_string(s.prepared->max_tokens_cap);
    ex_.attempts.first_event_deadline = s.first_event_deadline;
  }

  static AttemptResult skipped(std::string what) {
    AttemptResult r;
    r.end = AttemptEnd::skipped;
    r.what = std::move(what);
    return r;
  }

  Slot& begin(int slot, bool last) {
    Slot& s = slot_(slot);
    ++ex_.attempts.count;
    s.started = net::Clock::now();
    if (s.d->quota) s.d->quota->charge_request(ex_.plan.decision->traits.input_tokens, governance::unix_now_ms());
    const std::optional<std::chrono::milliseconds> ttft_limit = first_content_limit(*s.d, last);
    if (ttft_limit) s.first_event_deadline = s.started + *ttft_limit;
    s.up.emplace(g_.pool_, s.d->provider->origin);
    s.up->limit(ttft_limit, ex_.plan.deadline);
    current_[slot] = &*s.up;
    if (s.d->health) {
      s.d->health->begin();
      s.in_flight = true;
    }
    return s;
  }

  /// No plan entry follows `index`.
  bool last_in_plan(std::uint16_t index) const {
    const std::vector<std::uint16_t>& order = ex_.plan.decision->plan.order;
    return order.empty() || order.back() == index;
  }

  /// How long the attempt may go without content (the response head, and a stream's first event
  /// with content) before it is failed over: the route's `policy.ttft_ms`; else, when another
  /// plan entry follows, max(health.stall_ms, 4 x the deployment's p95 time to first content)
  /// within upstream.first_byte_timeout_ms —
  /// a stalled deployment is left well before the upstream timeouts, a slow one that answers
  /// is not (its p95 grows with its answers, and with the stalls it was cut at: `release`). The
  /// last entry has no such limit: nothing would serve the client instead.
  std::optional<std::chrono::milliseconds> first_content_limit(const DeploymentRuntime& d, bool last) const {
    if (route_.config->policy.ttft_ms) return std::chrono::milliseconds(route_.config->policy.ttft_ms);
    const std::uint32_t stall = ex_.rt->config().health.stall_ms;
    if (last || stall == 0) return std::nullopt;
    double p95 = d.health ? d.health->read(health::steady_now_ms()).p95_ttft_ms : -1;
    return std::chrono::milliseconds(std::min<std::int64_t>(
        ex_.rt->config().upstream.first_byte_timeout_ms,
        std::max<std::int64_t>(stall, static_cast<std::int64_t>(4 * p95))));
  }

  net::Task<> race(int slot) {
    Slot& s = slot_(slot);
    s.error = co_await s.up->start(s.prepared->head(), s.prepared->body());
    s.done = true;
    wake_->cancel();
  }

  unsigned done_mask() const { return (primary_.done ? 1u : 0u) | (hedge_ && hedge_->done ? 2u : 0u); }

  /// The primary's slot is part of every attempt; the hedge's (a prepared request and an
  /// exchange, ~420 bytes) is made by the first hedge claim, so the frame every open stream
  /// keeps does not carry it.
  Slot& slot_(int slot) {
    if (slot == kPrimary) return primary_;
    if (!hedge_) hedge_ = std::make_unique<Slot>();
    return *hedge_;
  }

  Gateway& g_;
  const RouteRuntime& route_;
  Chat& chat_;
  net::ResponseWriter& writer_;
  Exchange& ex_;
  std::optional<net::Timer> wake_;  ///< made by the first background start
  unsigned reported_ = 0;
  Slot primary_;
  std::unique_ptr<Slot> hedge_;
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
  ctx.stale_after_ms = ex.rt->config().health.stale_after_ms;
  ctx.panic_threshold = ex.rt->config().health.panic_threshold;
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
  if (shared_counters(ex)) {
    std::optional<ApiError> refused = co_await reserve_shared(route, ex);
    if (refused) {
      co_await fail(writer, ex, *refused);
      co_return;
    }
  } else if (auto refused = reserve_budgets(route, ex)) {
    co_await fail(writer, ex, *refused);
    co_return;
  }

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
  co_await answer_failure(writer, ex, done.failure.get());
}

std::optional<AttemptResult> Gateway::prepare(Chat& chat, const DeploymentRuntime& d, Prepared& p,
                                              Exchange& ex) {
  std::string& body = p.body();
  std::string& head = p.head();
  const dialects::Dialect upstream = d.provider->dialect();
  const auto* type = d.provider->type;
  std::optional<ApiError> refused;
  std::vector<std::string>& dropped = p.sent.dropped;  // parameters dropped for this deployment
  // A max_tokens above this model's maximum output, lowered to it (RouteRules::clamp_max_tokens).
  std::int64_t cap = 0;
  if (const routing::RequestTraits& traits = ex.plan.decision->traits;
      traits.clamp_max_tokens && d.model && d.model->max_output > 0 && traits.max_output_tokens > d.model->max_output)
    cap = d.model->max_output;
  p.max_tokens_cap = cap;
  if (ex.identity.key && !ex.identity.key->models.empty() && !key_may_reach(*ex.identity.key, d)) {
    AttemptResult r;
    r.end = AttemptEnd::skipped;
    r.what = "skipped: model not allowed for this key";
    return r;
  }

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
  } else if (chat.client == dialects::Dialect::responses && !d.responses_head.empty()) {
    // Responses → OpenAI's own Responses API: the client's body with the model replaced (hosted
    // tools, previous_response_id and encrypted reasoning all reach the API that has them).
    if (!dialects::anthropic::patch_model(chat.request.body, d.config->model, body))
      refused = ApiError::make(ErrorKind::invalid_request, "The request body is not valid JSON.");
    p.responses_passed = true;
  } else if (chat.client == upstream) {
    // Anthropic → Anthropic: the client's body with the model replaced.
    if (!dialects::anthropic::patch_model(chat.request.body, d.config->model, body, cap))
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
    target.max_tokens_cap = cap;
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
  else if (p.responses_passed) head += d.responses_head;
  else if (chat.stream) head += d.stream_head;
  else head += d.chat_head;
  if (chat.client == dialects::Dialect::anthropic && upstream == dialects::Dialect::anthropic) {
    // The client's beta features reach Anthropic with the body that uses them (a beta field
    // without its header is a 400 there). Another provider never sees them (docs/translation.md).
    if (std::string_view beta = chat.request.header("anthropic-beta"); !beta.empty()) {
      head += "anthropic-beta: "sv;
      head += beta;
      head += "\r\n"sv;
    }
  }
  head += "X-Request-Id: "sv;
  head += ex.identity.request_id;
  head += chat.stream ? "\r\nAccept: text/event-stream\r\nContent-Length: "sv
                      : "\r\nAccept: application/json\r\nContent-Length: "sv;
  char length[24];
  head.append(length, std::to_chars(length, length + sizeof length, body.size()).ptr);
  head += "\r\n\r\n"sv;
  return std::nullopt;
}

}  // namespace switchyard::server
