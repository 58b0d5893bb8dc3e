#pragma once

#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/chat.hpp"
#include "dialects/json_writer.hpp"

/// OpenAI's Responses API (`POST /v1/responses`) ⇄ the canonical chat model: the ingress of
/// Codex, the Agents SDK and other Responses clients, served by any provider. To OpenAI
/// deployments the client's body is passed through (only `model` replaced); to the others it is
/// translated here. Stateless: the request carries the whole conversation.
namespace switchyard::dialects::responses {

/// A Responses body → canonical. What the canonical model cannot carry — hosted tools
/// (`web_search`, `file_search`, ...), item types other than messages, function calls, their
/// outputs and reasoning, `previous_response_id`, `background` — is kept in `extra` under its
/// own name, so a provider that cannot take it refuses the request naming it (never dropped
/// silently). The 400 for a body the Responses API itself would refuse.
std::variant<core::ChatRequest, core::ApiError> decode_request(std::string_view body, std::size_t max_depth);

/// Canonical → a Response object (`"object":"response"`) for the client.
void encode_response(const core::ChatResponse& response, std::string& out);

/// Usage of a Response object, or of a stream event that carries one (`response.completed`,
/// `response.incomplete`, `response.failed`): pass-through accounting.
void probe_usage(std::string_view json, core::TokenUsage& usage);

/// Whether a passed-through stream event ends the response (`response.completed`,
/// `response.incomplete`, `response.failed`), and whether it is an error (`error`,
/// `response.failed`).
bool is_terminal_event(std::string_view type);
bool is_error_event(std::string_view type);

/// Canonical stream events → the Responses API's typed events (`response.created`,
/// `response.output_item.added`, `response.output_text.delta`,
/// `response.function_call_arguments.delta`, `response.reasoning_summary_text.delta`, ...,
/// `response.completed`), each with its `sequence_number`.
class EventEncoder final : public core::StreamSink {
 public:
  explicit EventEncoder(std::string model) : model_(std::move(model)) {}
  void on_event(const core::StreamEvent& event) override;
  /// Closes the open item and sends `response.completed` (or `response.incomplete` when the
  /// answer was cut by its token limit), unless an error ended the stream.
  void end();
  std::string& out() { return out_; }

 private:
  struct Item {
    enum class Kind { message, reasoning, function_call } kind = Kind::message;
    std::string id;
    std::string text;       ///< message text; reasoning summary; function arguments
    std::string call_id;    ///< function_call
    std::string name;       ///< function_call
    std::string signature;  ///< reasoning: carried as encrypted_content
  };
  void start(const core::StreamEvent* start);
  Item& open(Item::Kind kind, const core::StreamEvent* tool);
  void close();
  void emit(std::string_view type, const std::string& fields);
  /// An item as it is once complete (in output_item.done and the final Response).
  static void write_done(JsonWriter& w, const Item& it);
  std::string response_json(std::string_view status, const core::ApiError* error) const;

  std::string model_;
  std::string id_;    ///< the response's: resp_<base>
  std::string base_;  ///< the upstream's id, as the items' ids carry it
  std::int64_t created_ = 0;
  bool started_ = false;
  bool ended_ = false;
  bool open_ = false;
  std::vector<Item> items_;
  int sequence_ = 0;
  core::FinishReason finish_ = core::FinishReason::none;
  core::TokenUsage usage_;
  std::string out_;
};

/// How a reasoning item's `encrypted_content` carries another provider's thinking signature
/// (Anthropic's signature, Gemini's thought signature), so that the next turn gives it back.
inline constexpr std::string_view kSignaturePrefix = "switchyard-signature:";

}  // namespace switchyard::dialects::responses
