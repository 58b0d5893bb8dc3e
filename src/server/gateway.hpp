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
#include "server/admin/reports.hpp"
#include "server/pipeline/admission.hpp"
#include "server/pipeline/authenticate.hpp"
#include "server/pipeline/context.hpp"
#include "server/pipeline/executor.hpp"
#include "server/runtime.hpp"
#include "shared/counters.hpp"
#include "shared/redis_client.hpp"
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
/// Measured (callgrind, 16 connections, 2026-12-07): without it 23.3K / 40.6K instructions per
/// JSON / SSE request instead of 22.8K / 37.3K — a stream's read and output buffers would grow
/// from nothing on every request.
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
  /// Governance (keys of the store, budgets, limits, the ledger); null when it is off.
  governance::Governor* governor = nullptr;
  /// Budgets and limits shared by every node through Redis; null: counted on this node.
  shared::SharedCounters* counters = nullptr;
  /// Providers' quotas on deployments, counted on this node (outlive reloads).
  governance::QuotaRegistry* quotas = nullptr;
  telemetry::AccessLog& log;
  health::Registry& health;
  routing::DecisionRing decisions;
  std::string feedback_log;  ///< empty: feedback off
  routing::complexity::FeedbackStore feedback;
  std::mutex feedback_mutex;  ///< one writer of the feedback log at a time
};

/// The request pipeline for one event loop (docs/architecture.md, "The life of a request"):
/// dispatch and authentication (gateway.cpp), the endpoints' admission (endpoints.cpp), plan
/// and execution on the loop's upstream attempts (pipeline/upstream_attempts.cpp), the relays
/// (pipeline/relay.cpp) and settlement into the accounting record (gateway.cpp). The steps' pure
/// parts are functions of their own in pipeline/ (admission, plan, executor, outcome); this
/// class holds what is per loop: the upstream pool, pooled buffers, key cache, hedge budgets.
class Gateway final : public net::Handler {
 public:
  Gateway(net::Loop& loop, Shared& shared);

  net::Task<> handle(net::Request request, net::ResponseWriter& writer) override;
  void on_drain() override;
  /// Settlements of shared counters not yet sent or answered: a drained loop waits for them.
  bool busy() const override { return settle_scheduled_ || settles_in_flight_ > 0 || !probes_.empty(); }
  void on_refused(const net::http1::RequestHead* head, const core::ApiError& error,
                  net::Clock::time_point received) override;
  /// A refusal before the request reached a handler (limits, framing), in the path's dialect.
  std::string render_error(std::string_view target, const core::ApiError& error) override;
  std::string stream_cut_event(std::string_view target) override;

 private:
  using Exchange = RequestContext;
  class Attempts;
  struct Chat;
  struct StreamProcessor;
  struct Prepared;
  enum class Endpoint { chat, embeddings };

  /// Chat in either client dialect (`/v1/chat/completions`, `/v1/messages`).
  net::Task<> chat(net::Request& request, net::ResponseWriter& writer, Exchange& ex);
  /// Chat's admission, not a coroutine: body, route, overrides, limits, traits and complexity,
  /// the decision record begun. The route to run, or nullptr with the refusal in `refused`. What
  /// it holds while checking lives on the stack, not in the frame every stream keeps.
  const RouteRuntime* admit_chat(const net::Request& request, Exchange& ex, Chat& chat, core::ApiError& refused);
  /// The route a request may use (key permission, enabled deployments), its overrides and the
  /// governance checks; nullptr with the refusal in `refused`.
  const RouteRuntime* admit(std::string_view model, const net::Request& request, Exchange& ex,
                            core::ApiError& refused);
  /// The request's x-switchyard-* override headers (one look at the names when there are none).
  static OverrideHeaders override_headers(const net::Request& request);
  /// The client's dialect from the path (`/v1/messages...`: Anthropic's).
  static dialects::Dialect client_of(std::string_view path);
  /// Who a request of the admin listener is to the reports: an admin key of no one.
  static const config::KeyConfig& admin_listener_key();
  /// 404 for an unknown path (`allowed` empty), else 405 naming the method `allowed`.
  net::Task<> refuse_endpoint(std::string_view method, std::string_view path, std::string_view allowed,
                              net::ResponseWriter& writer, Exchange& ex);
  /// The 401 for a request without a valid key (in its own frame, not the handler's).
  net::Task<> refuse_unauthenticated(const net::Request& request, net::ResponseWriter& writer, Exchange& ex);
  net::Task<> embeddings(net::Request& request, net::ResponseWriter& writer, Exchange& ex);
  net::Task<> count_tokens(net::Request& request, net::ResponseWriter& writer, Exchange& ex);
  /// Plans the request, then runs the plan through the executor (`pipeline/executor`) on this
  /// loop's upstream attempts.
  net::Task<> run_candidates(const RouteRuntime& route, Chat& chat, net::ResponseWriter& writer, Exchange& ex);
  /// The upstream request for one deployment; what not sending it there came to, when it
  /// cannot be sent (skipped; give_up when the request itself cannot be translated).
  std::optional<AttemptResult> prepare(Chat& chat, const DeploymentRuntime& d, Prepared& p, Exchange& ex);
  /// After an attempt's start: the answer relayed, or why this deployment failed, completed in
  /// `result` (the attempt's, in the frame of the port call that returns it: the relays below
  /// fill it in place rather than pass a copy up through the frames every open stream keeps).
  net::Task<> respond(Chat& chat, const DeploymentRuntime& d, Prepared& p, net::UpstreamError started,
                      bool last_candidate, net::UpstreamExchange& up, net::ResponseWriter& writer, Exchange& ex,
                      AttemptResult& result);
  net::Task<> answer_unavailable(const RouteRuntime& route, net::ResponseWriter& writer, Exchange& ex);
  net::Task<> sleep_ms(std::int64_t ms);
  /// Tests a half-open deployment with a one-token request of the gateway's own and records the
  /// outcome (its probe claimed by the caller). pipeline/probe.cpp.
  net::Task<> probe(std::string deployment);
  net::Task<> healthz(net::Request& request, net::ResponseWriter& writer, Exchange& ex);
  net::Task<> readyz(net::Request& request, net::ResponseWriter& writer, Exchange& ex);
  net::Task<> health_report(net::Request& request, net::ResponseWriter& writer, Exchange& ex);
  net::Task<> decision_report(net::Request& request, net::ResponseWriter& writer, Exchange& ex);
  net::Task<> feedback(net::Request& request, net::ResponseWriter& writer, Exchange& ex);
  /// An admin endpoint's answer: its JSON with 200, or its refusal.
  net::Task<> send_report(net::ResponseWriter& writer, Exchange& ex, admin::Report report);
  net::Task<> relay_translated(Chat& chat, const DeploymentRuntime& d, const dialects::UpstreamRequest& sent,
                               net::UpstreamExchange& up, net::ResponseWriter& writer, Exchange& ex,
                               AttemptResult& result);
  net::Task<> relay_json(Chat& chat, const DeploymentRuntime& d, net::UpstreamExchange& up,
                         net::ResponseWriter& writer, Exchange& ex, AttemptResult& result);
  net::Task<> relay_stream(StreamProcessor& processor, const DeploymentRuntime& d, net::UpstreamExchange& up,
                           net::ResponseWriter& writer, Exchange& ex, AttemptResult& result);
  /// The answer when no deployment answered: the last failure (null: none was recorded).
  net::Task<> answer_failure(net::ResponseWriter& writer, Exchange& ex, const Failure* failure);
  /// After reading an upstream body: true when the attempt ends there (the client left, or the
  /// read failed: `result` says which).
  static bool read_ended_attempt(const net::ResponseWriter& writer, Exchange& ex, net::UpstreamError read,
                                 const DeploymentRuntime& d, AttemptResult& result);
  /// Marks `result` failed with `error`; the failed answer's headers are not passed on.
  [[gnu::cold]] static void fail_attempt(Exchange& ex, AttemptResult& result, core::ApiError error);
  net::Task<> models(net::Request& request, net::ResponseWriter& writer, Exchange& ex);
  /// `/admin/v1/...`: the governance admin API, for admin credentials only.
  net::Task<> admin_api(net::Request& request, net::ResponseWriter& writer, Exchange& ex);

  // Governance (server/governance.cpp, docs/governance.md).
  /// Before planning: the end user, and the rate limits of every subject the request touches
  /// (its token estimate taken from them). The refusal, when a limit holds it back.
  std::optional<core::ApiError> govern(const net::Request& request, Exchange& ex, const routing::RequestTraits& traits,
                                       std::string_view body_user);
  /// After planning: the plan's maximum cost reserved against every budget that applies.
  std::optional<core::ApiError> reserve_budgets(const RouteRuntime& route, Exchange& ex);
  /// The same with counters shared by every node (Redis): rate limits and budgets checked and
  /// taken in one script, one round trip; Redis unreachable: the scopes' failure modes.
  net::Task<std::optional<core::ApiError>> reserve_shared(const RouteRuntime& route, Exchange& ex);
  /// Whether admission goes through the shared counters.
  bool shared_counters(const Exchange& ex) const { return redis_ && ex.governed.held; }
  /// A script's call to Redis (sent again as EVAL when Redis does not have the script).
  net::Task<std::optional<shared::RedisReply>> call_script(std::vector<std::string> argv);
  /// Settles this loop's shared admissions in Redis, a millisecond's worth in one call, after
  /// their requests (retried; idempotent by each lease).
  net::Task<> settle_shared();
  /// Adds to Redis's counters what was spent while it was unreachable.
  net::Task<> reconcile(std::vector<std::string> argv);
  /// Settles what a request held, into its ledger row's budget charges.
  void settle_held(RequestContext& ex, const core::AccountingRecord& r, governance::LedgerRow& row);
  /// Before the last bytes of an answer: with the ledger in sync (or fsync) durability, the
  /// request is settled and its ledger row appended to the spool (and flushed, fsync) before
  /// the end of the response leaves — so a response the client saw complete is in the ledger
  /// even if the process dies next. false when the row could not be made durable (the spool
  /// could not be written): the caller then does not send the end.
  net::Task<bool> commit_answer(Exchange& ex);
  /// Whether `commit_answer` has anything to do (checked inline: no coroutine frame otherwise).
  bool waits_for_ledger(const Exchange& ex) const { return ex.governed.billable && ledger_before_end_; }
  /// At the request's end: what governance held settled and the ledger row queued, unless the
  /// commit gate did both already.
  void finish_governance(Exchange& ex, const core::AccountingRecord& record);
  net::Task<> fail(net::ResponseWriter& writer, Exchange& ex, const core::ApiError& error);
  /// The response's header fields, in this loop's scratch (valid until the next call here).
  std::span<const net::HeaderField> headers(Exchange& ex) { return ex.headers(header_scratch_); }
  std::string_view make_request_id(char (&out)[128]);
  void start_decision(Exchange& ex, const RouteRuntime& route, const routing::RequestTraits& traits);
  /// Settlement: the request's one accounting record, made when it has ended (answered,
  /// refused, failed or abandoned). Valid until the next request on this loop.
  const core::AccountingRecord& settle(std::string_view method, std::string_view path, Exchange& ex,
                                       net::Clock::time_point received);
  /// Moves the request's decision into the shared ring, with the runtime its views point into;
  /// its outcome (status, cost) is the record's.
  void record_decision(Exchange& ex, const core::AccountingRecord& record, std::shared_ptr<const Runtime> runtime);

  net::Loop& loop_;
  Shared& shared_;
  std::shared_ptr<const Runtime> runtime_;  ///< this loop's copy; requests pin their own
  std::uint64_t generation_ = 0;
  telemetry::AccessLog& log_;
  bool ledger_before_end_ = false;  ///< governance on, its ledger durability sync or fsync
  std::unordered_map<std::string, routing::HedgeBudget> hedge_budgets_;  ///< per route
  /// Decision records the ring gave back, reused so a request does not allocate its own (its
  /// vectors keep their capacity). Measured 2026-12-07: without it +0.4K instructions per
  /// request, JSON and SSE (of 22.8K / 37.3K).
  std::vector<std::unique_ptr<routing::Decision>> decision_pool_;
  net::UpstreamPool pool_;
  /// This loop's connection to Redis (governance with shared counters; null otherwise).
  std::unique_ptr<shared::RedisClient> redis_;
  std::vector<shared::SharedCounters::Settlement> settling_;  ///< waiting for the next batch
  bool settle_scheduled_ = false;
  int settles_in_flight_ = 0;  ///< batches on their way (a drained loop waits for them)
  std::vector<net::UpstreamExchange*> probes_;  ///< probes on their way (a drain cancels them)
  StringPool strings_;
  core::AccountingRecord record_;  ///< the last settled request's record (reused)
  ReplyHeaders header_scratch_;
  Authenticator auth_;
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
