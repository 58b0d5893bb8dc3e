#include "core/json_scan.hpp"

#include "core/byte_scan.hpp"

#include <array>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace switchyard::core::json {

std::string_view type_name(Type type) {
  switch (type) {
    case Type::null: return "null";
    case Type::boolean: return "boolean";
    case Type::number: return "number";
    case Type::string: return "string";
    case Type::array: return "array";
    case Type::object: return "object";
  }
  return "unknown";
}

namespace {

inline bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }



}  // namespace

/// Appends tape entries on behalf of the validator.
class TapeWriter {
 public:
  static std::size_t open(Tape& t, Type type, std::size_t depth, std::size_t offset,
                          std::string_view key, const char* base) {
    auto key_offset = key.empty() ? 0 : static_cast<std::uint32_t>(key.data() - base);
    t.entries_.push_back(Tape::Entry{type, static_cast<std::uint32_t>(depth),
                                     static_cast<std::uint32_t>(offset), 0, key_offset,
                                     static_cast<std::uint32_t>(key.size()), 0});
    return t.entries_.size() - 1;
  }
  static void escaped_key(Tape& t) { t.escaped_keys_ = true; }
  static void close(Tape& t, std::size_t index, std::size_t end_offset) {
    Tape::Entry& e = t.entries_[index];
    e.size = static_cast<std::uint32_t>(end_offset - e.offset);
    e.end = static_cast<std::uint32_t>(t.entries_.size());
  }
};

namespace {

/// One pass over the bytes, no recursion: a loop that jumps between "a value starts here",
/// "after a value" and "a member's key starts here", with the open containers on a small stack.
/// Errors carry the offset of the byte that could not be accepted.
class Validator {
 public:
  Validator(std::string_view doc, std::size_t max_depth, Tape* tape = nullptr,
            std::size_t tape_depth = 0)
      : doc_(doc),
        s_(reinterpret_cast<const unsigned char*>(doc.data())),
        n_(doc.size()),
        max_depth_(max_depth),
        tape_(tape),
        tape_depth_(tape_depth) {}

  ScanResult run() {
    ScanResult result;
    std::size_t p = skip_ws(0);
    if (p >= n_) {
      result.error = ScanError::empty;
      return result;
    }
    const std::size_t start = p;
    if (!scan(p)) {
      result.error = error_;
      result.offset = error_at_;
      return result;
    }
    result.root = Value{type_of(s_[start]), doc_.substr(start, p - start), start};
    p = skip_ws(p);
    if (p != n_) {
      result.error = ScanError::syntax;
      result.offset = p;
    }
    return result;
  }

 private:
  static constexpr std::size_t kInlineDepth = 128;

  static Type type_of(unsigned char c) {
    switch (c) {
      case '{': return Type::object;
      case '[': return Type::array;
      case '"': return Type::string;
      case 't':
      case 'f': return Type::boolean;
      case 'n': return Type::null;
      default: return Type::number;
    }
  }

  std::size_t skip_ws(std::size_t p) const {
    while (p < n_ && s_[p] <= ' ' &&
           (s_[p] == ' ' || s_[p] == '\n' || s_[p] == '\r' || s_[p] == '\t'))
      ++p;
    return p;
  }

  bool fail(ScanError e, std::size_t at) {
    error_ = e;
    error_at_ = at;
    return false;
  }

  /// Scans the value at `p` (not whitespace) and everything in it; `p` ends just past it.
  bool scan(std::size_t& p) {
    // Per open container: its opening byte and (when recorded) its tape entry.
    unsigned char kinds_inline[kInlineDepth];
    std::uint32_t entries_inline[kInlineDepth];
    std::unique_ptr<unsigned char[]> kinds_heap;
    std::unique_ptr<std::uint32_t[]> entries_heap;
    unsigned char* kinds = kinds_inline;
    std::uint32_t* entries = entries_inline;
    if (max_depth_ > kInlineDepth) {
      kinds_heap = std::make_unique<unsigned char[]>(max_depth_);
      entries_heap = std::make_unique<std::uint32_t[]>(max_depth_);
      kinds = kinds_heap.get();
      entries = entries_heap.get();
    }
    std::size_t depth = 0;   // open containers
    std::string_view key;    // the key of the member whose value comes next

  value:
    if (p >= n_) return fail(ScanError::syntax, p);
    {
      const unsigned char c = s_[p];
      const bool record = tape_ && depth <= tape_depth_;
      std::uint32_t entry = 0;
      if (record) entry = open_entry(type_of(c), depth, p, key);
      key = {};
      switch (c) {
        case '{':
        case '[':
          if (depth >= max_depth_) return fail(ScanError::depth, p);
          kinds[depth] = c;
          entries[depth] = entry;
          ++depth;
          p = skip_ws(p + 1);
          if (p < n_ && s_[p] == (c == '{' ? '}' : ']')) {
            ++p;
            goto close;
          }
          if (c == '{') goto member;
          goto value;
        case '"':
          if (!string(p)) return false;
          break;
        case 't':
          if (!literal(p, "true")) return false;
          break;
        case 'f':
          if (!literal(p, "false")) return false;
          break;
        case 'n':
          if (!literal(p, "null")) return false;
          break;
        default:
          if (!number(p)) return false;
      }
      if (record) close_entry(entry, p);
    }

  after:
    if (depth == 0) return true;
    p = skip_ws(p);
    if (p < n_) {
      const unsigned char open = kinds[depth - 1];
      if (s_[p] == ',') {
        p = skip_ws(p + 1);
        if (open == '{') goto member;
        goto value;
      }
      if (s_[p] == (open == '{' ? '}' : ']')) {
        ++p;
        goto close;
      }
    }
    return fail(ScanError::syntax, p);

  close:  // `p` is just past the closing byte of the innermost container
    --depth;
    if (tape_ && depth <= tape_depth_) close_entry(entries[depth], p);
    goto after;

  member:  // `p` is where a key must start
    if (p >= n_ || s_[p] != '"') return fail(ScanError::syntax, p);
    {
      const std::size_t key_start = p;
      escaped_ = false;
      if (!string(p)) return false;
      key = doc_.substr(key_start + 1, p - key_start - 2);
      if (escaped_ && tape_) TapeWriter::escaped_key(*tape_);
    }
    p = skip_ws(p);
    if (p >= n_ || s_[p] != ':') return fail(ScanError::syntax, p);
    p = skip_ws(p + 1);
    goto value;
  }

  std::uint32_t open_entry(Type type, std::size_t depth, std::size_t offset, std::string_view key) {
    return static_cast<std::uint32_t>(TapeWriter::open(*tape_, type, depth, offset, key, doc_.data()));
  }
  void close_entry(std::uint32_t entry, std::size_t end) { TapeWriter::close(*tape_, entry, end); }

  bool literal(std::size_t& p, std::string_view word) {
    if (doc_.substr(p, word.size()) != word) return fail(ScanError::syntax, p);
    p += word.size();
    return true;
  }

  static bool is_hex(unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  }

  /// `p` at the opening quote; ends just past the closing one.
  bool string(std::size_t& p) {
    ++p;
    for (;;) {
      // Most of a request is plain ASCII text inside strings: skip it 16 bytes at a time.
      p = bytes::find_string_special(s_, p, n_);
      if (p >= n_) return fail(ScanError::syntax, n_);
      const unsigned char c = s_[p];
      if (c == '"') {
        ++p;
        return true;
      }
      if (c == '\\') {
        escaped_ = true;
        if (p + 1 >= n_) return fail(ScanError::syntax, p);
        const unsigned char e = s_[p + 1];
        if (e == 'u') {
          if (p + 6 > n_) return fail(ScanError::syntax, p);
          for (std::size_t i = 2; i < 6; ++i)
            if (!is_hex(s_[p + i])) return fail(ScanError::syntax, p);
          p += 6;
          continue;
        }
        if (e != '"' && e != '\\' && e != '/' && e != 'b' && e != 'f' && e != 'n' && e != 'r' &&
            e != 't')
          return fail(ScanError::syntax, p);
        p += 2;
        continue;
      }
      if (c < 0x20) return fail(ScanError::syntax, p);
      if (!utf8_sequence(p)) return fail(ScanError::utf8, p);
    }
  }

  // Strict UTF-8 (RFC 3629): no overlongs, no surrogates, nothing above U+10FFFF.
  bool utf8_sequence(std::size_t& p) const {
    const unsigned char c = s_[p];
    std::size_t len;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return false;
    }
    if (p + len > n_) return false;
    if (s_[p + 1] < lo || s_[p + 1] > hi) return false;
    for (std::size_t i = 2; i < len; ++i)
      if (s_[p + i] < 0x80 || s_[p + i] > 0xBF) return false;
    p += len;
    return true;
  }

  bool digits(std::size_t& p) const {
    const std::size_t start = p;
    while (p < n_ && s_[p] >= '0' && s_[p] <= '9') ++p;
    return p > start;
  }

  bool number(std::size_t& p) {
    if (p < n_ && s_[p] == '-') ++p;
    if (p >= n_) return fail(ScanError::syntax, p);
    if (s_[p] == '0') {
      ++p;
    } else if (s_[p] >= '1' && s_[p] <= '9') {
      digits(p);
    } else {
      return fail(ScanError::syntax, p);
    }
    if (p < n_ && s_[p] == '.') {
      ++p;
      if (!digits(p)) return fail(ScanError::syntax, p);
    }
    if (p < n_ && (s_[p] == 'e' || s_[p] == 'E')) {
      ++p;
      if (p < n_ && (s_[p] == '+' || s_[p] == '-')) ++p;
      if (!digits(p)) return fail(ScanError::syntax, p);
    }
    return true;
  }

  std::string_view doc_;
  const unsigned char* s_;
  std::size_t n_;
  std::size_t max_depth_;
  Tape* tape_;
  std::size_t tape_depth_;
  ScanError error_ = ScanError::none;
  std::size_t error_at_ = 0;
  bool escaped_ = false;  ///< the last string scanned held an escape
};

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::uint32_t hex4(std::string_view s) {
  std::uint32_t v = 0;
  std::from_chars(s.data(), s.data() + 4, v, 16);
  return v;
}

}  // namespace

ScanResult validate(std::string_view doc, std::size_t max_depth) {
  return Validator(doc, max_depth).run();
}

ScanResult validate(std::string_view doc, std::size_t max_depth, Tape& tape,
                    std::size_t tape_depth) {
  tape.clear();
  return Validator(doc, max_depth, &tape, tape_depth).run();
}

namespace detail {

std::size_t skip_ws(std::string_view doc, std::size_t pos) {
  while (pos < doc.size() && is_ws(doc[pos])) ++pos;
  return pos;
}

std::size_t string_end(std::string_view doc, std::size_t pos) {
  const auto* s = reinterpret_cast<const unsigned char*>(doc.data());
  const std::size_t n = doc.size();
  ++pos;
  for (;;) {
    pos = bytes::find_quote_or_backslash(s, pos, n);
    if (pos >= n) return n;
    if (s[pos] == '"') return pos + 1;
    pos += 2;  // an escape: skip the escaped byte
  }
}

Value next_value(std::string_view doc, std::size_t& pos) {
  std::size_t start = pos;
  Value v;
  char c = doc[pos];
  switch (c) {
    case '"':
      v.type = Type::string;
      pos = string_end(doc, pos);
      break;
    case '{':
    case '[': {
      v.type = c == '{' ? Type::object : Type::array;
      const auto* s = reinterpret_cast<const unsigned char*>(doc.data());
      int depth = 0;
      while (pos < doc.size()) {
        pos = bytes::find_structural(s, pos, doc.size());
        if (pos >= doc.size()) break;
        char d = doc[pos];
        if (d == '"') {
          pos = string_end(doc, pos);
          continue;
        }
        ++pos;
        if (d == '{' || d == '[') ++depth;
        else if ((d == '}' || d == ']') && --depth == 0) break;
      }
      break;
    }
    case 't':
      v.type = Type::boolean;
      pos += 4;
      break;
    case 'f':
      v.type = Type::boolean;
      pos += 5;
      break;
    case 'n':
      v.type = Type::null;
      pos += 4;
      break;
    default:
      v.type = Type::number;
      while (pos < doc.size()) {
        char d = doc[pos];
        if ((d >= '0' && d <= '9') || d == '-' || d == '+' || d == '.' || d == 'e' || d == 'E')
          ++pos;
        else
          break;
      }
  }
  v.raw = doc.substr(start, pos - start);
  v.offset = start;
  return v;
}

}  // namespace detail

std::string unescape(std::string_view raw) {
  std::string out;
  unescape_to(raw, out);
  return out;
}

void detail::unescape_escaped(std::string_view raw, std::string& out) {
  out.clear();
  out.reserve(raw.size());
  for (std::size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (c != '\\' || i + 1 >= raw.size()) {
      out.push_back(c);
      continue;
    }
    char e = raw[++i];
    switch (e) {
      case 'n': out.push_back('\n'); break;
      case 'r': out.push_back('\r'); break;
      case 't': out.push_back('\t'); break;
      case 'b': out.push_back('\b'); break;
      case 'f': out.push_back('\f'); break;
      case 'u': {
        if (i + 4 >= raw.size()) break;
        std::uint32_t cp = hex4(raw.substr(i + 1, 4));
        i += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF && i + 6 < raw.size() && raw[i + 1] == '\\' &&
            raw[i + 2] == 'u') {
          std::uint32_t low = hex4(raw.substr(i + 3, 4));
          if (low >= 0xDC00 && low <= 0xDFFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            i += 6;
          }
        }
        if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;  // lone surrogate
        append_utf8(out, cp);
        break;
      }
      default: out.push_back(e);  // '"', '\\', '/'
    }
  }
}

std::optional<std::int64_t> as_int(const Value& value) {
  if (value.type != Type::number) return std::nullopt;
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(value.raw.data(), value.raw.data() + value.raw.size(), v);
  if (ec != std::errc{} || p != value.raw.data() + value.raw.size()) {
    // Accept integral values written with an exponent or fraction (1e3, 2.0).
    auto d = as_double(value);
    // Range first: converting an out-of-range double to an integer is undefined.
    if (!d || !(*d >= -9.2e18 && *d <= 9.2e18)) return std::nullopt;
    if (*d != static_cast<double>(static_cast<std::int64_t>(*d))) return std::nullopt;
    return static_cast<std::int64_t>(*d);
  }
  return v;
}

std::optional<double> as_double(const Value& value) {
  if (value.type != Type::number) return std::nullopt;
  double v = 0;
  auto [p, ec] = std::from_chars(value.raw.data(), value.raw.data() + value.raw.size(), v);
  if (ec != std::errc{}) return std::nullopt;
  return v;
}

}  // namespace switchyard::core::json
