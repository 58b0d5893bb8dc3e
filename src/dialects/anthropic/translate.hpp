#pragma once

#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/chat.hpp"
#include "dialects/json_view.hpp"

/// Anthropic Messages ⇄ the canonical chat model: the egress to Anthropic's API and the
/// Anthropic-compatible ingress (`POST /v1/messages`).
namespace switchyard::dialects::anthropic {

/// A client's Messages body → canonical (the ingress). Validates what Anthropic's API would:
/// `max_tokens` and `messages` required, roles user/assistant, block types.
std::variant<core::ChatRequest, core::ApiError> decode_request(std::string_view body,
                                                               std::size_t max_depth,
                                                               bool require_max_tokens = true);

/// A Messages body for an Anthropic upstream: the client's own, with `model` replaced (and
/// `max_tokens` lowered to `max_tokens_cap` when that is positive and lower).
bool patch_model(std::string_view body, std::string_view model, std::string& out, std::int64_t max_tokens_cap = 0);

/// Usage of a Message body, or of one streamed event (message_start / message_delta).
void probe_usage(std::string_view json, core::TokenUsage& usage);

/// How a request was encoded, for reading its answer.
struct EncodeResult {
  /// JSON mode is done with a forced tool of this name; its input is the answer's text.
  std::string json_tool;
};

/// Canonical → a Messages body for `model`. `default_max_tokens` when the client gave none
/// (Anthropic requires it). What the API cannot say goes to `unsupported`.
EncodeResult encode_request(const core::ChatRequest& request, std::string_view model,
                            std::int64_t default_max_tokens, std::string& out,
                            core::Unsupported& unsupported);

/// An upstream Message → canonical.
std::variant<core::ChatResponse, core::ApiError> decode_response(std::string_view body,
                                                                 const EncodeResult& encoded);

/// Canonical → a Message for an Anthropic client.
void encode_response(const core::ChatResponse& response, std::string& out);

/// Upstream Messages SSE events → canonical stream events.
class EventDecoder {
 public:
  explicit EventDecoder(EncodeResult encoded) : encoded_(std::move(encoded)) {}
  /// One event (`event:` name and `data:`); false when its data is not valid JSON.
  bool feed(std::string_view event_name, std::string_view data, core::StreamSink& sink);
  bool stopped() const { return stopped_; }

 private:
  EncodeResult encoded_;
  JsonView view_;
  bool stopped_ = false;
  int tool_count_ = 0;
  /// Per content block index: its tool call number, -1 for a block that is not a tool call,
  /// -2 for the JSON-mode tool (its input is streamed as text).
  std::vector<int> block_tool_;
  core::TokenUsage usage_;
  core::FinishReason finish_ = core::FinishReason::none;
  std::string stop_sequence_;
};

/// Canonical stream events → Messages SSE events for an Anthropic client. Blocks open when
/// their first content arrives (no empty text blocks), one `message_start`, and the closing
/// `message_delta` carries the final usage.
class EventEncoder final : public core::StreamSink {
 public:
  explicit EventEncoder(std::string model) : model_(std::move(model)) {}
  void on_event(const core::StreamEvent& event) override;
  /// `message_delta` and `message_stop` (unless an error ended the stream).
  void end();
  std::string& out() { return out_; }

 private:
  enum class Open { none, text, thinking, tool };
  void start_message(const core::StreamEvent* start);
  void open_block(Open kind, const core::StreamEvent* tool);
  void close_block();
  void event(std::string_view name, const std::string& data);
  std::string model_;
  bool started_ = false;
  bool ended_ = false;
  Open open_ = Open::none;
  int block_index_ = -1;
  int open_tool_ = -1;  ///< the tool call number of the open tool block
  core::FinishReason finish_ = core::FinishReason::none;
  core::TokenUsage usage_;
  std::string out_;
};

std::string_view stop_reason_name(core::FinishReason reason, bool stop_sequence);
core::FinishReason finish_from_stop_reason(std::string_view stop_reason);

/// `{"type":"error","error":{"type":..,"message":..}}` for an Anthropic client.
std::string error_body(const core::ApiError& error, std::string_view request_id = {});
/// Anthropic's error `type` for an error kind and status.
std::string_view error_type(core::ErrorKind kind, int status);

/// Anthropic's default `max_tokens` for a model when the client gave none.
std::int64_t default_max_tokens(std::string_view model);

}  // namespace switchyard::dialects::anthropic
