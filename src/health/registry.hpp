#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "health/circuit.hpp"

namespace switchyard::health {

/// What the router reads of a deployment, without taking a lock.
struct Snapshot {
  State state = State::closed;
  std::int64_t recovers_at_ms = 0;  ///< open/cooling: when traffic may resume
  float ttft_ms = -1;               ///< EWMA of time to first byte; -1 before any sample
  float tokens_per_s = -1;          ///< EWMA of output speed; -1 before any sample
  float p95_ttft_ms = -1;           ///< over the last samples; -1 before enough of them
  std::int64_t sampled_at_ms = 0;   ///< the last latency sample (steady ms); 0: none yet
  int in_flight = 0;
  std::int64_t rl_remaining_requests = -1;  ///< from x-ratelimit-remaining-requests; -1 unknown
  std::int64_t rl_remaining_tokens = -1;
  std::int64_t rl_reset_at_ms = 0;          ///< when the remaining counts refill
};

/// Rate-limit headroom a provider reported in its response headers.
struct RateLimitHeaders {
  std::int64_t remaining_requests = -1;
  std::int64_t remaining_tokens = -1;
  std::int64_t reset_ms = -1;  ///< time until the limits reset, from now
};

/// Live health of one deployment, shared by every event loop: writers lock, the router's reads
/// are lock-free loads.
class DeploymentHealth {
 public:
  DeploymentHealth(std::string name, BreakerOptions options);

  const std::string& name() const { return name_; }
  /// Inline: the router calls it for every candidate of every request.
  Snapshot read(std::int64_t now_ms) const {
    Snapshot s;
    auto state = static_cast<State>(hot_.state.load(std::memory_order_acquire));
    std::int64_t until = hot_.until_ms.load(std::memory_order_relaxed);
    // The same time rules as Breaker::state, on the published copy.
    if (state == State::open && now_ms >= until) state = State::half_open;
    if (state == State::cooling && now_ms >= until) state = State::closed;
    s.state = state;
    s.recovers_at_ms = state == State::open || state == State::cooling ? until : 0;
    s.ttft_ms = hot_.ttft_ms.load(std::memory_order_relaxed);
    s.tokens_per_s = hot_.tokens_per_s.load(std::memory_order_relaxed);
    s.p95_ttft_ms = hot_.p95_ms.load(std::memory_order_relaxed);
    s.in_flight = hot_.in_flight.load(std::memory_order_relaxed);
    s.sampled_at_ms = static_cast<std::int64_t>(hot_.sampled_at_s.load(std::memory_order_relaxed)) * 1000;
    s.rl_reset_at_ms = hot_.rl_reset_at_ms.load(std::memory_order_relaxed);
    if (s.rl_reset_at_ms == 0 || now_ms < s.rl_reset_at_ms) {
      s.rl_remaining_requests = hot_.rl_requests.load(std::memory_order_relaxed);
      s.rl_remaining_tokens = hot_.rl_tokens.load(std::memory_order_relaxed);
    }
    return s;
  }

  /// Claims the half-open probe (one request at a time tests a recovering deployment).
  bool try_probe(std::int64_t now_ms);
  /// Gives an unused probe back (the attempt was not sent).
  void release_probe(std::int64_t now_ms);
  /// Records an outcome; a success may carry its timing (time to first byte, output speed),
  /// folded in under the same lock.
  void record(Outcome o, std::int64_t now_ms, std::int64_t retry_after_ms = -1, double ttft_ms = -1,
              double tokens_per_s = -1);
  /// A successful answer's timing: time to the first byte, and for streams the output speed.
  void observe_latency(double ttft_ms, double tokens_per_s);
  /// The provider refused the deployment's configuration (HTTP `status`: 401, 403, 404, or a
  /// redirect): out of rotation for the long cooldown. True when this took it out (it was not
  /// already out for that reason), so the caller logs it once.
  bool misconfigured(int status, std::int64_t now_ms);
  void observe_rate_limits(const RateLimitHeaders& h, std::int64_t now_ms);
  void begin() { hot_.in_flight.fetch_add(1, std::memory_order_relaxed); }
  void end() { hot_.in_flight.fetch_sub(1, std::memory_order_relaxed); }
  void set_options(BreakerOptions options);

  /// Window figures for the health endpoint (takes the lock).
  struct Details {
    double error_rate = 0;
    int window_count = 0;
    int consecutive_failure_points = 0;
    int times_opened = 0;
    Outcome last_failure = Outcome::success;
    std::uint64_t successes = 0;
    std::uint64_t failures = 0;
    int misconfigured_status = 0;  ///< the refusal that took it out; 0 once it served again
  };
  Details details(std::int64_t now_ms) const;

 private:
  void publish(std::int64_t now_ms);
  void observe_locked(double ttft_ms, double tokens_per_s);

  const std::string name_;
  mutable std::mutex mutex_;
  Breaker breaker_;
  Ewma ttft_, speed_;
  std::array<float, 64> ttft_samples_{};
  std::size_t ttft_count_ = 0;
  std::uint64_t successes_ = 0, failures_ = 0;
  int misconfigured_status_ = 0;

  /// What `read` loads, in one cache line: the router reads it for every candidate of every
  /// request.
  struct alignas(64) Hot {
    std::atomic<std::int64_t> until_ms{0};
    std::atomic<std::int64_t> rl_requests{-1};
    std::atomic<std::int64_t> rl_tokens{-1};
    std::atomic<std::int64_t> rl_reset_at_ms{0};
    std::atomic<float> ttft_ms{-1};
    std::atomic<float> tokens_per_s{-1};
    std::atomic<float> p95_ms{-1};
    std::atomic<int> in_flight{0};
    std::atomic<std::int32_t> sampled_at_s{0};  ///< seconds fit the line; staleness is coarse
    std::atomic<std::uint8_t> state{0};
  };
  static_assert(sizeof(Hot) == 64);
  Hot hot_;
};

/// Every deployment's health by name. Entries outlive configuration reloads (a reload keeps
/// what was learned of a deployment that is still there).
class Registry {
 public:
  explicit Registry(BreakerOptions options = {}) : options_(options) {}
  /// The entry for `name`, created on first use; the reference stays valid for the registry's
  /// lifetime.
  DeploymentHealth& get(std::string_view name);
  void set_options(BreakerOptions options);
  std::vector<const DeploymentHealth*> all() const;

 private:
  mutable std::mutex mutex_;
  BreakerOptions options_;
  std::unordered_map<std::string, std::unique_ptr<DeploymentHealth>> entries_;
};

/// A steady clock in milliseconds (the gateway's; tests pass their own times).
std::int64_t steady_now_ms();

}  // namespace switchyard::health
