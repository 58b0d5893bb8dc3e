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

}  // namespace switchyard::health
