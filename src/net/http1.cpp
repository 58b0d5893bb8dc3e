#include "net/http1.hpp"

#include "core/byte_scan.hpp"

#include <array>
#include <charconv>
#include <cstring>


namespace switchyard::net::http1 {

namespace {

// RFC 9110 token characters.
constexpr bool tchar(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-':
    case '.': case '^': case '_': case '`': case '|': case '~': return true;
    default: return false;
  }
}

constexpr auto kTchar = [] {
  std::array<bool, 256> t{};
  for (int c = 0; c < 256; ++c) t[static_cast<std::size_t>(c)] = tchar(static_cast<unsigned char>(c));
  return t;
}();



inline bool is_tchar(unsigned char c) { return kTchar[c]; }

std::string_view trim_ows(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

/// Finds the end of the head. Returns offset past CRLFCRLF, 0 if incomplete, npos if a bare LF
/// is seen.
std::size_t find_head_end(std::string_view data, std::size_t limit) {
  const std::size_t n = std::min(data.size(), limit);
  const auto* base = reinterpret_cast<const unsigned char*>(data.data());
  std::size_t line_start = 0;
  while (line_start < n) {
    std::size_t i = core::bytes::find_lf(base, line_start, n);
    if (i == n) return 0;
    if (i == 0 || base[i - 1] != '\r') return std::string_view::npos;
    if (i - line_start == 1) return i + 1;  // the line was just CRLF
    line_start = i + 1;
  }
  return 0;
}

bool has_token(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    std::size_t comma = list.find(',');
    std::string_view item = trim_ows(list.substr(0, comma));
    if (iequals(item, token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

/// Parses header lines in [pos, end) into `head`, applying the framing rules.
ParseStatus parse_fields(std::string_view data, std::size_t pos, std::size_t end, Head& head) {
  // The caller checked the head's bytes: every CR is followed by LF and every LF preceded by
  // CR, so a line ends at its first CR. One pass per line: the name's token characters up to
  // the colon, then the value up to the CR, 16 bytes at a time.
  const auto* s = reinterpret_cast<const unsigned char*>(data.data());
  bool seen_te = false;
  while (pos < end) {
    if (s[pos] == '\r') break;                                                  // blank line
    if (s[pos] == ' ' || s[pos] == '\t') return ParseStatus::bad_request;       // obs-fold
    std::size_t colon = pos;
    while (colon < end && is_tchar(s[colon])) ++colon;
    if (colon == pos || colon >= end || s[colon] != ':') return ParseStatus::bad_request;
    std::size_t eol = core::bytes::find_cr_or_lf(s, colon + 1, end);
    if (eol >= end) return ParseStatus::bad_request;
    std::string_view name = data.substr(pos, colon - pos);
    std::string_view value = trim_ows(data.substr(colon + 1, eol - colon - 1));  // bytes checked by the caller
    pos = eol + 2;
    if (head.header_count == kMaxHeaders) return ParseStatus::headers_too_large;
    head.headers[head.header_count++] = Header{name, value};

    // Only three names matter for framing; most fields are told apart by their length alone.
    const std::size_t n = name.size();
    if (n != 14 && n != 17 && n != 10) continue;
    if (iequals(name, "content-length")) {
      std::uint64_t len = 0;
      if (value.empty()) return ParseStatus::bad_request;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), len);
      if (ec != std::errc{} || p != value.data() + value.size() || value.size() > 15)
        return ParseStatus::bad_request;
      if (head.content_length && *head.content_length != len) return ParseStatus::bad_request;
      head.content_length = len;
    } else if (iequals(name, "transfer-encoding")) {
      if (seen_te || !iequals(value, "chunked")) return ParseStatus::not_implemented;
      seen_te = true;
      head.chunked = true;
    } else if (iequals(name, "connection")) {
      if (has_token(value, "close")) head.connection_close = true;
      if (has_token(value, "keep-alive")) head.connection_keep_alive = true;
    }
  }
  if (head.chunked && head.content_length) return ParseStatus::bad_request;
  return ParseStatus::complete;
}

bool parse_version(std::string_view v, int& minor) {
  if (v == "HTTP/1.1") {
    minor = 1;
    return true;
  }
  if (v == "HTTP/1.0") {
    minor = 0;
    return true;
  }
  return false;
}

}  // namespace


std::string_view Head::find(std::string_view name) const {
  for (std::size_t i = 0; i < header_count; ++i)
    if (iequals(headers[i].name, name)) return headers[i].value;
  return {};
}

ParseStatus parse_request(std::string_view data, std::size_t max_head_bytes, RequestHead& out) {
  // Tolerate empty lines before a request line (RFC 9112 §2.2), but only a few.
  std::size_t skip = 0;
  while (skip + 1 < data.size() && skip < 8 && data[skip] == '\r' && data[skip + 1] == '\n') skip += 2;
  std::size_t end = find_head_end(data.substr(skip), max_head_bytes);
  if (end == std::string_view::npos) return ParseStatus::bad_request;
  if (end == 0) {
    return data.size() - skip >= max_head_bytes ? ParseStatus::headers_too_large
                                                : ParseStatus::incomplete;
  }
  end += skip;
  if (!core::bytes::http_head_bytes_ok(reinterpret_cast<const unsigned char*>(data.data()) + skip,
                                       end - skip))
    return ParseStatus::bad_request;
  std::size_t eol = data.find("\r\n", skip);
  std::string_view line = data.substr(skip, eol - skip);
  std::size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos || sp1 == 0) return ParseStatus::bad_request;
  std::size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || sp2 == sp1 + 1) return ParseStatus::bad_request;
  out.method = line.substr(0, sp1);
  for (unsigned char c : out.method)
    if (!is_tchar(c)) return ParseStatus::bad_request;
  out.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  for (unsigned char c : out.target)
    if (c <= 0x20 || c >= 0x7f) return ParseStatus::bad_request;
  if (!parse_version(line.substr(sp2 + 1), out.version_minor)) return ParseStatus::bad_request;
  out.header_count = 0;
  out.content_length.reset();
  out.chunked = out.connection_close = out.connection_keep_alive = out.expect_continue = false;
  ParseStatus st = parse_fields(data, eol + 2, end, out);
  if (st != ParseStatus::complete) return st;
  out.head_size = end;
  out.expect_continue = iequals(out.find("expect"), "100-continue");
  return ParseStatus::complete;
}

ParseStatus parse_response(std::string_view data, std::size_t max_head_bytes, ResponseHead& out) {
  std::size_t end = find_head_end(data, max_head_bytes);
  if (end == std::string_view::npos) return ParseStatus::bad_request;
  if (end == 0) {
    return data.size() >= max_head_bytes ? ParseStatus::headers_too_large
                                         : ParseStatus::incomplete;
  }
  if (!core::bytes::http_head_bytes_ok(reinterpret_cast<const unsigned char*>(data.data()), end))
    return ParseStatus::bad_request;
  std::size_t eol = data.find("\r\n");
  std::string_view line = data.substr(0, eol);
  // HTTP/1.1 200 OK
  if (line.size() < 12 || !parse_version(line.substr(0, 8), out.version_minor) || line[8] != ' ')
    return ParseStatus::bad_request;
  int status = 0;
  auto [p, ec] = std::from_chars(line.data() + 9, line.data() + 12, status);
  if (ec != std::errc{} || p != line.data() + 12 || status < 100) return ParseStatus::bad_request;
  if (line.size() > 12 && line[12] != ' ') return ParseStatus::bad_request;
  out.status = status;
  out.reason = line.size() > 13 ? line.substr(13) : std::string_view{};
  out.header_count = 0;
  out.content_length.reset();
  out.chunked = out.connection_close = out.connection_keep_alive = false;
  ParseStatus st = parse_fields(data, eol + 2, end, out);
  if (st != ParseStatus::complete) return st;
  out.head_size = end;
  return ParseStatus::complete;
}

}  // namespace switchyard::net::http1
