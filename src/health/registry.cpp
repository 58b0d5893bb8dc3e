#include "health/registry.hpp"

#include <algorithm>
#include <chrono>

namespace switchyard::health {

namespace {
constexpr double kAlpha = 0.3;  // recent answers dominate within a handful of requests
}

std::int64_t steady_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

DeploymentHealth::DeploymentHealth(std::string name, BreakerOptions options)
    : name_(std::move(name)), breaker_(options) {}

void DeploymentHealth::publish(std::int64_t now_ms) {
  State s = breaker_.state(now_ms);
  hot_.until_ms.store(breaker_.recovers_at(now_ms), std::memory_order_relaxed);
  // Half-open is published as open-with-a-past-time, so readers compute it the same way.
  if (s == State::half_open) {
    s = State::open;
    hot_.until_ms.store(now_ms, std::memory_order_relaxed);
  }
  hot_.state.store(static_cast<std::uint8_t>(s), std::memory_order_release);
}

bool DeploymentHealth::try_probe(std::int64_t now_ms) {
  std::lock_guard lock(mutex_);
  bool ok = breaker_.try_probe(now_ms);
  // While the probe is out, others see the deployment as still open.
  if (ok) {
    hot_.state.store(static_cast<std::uint8_t>(State::open), std::memory_order_release);
    hot_.until_ms.store(now_ms + 24LL * 3600 * 1000, std::memory_order_relaxed);
  }
  return ok;
}

void DeploymentHealth::release_probe(std::int64_t now_ms) {
  std::lock_guard lock(mutex_);
  breaker_.release_probe();
  publish(now_ms);
}

void DeploymentHealth::record(Outcome o, std::int64_t now_ms, std::int64_t retry_after_ms,
                              double ttft_ms, double tokens_per_s) {
  std::lock_guard lock(mutex_);
  if (o == Outcome::success) observe_locked(ttft_ms, tokens_per_s);
  breaker_.record(o, now_ms, retry_after_ms);
  if (o == Outcome::success) {
    ++successes_;
    misconfigured_status_ = 0;
  } else {
    ++failures_;
  }
  publish(now_ms);
}

bool DeploymentHealth::misconfigured(int status, std::int64_t now_ms) {
  std::lock_guard lock(mutex_);
  const bool already = misconfigured_status_ == status && breaker_.state(now_ms) == State::open;
  breaker_.record(Outcome::misconfigured, now_ms);
  ++failures_;
  misconfigured_status_ = status;
  publish(now_ms);
  return !already;
}

void DeploymentHealth::observe_latency(double ttft_ms, double tokens_per_s) {
  std::lock_guard lock(mutex_);
  observe_locked(ttft_ms, tokens_per_s);
}

void DeploymentHealth::observe_locked(double ttft_ms, double tokens_per_s) {
  if (ttft_ms >= 0) {
    // One stall (a paused process, a descheduled VM) must not make a fast deployment look slow
    // for long: once traffic has left it, only the exploring share measures it again. So a
    // sample moves the average as if it were at most 4 x the average + 50 ms; a real slowdown
    // still shows within a few answers (each raises the bound), and the p95 below sees the
    // sample as it was.
    const double bounded = ttft_.known ? std::min(ttft_ms, 4 * ttft_.value + 50) : ttft_ms;
    ttft_.add(bounded, kAlpha);
    hot_.ttft_ms.store(static_cast<float>(ttft_.value), std::memory_order_relaxed);
    ttft_samples_[ttft_count_++ % ttft_samples_.size()] = static_cast<float>(ttft_ms);
    // Rounded up: a sample taken now is never read as older than it is.
    hot_.sampled_at_s.store(static_cast<std::int32_t>(steady_now_ms() / 1000 + 1), std::memory_order_relaxed);
    std::size_t n = std::min(ttft_count_, ttft_samples_.size());
    // While the window fills, after every sample; then after every 16th (a selection over 64
    // samples per answer would cost more than the rest of this bookkeeping together).
    if (n >= 8 && (ttft_count_ % 16 == 0 || n < ttft_samples_.size())) {
      std::array<float, 64> sorted;
      std::copy_n(ttft_samples_.begin(), n, sorted.begin());
      std::size_t k = (n * 95 + 99) / 100 - 1;
      std::nth_element(sorted.begin(), sorted.begin() + k, sorted.begin() + n);
      hot_.p95_ms.store(sorted[k], std::memory_order_relaxed);
    }
  }
  if (tokens_per_s > 0) {
    speed_.add(tokens_per_s, kAlpha);
    hot_.tokens_per_s.store(static_cast<float>(speed_.value), std::memory_order_relaxed);
  }
}

void DeploymentHealth::observe_rate_limits(const RateLimitHeaders& h, std::int64_t now_ms) {
  if (h.remaining_requests < 0 && h.remaining_tokens < 0) return;
  hot_.rl_requests.store(h.remaining_requests, std::memory_order_relaxed);
  hot_.rl_tokens.store(h.remaining_tokens, std::memory_order_relaxed);
  hot_.rl_reset_at_ms.store(h.reset_ms >= 0 ? now_ms + h.reset_ms : 0, std::memory_order_relaxed);
}

void DeploymentHealth::set_options(BreakerOptions options) {
  std::lock_guard lock(mutex_);
  breaker_.set_options(options);  // what was learned stays; new thresholds apply from now
}

DeploymentHealth::Details DeploymentHealth::details(std::int64_t now_ms) const {
  std::lock_guard lock(mutex_);
  Details d;
  d.error_rate = breaker_.error_rate(now_ms);
  d.window_count = breaker_.window_count(now_ms);
  d.consecutive_failure_points = breaker_.consecutive_failure_points();
  d.times_opened = breaker_.times_opened();
  d.last_failure = breaker_.last_failure();
  d.successes = successes_;
  d.failures = failures_;
  d.misconfigured_status = misconfigured_status_;
  return d;
}

DeploymentHealth& Registry::get(std::string_view name) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(std::string(name));
  if (it != entries_.end()) return *it->second;
  auto entry = std::make_unique<DeploymentHealth>(std::string(name), options_);
  auto& ref = *entry;
  entries_.emplace(std::string(name), std::move(entry));
  return ref;
}

void Registry::set_options(BreakerOptions options) {
  std::lock_guard lock(mutex_);
  options_ = options;
  for (auto& [name, entry] : entries_) entry->set_options(options);
}

std::vector<const DeploymentHealth*> Registry::all() const {
  std::lock_guard lock(mutex_);
  std::vector<const DeploymentHealth*> out;
  for (const auto& [name, entry] : entries_) out.push_back(entry.get());
  std::sort(out.begin(), out.end(),
            [](const auto* a, const auto* b) { return a->name() < b->name(); });
  return out;
}

}  // namespace switchyard::health
