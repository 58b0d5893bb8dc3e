#include "core/money.hpp"

#include <charconv>
#include <cstring>

namespace switchyard::core {

namespace {

/// A non-negative decimal "123.456" as an integer scaled by 10^scale; nullopt when it is not one
/// or has more than `scale` decimals or exceeds `max_whole`.
std::optional<std::int64_t> parse_scaled(std::string_view text, int scale, std::int64_t max_whole) {
  std::size_t point = text.find('.');
  std::string_view whole = text.substr(0, point);
  std::string_view frac = point == std::string_view::npos ? std::string_view{} : text.substr(point + 1);
  if (whole.empty() && frac.empty()) return std::nullopt;
  if (point != std::string_view::npos && frac.empty()) return std::nullopt;  // "1."
  if (frac.size() > static_cast<std::size_t>(scale)) return std::nullopt;
  std::int64_t w = 0;
  if (!whole.empty() && (whole.front() < '0' || whole.front() > '9')) return std::nullopt;  // signs
  if (!whole.empty()) {
    auto [p, ec] = std::from_chars(whole.data(), whole.data() + whole.size(), w);
    if (ec != std::errc{} || p != whole.data() + whole.size() || w > max_whole) return std::nullopt;
  }
  std::int64_t f = 0;
  for (char c : frac) {
    if (c < '0' || c > '9') return std::nullopt;
    f = f * 10 + (c - '0');
  }
  for (std::size_t i = frac.size(); i < static_cast<std::size_t>(scale); ++i) f *= 10;
  std::int64_t unit = 1;
  for (int i = 0; i < scale; ++i) unit *= 10;
  return w * unit + f;
}

}  // namespace

void Money::append_decimal(std::string& out) const {
  // On the request path (the cost header, the record): written into one buffer, the nine
  // fraction digits two at a time, then one append.
  static constexpr char kPairs[] =
      "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
      "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
      "8081828384858687888990919293949596979899";
  const std::uint64_t magnitude =
      nanos_ < 0 ? 0 - static_cast<std::uint64_t>(nanos_) : static_cast<std::uint64_t>(nanos_);
  char buf[40];
  char* p = buf;
  if (nanos_ < 0) *p++ = '-';
  p = std::to_chars(p, buf + 24, magnitude / 1'000'000'000u).ptr;
  auto frac = static_cast<std::uint32_t>(magnitude % 1'000'000'000u);
  if (frac) {
    *p++ = '.';
    char digits[10];
    digits[0] = static_cast<char>('0' + frac / 100'000'000u);
    frac %= 100'000'000u;
    for (int i = 0; i < 4; ++i) {
      const std::uint32_t pair = frac / (i == 0 ? 1'000'000u : i == 1 ? 10'000u : i == 2 ? 100u : 1u) % 100u;
      digits[1 + 2 * i] = kPairs[2 * pair];
      digits[2 + 2 * i] = kPairs[2 * pair + 1];
    }
    int n = 9;
    while (digits[n - 1] == '0') --n;
    std::memcpy(p, digits, static_cast<std::size_t>(n));
    p += n;
  }
  out.append(buf, p);
}

std::string Money::to_string() const {
  std::string s;
  append_decimal(s);
  return s;
}

std::optional<Money> Money::parse(std::string_view usd) {
  bool negative = !usd.empty() && usd.front() == '-';
  if (negative) usd.remove_prefix(1);
  auto n = parse_scaled(usd, 9, 9'000'000'000);
  if (!n) return std::nullopt;
  return Money(negative ? -*n : *n);
}

std::optional<Rate> parse_rate(std::string_view usd_per_million) {
  return parse_scaled(usd_per_million, 6, 10'000'000);
}

}  // namespace switchyard::core
