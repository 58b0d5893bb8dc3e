#include "dialects/sse.hpp"

#include "core/byte_scan.hpp"
#include "dialects/json_view.hpp"

#include <cstring>

namespace switchyard::dialects {

std::size_t find_event_end(std::string_view in, bool may_have_cr) {
  if (!may_have_cr) {
    // LF only: the event ends at the first "\n\n" (or a leading "\n").
    const char* begin = in.data();
    const char* end = begin + in.size();
    for (const char* p = begin; p < end;) {
      const char* lf = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
      if (!lf) return std::string_view::npos;
      if (lf == begin) return 1;
      if (lf + 1 < end && lf[1] == '\n') return static_cast<std::size_t>(lf + 2 - begin);
      p = lf + 1;
    }
    return std::string_view::npos;
  }
  // An event ends with an empty line; lines end with CRLF, LF or CR.
  const auto* bytes = reinterpret_cast<const unsigned char*>(in.data());
  std::size_t pos = 0;
  bool line_empty = true;
  while (pos < in.size()) {
    if (!line_empty) {
      // Skip the rest of a non-empty line 16 bytes at a time.
      pos = core::bytes::find_cr_or_lf(bytes, pos, in.size());
      if (pos >= in.size()) break;
    }
    char c = in[pos];
    if (c == '\n' || c == '\r') {
      std::size_t next = pos + 1;
      if (c == '\r') {
        if (next >= in.size()) return std::string_view::npos;  // CR may be followed by LF
        if (in[next] == '\n') ++next;
      }
      if (line_empty) return next;
      line_empty = true;
      pos = next;
      continue;
    }
    line_empty = false;
    ++pos;
  }
  return std::string_view::npos;
}

bool SseSplitter::parse_event(std::string_view raw, SseEvent& event) {
  event.raw = raw;
  std::size_t pos = 0;
  int data_lines = 0;
  while (pos < raw.size()) {
    std::size_t eol = cr_seen_ ? core::bytes::find_cr_or_lf(reinterpret_cast<const unsigned char*>(raw.data()), pos, raw.size())
                               : raw.find('\n', pos);
    if (eol == std::string_view::npos) eol = raw.size();
    std::string_view line = raw.substr(pos, eol - pos);
    pos = eol + 1;
    if (eol < raw.size() && raw[eol] == '\r' && pos < raw.size() && raw[pos] == '\n') ++pos;
    if (line.empty() || line.front() == ':') continue;
    std::size_t colon = line.find(':');
    std::string_view field = line.substr(0, colon);
    std::string_view value;
    if (colon != std::string_view::npos) {
      value = line.substr(colon + 1);
      if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    }
    if (field == "data") {
      if (data_lines == 0) {
        event.data = value;
      } else {
        if (data_lines == 1) data_scratch_.assign(event.data);
        data_scratch_.push_back('\n');
        data_scratch_.append(value);
        event.data = data_scratch_;
      }
      ++data_lines;
    } else if (field == "event") {
      event.name = value;
    }
  }
  return true;
}

bool carries_content(Dialect dialect, const SseEvent& event) {
  if (event.data.empty()) return false;  // a comment or a keep-alive
  switch (dialect) {
    case Dialect::anthropic:
      return event.name != "message_start" && event.name != "content_block_start" && event.name != "ping";
    case Dialect::gemini: return true;  // each chunk is a candidate's parts
    case Dialect::responses: {
      // Typed events: the ones that open the response, an item or a part carry nothing yet.
      static constexpr std::string_view kOpening[] = {"response.created", "response.in_progress",
                                                      "response.output_item.added", "response.content_part.added",
                                                      "response.reasoning_summary_part.added"};
      for (auto name : kOpening)
        if (event.name == name) return false;
      return true;
    }
    case Dialect::openai: break;
  }
  if (event.data == "[DONE]") return true;
  // Read only until the first content (a few events per stream): a chunk whose every choice's
  // delta holds nothing but a role or empty text, without a finish reason, opens the stream.
  JsonView view;
  if (!view.parse(event.data)) return true;
  JsonView::Node root = view.root();
  if (root["error"] || (root["usage"] && !root["usage"].is_null())) return true;
  JsonView::Node choices = root["choices"];
  if (!choices.is_array()) return true;
  bool content = false;
  choices.each([&](JsonView::Node choice) {
    if (choice["finish_reason"] && !choice["finish_reason"].is_null()) content = true;
    choice["delta"].each_member([&](std::string_view key, JsonView::Node value) {
      if (key == "role") return;
      if (value.is_null() || (value.is_string() && !value.has_text())) return;
      content = true;  // text, reasoning, a refusal, tool calls, audio...
    });
  });
  return content;
}

}  // namespace switchyard::dialects
