#include "governance/reservation.hpp"

#include <algorithm>

namespace switchyard::governance {

namespace {

core::Rate dearest_prompt_rate(const catalog::Prices& p) {
  return std::max({p.input, p.cache_read_rate(), p.cache_write_5m_rate(), p.cache_write_1h_rate()});
}

core::Rate dearest_output_rate(const catalog::Prices& p) { return std::max(p.output, p.reasoning_rate()); }

}  // namespace

std::optional<core::Money> max_cost(const catalog::Pricing& pricing, std::int64_t input_tokens,
                                    std::int64_t max_output_tokens, std::int64_t unix_s) {
  const catalog::PriceVersion* v = pricing.at(unix_s);
  if (!v) return std::nullopt;
  // The tier the prompt lands in (tokens counted by the provider can exceed the estimate: the
  // dearer of the two tiers when they differ is the safe one).
  const catalog::Prices& base = v->base;
  const catalog::Prices& tier = v->tier_for(input_tokens);
  const core::Rate in = std::max(dearest_prompt_rate(base), dearest_prompt_rate(tier));
  const core::Rate out = std::max(dearest_output_rate(base), dearest_output_rate(tier));
  const __int128 pico = static_cast<__int128>(std::max<std::int64_t>(input_tokens, 0)) * in +
                        static_cast<__int128>(std::max<std::int64_t>(max_output_tokens, 0)) * out;
  // Rounded up: a ceiling.
  return core::Money::nanos(static_cast<std::int64_t>((pico + 999) / 1000));
}

}  // namespace switchyard::governance
