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

inline std::string_view trim_ows(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

/// The lines of a head, found in one pass over its bytes, 16 at a time.
struct HeadLines {
  static constexpr std::size_t kCapacity = kMaxHeaders + 2;  ///< start line, fields, blank line
  std::array<std::uint32_t, kCapacity> lf;  ///< offset of each line's LF; the last is the blank line's
  std::size_t count = 0;
};

enum class HeadScan : std::uint8_t { complete, incomplete, bad, too_many_lines };

/// Finds the blank line that ends the head in `s[0, n)` and every line end before it, and checks
/// the head's bytes: each line ends in CRLF (no bare CR or LF) and no control byte other than HT
/// appears. Bytes after the head are not looked at. `end` is set past the blank line.
HeadScan scan_head(const unsigned char* s, std::size_t n, HeadLines& lines, std::size_t& end) {
  lines.count = 0;
  bool bad_bytes = false;  // reported once the head is whole, as a bare LF is at once
  for (std::size_t pos = 0; pos < n; pos += 16) {
    const std::size_t avail = std::min<std::size_t>(16, n - pos);
    const unsigned char* block = s + pos;
    alignas(16) unsigned char tail[16];
    if (avail < 16) {
      std::memset(tail, ' ', sizeof tail);
      std::memcpy(tail, block, avail);
      block = tail;
    }
    const std::uint32_t valid = avail == 16 ? 0xFFFFu : (1u << avail) - 1;
    std::uint32_t cr, lf, bad;
#if defined(__SSE2__)
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block));
    const __m128i is_cr = _mm_cmpeq_epi8(v, _mm_set1_epi8('\r'));
    const __m128i is_lf = _mm_cmpeq_epi8(v, _mm_set1_epi8('\n'));
    const __m128i ctl_max = _mm_set1_epi8(0x1F);
    const __m128i ctl = _mm_cmpeq_epi8(_mm_max_epu8(v, ctl_max), ctl_max);  // v <= 0x1F
    const __m128i allowed = _mm_or_si128(_mm_or_si128(is_cr, is_lf), _mm_cmpeq_epi8(v, _mm_set1_epi8('\t')));
    cr = static_cast<std::uint32_t>(_mm_movemask_epi8(is_cr));
    lf = static_cast<std::uint32_t>(_mm_movemask_epi8(is_lf));
    bad = static_cast<std::uint32_t>(_mm_movemask_epi8(
        _mm_or_si128(_mm_andnot_si128(allowed, ctl), _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7F)))));
#else
    cr = lf = bad = 0;
    for (std::size_t i = 0; i < 16; ++i) {
      const unsigned char c = block[i];
      if (c == '\r') cr |= 1u << i;
      else if (c == '\n') lf |= 1u << i;
      else if ((c < 0x20 && c != '\t') || c == 0x7F) bad |= 1u << i;
    }
#endif
    cr &= valid;
    lf &= valid;
    bad &= valid;
    for (std::uint32_t m = lf; m != 0; m &= m - 1) {
      const std::size_t i = static_cast<std::size_t>(__builtin_ctz(m));
      const std::size_t at = pos + i;
      if (at == 0 || s[at - 1] != '\r') return HeadScan::bad;  // a bare LF
      if (lines.count == HeadLines::kCapacity) return HeadScan::too_many_lines;
      // An empty line (CRLF right after the previous LF, or at the very start) ends the head.
      const std::size_t line_start = lines.count == 0 ? 0 : lines.lf[lines.count - 1] + 1;
      lines.lf[lines.count++] = static_cast<std::uint32_t>(at);
      if (at == line_start + 1) {
        // The blank line: only the bytes up to here are the head's.
        const std::uint32_t head_part = i == 15 ? 0xFFFFu : (1u << (i + 1)) - 1;
        if (bad_bytes || (bad & head_part) || ((cr << 1) & ~lf & head_part)) return HeadScan::bad;
        end = at + 1;
        return HeadScan::complete;
      }
    }
    // A CR must be followed by LF: inside the block, and across into the next one.
    if (bad || ((cr << 1) & ~lf & valid)) bad_bytes = true;
    if ((cr & 0x8000u) && pos + 16 < n && s[pos + 16] != '\n') bad_bytes = true;
  }
  return HeadScan::incomplete;
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

/// The end of the field name starting at `start` (the first byte that is not a token
/// character; a well-formed line has its colon there). `eol` ends the line, `size` the data.
inline std::size_t name_end(const unsigned char* s, std::size_t start, std::size_t eol,
                            std::size_t size) {
#if defined(__SSE2__)
  // Most names are letters, digits and '-' and shorter than 16 bytes: one load finds the colon
  // and checks every byte before it. Anything else takes the byte loop.
  if (start + 16 <= size) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + start));
    const __m128i lower = _mm_or_si128(v, _mm_set1_epi8(0x20));
    // Signed compares: bytes >= 0x80 are negative and fall outside every range.
    const __m128i alpha = _mm_and_si128(_mm_cmpgt_epi8(lower, _mm_set1_epi8('a' - 1)),
                                        _mm_cmplt_epi8(lower, _mm_set1_epi8('z' + 1)));
    const __m128i digit = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('0' - 1)),
                                        _mm_cmplt_epi8(v, _mm_set1_epi8('9' + 1)));
    const __m128i ok = _mm_or_si128(_mm_or_si128(alpha, digit), _mm_cmpeq_epi8(v, _mm_set1_epi8('-')));
    const auto colons = static_cast<std::uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(':'))));
    if (colons != 0) {
      const auto at = static_cast<std::uint32_t>(__builtin_ctz(colons));
      const std::uint32_t before = (1u << at) - 1;
      if ((static_cast<std::uint32_t>(_mm_movemask_epi8(ok)) & before) == before && start + at < eol)
        return start + at;
    }
  }
#endif
  std::size_t p = start;
  while (p < eol && is_tchar(s[p])) ++p;
  return p;
}

/// Field names looked up while a head is parsed: the framing fields, then the `Known` names.
enum : std::uint8_t { kOther, kContentLength, kTransferEncoding, kConnection, kKnownBase };

struct NameEntry {
  char first = 0;                 ///< its first byte, lowercase
  std::uint8_t kind = kOther;     ///< one of the above, or kKnownBase + a `Known`
  std::string_view lower;
};

/// By length, at most two names (told apart by their first byte).
constexpr auto kNamesBySize = [] {
  std::array<std::array<NameEntry, 2>, 18> t{};
  auto add = [&](std::string_view name, std::uint8_t kind) {
    auto& slots = t[name.size()];
    // Two names a length at most, with different first bytes: else the table does not compile.
    if (slots[1].kind != kOther || (slots[0].kind != kOther && slots[0].first == name[0]))
      throw "kNamesBySize: a third name of one length, or two with the same first byte";
    auto& e = slots[0].kind == kOther ? slots[0] : slots[1];
    e = NameEntry{name[0], kind, name};
  };
  add("content-length", kContentLength);
  add("transfer-encoding", kTransferEncoding);
  add("connection", kConnection);
  auto known = [&](std::string_view name, Known k) {
    add(name, static_cast<std::uint8_t>(kKnownBase + static_cast<std::uint8_t>(k)));
  };
  known("authorization", Known::authorization);
  known("x-api-key", Known::x_api_key);
  known("x-request-id", Known::x_request_id);
  known("content-type", Known::content_type);
  known("anthropic-version", Known::anthropic_version);
  known("expect", Known::expect);
  return t;
}();

inline std::uint64_t load8(const char* p) {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
inline std::uint32_t load4(const char* p) {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

/// A field name of token characters against a lowercase name of letters, digits and '-' of the
/// same size. Or-ing 0x20 into each byte is then an exact case fold: it maps an uppercase
/// letter to its lowercase one, and the only other bytes it maps into [a-z0-9-] are controls,
/// which no token contains. Eight bytes at a time (overlapping at the end).
bool is_name(const char* p, std::string_view lower) {
  const std::size_t n = lower.size();
  const char* l = lower.data();
  if (n >= 8) {
    for (std::size_t i = 0; i + 8 < n; i += 8)
      if ((load8(p + i) | 0x2020202020202020ull) != load8(l + i)) return false;
    return (load8(p + n - 8) | 0x2020202020202020ull) == load8(l + n - 8);
  }
  if (n >= 4)
    return (load4(p) | 0x20202020u) == load4(l) && (load4(p + n - 4) | 0x20202020u) == load4(l + n - 4);
  for (std::size_t i = 0; i < n; ++i)
    if ((p[i] | 0x20) != l[i]) return false;
  return true;
}

/// Parses the field lines of a scanned head (lines 1 .. count-2) into `head`, applying the
/// framing rules. Line ends and bytes were checked by `scan_head`.
ParseStatus parse_fields(std::string_view data, const HeadLines& lines, Head& head) {
  const auto* s = reinterpret_cast<const unsigned char*>(data.data());
  head.base = data.data();
  bool seen_te = false;
  for (std::size_t k = 1; k + 1 < lines.count; ++k) {
    const std::size_t start = lines.lf[k - 1] + 1;
    const std::size_t eol = lines.lf[k] - 1;  // the CR
    if (s[start] == ' ' || s[start] == '\t') return ParseStatus::bad_request;  // obs-fold
    std::size_t colon = name_end(s, start, eol, data.size());
    if (colon == start || colon == eol || s[colon] != ':') return ParseStatus::bad_request;
    if (head.header_count == kMaxHeaders) return ParseStatus::headers_too_large;
    const std::string_view name = data.substr(start, colon - start);
    const std::string_view value = trim_ows(data.substr(colon + 1, eol - colon - 1));
    head.fields[head.header_count++] =
        FieldSpan{static_cast<std::uint32_t>(start), static_cast<std::uint32_t>(name.size()),
                  static_cast<std::uint32_t>(value.data() - data.data()),
                  static_cast<std::uint32_t>(value.size())};

    // The framing fields and the known names: a table by length and first byte, then one
    // comparison; every other field ends here.
    if (name.size() >= kNamesBySize.size()) continue;
    const NameEntry* entry = nullptr;
    for (const NameEntry& e : kNamesBySize[name.size()])
      if (e.kind != kOther && (s[start] | 0x20) == e.first) {
        entry = &e;
        break;
      }
    if (!entry || !is_name(name.data(), entry->lower)) continue;
    switch (entry->kind) {
      case kContentLength: {
        std::uint64_t len = 0;
        if (value.empty()) return ParseStatus::bad_request;
        auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), len);
        if (ec != std::errc{} || p != value.data() + value.size() || value.size() > 15)
          return ParseStatus::bad_request;
        if (head.content_length && *head.content_length != len) return ParseStatus::bad_request;
        head.content_length = len;
        break;
      }
      case kTransferEncoding:
        if (seen_te || !iequals(value, "chunked")) return ParseStatus::not_implemented;
        seen_te = true;
        head.chunked = true;
        break;
      case kConnection:
        // Almost always a single token: compared whole before the list is split.
        if (value.size() == 10 && iequals(value, "keep-alive")) {
          head.connection_keep_alive = true;
        } else if (value.size() == 5 && iequals(value, "close")) {
          head.connection_close = true;
        } else {
          if (has_token(value, "close")) head.connection_close = true;
          if (has_token(value, "keep-alive")) head.connection_keep_alive = true;
        }
        break;
      default: {  // a known name: its first occurrence
        std::uint8_t& slot = head.known[entry->kind - kKnownBase];
        if (slot == 0) slot = static_cast<std::uint8_t>(head.header_count);
      }
    }
  }
  if (head.chunked && head.content_length) return ParseStatus::bad_request;
  return ParseStatus::complete;
}

/// Finds the lines of the head at the start of `data` (at most `limit` bytes of it): complete
/// (with `lines` and `end` set), or why not (incomplete, too large, malformed).
ParseStatus find_lines(std::string_view data, std::size_t limit, HeadLines& lines, std::size_t& end) {
  const std::size_t n = std::min(data.size(), limit);
  switch (scan_head(reinterpret_cast<const unsigned char*>(data.data()), n, lines, end)) {
    case HeadScan::complete: return ParseStatus::complete;
    case HeadScan::bad: return ParseStatus::bad_request;
    case HeadScan::too_many_lines: return ParseStatus::headers_too_large;
    default: return data.size() >= limit ? ParseStatus::headers_too_large : ParseStatus::incomplete;
  }
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
  for (std::size_t i = 0; i < header_count; ++i) {
    const FieldSpan& f = fields[i];
    if (f.name_size == name.size() && iequals(std::string_view(base + f.name_offset, f.name_size), name))
      return std::string_view(base + f.value_offset, f.value_size);
  }
  return {};
}

ParseStatus parse_request(std::string_view data, std::size_t max_head_bytes, RequestHead& out) {
  // Tolerate empty lines before a request line (RFC 9112 §2.2), but only a few.
  std::size_t skip = 0;
  while (skip + 1 < data.size() && skip < 8 && data[skip] == '\r' && data[skip + 1] == '\n') skip += 2;
  const std::string_view d = data.substr(skip);
  HeadLines lines;
  std::size_t end = 0;
  if (ParseStatus found = find_lines(d, max_head_bytes, lines, end); found != ParseStatus::complete)
    return found;
  std::string_view line = d.substr(0, lines.lf[0] - 1);
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
  out.known = {};
  out.content_length.reset();
  out.chunked = out.connection_close = out.connection_keep_alive = out.expect_continue = false;
  ParseStatus st = parse_fields(d, lines, out);
  if (st != ParseStatus::complete) return st;
  out.head_size = skip + end;
  out.expect_continue = iequals(out.find(Known::expect), "100-continue");
  return ParseStatus::complete;
}

ParseStatus parse_response(std::string_view data, std::size_t max_head_bytes, ResponseHead& out) {
  HeadLines lines;
  std::size_t end = 0;
  if (ParseStatus found = find_lines(data, max_head_bytes, lines, end); found != ParseStatus::complete)
    return found;
  std::string_view line = data.substr(0, lines.lf[0] - 1);
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
  out.known = {};
  out.content_length.reset();
  out.chunked = out.connection_close = out.connection_keep_alive = false;
  ParseStatus st = parse_fields(data, lines, out);
  if (st != ParseStatus::complete) return st;
  out.head_size = end;
  return ParseStatus::complete;
}

}  // namespace switchyard::net::http1
