#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

/// A lean JSON scanner for the hot path: validates a document (syntax, UTF-8, nesting depth)
/// without building a tree, and walks objects and arrays as raw byte spans so that a request can
/// be inspected and patched in place. Heavier JSON work (building responses, tests) uses
/// Boost.JSON.
namespace switchyard::core::json {

enum class Type : std::uint8_t { null, boolean, number, string, array, object };

std::string_view type_name(Type type);

/// A value inside a document: its type and its exact bytes (a string keeps its quotes).
struct Value {
  Type type = Type::null;
  std::string_view raw;
  std::size_t offset = 0;  ///< offset of `raw` in the scanned document
};

enum class ScanError : std::uint8_t { none, syntax, depth, utf8, empty };

struct ScanResult {
  ScanError error = ScanError::none;
  std::size_t offset = 0;  ///< where the problem was found
  Value root;
  explicit operator bool() const { return error == ScanError::none; }
};

/// Validates `doc` as one JSON value surrounded by optional whitespace.
ScanResult validate(std::string_view doc, std::size_t max_depth);

/// The values of a document down to some depth, in document order, as the validator met them:
/// walking them costs no second scan of the bytes.
class Tape {
 public:
  struct Entry {
    Type type;
    std::uint32_t depth;
    std::uint32_t offset, size;          ///< the value's bytes
    std::uint32_t key_offset, key_size;  ///< its key without quotes (members only)
    std::uint32_t end;                   ///< index just past this value's recorded descendants
  };

  void clear() {
    entries_.clear();
    escaped_keys_ = false;
  }
  /// Whether some member key of the document holds an escape (rare): only then must keys be
  /// unescaped before they are compared.
  bool escaped_keys() const { return escaped_keys_; }
  const Entry& operator[](std::size_t i) const { return entries_[i]; }
  std::size_t size() const { return entries_.size(); }

  /// Calls `fn(key, value, index)` for each child of entry `parent` (key empty in arrays);
  /// `fn` returns false to stop.
  template <class Fn>
  void for_each_child(std::string_view doc, std::size_t parent, Fn&& fn) const {
    for (std::size_t i = parent + 1; i < entries_[parent].end; i = entries_[i].end) {
      const Entry& e = entries_[i];
      Value v{e.type, doc.substr(e.offset, e.size), e.offset};
      if (!fn(doc.substr(e.key_offset, e.key_size), v, i)) return;
    }
  }

 private:
  friend class TapeWriter;
  std::vector<Entry> entries_;
  bool escaped_keys_ = false;
};

/// Validates like `validate` and records every value at depth <= `tape_depth` (the root is at
/// depth 0, its members at 1, ...) into `tape`.
ScanResult validate(std::string_view doc, std::size_t max_depth, Tape& tape,
                    std::size_t tape_depth);

/// Walks the members of an object `Value` of an already validated document. `fn(key, value)`
/// receives the key's raw bytes without quotes (escapes left as they are) and returns false to
/// stop.
template <class Fn>
void for_each_member(const Value& object, Fn&& fn);

/// Walks the elements of an array `Value` of an already validated document.
template <class Fn>
void for_each_element(const Value& array, Fn&& fn);

namespace detail {
/// `unescape_to` for a string with escapes (quotes already removed).
void unescape_escaped(std::string_view raw, std::string& out);
}  // namespace detail

/// Decodes a raw string value or key (with or without quotes) into UTF-8, into `out`
/// (replacing its contents, keeping its storage). Inline: most strings have no escapes.
inline void unescape_to(std::string_view raw, std::string& out) {
  if (raw.size() >= 2 && raw.front() == '"' && raw.back() == '"') raw = raw.substr(1, raw.size() - 2);
  if (raw.find('\\') == std::string_view::npos) out.assign(raw);
  else detail::unescape_escaped(raw, out);
}
/// The same, returned.
std::string unescape(std::string_view raw);

/// Reads an integer value; nullopt if not an integer or out of range.
std::optional<std::int64_t> as_int(const Value& value);

/// Reads a number value as double.
std::optional<double> as_double(const Value& value);

namespace detail {
/// Parses one value at `pos` of a validated document; returns the value and advances `pos`.
Value next_value(std::string_view doc, std::size_t& pos);
std::size_t skip_ws(std::string_view doc, std::size_t pos);
std::size_t string_end(std::string_view doc, std::size_t pos);  ///< pos at the opening quote
}  // namespace detail

template <class Fn>
void for_each_member(const Value& object, Fn&& fn) {
  if (object.type != Type::object) return;
  std::string_view doc = object.raw;
  std::size_t pos = detail::skip_ws(doc, 1);
  if (pos < doc.size() && doc[pos] == '}') return;
  while (pos < doc.size()) {
    std::size_t key_end = detail::string_end(doc, pos);
    std::string_view key = doc.substr(pos + 1, key_end - pos - 2);
    pos = detail::skip_ws(doc, key_end);
    pos = detail::skip_ws(doc, pos + 1);  // ':'
    Value value = detail::next_value(doc, pos);
    value.offset += object.offset;
    if (!fn(key, value)) return;
    pos = detail::skip_ws(doc, pos);
    if (pos >= doc.size() || doc[pos] != ',') return;
    pos = detail::skip_ws(doc, pos + 1);
  }
}

template <class Fn>
void for_each_element(const Value& array, Fn&& fn) {
  if (array.type != Type::array) return;
  std::string_view doc = array.raw;
  std::size_t pos = detail::skip_ws(doc, 1);
  if (pos < doc.size() && doc[pos] == ']') return;
  while (pos < doc.size()) {
    Value value = detail::next_value(doc, pos);
    value.offset += array.offset;
    if (!fn(value)) return;
    pos = detail::skip_ws(doc, pos);
    if (pos >= doc.size() || doc[pos] != ',') return;
    pos = detail::skip_ws(doc, pos + 1);
  }
}

}  // namespace switchyard::core::json
