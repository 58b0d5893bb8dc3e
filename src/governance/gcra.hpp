#pragma once

#include <cstdint>

/// Rate limits as GCRA (the generic cell rate algorithm): a limit of `rate` units (requests, or
/// tokens) per `period`, with bursts of up to `burst` units. Its state is one number, the
/// theoretical arrival time; refill is exact and continuous (no fixed window that resets at the
/// minute, so no double burst at a window's edge). Pure: the caller gives the time.
namespace switchyard::governance {

struct GcraLimit {
  std::int64_t rate = 0;        ///< units per period (> 0)
  std::int64_t period_ms = 0;   ///< > 0
  std::int64_t burst = 0;       ///< units that may be taken at once from a full allowance (>= 1)
};

/// What the limiter keeps per limited subject: the theoretical arrival time, in units of
/// 1/rate of a millisecond (so that every figure stays an exact integer).
struct GcraState {
  __int128 tat = 0;
};

struct GcraDecision {
  bool allowed = false;
  std::int64_t retry_after_ms = 0;  ///< refused: when the same take would be allowed
  std::int64_t remaining = 0;       ///< units that could still be taken now (after this take)
  std::int64_t reset_ms = 0;        ///< until the allowance is full again
};

/// Takes `units` at `now_ms` if the limit allows it (the state changes only then).
GcraDecision gcra_take(const GcraLimit& limit, GcraState& state, std::int64_t now_ms, std::int64_t units);

/// Takes `units` whether or not the limit allows it (a settled use above its estimate): the
/// allowance may go into debt, which later takes wait for.
void gcra_charge(const GcraLimit& limit, GcraState& state, std::int64_t now_ms, std::int64_t units);

/// Gives `units` back (an estimate that was too high, corrected at settlement); the allowance
/// never grows beyond full.
void gcra_give_back(const GcraLimit& limit, GcraState& state, std::int64_t units);

}  // namespace switchyard::governance
