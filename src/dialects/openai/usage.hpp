#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "core/json_scan.hpp"

namespace switchyard::dialects::openai {

/// Token usage as OpenAI reports it.
struct Usage {
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
  std::int64_t total_tokens = 0;
  std::int64_t cached_tokens = 0;     ///< prompt_tokens_details.cached_tokens
  std::int64_t reasoning_tokens = 0;  ///< completion_tokens_details.reasoning_tokens
};

/// What the relay needs to know of one response body or stream chunk.
struct UsageProbe {
  std::optional<Usage> usage;  ///< set when the JSON has a non-null `usage` object
  bool no_choices = false;     ///< `choices` is present and an empty array
};

/// Reads `usage` from a chat completion or a `chat.completion.chunk`. Cheap when the JSON carries
/// no usage object (a substring check), so it can run on every streamed chunk.
UsageProbe probe_usage(std::string_view json);

/// The same on an already validated document's root object.
UsageProbe probe_usage(const core::json::Value& root);

}  // namespace switchyard::dialects::openai
