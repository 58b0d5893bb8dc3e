#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

/// Money and prices as integers: sums are exact, nothing drifts by rounding.
namespace switchyard::core {

/// An amount of US dollars: an integer number of nano-dollars (1e-9 USD, a thousandth of the
/// smallest fraction any provider bills), so sums are exact; up to ±9.2 billion USD.
class Money {
 public:
  constexpr Money() = default;
  static constexpr Money nanos(std::int64_t n) { return Money(n); }
  constexpr std::int64_t nanos() const { return nanos_; }

  constexpr Money& operator+=(Money o) {
    nanos_ += o.nanos_;
    return *this;
  }
  constexpr Money& operator-=(Money o) {
    nanos_ -= o.nanos_;
    return *this;
  }
  friend constexpr Money operator+(Money a, Money b) { return a += b; }
  friend constexpr Money operator-(Money a, Money b) { return a -= b; }
  friend constexpr auto operator<=>(Money, Money) = default;

  /// Dollars as a decimal: "0.00012345", "12", "-3.5" (up to nine decimals, trailing zeros
  /// dropped). Exact.
  void append_decimal(std::string& out) const;
  std::string to_string() const;
  /// A decimal amount of dollars ("12", "0.25", "-0.000000001"), exactly; nullopt for anything
  /// else (exponents, more than nine decimals, out of range).
  static std::optional<Money> parse(std::string_view usd);
  /// For display and estimates only; never for sums.
  double usd() const { return static_cast<double>(nanos_) * 1e-9; }

 private:
  constexpr explicit Money(std::int64_t n) : nanos_(n) {}
  std::int64_t nanos_ = 0;
};

/// A token price as providers publish it, "$0.0375 per 1M tokens", as an integer number of
/// micro-dollars per million tokens (37,500) — which is also pico-dollars per token. Every
/// published price is a whole number in this unit.
using Rate = std::int64_t;

/// A decimal number of dollars per million tokens ("0.0375") as a `Rate`, exactly; nullopt for
/// anything else (negative, exponents, more than six decimals, above $10,000,000 per 1M).
std::optional<Rate> parse_rate(std::string_view usd_per_million);
/// Dollars per million tokens, for display and estimates.
inline double usd_per_million(Rate r) { return static_cast<double>(r) * 1e-6; }

}  // namespace switchyard::core
