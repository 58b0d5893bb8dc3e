#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "core/error.hpp"

/// OpenAI chat completions on the fast path: the request is validated and inspected without
/// building a tree, and the upstream body is the client's bytes with only `model` replaced (and
/// `stream_options.include_usage` set on streams).
namespace switchyard::dialects::openai {

struct RequestLimits {
  std::size_t max_json_depth = 64;
};

/// What the gateway needs to know of a chat request; offsets point into the client's body.
struct ChatRequestInfo {
  std::string model;          ///< the route name the client asked for
  bool stream = false;
  bool client_wants_usage = false;  ///< stream_options.include_usage was true
  std::size_t message_count = 0;
  std::uint32_t params = 0;  ///< `param_bit`s of the optional top-level members present

  // What the router needs to know of the request.
  std::size_t content_bytes = 0;  ///< raw JSON bytes of the messages' content and of `tools`
  bool has_images = false;        ///< an image_url content part
  bool json_schema = false;       ///< response_format of type json_schema
  std::int64_t max_output_tokens = 0;  ///< max_completion_tokens or max_tokens; 0 = not given
  std::string user;  ///< the end user the client named (`user`), for attribution and limits

  // Byte spans used by `patch_chat_request`.
  std::size_t model_begin = 0, model_end = 0;
  bool has_stream_options = false;
  std::size_t stream_options_begin = 0, stream_options_end = 0;
  bool has_include_usage = false;
  std::size_t include_usage_begin = 0, include_usage_end = 0;
  std::size_t root_end = 0;  ///< offset of the top-level object's closing brace
};

/// The bit of an optional top-level chat parameter in `ChatRequestInfo::params` (0 for a name
/// the inspector does not track).
std::uint32_t param_bit(std::string_view name);

using InspectResult = std::variant<ChatRequestInfo, core::ApiError>;

/// Validates a chat completions body (JSON syntax, UTF-8, depth, required fields and their types)
/// and returns what the router needs, or the 400 error to send.
InspectResult inspect_chat_request(std::string_view body, const RequestLimits& limits);

/// Appends the upstream body to `out`: `body` with `model` set to `model_literal` (the upstream
/// model name written as a JSON string, quotes included: a deployment keeps it so, and nothing
/// is escaped per request) and, for streams, `stream_options.include_usage` set to true.
void patch_chat_request(std::string_view body, const ChatRequestInfo& info,
                        std::string_view model_literal, std::string& out);

}  // namespace switchyard::dialects::openai
