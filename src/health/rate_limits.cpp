#include "health/rate_limits.hpp"

#include <cctype>
#include <charconv>
#include <cstdlib>
#include <string>

namespace switchyard::health {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::int64_t parse_count(std::string_view v) {
  v = trim(v);
  std::int64_t n = -1;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc{} || p != v.data() + v.size() || n < 0) return -1;
  return n;
}

}  // namespace

std::int64_t parse_duration_ms(std::string_view text) {
  text = trim(text);
  if (text.empty()) return -1;
  std::string s(text);
  const char* p = s.c_str();
  double total = 0;
  bool any = false;
  while (*p) {
    char* end = nullptr;
    double v = std::strtod(p, &end);
    if (end == p || v < 0) return -1;
    p = end;
    any = true;
    if (*p == 0) {
      total += v * 1000;  // a bare number: seconds
      break;
    }
    if (p[0] == 'm' && p[1] == 's') {
      total += v;
      p += 2;
    } else if (*p == 'h') {
      total += v * 3600000;
      ++p;
    } else if (*p == 'm') {
      total += v * 60000;
      ++p;
    } else if (*p == 's') {
      total += v * 1000;
      ++p;
    } else {
      return -1;
    }
  }
  return any ? static_cast<std::int64_t>(total + 0.5) : -1;
}

std::int64_t parse_retry_after_ms(std::string_view name, std::string_view value) {
  // Called for every field of every upstream answer: most are told apart by their first byte.
  if (name.empty() || (name[0] | 0x20) != 'r') return -1;
  if (iequals(name, "retry-after-ms")) {
    char* end = nullptr;
    std::string v(trim(value));
    double ms = std::strtod(v.c_str(), &end);
    if (v.empty() || *end || ms < 0) return -1;
    return static_cast<std::int64_t>(ms + 0.5);
  }
  if (iequals(name, "retry-after")) {
    std::string v(trim(value));
    char* end = nullptr;
    double s = std::strtod(v.c_str(), &end);
    if (v.empty() || *end || s < 0) return -1;  // an HTTP date: not used by LLM APIs
    return static_cast<std::int64_t>(s * 1000 + 0.5);
  }
  return -1;
}

void read_rate_limit_header(std::string_view name, std::string_view value, RateLimitHeaders& out) {
  if (name.size() < 26 || ((name[0] | 0x20) != 'x' && (name[0] | 0x20) != 'a')) return;  // see above
  if (iequals(name, "x-ratelimit-remaining-requests") ||
      iequals(name, "anthropic-ratelimit-requests-remaining")) {
    out.remaining_requests = parse_count(value);
  } else if (iequals(name, "x-ratelimit-remaining-tokens") ||
             iequals(name, "anthropic-ratelimit-tokens-remaining")) {
    out.remaining_tokens = parse_count(value);
  } else if (iequals(name, "x-ratelimit-reset-requests")) {
    out.reset_ms = parse_duration_ms(value);
  }
}

}  // namespace switchyard::health
