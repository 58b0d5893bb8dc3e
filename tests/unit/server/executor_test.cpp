// The executor without sockets: a scripted port on a virtual clock drives failover, retries,
// hedging and deadlines deterministically (nothing here sleeps or reads a real clock).
#include "server/pipeline/executor.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "server/pipeline/outcome.hpp"

namespace {

using namespace switchyard;
using server::AttemptEnd;
using server::AttemptPort;
using server::AttemptResult;
using server::Execution;
using server::ExecutionOptions;

/// What a candidate does when tried.
struct Script {
  std::int64_t head_ms = 10;  ///< time from the send to its response head (or its failure)
  int status = 200;
  net::UpstreamError error = net::UpstreamError::none;  ///< a transport failure instead of a head
  std::int64_t retry_after_ms = -1;
  bool open = false;               ///< its circuit is open: claiming it skips it
  bool cut_before_first = false;   ///< a stream that breaks before its first event
  bool cut_after_first = false;    ///< a stream that breaks after the client saw events
};

class ScriptedPort final : public AttemptPort {
 public:
  /// Per candidate, the scripts of its successive tries (the last one repeats).
  std::map<std::uint16_t, std::vector<Script>> scripts;
  std::int64_t gone_at = -1;  ///< when the client leaves; < 0: never
  double clock = 0;
  std::vector<std::string> log;
  std::vector<std::pair<std::uint16_t, std::string>> health;  ///< what each release recorded

  double now_ms() override { return clock; }
  bool client_gone() override { return gone_at >= 0 && clock >= static_cast<double>(gone_at); }
  net::Task<> sleep_ms(std::int64_t ms) override {
    log.push_back("sleep " + std::to_string(ms));
    clock += static_cast<double>(ms);
    co_return;
  }
  std::optional<AttemptResult> claim(int slot, std::uint16_t index) override {
    Slot& s = slots_[slot];
    s = Slot{};
    s.script = next_script(index);
    if (s.script.open) {
      AttemptResult r;
      r.end = AttemptEnd::skipped;
      r.what = "skipped: open";
      return r;
    }
    s.index = index;
    s.claimed = true;
    return std::nullopt;
  }
  double p95_ttft_ms(std::uint16_t) override { return -1; }
  net::Task<AttemptResult> run(int slot, bool last) override {
    begin(slot);
    clock += static_cast<double>(slots_[slot].script.head_ms);
    slots_[slot].done = true;
    co_return co_await respond(slot, last);
  }
  void start(int slot, bool) override { begin(slot); }
  net::Task<> wait(double until_ms) override {
    // The earliest pending start finishes, unless the limit comes first.
    int first = -1;
    for (int i = 0; i < 2; ++i) {
      const Slot& s = slots_[i];
      if (!s.started || s.done) continue;
      if (first < 0 || finish_at(s) < finish_at(slots_[first])) first = i;
    }
    if (first < 0) {
      EXPECT_GE(until_ms, 0) << "waiting for nothing, without a limit";
      if (until_ms > clock) clock = until_ms;
      co_return;
    }
    if (until_ms >= 0 && until_ms < finish_at(slots_[first])) {
      clock = std::max(clock, until_ms);
      co_return;
    }
    clock = std::max(clock, finish_at(slots_[first]));
    slots_[first].done = true;
  }
  bool started(int slot) override { return slots_[slot].done; }
  bool usable(int slot) override {
    const Slot& s = slots_[slot];
    return s.done && !s.cancelled && s.script.error == net::UpstreamError::none && s.script.status < 500 &&
           s.script.status != 429;
  }
  void cancel(int slot) override {
    Slot& s = slots_[slot];
    log.push_back("cancel " + std::to_string(s.index) + " @" + std::to_string(static_cast<long>(clock)));
    if (!s.done) {
      s.done = true;
      s.cancelled = true;
    }
  }
  net::Task<AttemptResult> respond(int slot, bool last) override {
    const Slot& s = slots_[slot];
    log.push_back("respond " + std::to_string(s.index) + (last ? " last" : ""));
    AttemptResult r = head_of(s);
    if (s.script.error != net::UpstreamError::none) {
      r.failure = std::make_unique<server::Failure>();
      r.failure->error = server::transport_error(s.script.error, "d" + std::to_string(s.index));
      co_return r;
    }
    const server::Verdict v = server::verdict(s.script.status);
    if (s.script.status >= 400) {
      r.failure = std::make_unique<server::Failure>();
      r.failure->status = s.script.status;
      r.end = v.fail_over && !last ? AttemptEnd::next : AttemptEnd::give_up;
      co_return r;
    }
    if (s.script.cut_before_first) {
      r.health = health::Outcome::server_error;
      r.what = "stream_failed_before_first_event: reset";
      r.failure = std::make_unique<server::Failure>();
      r.failure->error = server::transport_error(net::UpstreamError::reset, "d");
      r.end = AttemptEnd::next;
      co_return r;
    }
    r.end = AttemptEnd::answered;
    if (s.script.cut_after_first) {
      r.health = health::Outcome::server_error;
      r.what = "stream_broken: reset";
    }
    co_return r;
  }
  AttemptResult lost(int slot) override {
    const Slot& s = slots_[slot];
    if (s.cancelled) {
      AttemptResult r;
      r.what = "cancelled";
      return r;
    }
    return head_of(s);
  }
  void release(int slot, const AttemptResult& r) override {
    Slot& s = slots_[slot];
    health.emplace_back(s.index, r.health ? std::string(health::to_string(*r.health)) : "-");
    s = Slot{};
  }

 private:
  struct Slot {
    Script script;
    std::uint16_t index = 0;
    bool claimed = false, started = false, done = false, cancelled = false;
    double sent_at = 0;
  };
  static double finish_at(const Slot& s) { return s.sent_at + static_cast<double>(s.script.head_ms); }
  Script next_script(std::uint16_t index) {
    auto& list = scripts[index];
    std::size_t n = tries_[index]++;
    return list.empty() ? Script{} : list[std::min(n, list.size() - 1)];
  }
  void begin(int slot) {
    Slot& s = slots_[slot];
    EXPECT_TRUE(s.claimed);
    s.started = true;
    s.sent_at = clock;
    log.push_back("start " + std::to_string(s.index) + " @" + std::to_string(static_cast<long>(clock)));
  }
  static AttemptResult head_of(const Slot& s) {
    AttemptResult r;
    if (s.script.error != net::UpstreamError::none) {
      r.what = std::string(net::to_string(s.script.error));
      r.health = server::verdict(s.script.error).health;
      return r;
    }
    r.status = s.script.status;
    r.what = s.script.status < 300 ? "ok" : "http_" + std::to_string(s.script.status);
    r.health = server::verdict(s.script.status).health;
    r.retry_after_ms = s.script.retry_after_ms;
    return r;
  }
  Slot slots_[2];
  std::map<std::uint16_t, std::size_t> tries_;
};

Execution run(ScriptedPort& port, std::vector<std::uint16_t> order, ExecutionOptions options,
              std::vector<routing::AttemptRecord>& attempts) {
  boost::asio::io_context io;
  Execution out;
  bool finished = false;
  net::spawn(io, [&]() -> net::Task<> {
    out = co_await server::execute(order, 8, options, port, attempts);
    finished = true;
  });
  io.run();
  EXPECT_TRUE(finished);
  return out;
}

std::vector<std::string> outcomes(const std::vector<routing::AttemptRecord>& attempts) {
  std::vector<std::string> v;
  for (const auto& a : attempts) v.push_back(std::to_string(a.candidate) + ":" + a.outcome);
  return v;
}

using Strings = std::vector<std::string>;

ExecutionOptions retrying(int rounds, std::uint32_t base_ms, std::uint32_t max_ms, std::uint64_t seed) {
  ExecutionOptions o;
  o.retry.attempts = rounds;
  o.retry.base_ms = base_ms;
  o.retry.max_ms = max_ms;
  o.seed = seed;
  return o;
}

TEST(Executor, FailsOverOnServerErrorsAndResetsToTheFirstAnswer) {
  ScriptedPort port;
  port.scripts[0] = {{.head_ms = 30, .status = 503}};
  port.scripts[1] = {{.head_ms = 5, .error = net::UpstreamError::reset}};
  port.scripts[2] = {{.head_ms = 20}};
  std::vector<routing::AttemptRecord> attempts;
  Execution e = run(port, {0, 1, 2}, {}, attempts);
  EXPECT_EQ(e.end, AttemptEnd::answered);
  EXPECT_EQ(e.answered, 2);
  EXPECT_EQ(outcomes(attempts), (Strings{"0:http_503", "1:connection_reset", "2:ok"}));
  EXPECT_EQ(attempts[0].ms, 30);
  EXPECT_EQ(attempts[2].ms, 20);
  EXPECT_EQ(port.health, (std::vector<std::pair<std::uint16_t, std::string>>{
                             {0, "server_error"}, {1, "connect_error"}, {2, "success"}}));
  EXPECT_EQ(port.clock, 55);
  EXPECT_EQ(port.log, (Strings{"start 0 @0", "respond 0", "start 1 @30", "respond 1", "start 2 @35", "respond 2 last"}));
}

TEST(Executor, TheClientsOwnErrorIsTheAnswerNotAFailover) {
  ScriptedPort port;
  port.scripts[0] = {{.status = 400}};
  std::vector<routing::AttemptRecord> attempts;
  Execution e = run(port, {0, 1}, {}, attempts);
  EXPECT_EQ(e.end, AttemptEnd::give_up);
  ASSERT_TRUE(e.failure);
  EXPECT_EQ(e.failure->status, 400);
  EXPECT_EQ(outcomes(attempts), (Strings{"0:http_400"}));
  EXPECT_EQ(port.health.at(0).second, "success") << "a client's 400 says the deployment is fine";
}

TEST(Executor, TheLastCandidatesRateLimitGoesToTheClientAsItCame) {
  ScriptedPort port;
  port.scripts[0] = {{.status = 429, .retry_after_ms = 5000}};
  std::vector<routing::AttemptRecord> attempts;
  Execution e = run(port, {0}, {}, attempts);
  EXPECT_EQ(e.end, AttemptEnd::give_up);
  ASSERT_TRUE(e.failure);
  EXPECT_EQ(e.failure->status, 429);
  EXPECT_EQ(e.retry_after_ms, 5000);
  EXPECT_EQ(port.log, (Strings{"start 0 @0", "respond 0 last"}));
}

TEST(Executor, RetriesAfterTheRetryAfterAndRecordsTheBackoff) {
  ScriptedPort port;
  port.scripts[0] = {{.head_ms = 10, .status = 429, .retry_after_ms = 300}, {.head_ms = 10}};
  ExecutionOptions options;
  options.retry.attempts = 1;
  std::vector<routing::AttemptRecord> attempts;
  Execution e = run(port, {0}, options, attempts);
  EXPECT_EQ(e.end, AttemptEnd::answered);
  EXPECT_EQ(outcomes(attempts), (Strings{"0:http_429", "0:ok"}));
  EXPECT_FALSE(attempts[0].retry);
  EXPECT_TRUE(attempts[1].retry);
  EXPECT_EQ(attempts[1].backoff_ms, 300);
  EXPECT_EQ(port.log, (Strings{"start 0 @0", "respond 0", "sleep 300", "start 0 @310", "respond 0 last"}));
  EXPECT_EQ(port.clock, 320);
}

TEST(Executor, ARetryAfterLongerThanTheBackoffCapFailsInstead) {
  ScriptedPort port;
  port.scripts[0] = {{.status = 429, .retry_after_ms = 60000}};
  ExecutionOptions options;
  options.retry.attempts = 2;
  options.retry.max_ms = 2000;
  std::vector<routing::AttemptRecord> attempts;
  Execution e = run(port, {0}, options, attempts);
  EXPECT_EQ(e.end, AttemptEnd::next);
  ASSERT_TRUE(e.failure);
  EXPECT_EQ(e.failure->status, 429);
  EXPECT_EQ(attempts.size(), 1u) << "no sleep of a minute";
}

TEST(Executor, RetryBackoffIsJitteredWithinItsCap) {
  ScriptedPort port;
  port.scripts[0] = {{.status = 503}, {.status = 503}, {.status = 200}};
  std::vector<routing::AttemptRecord> attempts;
  Execution e = run(port, {0}, retrying(2, 100, 150, 42), attempts);
  EXPECT_EQ(e.end, AttemptEnd::answered);
  ASSERT_EQ(attempts.size(), 3u);
  EXPECT_LE(attempts[1].backoff_ms, 100);  // round 0: up to base
  EXPECT_LE(attempts[2].backoff_ms, 150);  // round 1: up to min(max, 2 x base)
}

TEST(Executor, TheDeadlineStopsTheWalkAndSaysSo) {
  ScriptedPort port;
  port.scripts[0] = {{.head_ms = 120, .error = net::UpstreamError::reset}};
  ExecutionOptions options;
  options.deadline_ms = 100;
  options.deadline_budget_ms = 100;
  std::vector<routing::AttemptRecord> attempts;
  Execution e = run(port, {0, 1}, options, attempts);
  EXPECT_EQ(e.end, AttemptEnd::next);
  ASSERT_TRUE(e.failure && e.failure->error);
  EXPECT_EQ(e.failure->error->code, "deadline_exceeded");
  EXPECT_NE(e.failure->error->message.find("100 ms"), std::string::npos);
  EXPECT_EQ(outcomes(attempts), (Strings{"0:connection_reset"})) << "the second candidate is not tried after the deadline";
}

TEST(Executor, ADeploymentWhoseCircuitOpenedIsSkippedAndRecorded) {
  ScriptedPort port;
  port.scripts[0] = {{.open = true}};
  std::vector<routing::AttemptRecord> attempts;
  Execution e = run(port, {0, 1}, {}, attempts);
  EXPECT_EQ(e.end, AttemptEnd::answered);
  EXPECT_EQ(e.answered, 1);
  EXPECT_EQ(outcomes(attempts), (Strings{"0:skipped: open", "1:ok"}));
  EXPECT_EQ(port.health.size(), 1u) << "nothing released for a candidate never claimed";
}

TEST(Executor, AStreamCutBeforeItsFirstEventFailsOverOneCutAfterwardsDoesNot) {
  ScriptedPort port;
  port.scripts[0] = {{.cut_before_first = true}};
  port.scripts[1] = {{.cut_after_first = true}};
  std::vector<routing::AttemptRecord> attempts;
  Execution e = run(port, {0, 1, 2}, {}, attempts);
  EXPECT_EQ(e.end, AttemptEnd::answered) << "the client has its stream, ended by an error event";
  EXPECT_EQ(e.answered, 1);
  EXPECT_EQ(outcomes(attempts),
            (Strings{"0:stream_failed_before_first_event: reset", "1:stream_broken: reset"}));
  EXPECT_EQ(port.health[0].second, "server_error");
  EXPECT_EQ(port.health[1].second, "server_error");
}

ExecutionOptions hedging(routing::HedgeBudget& budget, std::uint32_t delay_ms) {
  ExecutionOptions o;
  o.hedge.enabled = true;
  o.hedge.delay_ms = delay_ms;
  budget.on_request(1.0);
  o.budget = &budget;
  return o;
}

TEST(Executor, AHedgeWinsWhenThePrimaryStallsAndThePrimaryIsCancelled) {
  ScriptedPort port;
  port.scripts[0] = {{.head_ms = 1000}};
  port.scripts[1] = {{.head_ms = 20}};
  routing::HedgeBudget budget;
  std::vector<routing::AttemptRecord> attempts;
  Execution e = run(port, {0, 1}, hedging(budget, 50), attempts);
  EXPECT_EQ(e.end, AttemptEnd::answered);
  EXPECT_EQ(e.answered, 1);
  EXPECT_TRUE(e.hedged);
  EXPECT_EQ(port.log, (Strings{"start 0 @0", "start 1 @50", "cancel 0 @70", "respond 1"}));
  EXPECT_EQ(outcomes(attempts), (Strings{"0:cancelled", "1:ok"}));
  EXPECT_FALSE(attempts[0].hedge);
  EXPECT_TRUE(attempts[1].hedge);
  EXPECT_EQ(attempts[1].ms, 20);
  EXPECT_EQ(port.health[0].second, "-") << "a cancelled primary says nothing of its health";
  EXPECT_EQ(budget.balance(), 0.0) << "the hedge spent the budget";
}

TEST(Executor, NoHedgeWhenThePrimaryAnswersInTimeOrTheBudgetIsSpent) {
  {
    ScriptedPort port;
    port.scripts[0] = {{.head_ms = 30}};
    routing::HedgeBudget budget;
    std::vector<routing::AttemptRecord> attempts;
    Execution e = run(port, {0, 1}, hedging(budget, 50), attempts);
    EXPECT_EQ(e.answered, 0);
    EXPECT_FALSE(e.hedged);
    EXPECT_EQ(port.log, (Strings{"start 0 @0", "respond 0"}));
  }
  {
    ScriptedPort port;
    port.scripts[0] = {{.head_ms = 1000}};
    routing::HedgeBudget budget;
    ExecutionOptions o = hedging(budget, 50);
    ASSERT_TRUE(budget.try_spend());  // another request took it
    std::vector<routing::AttemptRecord> attempts;
    Execution e = run(port, {0, 1}, o, attempts);
    EXPECT_EQ(e.answered, 0);
    EXPECT_FALSE(e.hedged);
    EXPECT_EQ(port.clock, 1000) << "the slow primary is waited for";
  }
}

TEST(Executor, AFailedPrimaryLosingToItsHedgeCountsAgainstItsDeployment) {
  ScriptedPort port;
  port.scripts[0] = {{.head_ms = 60, .status = 503}};
  port.scripts[1] = {{.head_ms = 40}};
  routing::HedgeBudget budget;
  std::vector<routing::AttemptRecord> attempts;
  Execution e = run(port, {0, 1}, hedging(budget, 50), attempts);
  EXPECT_EQ(e.answered, 1);
  EXPECT_EQ(outcomes(attempts), (Strings{"0:http_503", "1:ok"}));
  EXPECT_EQ(port.health[0].second, "server_error");
  EXPECT_EQ(port.log, (Strings{"start 0 @0", "start 1 @50", "respond 1"})) << "nothing left to cancel";
}

TEST(Executor, BothRacersFailingFailsOverToTheNextEntry) {
  ScriptedPort port;
  port.scripts[0] = {{.head_ms = 100, .status = 502}};
  port.scripts[1] = {{.head_ms = 60, .error = net::UpstreamError::connect}};
  port.scripts[2] = {{.head_ms = 5}};
  routing::HedgeBudget budget;
  std::vector<routing::AttemptRecord> attempts;
  ExecutionOptions o = hedging(budget, 50);
  Execution e = run(port, {0, 1, 2}, o, attempts);
  EXPECT_EQ(e.end, AttemptEnd::answered);
  EXPECT_EQ(e.answered, 2);
  EXPECT_EQ(outcomes(attempts), (Strings{"0:http_502", "1:connect_failed", "2:ok"}))
      << "the hedge already ran: the walk goes on with the entry after it";
  EXPECT_EQ(port.health[1].second, "connect_error");
}

TEST(Executor, TheClientLeavingDuringABackoffEndsTheRequest) {
  ScriptedPort port;
  port.scripts[0] = {{.status = 503}};
  port.gone_at = 11;  // just after the first answer (10 ms): during the backoff
  std::vector<routing::AttemptRecord> attempts;
  Execution e = run(port, {0}, retrying(3, 100, 100, 7), attempts);
  ASSERT_GE(port.clock, 11) << "the backoff took it past the client's leaving";
  EXPECT_EQ(e.end, AttemptEnd::client_gone);
  EXPECT_EQ(attempts.size(), 1u);
}

}  // namespace
