#include "catalog/pricing.hpp"

namespace switchyard::catalog {

bool OffPeak::contains(std::int64_t unix_s) const {
  const std::int64_t minute = ((unix_s / 60) % 1440 + 1440) % 1440;
  if (from_minute <= to_minute) return minute >= from_minute && minute < to_minute;
  return minute >= from_minute || minute < to_minute;
}

const PriceVersion* Pricing::at(std::int64_t unix_s) const {
  const PriceVersion* found = nullptr;
  for (const auto& v : versions)
    if (v.since_unix_s <= unix_s) found = &v;
  return found;
}

const Prices& Pricing::current() const {
  static const Prices kNone{};
  return versions.empty() ? kNone : versions.back().base;
}

core::Money cost(const PriceVersion& v, const core::TokenUsage& u, std::int64_t unix_s) {
  const Prices& p = v.tier_for(u.input);
  auto at_least_zero = [](std::int64_t n) { return n > 0 ? n : 0; };
  const std::int64_t writes = at_least_zero(u.cache_creation);
  const std::int64_t writes_1h = std::min(at_least_zero(u.cache_creation_1h), writes);
  const std::int64_t reasoning = std::min(at_least_zero(u.reasoning), at_least_zero(u.output));
  // Tokens × pico-dollars per token: 128 bits, as a billion tokens at $10,000 per 1M passes 2^63.
  __int128 pico = static_cast<__int128>(u.uncached_input()) * p.input +
                  static_cast<__int128>(at_least_zero(u.cache_read)) * p.cache_read_rate() +
                  static_cast<__int128>(writes - writes_1h) * p.cache_write_5m_rate() +
                  static_cast<__int128>(writes_1h) * p.cache_write_1h_rate() +
                  static_cast<__int128>(at_least_zero(u.output) - reasoning) * p.output +
                  static_cast<__int128>(reasoning) * p.reasoning_rate();
  for (const auto& w : v.off_peak)
    if (w.contains(unix_s)) {
      pico = pico * (100 - w.percent_off) / 100;
      break;
    }
  return core::Money::nanos(static_cast<std::int64_t>((pico + 500) / 1000));
}

std::optional<core::Money> cost(const Pricing& p, const core::TokenUsage& usage, std::int64_t unix_s) {
  const PriceVersion* v = p.at(unix_s);
  if (!v) return std::nullopt;
  return cost(*v, usage, unix_s);
}

}  // namespace switchyard::catalog
