#include "dialects/openai/usage.hpp"

#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "core/byte_scan.hpp"
#include "core/json_scan.hpp"

namespace switchyard::dialects::openai {

namespace json = core::json;

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/// Offset of the value of the member `"name":` found at `key_pos` (the opening quote), or npos
/// when what follows is not a colon.
std::size_t value_after(std::string_view text, std::size_t key_pos, std::size_t key_size) {
  std::size_t p = key_pos + key_size;
  while (p < text.size() && is_space(text[p])) ++p;
  if (p >= text.size() || text[p] != ':') return std::string_view::npos;
  ++p;
  while (p < text.size() && is_space(text[p])) ++p;
  return p < text.size() ? p : std::string_view::npos;
}

/// Last occurrence of a quoted key, found from the end 16 starting positions at a time: a
/// position is a candidate when its byte is the key's first, the next byte its second and the
/// key's last byte sits where it should (three compares per 16 bytes; candidates are rare, and
/// `usage` is near the end of a body).
std::size_t rfind_key(std::string_view text, std::string_view quoted) {
  const char* s = text.data();
  const std::size_t n = quoted.size();  // at least 3: two quotes and a name
  if (text.size() < n) return std::string_view::npos;
  auto match = [&](std::size_t start) { return std::memcmp(s + start, quoted.data(), n) == 0; };
  // Candidate starts are [0, last]; scanned from the highest down.
  std::size_t last = text.size() - n;
  std::size_t top = last + 1;  // one past the highest start not yet looked at
#if defined(__SSE2__)
  const __m128i first = _mm_set1_epi8(quoted[0]);
  const __m128i second = _mm_set1_epi8(quoted[1]);
  const __m128i final = _mm_set1_epi8(quoted[n - 1]);
  while (top >= 16) {
    const std::size_t base = top - 16;  // starts base .. base+15; every load stays in the text
    __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + base));
    __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + base + 1));
    __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + base + n - 1));
    auto mask = static_cast<unsigned>(_mm_movemask_epi8(_mm_and_si128(
        _mm_and_si128(_mm_cmpeq_epi8(a, first), _mm_cmpeq_epi8(b, second)), _mm_cmpeq_epi8(c, final))));
    while (mask) {
      unsigned bit = 31u - static_cast<unsigned>(__builtin_clz(mask));
      if (match(base + bit)) return base + bit;
      mask &= ~(1u << bit);
    }
    top = base;
  }
#endif
  while (top > 0) {
    --top;
    if (s[top] == quoted[0] && match(top)) return top;
  }
  return std::string_view::npos;
}

/// The usage object as providers write it: keys without escapes, values that are integers,
/// null, or objects of those one level down. Reads the counts while it checks the syntax;
/// false (nothing decided) at anything else, which the general path then handles.
///
/// The cursor is a pointer, not an index: stores to the counts (64-bit integers) could alias an
/// index of the same width and make the compiler reload it after every store.
class FastUsage {
 public:
  FastUsage(std::string_view text, std::size_t pos)
      : p_(text.data() + pos), end_(text.data() + text.size()) {}

  bool read(Usage& u) { return object(u, /*depth=*/1, Field::none); }

 private:
  enum class Field { none, prompt, completion, total, cache_hit, cached, reasoning, prompt_details, completion_details };

  static bool is_ws(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }
  /// Skips whitespace; false at the end of the text. One comparison for the usual next byte
  /// (not whitespace: above the space).
  bool ws() {
    if (p_ < end_ && static_cast<unsigned char>(*p_) > ' ') return true;  // compact JSON
    while (p_ < end_ && static_cast<unsigned char>(*p_) <= ' ') {
      if (!is_ws(*p_)) return true;  // a control byte: the caller's check fails on it
      ++p_;
    }
    return p_ < end_;
  }
  bool eat(char c) {
    if (p_ < end_ && *p_ == c) {  // compact JSON: the byte is there
      ++p_;
      return true;
    }
    if (!ws() || *p_ != c) return false;
    ++p_;
    return true;
  }
  template <std::size_t N>
  static bool named(std::string_view k, const char (&name)[N]) {
    return std::memcmp(k.data(), name, N - 1) == 0;  // sizes already equal: a fixed-size compare
  }
  /// A key of printable ASCII without escapes (the cursor after its opening quote); its field at
  /// `depth`.
  bool key(int depth, Field& field) {
    const char* start = p_;
    // The first quote, backslash, control or non-ASCII byte, 16 bytes at a time: only the
    // closing quote may come first.
    const auto* base = reinterpret_cast<const unsigned char*>(start);
    const std::size_t n = static_cast<std::size_t>(end_ - start);
    const std::size_t at = core::bytes::find_string_special(base, 0, n);
    if (at >= n || start[at] != '"') return false;
    std::string_view k(start, at);
    p_ = start + at + 1;
    field = Field::none;
    // The names differ in length: one comparison per key.
    if (depth == 1) {
      switch (k.size()) {
        case 13: if (named(k, "prompt_tokens")) field = Field::prompt; break;
        case 17: if (named(k, "completion_tokens")) field = Field::completion; break;
        case 12: if (named(k, "total_tokens")) field = Field::total; break;
        case 23: if (named(k, "prompt_cache_hit_tokens")) field = Field::cache_hit; break;
        case 21: if (named(k, "prompt_tokens_details")) field = Field::prompt_details; break;
        case 25: if (named(k, "completion_tokens_details")) field = Field::completion_details; break;
        default: break;
      }
    } else if (k.size() == 13) {
      if (named(k, "cached_tokens")) field = Field::cached;
    } else if (k.size() == 16) {
      if (named(k, "reasoning_tokens")) field = Field::reasoning;
    }
    return true;
  }
  /// A non-negative integer of at most 18 digits (no fraction, no exponent).
  bool integer(std::int64_t& v) {
    const char* p = p_;
    v = 0;
    if (p < end_ && *p == '0') {
      ++p;  // "01" then fails at the separator, as it should
    } else {
      while (p < end_ && static_cast<unsigned char>(*p - '0') <= 9) {
        if (p - p_ == 18) return false;  // 19 digits or more: the general path (no overflow here)
        v = v * 10 + (*p++ - '0');
      }
      if (p == p_) return false;
    }
    p_ = p;
    // A fraction or an exponent: the general path.
    return !(p < end_ && (*p == '.' || *p == 'e' || *p == 'E'));
  }
  bool object(Usage& u, int depth, Field parent) {
    if (!eat('{') || !ws()) return false;
    if (*p_ == '}') {
      ++p_;
      return true;
    }
    for (;;) {
      Field field;
      if (!eat('"') || !key(depth, field) || !eat(':') || !ws()) return false;
      // The value as the general path counts it: an integer, else 0 (null, an object).
      std::int64_t v = 0;
      const char c = *p_;
      if (c == 'n') {
        if (end_ - p_ < 4 || std::memcmp(p_, "null", 4) != 0) return false;
        p_ += 4;
      } else if (c == '{') {
        if (depth >= 2) return false;
        if (!object(u, depth + 1, field)) return false;
      } else if (!integer(v)) {
        return false;
      }
      if (depth == 1) {
        if (field == Field::prompt) u.prompt_tokens = v;
        else if (field == Field::completion) u.completion_tokens = v;
        else if (field == Field::total) u.total_tokens = v;
        else if (field == Field::cache_hit && u.cached_tokens == 0) u.cached_tokens = v;
      } else if (parent == Field::prompt_details || parent == Field::completion_details) {
        if (field == Field::cached) u.cached_tokens = v;
        else if (field == Field::reasoning) u.reasoning_tokens = v;
      }
      if (!ws()) return false;
      if (*p_ == ',') {
        ++p_;
        continue;
      }
      if (*p_ != '}') return false;
      ++p_;
      return true;
    }
  }

  const char* p_;
  const char* end_;
};

/// Reads the counts from a validated usage object recorded on `tape` (root = entry 0): the
/// validator's record is walked instead of the bytes again.
void read_counts(const json::Tape& tape, std::string_view doc, Usage& u) {
  auto number = [](const json::Value& v) { return json::as_int(v).value_or(0); };
  tape.for_each_child(doc, 0, [&](std::string_view key, const json::Value& v, std::size_t entry) {
    if (key == "prompt_tokens") u.prompt_tokens = number(v);
    else if (key == "completion_tokens") u.completion_tokens = number(v);
    else if (key == "total_tokens") u.total_tokens = number(v);
    else if (key == "prompt_cache_hit_tokens" && u.cached_tokens == 0)  // DeepSeek
      u.cached_tokens = number(v);
    else if ((key == "prompt_tokens_details" || key == "completion_tokens_details") &&
             v.type == json::Type::object)
      tape.for_each_child(doc, entry, [&](std::string_view k, const json::Value& d, std::size_t) {
        if (k == "cached_tokens") u.cached_tokens = number(d);
        else if (k == "reasoning_tokens") u.reasoning_tokens = number(d);
        return true;
      });
    return true;
  });
}

}  // namespace

bool read_usual_usage(std::string_view object, Usage& out) { return FastUsage(object, 0).read(out); }

UsageProbe probe_usage(std::string_view text, bool check_choices) {
  // No tree: a quote-delimited key can only occur outside strings (quotes inside strings are
  // escaped), and the top-level `usage` is the last one in OpenAI's bodies and chunks.
  UsageProbe probe;
  constexpr std::string_view kUsage = "\"usage\"";
  if (std::size_t key = rfind_key(text, kUsage); key != std::string_view::npos) {
    std::size_t v = value_after(text, key, kUsage.size());
    Usage fast;
    if (v == std::string_view::npos || text[v] != '{') {
      // null or not an object: no usage
    } else if (read_usual_usage(text.substr(v), fast)) {
      probe.usage = fast;  // the usual shape, read in one pass
    } else {
      std::size_t end = v;
      json::Value object = json::detail::next_value(text, end);
      // The object itself is validated before it is read (upstream bytes are untrusted), and
      // the validator records its members two levels deep for the walk.
      thread_local json::Tape tape;
      json::ScanResult scan = json::validate(object.raw, 8, tape, 2);
      if (scan && scan.root.type == json::Type::object) {
        Usage u;
        read_counts(tape, object.raw, u);
        probe.usage = u;
      }
    }
  }
  constexpr std::string_view kChoices = "\"choices\"";
  if (!check_choices) return probe;
  if (std::size_t key = text.find(kChoices); key != std::string_view::npos) {
    std::size_t v = value_after(text, key, kChoices.size());
    if (v != std::string_view::npos && text[v] == '[') {
      std::size_t p = v + 1;
      while (p < text.size() && is_space(text[p])) ++p;
      probe.no_choices = p < text.size() && text[p] == ']';
    }
  }
  return probe;
}

}  // namespace switchyard::dialects::openai
