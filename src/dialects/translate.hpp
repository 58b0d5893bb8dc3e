#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/chat.hpp"
#include "dialects/anthropic/translate.hpp"
#include "dialects/gemini/translate.hpp"
#include "dialects/openai/translate.hpp"
#include "dialects/providers.hpp"
#include "dialects/responses/translate.hpp"
#include "dialects/sse.hpp"

/// A client in one dialect served by an upstream in another: request, answer and stream, each
/// translated through the canonical model. Pure code; the gateway and the golden conformance
/// suite run exactly this.
namespace switchyard::dialects {

/// The client's request decoded in its own dialect.
std::variant<core::ChatRequest, core::ApiError> decode_client_request(Dialect client,
                                                                      std::string_view body,
                                                                      std::size_t max_depth);

/// Where a request goes.
struct Target {
  Dialect dialect = Dialect::openai;
  const ProviderType* type = nullptr;  ///< for the vendor's parameter table; may be null
  std::string_view model;              ///< the upstream model id
  std::int64_t default_max_tokens = 0; ///< 0: the built-in default for the model
  std::int64_t max_tokens_cap = 0;     ///< > 0: a larger max_tokens is lowered to it (clamping)
  bool drop_unsupported = false;
};

/// A request encoded for its upstream, and what reading the answer needs to know.
struct UpstreamRequest {
  std::string body;
  std::vector<std::string> dropped;  ///< parameters left out (drop_unsupported)
  anthropic::EncodeResult anthropic;
};

/// Canonical → the upstream's body. An error (400) names what the upstream cannot take when
/// the target does not drop unsupported parameters.
std::optional<core::ApiError> encode_upstream_request(const core::ChatRequest& request,
                                                      const Target& target, UpstreamRequest& out);

/// An upstream's complete answer → the client's, with its usage.
std::variant<std::string, core::ApiError> translate_response(Dialect client, Dialect upstream,
                                                             std::string_view body,
                                                             const UpstreamRequest& sent,
                                                             gemini::IdSource ids,
                                                             core::TokenUsage& usage);

/// An upstream's stream → the client's, event by event.
class StreamTranslator final : public core::StreamSink {
 public:
  StreamTranslator(Dialect client, Dialect upstream, const UpstreamRequest& sent,
                   bool client_wants_usage, std::string model, gemini::IdSource ids);
  /// One upstream event; false when it is malformed.
  bool feed(const SseEvent& event);
  /// The upstream's stream ended: closing events, or an error event when it ended before its
  /// own end marker.
  void finish();
  /// True once the upstream said its stream is complete.
  bool complete() const;
  /// Ends the client's stream with an error event.
  void fail(const core::ApiError& error);
  /// Client bytes produced so far; the caller clears it after sending.
  std::string& out();
  const core::TokenUsage& usage() const { return usage_; }

  void on_event(const core::StreamEvent& event) override;

 private:
  Dialect upstream_;
  std::optional<openai::ChunkDecoder> openai_in_;
  std::optional<anthropic::EventDecoder> anthropic_in_;
  std::optional<gemini::ChunkDecoder> gemini_in_;
  /// The client's encoder: each has on_event, end and out.
  std::variant<openai::ChunkEncoder, anthropic::EventEncoder, responses::EventEncoder> out_;
  bool done_ = false;        ///< [DONE] (OpenAI) seen
  bool finish_seen_ = false;
  bool failed_ = false;
  core::TokenUsage usage_;
};

/// The error body for a client of `dialect`.
std::string error_body(Dialect dialect, const core::ApiError& error, std::string_view request_id);

/// The event that ends a client's stream with an error, in its dialect: OpenAI's
/// `data: {"error": …}`, Anthropic's `event: error`, the Responses API's `event: error`.
std::string stream_error_event(Dialect dialect, const core::ApiError& error, std::string_view request_id);

/// An estimated token count of a request (texts, tool calls and definitions, a few per message,
/// 1,000 per image): `precise` with `core::estimate_text_tokens` (`count_tokens`), else with
/// the quick estimate (routing).
std::int64_t estimate_tokens(const core::ChatRequest& request, bool precise = true);

}  // namespace switchyard::dialects
