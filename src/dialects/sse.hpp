#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "dialects/providers.hpp"

/// Server-sent events (text/event-stream) split incrementally, as bytes arrive.
namespace switchyard::dialects {

struct SseEvent {
  std::string_view raw;    ///< the event's exact bytes, including its terminating blank line
  std::string_view name;   ///< the `event:` field, empty when absent
  std::string_view data;   ///< the `data:` lines joined with '\n'
};

/// Whether an upstream stream event of `dialect` carries content — text, reasoning, a tool call,
/// a finish, usage, an error, the end — rather than only opening the stream (OpenAI's role
/// chunk, Anthropic's message_start, content_block_start and ping, keep-alive comments). A
/// time to first token is measured to the first event that does. Unsure means content.
bool carries_content(Dialect dialect, const SseEvent& event);

/// Splits a byte stream into events. Complete events are handed out as they are found; an
/// incomplete tail is kept until the rest arrives. Views passed to the callback are valid only
/// during the call.
class SseSplitter {
 public:
  explicit SseSplitter(std::size_t max_event_bytes = 8 * 1024 * 1024) : max_event_(max_event_bytes) {}

  /// Feeds bytes; calls `fn(const SseEvent&)` for every complete event. Returns false if an event
  /// grows beyond the limit (the stream should then be abandoned).
  template <class Fn>
  bool feed(std::string_view bytes, Fn&& fn);

  /// Bytes of an event not yet terminated.
  std::string_view pending() const { return buf_; }

 private:
  /// Parses complete events of `in`, returns how many bytes were consumed.
  template <class Fn>
  std::size_t drain(std::string_view in, Fn&& fn);
  bool parse_event(std::string_view raw, SseEvent& event);

  std::string buf_;
  std::string data_scratch_;
  std::size_t max_event_;
  bool cr_seen_ = false;  ///< once a stream uses CR line endings, scan the slow way
};

/// Finds the end of the first complete event in `in` (offset just past its blank line), or npos.
/// `may_have_cr` false promises that `in` holds no '\r' (the common case), which allows a
/// memchr-based scan.
std::size_t find_event_end(std::string_view in, bool may_have_cr = true);

template <class Fn>
std::size_t SseSplitter::drain(std::string_view in, Fn&& fn) {
  std::size_t consumed = 0;
  for (;;) {
    std::size_t end = find_event_end(in.substr(consumed), cr_seen_);
    if (end == std::string_view::npos) return consumed;
    SseEvent event;
    std::string_view raw = in.substr(consumed, end);
    parse_event(raw, event);
    fn(event);
    consumed += end;
  }
}

template <class Fn>
bool SseSplitter::feed(std::string_view bytes, Fn&& fn) {
  if (!cr_seen_ && bytes.find('\r') != std::string_view::npos) cr_seen_ = true;
  if (buf_.empty()) {
    std::size_t used = drain(bytes, fn);
    buf_.assign(bytes.substr(used));
  } else {
    buf_.append(bytes);
    std::size_t used = drain(buf_, fn);
    buf_.erase(0, used);
  }
  return buf_.size() <= max_event_;
}

}  // namespace switchyard::dialects
