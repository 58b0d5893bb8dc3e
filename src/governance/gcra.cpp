#include "governance/gcra.hpp"

namespace switchyard::governance {

namespace {

/// ceil(a / b) for a >= 0, b > 0.
std::int64_t ceil_div(__int128 a, std::int64_t b) { return static_cast<std::int64_t>((a + b - 1) / b); }

}  // namespace

GcraDecision gcra_take(const GcraLimit& limit, GcraState& state, std::int64_t now_ms, std::int64_t units) {
  // Scaled time: one millisecond is `rate` ticks, one unit's emission interval `period_ms` ticks.
  const __int128 now = static_cast<__int128>(now_ms) * limit.rate;
  const __int128 interval = limit.period_ms;
  const __int128 tolerance = static_cast<__int128>(limit.burst) * interval;
  const __int128 tat = state.tat > now ? state.tat : now;
  const __int128 next = tat + static_cast<__int128>(units) * interval;
  GcraDecision d;
  const __int128 allowed_at = next - tolerance;
  if (units > limit.burst || now < allowed_at) {
    d.allowed = false;
    // A take larger than the burst can never be allowed: it is told to wait a whole period.
    d.retry_after_ms = units > limit.burst ? limit.period_ms : ceil_div(allowed_at - now, limit.rate);
    d.remaining = static_cast<std::int64_t>((now + tolerance - tat) / interval);
    d.reset_ms = ceil_div(tat - now, limit.rate);
    return d;
  }
  state.tat = next;
  d.allowed = true;
  d.remaining = static_cast<std::int64_t>((now + tolerance - next) / interval);
  d.reset_ms = ceil_div(next - now, limit.rate);
  return d;
}

void gcra_charge(const GcraLimit& limit, GcraState& state, std::int64_t now_ms, std::int64_t units) {
  const __int128 now = static_cast<__int128>(now_ms) * limit.rate;
  state.tat = (state.tat > now ? state.tat : now) + static_cast<__int128>(units) * limit.period_ms;
}

void gcra_give_back(const GcraLimit& limit, GcraState& state, std::int64_t units) {
  state.tat -= static_cast<__int128>(units) * limit.period_ms;
  if (state.tat < 0) state.tat = 0;
}

}  // namespace switchyard::governance
