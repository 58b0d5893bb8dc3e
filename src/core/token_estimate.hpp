#pragma once

#include <cstddef>
#include <string_view>

/// Token counts for routing decisions (does a request fit a context window, what will it cost)
/// without running a real tokenizer: a real BPE needs its vocabulary and allocates, and the
/// router only needs to be about right. Measured against o200k_base and cl100k_base in
/// bench/tokens (README there has the error table).
namespace switchyard::core {

/// Estimated tokens of `text` for modern BPE tokenizers (o200k_base / cl100k_base class): one
/// pass, no allocation. `text` is read as UTF-8; JSON string escapes (`\n`, `\"`, `\uXXXX`) count
/// as the characters they stand for, so raw JSON string content can be passed undecoded.
/// 0 only for empty text.
std::size_t estimate_text_tokens(std::string_view text);

}  // namespace switchyard::core
