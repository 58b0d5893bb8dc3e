#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "core/money.hpp"
#include "core/usage.hpp"

/// What providers bill for a request's tokens: integer prices by token kind, versions with the
/// date they took effect, long-context tiers and off-peak discounts.
namespace switchyard::catalog {

/// One model's token prices, as `core::Rate`s (micro-dollars per million tokens).
struct Prices {
  core::Rate input = 0;            ///< prompt tokens neither read from nor written to a cache
  core::Rate output = 0;           ///< completion tokens (reasoning too, unless `reasoning` is set)
  core::Rate cache_read = -1;      ///< < 0: billed as input
  core::Rate cache_write_5m = -1;  ///< < 0: billed as input (providers that do not bill writes)
  core::Rate cache_write_1h = -1;  ///< < 0: billed as input
  core::Rate reasoning = -1;       ///< < 0: billed as output

  core::Rate cache_read_rate() const { return cache_read < 0 ? input : cache_read; }
  core::Rate cache_write_5m_rate() const { return cache_write_5m < 0 ? input : cache_write_5m; }
  core::Rate cache_write_1h_rate() const { return cache_write_1h < 0 ? input : cache_write_1h; }
  core::Rate reasoning_rate() const { return reasoning < 0 ? output : reasoning; }
};

/// A daily window (UTC, `from` inclusive, `to` exclusive; may wrap past midnight) in which a
/// provider discounts its prices: DeepSeek's off-peak hours.
struct OffPeak {
  std::uint16_t from_minute = 0;  ///< minutes after 00:00 UTC
  std::uint16_t to_minute = 0;
  std::uint8_t percent_off = 0;
  bool contains(std::int64_t unix_s) const;
};

/// The prices in effect from one date on.
struct PriceVersion {
  std::int64_t since_unix_s = 0;  ///< in effect from (UTC); 0 = from the beginning
  Prices base;
  /// Requests with more input tokens than this are billed at `long_context` (Gemini 2.5 Pro's
  /// and Claude Sonnet's prompts over 200K tokens); 0 = one tier.
  std::int64_t long_context_above = 0;
  Prices long_context;
  std::vector<OffPeak> off_peak;

  /// The prices a request of `input_tokens` pays.
  const Prices& tier_for(std::int64_t input_tokens) const {
    return long_context_above > 0 && input_tokens > long_context_above ? long_context : base;
  }
};

/// A model's (or a deployment's) prices over time. Empty: unpriced — a state of its own, never
/// a price of zero.
struct Pricing {
  std::vector<PriceVersion> versions;  ///< oldest first

  bool priced() const { return !versions.empty(); }
  /// The version in effect at `unix_s`; nullptr when unpriced then.
  const PriceVersion* at(std::int64_t unix_s) const;
  /// The latest version's base prices (what routing estimates with); zeros when unpriced.
  const Prices& current() const;
};

/// What a request's tokens cost under one version: every kind at its price, the long-context
/// tier when the input exceeds it, the off-peak discount when `unix_s` falls in a window.
/// Exact to the pico-dollar, then rounded half up to the nano-dollar once per request.
core::Money cost(const PriceVersion& v, const core::TokenUsage& usage, std::int64_t unix_s);

/// The cost under the version in effect at `unix_s`; nullopt when the model is unpriced then.
std::optional<core::Money> cost(const Pricing& p, const core::TokenUsage& usage, std::int64_t unix_s);

}  // namespace switchyard::catalog
