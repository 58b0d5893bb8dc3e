#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "health/registry.hpp"
#include "net/task.hpp"
#include "routing/decision.hpp"
#include "routing/execution.hpp"
#include "routing/policy.hpp"

/// The executor: walks a plan — one attempt per entry, a hedge on the next entry when the
/// primary's first byte is late, failover, rounds of retries with backoff, the request's
/// deadline — against an `AttemptPort`, the upstream side. The port is sockets in the server
/// (`server/pipeline/upstream_attempts`) and a script on a virtual clock in the unit tests
/// (`tests/unit/server/executor_test.cpp`), so every path here is tested without a socket.
namespace switchyard::server {

/// How an attempt ended.
enum class AttemptEnd : std::uint8_t {
  answered,     ///< a response (or a stream) went to the client
  next,         ///< it failed before anything was sent: another deployment may be tried
  give_up,      ///< an answer not worth failing over (the client's own 4xx): sent as the answer
  client_gone,  ///< the client left
  skipped,      ///< not tried (health, or the request cannot go to this deployment)
};

/// Why an attempt failed, for the answer when no deployment answers: a gateway-made error, or
/// the upstream's own HTTP error (status and body) when it can go to the client as it came.
struct Failure {
  std::optional<core::ApiError> error;
  int status = 0;
  std::string body;
};

/// What one attempt came to. Returned by the port's calls; the executor records it.
struct AttemptResult {
  AttemptEnd end = AttemptEnd::next;
  std::string what;  ///< for the decision record: "ok", "http_503", "skipped: open", ...
  int status = 0;    ///< the upstream's HTTP status; 0 when none
  /// What it says of the deployment's health; nullopt: nothing (skipped, or a local failure).
  std::optional<health::Outcome> health;
  std::int64_t retry_after_ms = -1;
  double ttft_ms = -1;
  double tokens_per_s = -1;
  health::RateLimitHeaders rate_limits;
  /// Why it failed, when it did (on the heap: an answer, the common case, moves a null pointer).
  std::unique_ptr<Failure> failure;
};

/// The upstream side as the executor sees it: up to two attempts at once, in slots (the primary
/// and, while hedging, the backup).
class AttemptPort {
 public:
  static constexpr int kPrimary = 0;
  static constexpr int kHedge = 1;

  virtual ~AttemptPort() = default;
  /// A steady clock, in milliseconds (fractional: attempts are recorded to the microsecond).
  virtual double now_ms() = 0;
  virtual bool client_gone() = 0;
  virtual net::Task<> sleep_ms(std::int64_t ms) = 0;
  /// Takes candidate `index` into `slot`: its health re-checked now (open or cooling: skipped;
  /// half-open: the probe claimed) and its request prepared. nullopt when ready to start; else
  /// what not trying it came to (`skipped`, or `give_up` when the request cannot be sent
  /// anywhere), the slot left free.
  virtual std::optional<AttemptResult> claim(int slot, std::uint16_t index) = 0;
  /// The candidate's observed p95 time to first byte (ms; < 0: unknown).
  virtual double p95_ttft_ms(std::uint16_t index) = 0;
  /// Sends the slot's request and, once its head is in, `respond`s: one attempt, not raced.
  /// `last`: no plan entry follows it, so nothing bounds a stall but the client's own limits.
  virtual net::Task<AttemptResult> run(int slot, bool last) = 0;
  /// Sends the slot's request in the background; `wait` and `started` tell when the head is in.
  virtual void start(int slot, bool last) = 0;
  /// Returns when a background start finishes, the client leaves, or the steady clock reaches
  /// `until_ms` (< 0: no limit), whichever is first.
  virtual net::Task<> wait(double until_ms) = 0;
  /// The slot's start finished (head in, or failed).
  virtual bool started(int slot) = 0;
  /// It finished with a head whose status is an answer (2xx, or the client's own 4xx).
  virtual bool usable(int slot) = 0;
  virtual void cancel(int slot) = 0;
  /// After the slot's start finished: the answer relayed (or translated) to the client, or why
  /// the attempt failed. `last`: no candidate follows, so a 429 or 5xx goes to the client as is.
  virtual net::Task<AttemptResult> respond(int slot, bool last) = 0;
  /// What a start that lost the race came to, without an answer (cancelled, or its own failure).
  virtual AttemptResult lost(int slot) = 0;
  /// Ends the slot's attempt: `result` goes to the deployment's health (a claimed probe is given
  /// back when it says nothing); the slot is free again.
  virtual void release(int slot, const AttemptResult& result) = 0;
};

struct ExecutionOptions {
  routing::RetryPolicy retry;
  routing::HedgePolicy hedge;
  routing::HedgeBudget* budget = nullptr;  ///< the route's hedge budget; null: no hedging
  double deadline_ms = -1;                 ///< steady clock; < 0: none
  std::uint32_t deadline_budget_ms = 0;    ///< the deadline as configured (for its message)
  std::uint64_t seed = 0;                  ///< retry jitter
};

/// What running the plan came to.
struct Execution {
  /// answered, give_up (the failure is the answer), client_gone; next: every candidate failed
  /// (the last failure is the answer).
  AttemptEnd end = AttemptEnd::next;
  int answered = -1;  ///< the candidate that answered
  std::unique_ptr<Failure> failure;  ///< the last failure; null when none was recorded
  std::int64_t retry_after_ms = -1;  ///< the shortest retry-after of the request's 429s
  bool hedged = false;
};

/// Runs `order` (candidate indexes, first choice first, out of `candidates`); every attempt is
/// appended to `attempts`.
net::Task<Execution> execute(const std::vector<std::uint16_t>& order, std::size_t candidates,
                             ExecutionOptions options, AttemptPort& port,
                             std::vector<routing::AttemptRecord>& attempts);

}  // namespace switchyard::server
