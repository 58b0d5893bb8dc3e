#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "core/usage.hpp"

namespace switchyard::dialects::openai {

/// Token usage as OpenAI reports it.
struct Usage {
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
  std::int64_t total_tokens = 0;
  std::int64_t cached_tokens = 0;     ///< prompt_tokens_details.cached_tokens
  std::int64_t reasoning_tokens = 0;  ///< completion_tokens_details.reasoning_tokens
};

/// The same counts in canonical kinds (OpenAI's nesting is the canonical one; DeepSeek's cache
/// hits arrive here as `cached_tokens`).
inline core::TokenUsage to_canonical(const Usage& u) {
  core::TokenUsage c;
  c.known = true;
  c.input = u.prompt_tokens;
  c.output = u.completion_tokens;
  c.cache_read = u.cached_tokens;
  c.reasoning = u.reasoning_tokens;
  return c;
}

/// What the relay needs to know of one response body or stream chunk.
struct UsageProbe {
  std::optional<Usage> usage;  ///< set when the JSON has a non-null `usage` object
  bool no_choices = false;     ///< `choices` is present and an empty array
};

/// Reads `usage` from a chat completion or a `chat.completion.chunk` without walking the whole
/// document: cheap enough to run on every streamed chunk. `check_choices` false skips
/// `no_choices` (only streams need it).
UsageProbe probe_usage(std::string_view json, bool check_choices = true);

/// The one-pass reader `probe_usage` tries first, on text starting at the usage object's `{`:
/// true with the counts for the usual shape (keys without escapes; integers of up to 18 digits,
/// null, or objects of those one level down), false for anything else (then the general
/// validator decides).
bool read_usual_usage(std::string_view object, Usage& out);


}  // namespace switchyard::dialects::openai
