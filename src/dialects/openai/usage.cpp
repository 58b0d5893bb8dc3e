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
class FastUsage {
 public:
  explicit FastUsage(std::string_view text, std::size_t pos) : s_(text.data()), n_(text.size()), p_(pos) {}

  bool read(Usage& u) { return object(u, /*depth=*/1, Field::none); }

 private:
  enum class Field { none, prompt, completion, total, cache_hit, cached, reasoning, prompt_details, completion_details };

  void ws() {
    std::size_t p = p_;  // a local cursor: stores to the counts could alias the member
    // One comparison for the usual next byte (not whitespace: above the space).
    while (p < n_ && static_cast<unsigned char>(s_[p]) <= ' ' &&
           (s_[p] == ' ' || s_[p] == '\n' || s_[p] == '\r' || s_[p] == '\t'))
      ++p;
    p_ = p;
  }
  bool eat(char c) {
    ws();
    if (p_ >= n_ || s_[p_] != c) return false;
    ++p_;
    return true;
  }
  /// A key of printable ASCII without escapes; its field at `depth`.
  bool key(int depth, Field& field) {
    if (!eat('"')) return false;
    std::size_t start = p_;
    // The first quote, backslash, control or non-ASCII byte, 16 bytes at a time: only the
    // closing quote may come first.
    p_ = core::bytes::find_string_special(reinterpret_cast<const unsigned char*>(s_), p_, n_);
    if (p_ >= n_ || s_[p_] != '"') return false;
    std::string_view k(s_ + start, p_ - start);
    ++p_;
    field = Field::none;
    // The names differ in length: one comparison per key.
    auto is = [&k](std::string_view name, Field f, Field& out) {
      if (k == name) out = f;
    };
    if (depth == 1) {
      switch (k.size()) {
        case 13: is("prompt_tokens", Field::prompt, field); break;
        case 17: is("completion_tokens", Field::completion, field); break;
        case 12: is("total_tokens", Field::total, field); break;
        case 23: is("prompt_cache_hit_tokens", Field::cache_hit, field); break;
        case 21: is("prompt_tokens_details", Field::prompt_details, field); break;
        case 25: is("completion_tokens_details", Field::completion_details, field); break;
        default: break;
      }
    } else if (k.size() == 13) {
      is("cached_tokens", Field::cached, field);
    } else if (k.size() == 16) {
      is("reasoning_tokens", Field::reasoning, field);
    }
    return true;
  }
  /// A non-negative integer of at most 18 digits (no fraction, no exponent).
  bool integer(std::int64_t& v) {
    std::size_t p = p_;
    v = 0;
    if (p < n_ && s_[p] == '0') {
      ++p;  // "01" then fails at the separator, as it should
    } else {
      while (p < n_ && s_[p] >= '0' && s_[p] <= '9') {
        if (p - p_ == 18) return false;  // 19 digits or more: the general path (no overflow here)
        v = v * 10 + (s_[p++] - '0');
      }
      if (p == p_) return false;
    }
    p_ = p;
    // A fraction or an exponent: the general path.
    return !(p < n_ && (s_[p] == '.' || s_[p] == 'e' || s_[p] == 'E'));
  }
  bool object(Usage& u, int depth, Field parent) {
    if (!eat('{')) return false;
    ws();
    if (p_ < n_ && s_[p_] == '}') {
      ++p_;
      return true;
    }
    for (;;) {
      Field field;
      if (!key(depth, field) || !eat(':')) return false;
      ws();
      if (p_ >= n_) return false;
      // The value as the general path counts it: an integer, else 0 (null, an object).
      std::int64_t v = 0;
      char c = s_[p_];
      if (c == 'n') {
        if (n_ - p_ < 4 || std::memcmp(s_ + p_, "null", 4) != 0) return false;
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
      ws();
      if (p_ < n_ && s_[p_] == ',') {
        ++p_;
        continue;
      }
      return eat('}');
    }
  }

  const char* s_;
  std::size_t n_;
  std::size_t p_;
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
