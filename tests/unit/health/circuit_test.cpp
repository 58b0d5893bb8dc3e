#include "health/circuit.hpp"
#include "health/rate_limits.hpp"
#include "health/registry.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <initializer_list>
#include <thread>
#include <vector>
#include <utility>

using namespace switchyard::health;

namespace {

BreakerOptions options() {
  BreakerOptions o;
  o.window_ms = 10000;
  o.min_requests = 10;
  o.error_rate = 0.5;
  o.consecutive_failures = 3;
  o.cooldown_ms = 1000;
  o.max_cooldown_ms = 8000;
  o.rate_limit_cooldown_ms = 500;
  return o;
}

}  // namespace

TEST(Breaker, OpensAfterConsecutiveFailuresAndRecoversThroughOneProbe) {
  Breaker b(options());
  std::int64_t t = 1000;
  b.record(Outcome::server_error, t);
  b.record(Outcome::timeout, t);
  EXPECT_EQ(b.state(t), State::closed);
  b.record(Outcome::server_error, t);
  EXPECT_EQ(b.state(t), State::open);
  EXPECT_EQ(b.recovers_at(t), t + 1000);
  EXPECT_FALSE(b.try_probe(t + 999));
  EXPECT_EQ(b.state(t + 1000), State::half_open);
  EXPECT_TRUE(b.try_probe(t + 1000));
  EXPECT_FALSE(b.try_probe(t + 1001)) << "one probe at a time";
  b.record(Outcome::success, t + 1100);
  EXPECT_EQ(b.state(t + 1100), State::closed);
  EXPECT_EQ(b.times_opened(), 0);
}

TEST(Breaker, FailedProbeReopensWithDoubledCooldownUpToTheCap) {
  Breaker b(options());
  std::int64_t t = 0;
  for (int i = 0; i < 3; ++i) b.record(Outcome::server_error, t);
  std::int64_t expected[] = {2000, 4000, 8000, 8000};
  for (std::int64_t cooldown : expected) {
    t = b.recovers_at(t);
    ASSERT_TRUE(b.try_probe(t));
    b.record(Outcome::connect_error, t);
    EXPECT_EQ(b.state(t), State::open);
    EXPECT_EQ(b.recovers_at(t), t + cooldown);
  }
}

TEST(Breaker, ConnectionErrorsWeighDouble) {
  Breaker b(options());
  b.record(Outcome::connect_error, 0);
  EXPECT_EQ(b.state(0), State::closed);
  b.record(Outcome::connect_error, 0);
  EXPECT_EQ(b.state(0), State::open) << "2 + 2 points >= 3";
}

TEST(Breaker, ErrorRateOverTheWindowOpensEvenWithoutAStreak) {
  Breaker b(options());
  // Alternating failures never make 3 in a row, but half the window fails.
  for (int i = 0; i < 9; ++i) b.record(i % 2 ? Outcome::server_error : Outcome::success, i * 100);
  EXPECT_EQ(b.state(900), State::closed) << "9 outcomes: below min_requests";
  b.record(Outcome::server_error, 950);
  EXPECT_NEAR(b.error_rate(950), 0.5, 1e-9);
  EXPECT_EQ(b.state(950), State::open);
}

TEST(Breaker, OldOutcomesLeaveTheWindow) {
  Breaker b(options());
  for (int i = 0; i < 8; ++i) b.record(Outcome::server_error, 0), b.record(Outcome::success, 0);
  EXPECT_EQ(b.window_count(0), 16);
  EXPECT_EQ(b.window_count(20000), 0);
  EXPECT_EQ(b.error_rate(20000), 0.0);
}

TEST(Breaker, RateLimitHonoursRetryAfterAndIsNotAFault) {
  Breaker b(options());
  b.record(Outcome::rate_limited, 0, 3000);
  EXPECT_EQ(b.state(0), State::cooling);
  EXPECT_EQ(b.recovers_at(0), 3000);
  EXPECT_EQ(b.state(3000), State::closed);
  EXPECT_EQ(b.consecutive_failure_points(), 0);
  EXPECT_EQ(b.window_count(0), 0);
}

TEST(Breaker, RateLimitWithoutRetryAfterBacksOffExponentially) {
  Breaker b(options());
  b.record(Outcome::rate_limited, 0);
  EXPECT_EQ(b.recovers_at(0), 500);
  b.record(Outcome::rate_limited, 500);
  EXPECT_EQ(b.recovers_at(500), 1500);
  b.record(Outcome::rate_limited, 1500);
  EXPECT_EQ(b.recovers_at(1500), 3500);
  b.record(Outcome::success, 3500);
  b.record(Outcome::rate_limited, 4000);
  EXPECT_EQ(b.recovers_at(4000), 4500) << "a success resets the 429 streak";
}

TEST(Breaker, ProbeCanBeGivenBack) {
  Breaker b(options());
  for (int i = 0; i < 3; ++i) b.record(Outcome::timeout, 0);
  ASSERT_TRUE(b.try_probe(1000));
  b.release_probe();
  EXPECT_TRUE(b.try_probe(1000));
}

TEST(DeploymentHealth, PublishesStateLatencyAndP95ForLockFreeReads) {
  DeploymentHealth h("d", options());
  for (int i = 1; i <= 20; ++i) h.observe_latency(i * 10.0, 50);
  Snapshot s = h.read(0);
  EXPECT_EQ(s.state, State::closed);
  EXPECT_GT(s.ttft_ms, 100);
  EXPECT_NEAR(s.p95_ttft_ms, 190, 0.01);
  EXPECT_NEAR(s.tokens_per_s, 50, 1e-9);
  for (int i = 0; i < 3; ++i) h.record(Outcome::server_error, 100);
  s = h.read(100);
  EXPECT_EQ(s.state, State::open);
  EXPECT_EQ(s.recovers_at_ms, 1100);
  EXPECT_EQ(h.read(1100).state, State::half_open);
  EXPECT_TRUE(h.try_probe(1100));
  EXPECT_EQ(h.read(1101).state, State::open) << "others see it open while the probe is out";
  h.record(Outcome::success, 1200);
  EXPECT_EQ(h.read(1200).state, State::closed);
  EXPECT_EQ(h.details(1200).failures, 3u);
}

TEST(DeploymentHealth, OneStallDoesNotMakeAFastDeploymentLookSlowButASlowdownShows) {
  DeploymentHealth h("d", options());
  for (int i = 0; i < 20; ++i) h.observe_latency(5, -1);
  h.observe_latency(1000, -1);  // one answer held up by a stall
  EXPECT_LT(h.read(0).ttft_ms, 30) << "a 5 ms deployment must not look slower than an 80 ms one";
  EXPECT_NEAR(h.read(0).p95_ttft_ms, 5, 1e-9) << "the p95 of 21 answers is the 20th";

  DeploymentHealth g("g", options());
  for (int i = 0; i < 20; ++i) g.observe_latency(5, -1);
  for (int i = 0; i < 5; ++i) g.observe_latency(80, -1);  // it really got slower
  EXPECT_GT(g.read(0).ttft_ms, 65);
  for (int i = 0; i < 10; ++i) g.observe_latency(80, -1);
  EXPECT_NEAR(g.read(0).ttft_ms, 80, 1);
}

TEST(DeploymentHealth, RateLimitHeadroomExpiresAtReset) {
  DeploymentHealth h("d", options());
  RateLimitHeaders r;
  r.remaining_requests = 7;
  r.remaining_tokens = 9000;
  r.reset_ms = 2000;
  h.observe_rate_limits(r, 1000);
  EXPECT_EQ(h.read(2999).rl_remaining_requests, 7);
  EXPECT_EQ(h.read(3000).rl_remaining_requests, -1);
}

TEST(Registry, KeepsEntriesByNameAcrossLookups) {
  Registry r(options());
  DeploymentHealth& a = r.get("a");
  a.record(Outcome::timeout, 0);
  EXPECT_EQ(&r.get("a"), &a);
  EXPECT_EQ(r.all().size(), 1u);
}

TEST(RateLimits, ParsesRetryAfterAndOpenAIDurations) {
  EXPECT_EQ(parse_retry_after_ms("Retry-After", "2"), 2000);
  EXPECT_EQ(parse_retry_after_ms("retry-after", "0.5"), 500);
  EXPECT_EQ(parse_retry_after_ms("retry-after-ms", "150"), 150);
  EXPECT_EQ(parse_retry_after_ms("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT"), -1);
  EXPECT_EQ(parse_retry_after_ms("x-other", "2"), -1);
  EXPECT_EQ(parse_duration_ms("6m0s"), 360000);
  EXPECT_EQ(parse_duration_ms("1s"), 1000);
  EXPECT_EQ(parse_duration_ms("20ms"), 20);
  EXPECT_EQ(parse_duration_ms("1h2m3.5s"), 3723500);
  EXPECT_EQ(parse_duration_ms("soon"), -1);
  RateLimitHeaders h;
  read_rate_limit_header("x-ratelimit-remaining-requests", "59", h);
  read_rate_limit_header("X-RateLimit-Remaining-Tokens", " 149000 ", h);
  read_rate_limit_header("x-ratelimit-reset-requests", "1s", h);
  EXPECT_EQ(h.remaining_requests, 59);
  EXPECT_EQ(h.remaining_tokens, 149000);
  EXPECT_EQ(h.reset_ms, 1000);
  RateLimitHeaders a;
  read_rate_limit_header("anthropic-ratelimit-requests-remaining", "3", a);
  EXPECT_EQ(a.remaining_requests, 3);

  // A whole answer's fields, one at a time: each kind lands where it belongs, the rest is left.
  RateLimitHeaders f;
  std::int64_t retry = -1;
  for (auto [name, value] : std::initializer_list<std::pair<const char*, const char*>>{
           {"Date", "Wed, 25 Nov 2026 22:00:00 GMT"}, {"Server", "up"}, {"x-request-id", "r"},
           {"X-RateLimit-Remaining-Requests", "4"}, {"Anthropic-RateLimit-Tokens-Remaining", "90"},
           {"Retry-After", "3"}, {"content-type", "application/json"}})
    read_answer_field(name, value, f, retry);
  EXPECT_EQ(f.remaining_requests, 4);
  EXPECT_EQ(f.remaining_tokens, 90);
  EXPECT_EQ(retry, 3000);
  read_answer_field("retry-after", "not a number", f, retry);
  EXPECT_EQ(retry, 3000);  // unreadable: the value before stays
}

// Every loop records outcomes and reads snapshots of the same deployments; the registry hands
// out entries to loops that look them up at once. (Run under ThreadSanitizer in CI.)
TEST(Registry, LoopsRecordingAndReadingAtOnceAgreeOnTheCounts) {
  Registry r(options());
  std::vector<std::thread> loops;
  std::atomic<int> probes{0};
  for (int t = 0; t < 3; ++t)
    loops.emplace_back([&r, &probes, t] {
      for (int i = 0; i < 3000; ++i) {
        DeploymentHealth& h = r.get(i % 2 ? "a" : "b");
        h.begin();
        if (t == 0 && i % 100 == 0) h.record(Outcome::server_error, i);
        else h.record(Outcome::success, i, -1, 100.0 + i % 7, 50.0);
        h.end();
        if (h.try_probe(i)) {
          probes.fetch_add(1);
          h.release_probe(i);
        }
        (void)h.read(i);
        (void)r.all();
      }
    });
  for (auto& l : loops) l.join();
  ASSERT_EQ(r.all().size(), 2u);
  for (const DeploymentHealth* h : r.all()) EXPECT_EQ(h->read(3000).in_flight, 0);
}

TEST(Breaker, AMisconfiguredDeploymentIsOutAtOnceForTheLongCooldownUntilAProbeServes) {
  BreakerOptions o = options();
  o.misconfigured_cooldown_ms = 300000;
  Breaker b(o);
  b.record(Outcome::success, 0);
  b.record(Outcome::misconfigured, 100);  // one 401 is enough: every request would get it
  EXPECT_EQ(b.state(100), State::open);
  EXPECT_EQ(b.recovers_at(100), 300100) << "not the 1 s cooldown of a fault";
  EXPECT_EQ(b.state(300099), State::open);
  ASSERT_TRUE(b.try_probe(300100));
  b.record(Outcome::misconfigured, 300200);  // still refused: out again for as long
  EXPECT_EQ(b.recovers_at(300200), 600200);
  ASSERT_TRUE(b.try_probe(600200));
  b.record(Outcome::success, 600300);  // fixed by an operator
  EXPECT_EQ(b.state(600300), State::closed);
}

TEST(DeploymentHealth, SaysOnceThatItTookAMisconfiguredDeploymentOutAndForgetsItWhenItServes) {
  BreakerOptions o = options();
  o.misconfigured_cooldown_ms = 60000;
  DeploymentHealth h("a", o);
  EXPECT_TRUE(h.misconfigured(401, 1000));
  EXPECT_FALSE(h.misconfigured(401, 1500)) << "already out for that: not logged again";
  EXPECT_EQ(h.details(1500).misconfigured_status, 401);
  EXPECT_EQ(h.read(1500).state, State::open);
  EXPECT_TRUE(h.misconfigured(404, 2000)) << "another refusal is news";
  ASSERT_TRUE(h.try_probe(62000));
  h.record(Outcome::success, 62100, -1, 50);
  EXPECT_EQ(h.details(62100).misconfigured_status, 0);
  EXPECT_EQ(h.read(62100).state, State::closed);
}
