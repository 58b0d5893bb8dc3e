#pragma once

#include <string>
#include <string_view>
#include <variant>

#include "core/chat.hpp"
#include "dialects/json_view.hpp"

/// Google Gemini (generateContent / streamGenerateContent?alt=sse / batchEmbedContents) ⇄ the
/// canonical chat model.
namespace switchyard::dialects::gemini {

/// Canonical → a generateContent body (the model is in the URL). Function declarations and the
/// response schema are reduced to the OpenAPI subset Gemini accepts; a tool result is sent under
/// the name of the call it answers.
void encode_request(const core::ChatRequest& request, std::string& out, core::Unsupported& unsupported);

/// Makes tool-call ids for Gemini, which has none: `<prefix><n>`.
struct IdSource {
  std::string prefix = "call_";
  int next = 0;
  std::string make() { return prefix + std::to_string(next++); }
};

/// A GenerateContentResponse → canonical. A prompt blocked by safety filters is an error.
std::variant<core::ChatResponse, core::ApiError> decode_response(std::string_view body,
                                                                 IdSource& ids);

/// streamGenerateContent SSE chunks → canonical stream events.
class ChunkDecoder {
 public:
  explicit ChunkDecoder(IdSource ids) : ids_(std::move(ids)) {}
  bool feed(std::string_view data, core::StreamSink& sink);
  /// Emits the finish (when no chunk had one) and the usage at the end of the stream.
  void finish(core::StreamSink& sink);
  bool saw_finish() const { return finish_ != core::FinishReason::none; }

 private:
  IdSource ids_;
  JsonView view_;
  bool started_ = false;
  bool finished_ = false;
  int tools_ = 0;
  core::FinishReason finish_ = core::FinishReason::none;
  core::TokenUsage usage_;
};

/// The JSON schema subset Gemini's `parameters` / `responseSchema` accept: `$ref`s inlined,
/// `type: [x, "null"]` → `nullable`, `const` → `enum`, `oneOf` → `anyOf`, and keywords it
/// rejects (`additionalProperties`, `$schema`, `exclusiveMinimum`, ...) removed.
boost::json::value sanitize_schema(const boost::json::value& schema);

/// An OpenAI embeddings request → a batchEmbedContents body for `model`.
std::variant<std::string, core::ApiError> encode_embeddings(std::string_view body, std::string_view model);
/// A batchEmbedContents answer → an OpenAI embeddings answer (floats, or base64 float32).
std::variant<std::string, core::ApiError> decode_embeddings(std::string_view body,
                                                            std::string_view model, bool base64);

}  // namespace switchyard::dialects::gemini
