#include "dialects/openai/usage.hpp"

#include <cstring>

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

/// Last occurrence of a quoted key. memrchr over the quotes (a body has few) instead of
/// string_view::rfind, which compares at every byte.
std::size_t rfind_key(std::string_view text, std::string_view quoted) {
  std::size_t end = text.size();
  while (end > 0) {
    const void* q = memrchr(text.data(), '"', end);
    if (!q) return std::string_view::npos;
    std::size_t close = static_cast<std::size_t>(static_cast<const char*>(q) - text.data());
    if (close + 1 >= quoted.size() &&
        text.compare(close + 1 - quoted.size(), quoted.size(), quoted) == 0)
      return close + 1 - quoted.size();
    end = close;
  }
  return std::string_view::npos;
}

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

UsageProbe probe_usage(std::string_view text, bool check_choices) {
  // No tree: a quote-delimited key can only occur outside strings (quotes inside strings are
  // escaped), and the top-level `usage` is the last one in OpenAI's bodies and chunks.
  UsageProbe probe;
  constexpr std::string_view kUsage = "\"usage\"";
  if (std::size_t key = rfind_key(text, kUsage); key != std::string_view::npos) {
    std::size_t v = value_after(text, key, kUsage.size());
    if (v != std::string_view::npos && text[v] == '{') {
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
