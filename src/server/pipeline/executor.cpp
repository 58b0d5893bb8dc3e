#include "server/pipeline/executor.hpp"

#include <algorithm>

namespace switchyard::server {

namespace {

using Port = AttemptPort;

/// One execution's state: the executor's coroutines share it (it lives in `execute`'s frame).
struct Run {
  const ExecutionOptions& options;  ///< `execute`'s parameter
  Port& port;
  std::vector<routing::AttemptRecord>& attempts;
  Execution out;
  std::int64_t backoff_ms = 0;  ///< the wait before this round, told by its first attempt's record
  std::uint64_t rng;

  double uniform() {
    // splitmix64: jitter, not a secret
    std::uint64_t z = (rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return static_cast<double>((z ^ (z >> 31)) >> 11) * 0x1.0p-53;
  }

  void record(std::uint16_t index, AttemptResult& r, double ms, bool hedge) {
    routing::AttemptRecord a;
    a.candidate = index;
    a.outcome = r.what.empty() ? (r.end == AttemptEnd::answered ? "ok" : "failed") : std::move(r.what);
    a.status = r.status;
    a.ms = ms;
    a.hedge = hedge;
    if (backoff_ms) {
      a.retry = true;
      a.backoff_ms = backoff_ms;
      backoff_ms = 0;
    }
    attempts.push_back(std::move(a));
  }

  /// The end of a slot's attempt: health, the request's shortest retry-after, its failure, the
  /// record.
  void finish(int slot, std::uint16_t index, AttemptResult& r, double ms, bool hedge) {
    port.release(slot, r);
    if (r.health == health::Outcome::rate_limited && r.retry_after_ms >= 0)
      out.retry_after_ms = out.retry_after_ms < 0 ? r.retry_after_ms : std::min(out.retry_after_ms, r.retry_after_ms);
    if (r.failure) out.failure = std::move(r.failure);
    if (r.end == AttemptEnd::answered) out.answered = index;
    record(index, r, ms, hedge);
  }

  /// Claims the plan entry for the primary slot; true when it is not tried (what that came to is
  /// recorded and `end` says whether to go on). A plain function: what claiming returns stays on
  /// the stack, not in `execute`'s frame, which a stream keeps.
  bool skipped(std::uint16_t index, AttemptEnd& end) {
    std::optional<AttemptResult> skipped = port.claim(AttemptPort::kPrimary, index);
    if (!skipped) return false;
    end = skipped->end == AttemptEnd::give_up ? AttemptEnd::give_up : AttemptEnd::next;
    if (skipped->failure) out.failure = std::move(skipped->failure);
    record(index, *skipped, 0, false);
    return true;
  }

  net::Task<AttemptEnd> race(std::uint16_t index, std::uint16_t hedge_index, std::int64_t delay_ms, bool last,
                             bool hedge_last, bool& hedge_started);
};

net::Task<AttemptEnd> Run::race(std::uint16_t index, std::uint16_t hedge_index, std::int64_t delay_ms, bool last,
                                bool hedge_last, bool& hedge_started) {
  const double started = port.now_ms();
  port.start(Port::kPrimary, false);  // its hedge follows it
  co_await port.wait(started + static_cast<double>(delay_ms));
  double hedge_at = 0;
  if (!port.started(Port::kPrimary) && !port.client_gone() && options.budget->try_spend()) {
    // A backup the health does not admit (or the request cannot go to) is not started; the
    // primary goes on alone.
    if (!port.claim(Port::kHedge, hedge_index)) {
      port.start(Port::kHedge, hedge_last);
      hedge_started = true;
      out.hedged = true;
      hedge_at = port.now_ms();
    }
  }
  // The first usable answer wins; with both failed, the primary's failure is the one reported.
  int winner = -1;
  for (;;) {
    if (port.usable(Port::kPrimary)) winner = Port::kPrimary;
    else if (hedge_started && port.usable(Port::kHedge)) winner = Port::kHedge;
    else if (port.started(Port::kPrimary) && (!hedge_started || port.started(Port::kHedge))) winner = Port::kPrimary;
    if (winner >= 0) break;
    co_await port.wait(-1);
  }
  // The loser is cancelled, and awaited: its exchange must end before the slot is reused.
  if (winner == Port::kHedge && !port.started(Port::kPrimary)) port.cancel(Port::kPrimary);
  if (winner == Port::kPrimary && hedge_started && !port.started(Port::kHedge)) port.cancel(Port::kHedge);
  while (!port.started(Port::kPrimary) || (hedge_started && !port.started(Port::kHedge))) co_await port.wait(-1);

  const double raced = port.now_ms();
  if (winner == Port::kPrimary) {
    AttemptResult r = co_await port.respond(Port::kPrimary, last && !hedge_started);
    const AttemptEnd end = r.end;
    finish(Port::kPrimary, index, r, raced - started, false);
    if (hedge_started) {
      AttemptResult loser = port.lost(Port::kHedge);
      finish(Port::kHedge, hedge_index, loser, raced - hedge_at, true);
    }
    co_return end;
  }
  AttemptResult loser = port.lost(Port::kPrimary);
  finish(Port::kPrimary, index, loser, raced - started, false);
  AttemptResult r = co_await port.respond(Port::kHedge, last);
  const AttemptEnd end = r.end;
  finish(Port::kHedge, hedge_index, r, raced - hedge_at, true);
  co_return end;
}

}  // namespace

net::Task<Execution> execute(const std::vector<std::uint16_t>& order, std::size_t candidates,
                             ExecutionOptions options, AttemptPort& port,
                             std::vector<routing::AttemptRecord>& attempts) {
  Run run{options, port, attempts, {}, 0, options.seed};
  // The attempt of one plan entry is written out in this loop rather than in a coroutine of its
  // own: one frame fewer per request. Only a hedge race has its own.
  routing::CandidateSet tried(candidates);
  const bool has_deadline = options.deadline_ms >= 0;
  for (int round = 0;; ++round) {
    for (std::size_t k = 0; k < order.size(); ++k) {
      const std::uint16_t index = order[k];
      if (round == 0 && tried.has(index)) continue;  // already ran as a hedge
      if (has_deadline && port.now_ms() >= options.deadline_ms) break;
      // The next entry not yet tried is the hedge, when the route hedges.
      int hedge_index = -1;
      bool hedge_last = false;
      if (options.hedge.enabled)
        for (std::size_t j = k + 1; j < order.size(); ++j)
          if (!tried.has(order[j])) {
            hedge_index = order[j];
            hedge_last = j + 1 == order.size() && round >= options.retry.attempts;
            break;
          }
      const bool last = k + 1 == order.size() && round >= options.retry.attempts;
      tried.set(index);
      bool hedge_started = false;
      AttemptEnd end = AttemptEnd::next;
      if (!run.skipped(index, end)) {
        // Hedging: when the first byte is later than the delay, a backup starts on the next entry.
        std::int64_t delay = -1;
        if (hedge_index >= 0 && options.budget)
          delay = routing::hedge_delay_ms(options.hedge, port.p95_ttft_ms(index));
        if (delay >= 0) {
          end = co_await run.race(index, static_cast<std::uint16_t>(hedge_index), delay, last, hedge_last,
                                 hedge_started);
        } else {
          const double started = port.now_ms();
          AttemptResult r = co_await port.run(AttemptPort::kPrimary, last);
          end = r.end;
          run.finish(AttemptPort::kPrimary, index, r, port.now_ms() - started, false);
        }
      }
      if (hedge_started) tried.set(static_cast<std::size_t>(hedge_index));
      if (end == AttemptEnd::client_gone || port.client_gone()) {
        run.out.end = AttemptEnd::client_gone;
        co_return std::move(run.out);
      }
      if (end == AttemptEnd::answered || end == AttemptEnd::give_up) {
        run.out.end = end;
        co_return std::move(run.out);
      }
    }
    // Every entry failed: back off and go round again while retries and the deadline allow.
    // Whole milliseconds left (a wait shorter than that would still overrun the deadline).
    std::int64_t remaining = has_deadline ? static_cast<std::int64_t>(options.deadline_ms - port.now_ms()) : -1;
    std::int64_t wait = routing::retry_wait_ms(options.retry, round, run.uniform(), run.out.retry_after_ms, remaining);
    if (wait < 0) break;
    run.backoff_ms = wait;
    if (wait > 0) co_await port.sleep_ms(wait);
    if (port.client_gone()) {
      run.out.end = AttemptEnd::client_gone;
      co_return std::move(run.out);
    }
  }
  if (has_deadline && port.now_ms() >= options.deadline_ms && (!run.out.failure || run.out.failure->status == 0)) {
    if (!run.out.failure) run.out.failure = std::make_unique<Failure>();
    run.out.failure->error = core::ApiError::make(
        core::ErrorKind::upstream_timeout,
        "The request's deadline of " + std::to_string(options.deadline_budget_ms) +
            " ms passed before a deployment answered.",
        {}, "deadline_exceeded");
  }
  run.out.end = AttemptEnd::next;
  co_return std::move(run.out);
}

}  // namespace switchyard::server
