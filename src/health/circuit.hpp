#pragma once

#include <cstdint>
#include <string_view>

/// Per-deployment health from live outcomes: a circuit breaker with an error-rate window,
/// consecutive-failure counting, cooldowns that honour `retry-after`, and half-open probes.
/// Pure: every call takes the time, so tests drive it with an injected clock.
namespace switchyard::health {

/// What an attempt on a deployment came to, as far as the deployment's health is concerned.
enum class Outcome : std::uint8_t {
  success,       ///< a 2xx, or a 4xx that is the client's fault (the deployment is fine)
  rate_limited,  ///< 429: cooling down for retry-after (or a growing default)
  server_error,  ///< 5xx or a malformed answer
  timeout,       ///< connect, first-byte or total deadline
  connect_error, ///< refused, reset, DNS, TLS
  /// The provider refused the deployment's configuration: its key (401), the account's access
  /// (403), its model id (404), or its base_url (a redirect). No retry helps until an operator
  /// fixes it: the circuit opens at once for `misconfigured_cooldown_ms`.
  misconfigured,
};
std::string_view to_string(Outcome o);
/// What a provider's refusal of a deployment's configuration means, for operators: "the
/// provider refused the key (HTTP 401)".
std::string_view misconfiguration(int status);

enum class State : std::uint8_t {
  closed,     ///< serving
  open,       ///< failing: no traffic until `until`
  half_open,  ///< cooldown over: one probe at a time decides
  cooling,    ///< rate-limited: no traffic until `until` (not a fault)
};
std::string_view to_string(State s);

struct BreakerOptions {
  std::int64_t window_ms = 30000;        ///< error-rate window
  int min_requests = 10;                 ///< outcomes in the window before the rate counts
  double error_rate = 0.5;               ///< open at or above this failure share
  int consecutive_failures = 3;          ///< open after this many failure points in a row
  std::int64_t cooldown_ms = 5000;       ///< first open period; doubles per re-open
  std::int64_t max_cooldown_ms = 60000;
  std::int64_t rate_limit_cooldown_ms = 1000;  ///< a 429 without retry-after; doubles per repeat
  std::int64_t misconfigured_cooldown_ms = 300000;  ///< after a 401/403/404/redirect; not doubled
};

/// Failure points of one outcome: a connection error is surer evidence of a dead deployment
/// than one slow answer.
int penalty(Outcome o);

/// The breaker of one deployment. Not thread-safe (the registry locks around it).
class Breaker {
 public:
  explicit Breaker(BreakerOptions options = {}) : options_(options) {}
  void set_options(BreakerOptions options) { options_ = options; }

  /// The state at `now_ms` (open/cooling turn half-open/closed when their time has passed).
  State state(std::int64_t now_ms) const;
  /// When an open or cooling deployment takes traffic again (ms); 0 when it does now.
  std::int64_t recovers_at(std::int64_t now_ms) const;

  /// Claims the half-open probe; false when another request holds it or the state is not
  /// half-open.
  bool try_probe(std::int64_t now_ms);
  /// Gives the probe back unused (the attempt was never sent).
  void release_probe() { probing_ = false; }

  /// Records an outcome. `retry_after_ms` < 0 when the upstream gave none.
  void record(Outcome o, std::int64_t now_ms, std::int64_t retry_after_ms = -1);

  /// Share of failures in the window (0 when empty) and the number of outcomes in it.
  double error_rate(std::int64_t now_ms) const;
  int window_count(std::int64_t now_ms) const;
  int consecutive_failure_points() const { return consecutive_; }
  int times_opened() const { return opens_; }
  Outcome last_failure() const { return last_failure_; }

 private:
  static constexpr int kBuckets = 10;
  struct Bucket {
    std::int64_t start_ms = -1;
    int total = 0;
    int failed = 0;
  };
  void add_to_window(bool failed, std::int64_t now_ms);
  void open(std::int64_t now_ms, std::int64_t cooldown_ms);

  BreakerOptions options_;
  Bucket buckets_[kBuckets];
  State state_ = State::closed;
  std::int64_t until_ms_ = 0;
  int consecutive_ = 0;
  int opens_ = 0;           ///< successive openings without a recovery (cooldown exponent)
  int rate_limits_ = 0;     ///< successive 429s without retry-after
  bool probing_ = false;
  Outcome last_failure_ = Outcome::success;
};

/// An exponentially weighted moving average that remembers whether it has a sample.
struct Ewma {
  double value = 0;
  bool known = false;
  void add(double sample, double alpha) {
    value = known ? value + alpha * (sample - value) : sample;
    known = true;
  }
};

}  // namespace switchyard::health
