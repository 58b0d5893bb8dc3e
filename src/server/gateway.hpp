#pragma once

#include <memory>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/accounting.hpp"
#include "dialects/openai/chat_request.hpp"
#include "net/server.hpp"
#include "net/upstream.hpp"
#include "health/registry.hpp"
#include "routing/complexity/feedback.hpp"
#include "routing/decision.hpp"
#include "routing/execution.hpp"
#include "server/runtime.hpp"
#include "telemetry/access_log.hpp"

namespace switchyard::dialects {
struct UpstreamRequest;
}
namespace switchyard::core {
struct ChatRequest;
}

namespace switchyard::server {

/// Strings handed from one request to the next on a loop, so that the per-request buffers
/// (patched body, upstream head, response) keep their capacity instead of going back to malloc.
class StringPool {
 public:
  /// A cleared string, with the capacity of an earlier one when there is one. The strings
  /// themselves never move (a pointer changes hands, not a string's three words).
  std::unique_ptr<std::string> take() {
    if (free_.empty()) return std::make_unique<std::string>();
    std::unique_ptr<std::string> s = std::move(free_.back());
    free_.pop_back();
    s->clear();
    return s;
  }
  void give(std::unique_ptr<std::string> s) {
    if (free_.size() < 256 && s->capacity() <= 256 * 1024) free_.push_back(std::move(s));
  }

  /// A string on loan for one scope.
  struct Loan {
    explicit Loan(StringPool& p) : pool(p), owned(p.take()), s(*owned) {}
    Loan(const Loan&) = delete;
    Loan& operator=(const Loan&) = delete;
    ~Loan() { pool.give(std::move(owned)); }
    StringPool& pool;
    std::unique_ptr<std::string> owned;
    std::string& s;
  };

 private:
  std::vector<std::unique_ptr<std::string>> free_;
};

/// What every event loop shares: the runtime in force, live health, decision records, the log.
struct Shared {
  Shared(std::shared_ptr<const Runtime> initial, telemetry::AccessLog& access_log,
         health::Registry& health_registry, std::size_t decisions_kept, std::string feedback_path = {},
         std::size_t feedback_kept = 0)
      : runtime(std::move(initial)),
        log(access_log),
        health(health_registry),
        decisions(decisions_kept),
        feedback_log(std::move(feedback_path)),
        feedback(feedback_log.empty() ? 0 : feedback_kept) {}
  RuntimeSource runtime;
  telemetry::AccessLog& log;
  health::Registry& health;
  routing::DecisionRing decisions;
  std::string feedback_log;  ///< empty: feedback off
  routing::complexity::FeedbackStore feedback;
  std::mutex feedback_mutex;  ///< one writer of the feedback log at a time
};

/// The gateway's request handler for one event loop: routes, auth, the OpenAI fast path,
/// failover and the access log. Owns the loop's upstream pool.
class Gateway final : public net::Handler {
 public:
  Gateway(net::Loop& loop, Shared& shared);

  net::Task<> handle(net::Request request, net::ResponseWriter& writer) override;
  void on_drain() override;
  void on_refused(const net::http1::RequestHead* head, const core::ApiError& error,
                  net::Clock::time_point received) override;

 private:
  struct Exchange;
  /// Why the last attempt failed: a gateway-made error, or an upstream's HTTP error (status and
  /// body), for the answer when no deployment answered.
  struct Failure {
    std::optional<core::ApiError> error;
    int status = 0;
    std::string body;
  };
  enum class Outcome {
    answered,     ///< a response (or a stream) went to the client
    next,         ///< this deployment failed before anything was sent: try the next one
    give_up,      ///< an answer not worth failing over (a 4xx): send `Failure`
    client_gone,  ///< the client left; nothing more to do
  };

  struct Chat;
  struct StreamProcessor;
  struct Prepared;
  struct Racer;
  struct AttemptResult;
  enum class Endpoint { chat, embeddings };

  /// Chat in either client dialect (`/v1/chat/completions`, `/v1/messages`).
  net::Task<> chat(net::Request& request, net::ResponseWriter& writer,
                   Exchange& ex);
  /// Chat's checks, not a coroutine: key, body, route, traits and the decision record begun.
  /// The route to run, or nullptr with the refusal in `refused`. What it holds while checking
  /// (the inspection, a decoded body) lives on the stack, not in the frame every stream keeps.
  const RouteRuntime* admit_chat(const net::Request& request, Exchange& ex, Chat& chat, core::ApiError& refused);
  /// 404 for an unknown path (`allowed` empty), else 405 naming the method `allowed`.
  net::Task<> refuse_endpoint(std::string_view method, std::string_view path, std::string_view allowed,
                              net::ResponseWriter& writer, Exchange& ex);
  net::Task<> embeddings(net::Request& request, net::ResponseWriter& writer,
                         Exchange& ex);
  net::Task<> count_tokens(net::Request& request, net::ResponseWriter& writer,
                           Exchange& ex);
  /// Plans the request and runs the plan: attempts, retries with backoff, hedges, failover.
  net::Task<> run_candidates(const RouteRuntime& route, Chat& chat,
                             net::ResponseWriter& writer, Exchange& ex);
  /// One plan entry (and its hedge, when one starts): send, and relay (or translate) the
  /// answer unless it failed before the first byte.
  net::Task<Outcome> attempt(const RouteRuntime& route, Chat& chat, std::uint16_t index,
                             int hedge_index, routing::HedgeBudget* budget, bool last_candidate,
                             net::UpstreamExchange** current,
                             net::ResponseWriter& writer, Exchange& ex,
                             Failure& failure);
  /// The upstream request for one deployment; an outcome when it cannot be sent there.
  std::optional<Outcome> prepare(Chat& chat, const DeploymentRuntime& d, Prepared& p, Exchange& ex,
                                 Failure& failure);
  /// After `start`: the answer, relayed, or why this deployment failed.
  net::Task<Outcome> respond(Chat& chat, const DeploymentRuntime& d, Prepared& p,
                             net::UpstreamError started, bool last_candidate,
                             net::UpstreamExchange& up, net::ResponseWriter& writer,
                             Exchange& ex, Failure& failure);
  net::Task<Outcome> attempt_hedged(
      const RouteRuntime& route, Chat& chat, std::uint16_t index, std::uint16_t hedge_index,
      std::int64_t delay_ms, routing::HedgeBudget& budget, bool probe, Prepared& p,
      net::UpstreamExchange& up, bool last_candidate, net::UpstreamExchange** current,
      net::ResponseWriter& writer, Exchange& ex, Failure& failure);
  /// What a hedge racer's start came to (a loser that failed on its own).
  static void classify_start(const Racer& r, const net::UpstreamExchange& up, AttemptResult& out);
  /// Feeds an attempt's result to the deployment's health and to the decision record.
  void settle_attempt(const DeploymentRuntime& d, std::uint16_t index, bool probe, Outcome outcome,
                      double ms, bool hedge, Exchange& ex);
  static net::Task<> race(net::UpstreamExchange& up, std::string_view head,
                          std::string_view body, Racer& racer);
  net::Task<> answer_unavailable(const RouteRuntime& route, net::ResponseWriter& writer,
                                 Exchange& ex);
  net::Task<> sleep_ms(std::int64_t ms);
  net::Task<> healthz(net::Request& request, net::ResponseWriter& writer, Exchange& ex);
  net::Task<> readyz(net::Request& request, net::ResponseWriter& writer, Exchange& ex);
  net::Task<> health_report(net::Request& request, net::ResponseWriter& writer,
                            Exchange& ex);
  net::Task<> decision_report(net::Request& request, net::ResponseWriter& writer,
                              Exchange& ex);
  net::Task<> feedback(net::Request& request, net::ResponseWriter& writer, Exchange& ex);
  /// Reads x-switchyard-* overrides into `ex`; false with `error` set when one is refused.
  /// (Plain functions, not coroutines: the hot path pays for a frame per coroutine call, and
  /// only the error case needs to write.)
  bool read_overrides(const net::Request& request, const config::KeyConfig& key, Exchange& ex,
                      core::ApiError& error);
  net::Task<Outcome> relay_translated(Chat& chat, const DeploymentRuntime& d,
                                      const dialects::UpstreamRequest& sent,
                                      net::UpstreamExchange& up,
                                      net::ResponseWriter& writer, Exchange& ex,
                                      Failure& failure);
  net::Task<Outcome> relay_json(Chat& chat, const DeploymentRuntime& d,
                                net::UpstreamExchange& up,
                                net::ResponseWriter& writer, Exchange& ex,
                                Failure& failure);
  net::Task<Outcome> relay_stream(StreamProcessor& processor,
                                  const DeploymentRuntime& d,
                                  net::UpstreamExchange& up,
                                  net::ResponseWriter& writer, Exchange& ex,
                                  Failure& failure);
  net::Task<> answer_failure(net::ResponseWriter& writer, Exchange& ex,
                             const Failure& failure);
  [[gnu::cold]] static void fail_attempt(Exchange& ex, Failure& failure, core::ApiError error);
  net::Task<> models(net::Request& request, net::ResponseWriter& writer,
                     Exchange& ex);
  net::Task<> fail(net::ResponseWriter& writer, Exchange& ex,
                   const core::ApiError& error);
  /// The caller's key, or nullptr with the 401 to answer in `error`.
  const config::KeyConfig* authenticate(const net::Request& request, Exchange& ex, core::ApiError& error);
  const config::KeyConfig* find_key(const net::Request& request, Exchange& ex) const;
  /// Checks route, key permission and enabled deployments; nullptr with `error` set if any
  /// fails.
  const RouteRuntime* resolve_route(std::string_view model, const config::KeyConfig& key, Exchange& ex,
                                    core::ApiError& error);
  /// resolve_route, then read_overrides: the route a request may use, or nullptr with `error`.
  const RouteRuntime* admit(std::string_view model, const config::KeyConfig& key, const net::Request& request,
                            Exchange& ex, core::ApiError& error);
  std::string_view make_request_id(char (&out)[128]);
  void start_decision(Exchange& ex, const RouteRuntime& route, const routing::RequestTraits& traits);
  /// Predicts the request's category (when the route uses one) and scores it with the route's
  /// complexity model to pick its tier (when it has one).
  static void classify(const config::RouteConfig& route, const core::ChatRequest& request,
                       routing::RequestTraits& traits, Exchange& ex, bool keep_features);
  /// Settlement: the request's one accounting record, made when it has ended (answered,
  /// refused, failed or abandoned). Valid until the next request on this loop.
  const core::AccountingRecord& settle(std::string_view method, std::string_view path, const Exchange& ex,
                                       net::Clock::time_point received);
  /// Moves the request's decision into the shared ring, with the runtime its views point into;
  /// its outcome (status, cost) is the record's.
  void record_decision(Exchange& ex, const core::AccountingRecord& record, std::shared_ptr<const Runtime> runtime);

  net::Loop& loop_;
  Shared& shared_;
  std::shared_ptr<const Runtime> runtime_;  ///< this loop's copy; requests pin their own
  std::uint64_t generation_ = 0;
  telemetry::AccessLog& log_;
  std::unordered_map<std::string, routing::HedgeBudget> hedge_budgets_;  ///< per route
  /// Decision records the ring gave back, reused so a request does not allocate its own.
  std::vector<std::unique_ptr<routing::Decision>> decision_pool_;
  net::UpstreamPool pool_;
  StringPool strings_;
  core::AccountingRecord record_;  ///< the last settled request's record (reused)
  /// Bearer tokens already checked on this loop → their key (saves a SHA-256 per request).
  struct TokenHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  mutable std::unordered_map<std::string, const config::KeyConfig*, TokenHash, std::equal_to<>>
      key_cache_;
  /// splitmix64: request ids, plan seeds, retry jitter (not secrets); a few instructions a draw
  /// where the Mersenne Twister refills 312 words every 312 draws.
  struct SplitMix64 {
    std::uint64_t state;
    std::uint64_t operator()() {
      std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      return z ^ (z >> 31);
    }
  };
  SplitMix64 rng_;
  std::uint64_t counter_ = 0;
};

}  // namespace switchyard::server
