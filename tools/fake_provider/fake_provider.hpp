#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "net/server.hpp"

/// A scripted fake provider speaking the wire formats of OpenAI (chat completions, embeddings),
/// Anthropic (Messages) and Gemini (generateContent, streamGenerateContent, batchEmbedContents),
/// for tests, the demo and benchmarks. It checks requests the way the real APIs do (Anthropic:
/// max_tokens required, no system role in messages, tool_use/tool_result pairing; Gemini: roles,
/// non-empty parts, the schema subset, function responses named after their calls) and answers
/// refusals with each API's own error shape. Each request's behaviour comes from a queue of scripts (or the default), so a
/// test can say "the next two requests get a 503, then answer slowly". Every request is recorded.
///
/// Control API (JSON):
///   POST   /_fake/script     {"behavior": {...}, "times": 1, "model": "optional upstream model",
///                             "contains": "optional text the request body must hold"}
///   POST   /_fake/default    {...behavior...}
///   GET    /_fake/requests   recorded requests [{method, path, headers, body}]
///   DELETE /_fake/requests   clear recordings, scripts and counters
///   GET    /_fake/stats      {"requests": n, "aborted_streams": n, "completed_streams": n}
namespace switchyard::testing {

/// How the fake answers one request.
struct Behavior {
  int status = 200;
  std::uint32_t latency_ms = 0;       ///< before the response head
  std::uint32_t stall_every = 0;      ///< every Nth request of this fake (0: none) waits stall_ms more
  std::uint32_t stall_ms = 0;
  std::uint32_t ttft_ms = 0;          ///< streams: after the head, before the first chunk
  std::uint32_t chunk_delay_ms = 0;   ///< streams: between chunks
  std::uint32_t content_delay_ms = 0; ///< streams: after the events without content (role, message_start), before the first content
  std::uint32_t trickle_ms = 0;       ///< answers: the JSON body in 16-byte pieces, this far apart
  int chunks = 5;                     ///< streams: content chunks
  std::string content;                ///< the answer; empty = echo of the last user message
  bool reset = false;                 ///< close the connection without answering
  int cut_after_chunks = -1;          ///< streams: close mid-way after this many chunks
  int malformed_after = -1;           ///< streams: after this many chunks (0: before any event), a line that is not JSON, then the end
  int error_after = -1;               ///< streams: after this many chunks (0: before any event), the API's own error event, then the end
  bool malformed = false;             ///< answer 200 with a body that is not JSON
  bool cut_body = false;              ///< answers: half the JSON body, then the connection closes
  std::string error_body;             ///< body for error statuses (default: OpenAI error JSON)
  std::map<std::string, std::string> headers;  ///< extra response headers
  std::string finish_reason = "stop";
  struct ToolCall {
    std::string name;
    std::string arguments;  ///< JSON text
  };
  std::vector<ToolCall> tool_calls;   ///< answer with these calls (finish: tool_calls)
  std::string reasoning;              ///< thinking / reasoning text before the answer
  std::int64_t cached_tokens = 0;     ///< reported as cache reads
  /// Anthropic answers: prompt tokens written to the cache, and of those the ones with a
  /// one-hour lifetime (`usage.cache_creation.ephemeral_1h_input_tokens`).
  std::int64_t cache_write_tokens = 0;
  std::int64_t cache_write_1h_tokens = 0;
};

/// Parses a behaviour object; unknown fields are an error.
std::optional<Behavior> parse_behavior(const std::string& json, std::string& error);

struct RecordedRequest {
  std::string method;
  std::string path;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

/// State shared by every loop of one fake provider.
class FakeProviderState {
 public:
  explicit FakeProviderState(Behavior default_behavior) : default_(std::move(default_behavior)) {}

  Behavior next_behavior(const std::string& model, std::string_view body = {});
  void record(RecordedRequest r);
  std::string requests_json();
  std::string stats_json();
  void reset();
  void set_default(Behavior b);
  /// `contains`: the script applies only to requests whose body holds this text (empty: any).
  void add_script(Behavior b, int times, std::string model, std::string contains = {});
  void stream_finished(bool aborted);

 private:
  struct Script {
    Behavior behavior;
    int times;
    std::string model;
    std::string contains;
  };
  std::mutex mutex_;
  Behavior default_;
  std::deque<Script> scripts_;
  std::vector<RecordedRequest> requests_;
  std::uint64_t request_count_ = 0;
  std::uint64_t aborted_streams_ = 0;
  std::uint64_t completed_streams_ = 0;
};

/// The fake's handler for one loop.
class FakeProvider final : public net::Handler {
 public:
  FakeProvider(net::Loop& loop, std::shared_ptr<FakeProviderState> state);
  net::Task<> handle(net::Request request, net::ResponseWriter& writer) override;

 private:
  net::Task<> chat(net::Request& request, net::ResponseWriter& writer);
  net::Task<> embeddings(net::Request& request, net::ResponseWriter& writer);
  net::Task<> sleep(std::uint32_t ms);

  net::Loop& loop_;
  std::shared_ptr<FakeProviderState> state_;
  std::uint64_t counter_ = 0;
};

}  // namespace switchyard::testing
