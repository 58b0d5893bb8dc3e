#pragma once

#include <cstdint>
#include <string_view>

#include "health/registry.hpp"

/// Reading providers' rate-limit and retry hints from response headers. Pure.
namespace switchyard::health {

/// `retry-after` (seconds; HTTP dates are not used by LLM providers and give -1) or
/// `retry-after-ms`, in milliseconds; -1 when absent or unreadable.
std::int64_t parse_retry_after_ms(std::string_view name, std::string_view value);

/// OpenAI-style durations: "1s", "6m0s", "20ms", "1h2m3.5s"; plain numbers are seconds.
/// -1 when unreadable.
std::int64_t parse_duration_ms(std::string_view text);

/// Folds one response header into `out` when it is a rate-limit header (OpenAI and compatible
/// `x-ratelimit-*`, Anthropic `anthropic-ratelimit-*`).
void read_rate_limit_header(std::string_view name, std::string_view value, RateLimitHeaders& out);

/// Folds one field of an upstream answer in: a rate-limit field into `out`, a retry-after into
/// `retry_after_ms` (left alone otherwise). Inline: most fields (date, server, content-type...)
/// end at their first byte, which no rate-limit (x-, anthropic-) or retry-after (r) field has.
inline void read_answer_field(std::string_view name, std::string_view value, RateLimitHeaders& out,
                              std::int64_t& retry_after_ms) {
  const char first = name.empty() ? '\0' : static_cast<char>(name[0] | 0x20);
  if (first == 'r') {
    if (std::int64_t ms = parse_retry_after_ms(name, value); ms >= 0) retry_after_ms = ms;
  } else if (first == 'x' || first == 'a') {
    read_rate_limit_header(name, value, out);
  }
}

}  // namespace switchyard::health
