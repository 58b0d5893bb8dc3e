#pragma once

#include <boost/json/value.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/usage.hpp"

/// The canonical chat model every dialect translates to and from when the client's dialect and
/// the upstream's differ. It is the union of what OpenAI chat completions, Anthropic Messages and
/// Gemini generateContent can say, so that nothing a client sent is lost on the way (thinking
/// blocks and their signatures, cache_control, tool ids and names). Same-dialect traffic never
/// comes here: it takes the byte-patching fast path.
namespace switchyard::core {

enum class Role { user, assistant };

/// One piece of message content.
struct Block {
  enum class Type { text, image, thinking, redacted_thinking, tool_use, tool_result };
  Type type = Type::text;
  std::string text;       ///< text; thinking text; redacted_thinking data
  std::string signature;  ///< thinking signature; Gemini thoughtSignature of the part
  // image: base64 `data` with `media_type`, or `url`
  std::string media_type;
  std::string data;
  std::string url;
  // tool_use: id, name, arguments (JSON text); tool_result: id = tool_use_id, content, is_error
  std::string id;
  std::string name;
  std::string arguments;
  std::vector<Block> content;
  bool is_error = false;
  boost::json::value cache_control;  ///< null when absent; passed through to Anthropic

  static Block make_text(std::string text) {
    Block b;
    b.text = std::move(text);
    return b;
  }
};

struct Message {
  Role role = Role::user;
  std::vector<Block> content;
};

struct Tool {
  std::string name;
  std::string description;
  boost::json::value parameters;  ///< JSON schema (object); null when absent
  boost::json::value cache_control;
  std::optional<bool> strict;
};

struct ToolChoice {
  enum class Mode { unset, auto_, none, required, named };
  Mode mode = Mode::unset;
  std::string name;
};

struct ResponseFormat {
  enum class Kind { unset, text, json_object, json_schema };
  Kind kind = Kind::unset;
  std::string name;
  std::string description;
  boost::json::value schema;
  std::optional<bool> strict;
};

/// A chat request in canonical form.
struct ChatRequest {
  std::string model;
  std::vector<Block> system;  ///< text blocks (OpenAI system/developer messages, Anthropic system)
  std::vector<Message> messages;
  std::optional<std::int64_t> max_tokens;
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::optional<std::int64_t> top_k;
  std::vector<std::string> stop;
  std::optional<std::int64_t> seed;
  std::optional<std::int64_t> n;
  std::optional<double> presence_penalty;
  std::optional<double> frequency_penalty;
  bool stream = false;
  bool include_usage = false;  ///< the client asked for usage in the stream
  std::vector<Tool> tools;
  ToolChoice tool_choice;
  std::optional<bool> parallel_tool_calls;
  ResponseFormat response_format;
  std::optional<std::int64_t> thinking_budget;  ///< extended thinking on, with this budget
  std::string reasoning_effort;                 ///< OpenAI "low" | "medium" | "high" ...
  std::string user;
  /// Members the canonical form does not model, by name: they reach an upstream of the
  /// client's own dialect unchanged and are refused (or dropped, when configured) elsewhere.
  boost::json::object extra;
};

enum class FinishReason { none, stop, length, tool_calls, content_filter };


/// A complete (non-streamed) answer in canonical form.
struct ChatResponse {
  std::string id;
  std::string model;
  std::int64_t created = 0;
  std::vector<Block> content;  ///< thinking, text and tool_use blocks in order
  FinishReason finish = FinishReason::none;
  std::string stop_sequence;   ///< which stop sequence ended it, when known
  TokenUsage usage;
};

/// One step of a streamed answer in canonical form. Decoders turn upstream events into these;
/// encoders turn them into the client's events.
struct StreamEvent {
  enum class Kind {
    start,        ///< id, model, created; usage.input when known this early
    text,         ///< text
    thinking,     ///< text: a piece of reasoning
    signature,    ///< text: the signature of the current thinking block
    redacted,     ///< text: redacted thinking data
    tool_start,   ///< index (tool call number), id, name
    tool_args,    ///< index, text: a piece of the arguments' JSON
    finish,       ///< finish, stop_sequence
    usage,        ///< usage
    error,        ///< error: the upstream failed mid-stream
  };
  Kind kind = Kind::text;
  int index = 0;
  std::string text;
  std::string id;
  std::string name;
  std::string model;
  std::int64_t created = 0;
  FinishReason finish = FinishReason::none;
  std::string stop_sequence;
  TokenUsage usage;
  ApiError error;
};

/// Receives canonical stream events.
class StreamSink {
 public:
  virtual ~StreamSink() = default;
  virtual void on_event(const StreamEvent& event) = 0;
};

/// For APIs that alternate roles: calls `fn(role, blocks)` once per run of consecutive messages of
/// one role, with the run's blocks for which `keep(block)` holds, skipping runs with none.
template <class Keep, class Fn>
void for_each_turn(const std::vector<Message>& messages, Keep&& keep, Fn&& fn) {
  std::vector<const Block*> blocks;
  std::size_t i = 0;
  while (i < messages.size()) {
    Role role = messages[i].role;
    blocks.clear();
    for (; i < messages.size() && messages[i].role == role; ++i)
      for (const Block& b : messages[i].content)
        if (keep(b)) blocks.push_back(&b);
    if (!blocks.empty()) fn(role, blocks);
  }
}

/// Sends `usage` as the stream's usage step when it is known.
inline void emit_usage(StreamSink& sink, const TokenUsage& usage) {
  if (!usage.known) return;
  StreamEvent ev;
  ev.kind = StreamEvent::Kind::usage;
  ev.usage = usage;
  sink.on_event(ev);
}

/// A translation that could not be made faithfully: the parameters the target cannot express.
struct Unsupported {
  std::vector<std::string> params;
};

/// The members of `r.extra` that ask for something (null and false ask for nothing): an encoder
/// of another dialect, which cannot carry them, names them as unsupported.
inline void add_extras(const ChatRequest& r, Unsupported& unsupported) {
  for (const auto& kv : r.extra)
    if (!kv.value().is_null() && !(kv.value().is_bool() && !kv.value().get_bool()))
      unsupported.params.push_back(std::string(kv.key()));
}

}  // namespace switchyard::core
