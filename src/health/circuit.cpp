#include "health/circuit.hpp"

#include <algorithm>

namespace switchyard::health {

std::string_view to_string(Outcome o) {
  switch (o) {
    case Outcome::success: return "success";
    case Outcome::rate_limited: return "rate_limited";
    case Outcome::server_error: return "server_error";
    case Outcome::timeout: return "timeout";
    case Outcome::connect_error: return "connect_error";
    case Outcome::misconfigured: return "misconfigured";
  }
  return "unknown";
}

std::string_view misconfiguration(int status) {
  switch (status) {
    case 401: return "the provider refused the deployment's API key (HTTP 401)";
    case 403: return "the provider refused the account's access to the model (HTTP 403)";
    case 404: return "the provider does not know the deployment's model id (HTTP 404)";
    default: return "the provider redirected the request: check the provider's base_url";
  }
}

std::string_view to_string(State s) {
  switch (s) {
    case State::closed: return "closed";
    case State::open: return "open";
    case State::half_open: return "half_open";
    case State::cooling: return "cooling";
  }
  return "unknown";
}

int penalty(Outcome o) {
  switch (o) {
    case Outcome::success:
    case Outcome::rate_limited: return 0;  // a 429 is a cooldown, not a fault
    case Outcome::server_error:
    case Outcome::timeout: return 1;
    case Outcome::connect_error: return 2;
    case Outcome::misconfigured: return 1;  // opens the circuit by itself (Breaker::record)
  }
  return 0;
}

State Breaker::state(std::int64_t now_ms) const {
  if (state_ == State::open && now_ms >= until_ms_) return State::half_open;
  if (state_ == State::cooling && now_ms >= until_ms_) return State::closed;
  return state_;
}

std::int64_t Breaker::recovers_at(std::int64_t now_ms) const {
  State s = state(now_ms);
  return s == State::open || s == State::cooling ? until_ms_ : 0;
}

bool Breaker::try_probe(std::int64_t now_ms) {
  if (state(now_ms) != State::half_open || probing_) return false;
  state_ = State::half_open;
  probing_ = true;
  return true;
}

void Breaker::add_to_window(bool failed, std::int64_t now_ms) {
  const std::int64_t width = std::max<std::int64_t>(1, options_.window_ms / kBuckets);
  const std::int64_t start = now_ms - now_ms % width;
  Bucket& b = buckets_[(start / width) % kBuckets];
  if (b.start_ms != start) b = {start, 0, 0};
  ++b.total;
  if (failed) ++b.failed;
}

double Breaker::error_rate(std::int64_t now_ms) const {
  int total = 0, failed = 0;
  for (const auto& b : buckets_) {
    if (b.start_ms < 0 || now_ms - b.start_ms >= options_.window_ms) continue;
    total += b.total;
    failed += b.failed;
  }
  return total == 0 ? 0.0 : static_cast<double>(failed) / total;
}

int Breaker::window_count(std::int64_t now_ms) const {
  int total = 0;
  for (const auto& b : buckets_)
    if (b.start_ms >= 0 && now_ms - b.start_ms < options_.window_ms) total += b.total;
  return total;
}

void Breaker::open(std::int64_t now_ms, std::int64_t cooldown_ms) {
  state_ = State::open;
  until_ms_ = now_ms + cooldown_ms;
  probing_ = false;
}

void Breaker::record(Outcome o, std::int64_t now_ms, std::int64_t retry_after_ms) {
  const State before = state(now_ms);
  if (o == Outcome::rate_limited) {
    // Not a fault: the deployment is fine but out of quota. Honour its retry-after, else back
    // off exponentially while the 429s continue.
    std::int64_t cooldown = retry_after_ms;
    if (cooldown < 0) {
      cooldown = std::min(options_.max_cooldown_ms,
                          options_.rate_limit_cooldown_ms << std::min(rate_limits_, 16));
      ++rate_limits_;
    }
    cooldown = std::min(cooldown, options_.max_cooldown_ms * 10);
    if (before == State::half_open) {
      open(now_ms, cooldown);  // the probe learned nothing about recovery: stay open
      return;
    }
    if (before != State::open) {
      state_ = State::cooling;
      until_ms_ = std::max(until_ms_, now_ms + cooldown);
    }
    probing_ = false;
    return;
  }
  const bool failed = o != Outcome::success;
  add_to_window(failed, now_ms);
  if (!failed) {
    consecutive_ = 0;
    rate_limits_ = 0;
    if (before == State::half_open) {
      state_ = State::closed;
      opens_ = 0;
      probing_ = false;
    } else if (state_ == State::cooling && before == State::closed) {
      state_ = State::closed;
    }
    return;
  }
  last_failure_ = o;
  consecutive_ += penalty(o);
  if (o == Outcome::misconfigured) {
    // Every request would get the same refusal: out at once, for long, whatever the state. Its
    // probe after the cooldown finds out whether an operator fixed it.
    open(now_ms, options_.misconfigured_cooldown_ms);
    return;
  }
  auto next_cooldown = [&] {
    std::int64_t c = options_.cooldown_ms << std::min(opens_, 16);
    ++opens_;
    return std::min(c, options_.max_cooldown_ms);
  };
  if (before == State::half_open) {
    open(now_ms, next_cooldown());
    return;
  }
  if (before == State::open) return;  // an attempt that started before the circuit opened
  bool too_many = consecutive_ >= options_.consecutive_failures;
  bool rate = window_count(now_ms) >= options_.min_requests &&
              error_rate(now_ms) >= options_.error_rate;
  if (too_many || rate) open(now_ms, next_cooldown());
}

}  // namespace switchyard::health
