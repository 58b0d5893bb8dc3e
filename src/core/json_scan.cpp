#include "core/json_scan.hpp"

#include "core/byte_scan.hpp"

#include <array>
#include <charconv>
#include <cstdlib>
#include <cstring>

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
  static void close(Tape& t, std::size_t index, std::size_t end_offset) {
    Tape::Entry& e = t.entries_[index];
    e.size = static_cast<std::uint32_t>(end_offset - e.offset);
    e.end = static_cast<std::uint32_t>(t.entries_.size());
  }
};

namespace {

class Validator {
 public:
  Validator(std::string_view doc, std::size_t max_depth, Tape* tape = nullptr,
            std::size_t tape_depth = 0)
      : doc_(doc), max_depth_(max_depth), tape_(tape), tape_depth_(tape_depth) {}

  ScanResult run() {
    ScanResult result;
    skip_ws();
    if (pos_ >= doc_.size()) {
      result.error = ScanError::empty;
      return result;
    }
    std::size_t start = pos_;
    Type type{};
    if (!value(0, type)) {
      result.error = error_;
      result.offset = pos_;
      return result;
    }
    result.root = Value{type, doc_.substr(start, pos_ - start), start};
    skip_ws();
    if (pos_ != doc_.size()) {
      result.error = ScanError::syntax;
      result.offset = pos_;
    }
    return result;
  }

 private:
  void skip_ws() {
    while (pos_ < doc_.size() && is_ws(doc_[pos_])) ++pos_;
  }

  bool fail(ScanError e) {
    error_ = e;
    return false;
  }

  bool literal(std::string_view word) {
    if (doc_.substr(pos_, word.size()) != word) return fail(ScanError::syntax);
    pos_ += word.size();
    return true;
  }

  bool value(std::size_t depth, Type& type) {
    if (pos_ >= doc_.size()) return fail(ScanError::syntax);
    if (tape_ && depth <= tape_depth_) {
      // Record this value: its type from the first byte, its size once it is scanned.
      char c = doc_[pos_];
      Type t = c == '{' ? Type::object : c == '[' ? Type::array : c == '"' ? Type::string
             : (c == 't' || c == 'f') ? Type::boolean : c == 'n' ? Type::null : Type::number;
      std::size_t index = TapeWriter::open(*tape_, t, depth, pos_, pending_key_, doc_.data());
      pending_key_ = {};
      if (!scan_value(depth, type)) return false;
      TapeWriter::close(*tape_, index, pos_);
      return true;
    }
    return scan_value(depth, type);
  }

  bool scan_value(std::size_t depth, Type& type) {
    switch (doc_[pos_]) {
      case '{': type = Type::object; return object(depth + 1);
      case '[': type = Type::array; return array(depth + 1);
      case '"': type = Type::string; return string();
      case 't': type = Type::boolean; return literal("true");
      case 'f': type = Type::boolean; return literal("false");
      case 'n': type = Type::null; return literal("null");
      default: type = Type::number; return number();
    }
  }

  bool object(std::size_t depth) {
    if (depth > max_depth_) return fail(ScanError::depth);
    ++pos_;
    skip_ws();
    if (pos_ < doc_.size() && doc_[pos_] == '}') {
      ++pos_;
      return true;
    }
    for (;;) {
      skip_ws();
      if (pos_ >= doc_.size() || doc_[pos_] != '"') return fail(ScanError::syntax);
      std::size_t key_start = pos_;
      if (!string()) return false;
      std::string_view key = doc_.substr(key_start + 1, pos_ - key_start - 2);
      skip_ws();
      if (pos_ >= doc_.size() || doc_[pos_] != ':') return fail(ScanError::syntax);
      ++pos_;
      skip_ws();
      Type t{};
      pending_key_ = key;
      if (!value(depth, t)) return false;
      if (!separator('}')) return false;
      if (closed_) return true;
    }
  }

  /// After an item: a comma (more follow) or the closing byte (`closed_` set); else an error.
  bool separator(char close) {
    skip_ws();
    closed_ = false;
    if (pos_ < doc_.size() && doc_[pos_] == ',') {
      ++pos_;
      return true;
    }
    if (pos_ < doc_.size() && doc_[pos_] == close) {
      ++pos_;
      closed_ = true;
      return true;
    }
    return fail(ScanError::syntax);
  }

  bool array(std::size_t depth) {
    if (depth > max_depth_) return fail(ScanError::depth);
    ++pos_;
    skip_ws();
    if (pos_ < doc_.size() && doc_[pos_] == ']') {
      ++pos_;
      return true;
    }
    for (;;) {
      skip_ws();
      Type t{};
      pending_key_ = {};  // elements have no key (a deeper member's may linger)
      if (!value(depth, t)) return false;
      if (!separator(']')) return false;
      if (closed_) return true;
    }
  }

  static bool is_hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  }

  bool string() {
    ++pos_;  // opening quote
    const std::size_t n = doc_.size();
    const auto* s = reinterpret_cast<const unsigned char*>(doc_.data());
    while (pos_ < n) {
      // Most of a request is plain ASCII text inside strings: skip it 16 bytes at a time.
      pos_ = bytes::find_string_special(s, pos_, n);
      if (pos_ >= n) break;
      auto c = s[pos_];
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (c == '\\') {
        if (pos_ + 1 >= n) return fail(ScanError::syntax);
        char e = doc_[pos_ + 1];
        if (e == 'u') {
          if (pos_ + 6 > n) return fail(ScanError::syntax);
          for (std::size_t i = 2; i < 6; ++i)
            if (!is_hex(doc_[pos_ + i])) return fail(ScanError::syntax);
          pos_ += 6;
          continue;
        }
        if (e != '"' && e != '\\' && e != '/' && e != 'b' && e != 'f' && e != 'n' && e != 'r' &&
            e != 't')
          return fail(ScanError::syntax);
        pos_ += 2;
        continue;
      }
      if (c < 0x20) return fail(ScanError::syntax);
      if (c < 0x80) {
        ++pos_;
        continue;
      }
      if (!utf8_sequence()) return fail(ScanError::utf8);
    }
    return fail(ScanError::syntax);
  }

  // Strict UTF-8 (RFC 3629): no overlongs, no surrogates, nothing above U+10FFFF.
  bool utf8_sequence() {
    const auto* s = reinterpret_cast<const unsigned char*>(doc_.data());
    const std::size_t n = doc_.size();
    unsigned char c = s[pos_];
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
    if (pos_ + len > n) return false;
    if (s[pos_ + 1] < lo || s[pos_ + 1] > hi) return false;
    for (std::size_t i = 2; i < len; ++i)
      if (s[pos_ + i] < 0x80 || s[pos_ + i] > 0xBF) return false;
    pos_ += len;
    return true;
  }

  bool digits() {
    std::size_t start = pos_;
    while (pos_ < doc_.size() && doc_[pos_] >= '0' && doc_[pos_] <= '9') ++pos_;
    return pos_ > start;
  }

  bool number() {
    if (pos_ < doc_.size() && doc_[pos_] == '-') ++pos_;
    if (pos_ >= doc_.size()) return fail(ScanError::syntax);
    if (doc_[pos_] == '0') {
      ++pos_;
    } else if (doc_[pos_] >= '1' && doc_[pos_] <= '9') {
      digits();
    } else {
      return fail(ScanError::syntax);
    }
    if (pos_ < doc_.size() && doc_[pos_] == '.') {
      ++pos_;
      if (!digits()) return fail(ScanError::syntax);
    }
    if (pos_ < doc_.size() && (doc_[pos_] == 'e' || doc_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < doc_.size() && (doc_[pos_] == '+' || doc_[pos_] == '-')) ++pos_;
      if (!digits()) return fail(ScanError::syntax);
    }
    return true;
  }

  std::string_view doc_;
  std::size_t max_depth_;
  Tape* tape_;
  std::size_t tape_depth_;
  std::string_view pending_key_;  ///< key of the member whose value comes next
  bool closed_ = false;           ///< the last separator() closed its container
  std::size_t pos_ = 0;
  ScanError error_ = ScanError::none;
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
  if (raw.size() >= 2 && raw.front() == '"' && raw.back() == '"') raw = raw.substr(1, raw.size() - 2);
  if (raw.find('\\') == std::string_view::npos) return std::string(raw);
  std::string out;
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
  return out;
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
