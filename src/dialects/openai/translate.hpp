#pragma once

#include <optional>
#include <span>
#include <utility>
#include <vector>
#include <string>
#include <string_view>
#include <variant>

#include "core/chat.hpp"
#include "dialects/json_view.hpp"
#include "dialects/providers.hpp"

/// OpenAI chat completions ⇄ the canonical chat model: used when the client's dialect and the
/// upstream's differ (an OpenAI client served by Anthropic or Gemini, an Anthropic client served
/// by an OpenAI-dialect upstream).
namespace switchyard::dialects::openai {

/// A client's chat completions body → canonical. Extensions understood: assistant
/// `reasoning_content` and `thinking_blocks` (thinking kept across turns), `cache_control` on
/// content parts and tools, `thinking: {type, budget_tokens}`, `top_k`; legacy `functions` /
/// `function_call` / `role: function`.
std::variant<core::ChatRequest, core::ApiError> decode_request(std::string_view body,
                                                               std::size_t max_depth);

/// What an OpenAI-dialect upstream accepts beyond the common core.
struct EncodeOptions {
  bool max_completion_tokens = false;  ///< send `max_completion_tokens` (OpenAI) not `max_tokens`
  bool top_k = false;                  ///< the upstream takes `top_k`
};

/// Canonical → an upstream chat completions body for `model`. Streams ask for usage.
/// Thinking blocks of assistant turns are not sent (an OpenAI-dialect upstream takes none);
/// what the body cannot say goes to `unsupported`.
void encode_request(const core::ChatRequest& request, std::string_view model,
                    const EncodeOptions& options, std::string& out, core::Unsupported& unsupported);

/// An upstream chat completion → canonical.
std::variant<core::ChatResponse, core::ApiError> decode_response(std::string_view body);

/// Canonical → a chat completion for an OpenAI client.
void encode_response(const core::ChatResponse& response, std::string& out);

/// `chat.completion.chunk` data (one SSE event's payload) → canonical stream events.
class ChunkDecoder {
 public:
  /// Feeds one event's data; "[DONE]" ends the stream. False when the chunk is not valid JSON.
  bool feed(std::string_view data, core::StreamSink& sink);
  /// Emits what was held back (usage) at the end of the stream.
  void finish(core::StreamSink& sink);

 private:
  JsonView view_;
  bool started_ = false;
  bool finished_ = false;
  core::TokenUsage usage_;
};

/// Canonical stream events → `chat.completion.chunk` SSE events for an OpenAI client.
class ChunkEncoder final : public core::StreamSink {
 public:
  /// `include_usage`: the client asked for the usage chunk.
  explicit ChunkEncoder(bool include_usage) : include_usage_(include_usage) {}
  void on_event(const core::StreamEvent& event) override;
  /// The usage chunk (when asked for) and `data: [DONE]`.
  void end();
  /// SSE bytes produced since the last `take`.
  std::string& out() { return out_; }

 private:
  void ensure_prefix();
  void chunk_head();
  void chunk_tail(std::string_view finish_reason);
  bool include_usage_;
  bool ended_ = false;
  std::string id_;
  std::string model_;
  std::int64_t created_ = 0;
  std::string prefix_;  ///< `data: {"id":..,"object":..,"created":..,"model":..,"choices":[`
  core::TokenUsage usage_;
  std::string out_;
};

/// An OpenAI-dialect body for a vendor that refuses or renames some parameters: `model` set,
/// include_usage on streams, renames applied, refused parameters dropped (and listed in
/// `dropped`) when `drop`, or an error naming them otherwise.
std::optional<core::ApiError> adapt_for_vendor(std::string_view body, std::string_view model,
                                               std::span<const std::string_view> rejected,
                                               std::span<const Rename> renamed,
                                               std::string_view vendor, bool drop, std::string& out,
                                               std::vector<std::string>& dropped);

std::string_view finish_reason_name(core::FinishReason reason);
core::FinishReason finish_reason_from(std::string_view name);

/// The canonical usage as OpenAI's `usage` object.
void append_usage(std::string& out, const core::TokenUsage& usage);

}  // namespace switchyard::dialects::openai
