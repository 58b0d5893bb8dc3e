#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "routing/policy.hpp"

/// The executor's pure decisions: backoff between retries, whether and when to hedge.
namespace switchyard::routing {

/// Full-jitter exponential backoff before retry number `retry` (0-based): uniform in
/// [0, min(max, base · 2^retry)]. `u` is a uniform random number in [0, 1).
inline std::int64_t backoff_ms(const routing::RetryPolicy& c, int retry, double u) {
  std::int64_t cap = std::min<std::int64_t>(c.max_ms, static_cast<std::int64_t>(c.base_ms) << std::min(retry, 20));
  return static_cast<std::int64_t>(u * static_cast<double>(cap));
}

/// How long to wait before retrying the same deployment, or -1 to fail over instead: a
/// retry-after longer than the backoff cap, or a wait that would overrun the deadline, is
/// better spent on the next deployment.
inline std::int64_t retry_wait_ms(const routing::RetryPolicy& c, int retry, double u,
                                  std::int64_t retry_after_ms, std::int64_t remaining_ms) {
  if (retry >= c.attempts) return -1;
  std::int64_t wait = retry_after_ms >= 0 ? retry_after_ms : backoff_ms(c, retry, u);
  if (retry_after_ms > static_cast<std::int64_t>(c.max_ms)) return -1;
  if (remaining_ms >= 0 && wait >= remaining_ms) return -1;
  return wait;
}

/// When to start a hedge on the next deployment: the configured delay, else the primary's
/// observed p95 time to first byte (never below the floor); -1 = do not hedge (no data yet).
inline std::int64_t hedge_delay_ms(const routing::HedgePolicy& c, double primary_p95_ms) {
  if (!c.enabled) return -1;
  if (c.delay_ms) return c.delay_ms;
  if (primary_p95_ms < 0) return -1;
  return std::max<std::int64_t>(c.min_delay_ms, static_cast<std::int64_t>(primary_p95_ms + 0.5));
}

/// Caps hedges to a share of requests: every request earns `share` of a hedge, a hedge spends
/// one; the balance is capped so a quiet period cannot save up a burst.
class HedgeBudget {
 public:
  void on_request(double share) { balance_ = std::min(balance_ + share, kMaxBalance); }
  bool try_spend() {
    if (balance_ < 1.0 - 1e-9) return false;  // sums of shares carry rounding
    balance_ -= 1.0;
    return true;
  }
  double balance() const { return balance_; }

 private:
  static constexpr double kMaxBalance = 5.0;
  double balance_ = 0;
};

/// The candidates a request has run: one word for routes of up to 64 (no allocation per
/// request), a vector beyond.
class CandidateSet {
 public:
  explicit CandidateSet(std::size_t n) {
    if (n > 64) big_.assign(n, false);
  }
  bool has(std::size_t i) const { return big_.empty() ? (small_ >> i) & 1u : big_[i]; }
  void set(std::size_t i) {
    if (big_.empty()) small_ |= std::uint64_t{1} << i;
    else big_[i] = true;
  }

 private:
  std::uint64_t small_ = 0;
  std::vector<bool> big_;
};

}  // namespace switchyard::routing
