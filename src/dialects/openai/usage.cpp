#include "dialects/openai/usage.hpp"

#include "core/json_scan.hpp"

namespace switchyard::dialects::openai {

namespace json = core::json;

namespace {

bool has_usage_object(std::string_view text) {
  std::size_t pos = 0;
  while ((pos = text.find("\"usage\"", pos)) != std::string_view::npos) {
    pos += 7;
    std::size_t p = pos;
    while (p < text.size() && (text[p] == ' ' || text[p] == ':' || text[p] == '\t' ||
                               text[p] == '\n' || text[p] == '\r'))
      ++p;
    if (p < text.size() && text[p] == '{') return true;
  }
  return false;
}

void read_counts(const json::Value& object, Usage& u) {
  json::for_each_member(object, [&](std::string_view key, const json::Value& v) {
    if (key == "prompt_tokens") u.prompt_tokens = json::as_int(v).value_or(0);
    else if (key == "completion_tokens") u.completion_tokens = json::as_int(v).value_or(0);
    else if (key == "total_tokens") u.total_tokens = json::as_int(v).value_or(0);
    else if (key == "prompt_tokens_details" || key == "completion_tokens_details")
      json::for_each_member(v, [&](std::string_view k, const json::Value& d) {
        if (k == "cached_tokens") u.cached_tokens = json::as_int(d).value_or(0);
        else if (k == "reasoning_tokens") u.reasoning_tokens = json::as_int(d).value_or(0);
        return true;
      });
    return true;
  });
}

}  // namespace

UsageProbe probe_usage(std::string_view text) {
  UsageProbe probe;
  if (!has_usage_object(text)) return probe;
  auto scan = json::validate(text, 64);
  if (!scan) return probe;
  return probe_usage(scan.root);
}

UsageProbe probe_usage(const json::Value& root) {
  UsageProbe probe;
  if (root.type != json::Type::object) return probe;
  json::for_each_member(root, [&](std::string_view key, const json::Value& v) {
    if (key == "usage" && v.type == json::Type::object) {
      Usage u;
      read_counts(v, u);
      probe.usage = u;
    } else if (key == "choices" && v.type == json::Type::array) {
      bool any = false;
      json::for_each_element(v, [&](const json::Value&) {
        any = true;
        return false;
      });
      probe.no_choices = !any;
    }
    return true;
  });
  return probe;
}

}  // namespace switchyard::dialects::openai
