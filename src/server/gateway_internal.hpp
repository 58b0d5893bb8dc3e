#pragma once

// The gateway's request-scoped types, shared by the files that implement it (gateway.cpp,
// endpoints.cpp, pipeline/upstream_attempts.cpp, pipeline/relay.cpp). Not for other modules.

#include <string>
#include <string_view>

#include "dialects/sse.hpp"
#include "dialects/translate.hpp"
#include "server/gateway.hpp"

namespace switchyard::server {

/// The chat (or embeddings) request being served, as far as every attempt needs it.
struct Gateway::Chat : ChatInput {
  explicit Chat(const net::Request& r) : request(r) {}
  const net::Request& request;
  Endpoint endpoint = Endpoint::chat;
  bool embeddings_base64 = false;
  dialects::anthropic::EncodeResult anthropic_encoded;  ///< of the current attempt
  bool responses_passed = false;  ///< the current attempt passes a Responses body to OpenAI as it is
};

/// Turns upstream SSE events into the client's bytes.
struct Gateway::StreamProcessor {
  virtual ~StreamProcessor() = default;
  /// Appends what the client gets for this event; false when the event is malformed.
  virtual bool event(const dialects::SseEvent& e, std::string& out, Exchange& ex) = 0;
  /// The upstream's stream ended; `pending` is an unterminated tail.
  virtual void end(std::string_view pending, std::string& out, Exchange& ex) = 0;
  /// The upstream failed after the client's stream started: by default the error event in the
  /// client's dialect (dialects::stream_error_event); a translator ends its own stream.
  virtual void error(const core::ApiError& e, std::string& out, Exchange& ex);
  /// Once the stream is over: whether it told against the deployment though it was relayed
  /// whole — an error event of the upstream's own mid-stream, or no end marker before the end.
  virtual bool faulted() const { return false; }
  /// The dialect of the upstream's events (what counts as content: `dialects::carries_content`).
  dialects::Dialect events = dialects::Dialect::openai;
};

/// The request bytes for one deployment, in pooled strings.
struct Gateway::Prepared {
  explicit Prepared(StringPool& pool) : body_loan{pool}, head_loan{pool} {}
  StringPool::Loan body_loan, head_loan;
  std::string& body() { return body_loan.s; }
  std::string& head() { return head_loan.s; }
  dialects::UpstreamRequest sent;  ///< `sent.dropped`: parameters left out for this deployment
  bool translated = false;
  bool responses_passed = false;  ///< a Responses body to OpenAI's own Responses API
  std::int64_t max_tokens_cap = 0;  ///< > 0: the client's max_tokens was lowered to it
};

/// Milliseconds of the steady clock, as the executor counts them.
inline double steady_ms(net::Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(t.time_since_epoch()).count();
}

inline double ms_since(net::Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(net::Clock::now() - t).count();
}

/// A body that starts with `{` and ends with `}` (whitespace aside).
inline bool looks_like_json_object(std::string_view body) {
  std::size_t first = body.find_first_not_of(" \t\r\n");
  std::size_t last = body.find_last_not_of(" \t\r\n");
  return first != std::string_view::npos && body[first] == '{' && body[last] == '}';
}

}  // namespace switchyard::server
