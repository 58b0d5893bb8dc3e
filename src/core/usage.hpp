#pragma once

#include <cstdint>

namespace switchyard::core {

/// A request's tokens in canonical kinds, whatever the provider's usage shape: the dialect
/// decoders map OpenAI's, Anthropic's, Gemini's and DeepSeek's fields onto it, and the price
/// function bills it. The kinds nest as OpenAI's do: `cache_read` and `cache_creation` are parts
/// of `input`; `reasoning` is part of `output`.
struct TokenUsage {
  std::int64_t input = 0;           ///< all prompt tokens, cached ones and cache writes included
  std::int64_t output = 0;          ///< all completion tokens, reasoning included
  std::int64_t cache_read = 0;      ///< of `input`, read from a prompt cache
  std::int64_t cache_creation = 0;  ///< of `input`, written to a prompt cache
  /// Of `cache_creation`, written with a one-hour lifetime (Anthropic bills it at 2x the input
  /// price, 5-minute writes at 1.25x); the rest are 5-minute writes.
  std::int64_t cache_creation_1h = 0;
  std::int64_t reasoning = 0;       ///< of `output`, spent thinking
  bool known = false;

  /// Prompt tokens neither read from nor written to a cache.
  std::int64_t uncached_input() const {
    std::int64_t n = input - cache_read - cache_creation;
    return n > 0 ? n : 0;
  }
};

}  // namespace switchyard::core
