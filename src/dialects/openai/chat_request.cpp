#include "dialects/openai/chat_request.hpp"

#include <algorithm>
#include <array>

#include "core/json_scan.hpp"

namespace switchyard::dialects::openai {

namespace json = core::json;
using core::ApiError;
using core::ErrorKind;

namespace {

enum class Expect : unsigned char { integer, number, boolean, string, array, object, string_or_array, string_or_object };

struct FieldRule {
  std::string_view name;
  Expect expect;
};

// Types of the optional top-level fields that the gateway checks before spending an upstream call
// on a request that would be refused anyway. Null is accepted for all of them, as OpenAI does.
constexpr std::array kFieldRules = {
    FieldRule{"stream", Expect::boolean},
    FieldRule{"stream_options", Expect::object},
    FieldRule{"temperature", Expect::number},
    FieldRule{"top_p", Expect::number},
    FieldRule{"presence_penalty", Expect::number},
    FieldRule{"frequency_penalty", Expect::number},
    FieldRule{"n", Expect::integer},
    FieldRule{"max_tokens", Expect::integer},
    FieldRule{"max_completion_tokens", Expect::integer},
    FieldRule{"seed", Expect::integer},
    FieldRule{"top_logprobs", Expect::integer},
    FieldRule{"logprobs", Expect::boolean},
    FieldRule{"parallel_tool_calls", Expect::boolean},
    FieldRule{"tools", Expect::array},
    FieldRule{"tool_choice", Expect::string_or_object},
    FieldRule{"stop", Expect::string_or_array},
    FieldRule{"user", Expect::string},
    FieldRule{"response_format", Expect::object},
    FieldRule{"logit_bias", Expect::object},
    FieldRule{"metadata", Expect::object},
    FieldRule{"top_k", Expect::integer},
    FieldRule{"reasoning_effort", Expect::string},
    FieldRule{"service_tier", Expect::string},
    FieldRule{"store", Expect::boolean},
};
static_assert(kFieldRules.size() <= 32);

/// A rule's slot in `kRuleSlots`: from the name's length and its first, middle and last bytes.
constexpr std::size_t rule_slot(std::string_view k) {
  return (k.size() + static_cast<unsigned char>(k.front()) + 3u * static_cast<unsigned char>(k.back()) +
          8u * static_cast<unsigned char>(k[k.size() / 2])) &
         63u;
}
/// Rule index by slot (-1: none). No two rules share a slot: a collision does not compile.
constexpr std::array<std::int8_t, 64> kRuleSlots = [] {
  std::array<std::int8_t, 64> t{};
  for (auto& x : t) x = -1;
  for (std::size_t i = 0; i < kFieldRules.size(); ++i) {
    const std::size_t slot = rule_slot(kFieldRules[i].name);
    if (t[slot] != -1) throw "two field rules share a slot: change rule_slot";
    t[slot] = static_cast<std::int8_t>(i);
  }
  return t;
}();
/// The rule for a top-level member: one table read and one comparison, not a scan.
int find_rule(std::string_view key) {
  if (key.empty()) return -1;
  const int i = kRuleSlots[rule_slot(key)];
  return i >= 0 && kFieldRules[static_cast<std::size_t>(i)].name == key ? i : -1;
}
constexpr int rule_index(std::string_view name) {
  for (std::size_t i = 0; i < kFieldRules.size(); ++i)
    if (kFieldRules[i].name == name) return static_cast<int>(i);
  throw "no such field rule";
}
constexpr int kUserRule = rule_index("user");
constexpr int kStreamRule = rule_index("stream"), kStreamOptionsRule = rule_index("stream_options"),
              kToolsRule = rule_index("tools"), kResponseFormatRule = rule_index("response_format"),
              kMaxTokensRule = rule_index("max_tokens"),
              kMaxCompletionTokensRule = rule_index("max_completion_tokens");

constexpr std::array<std::string_view, 6> kRoles = {"system", "developer", "user", "assistant",
                                                     "tool", "function"};

std::string_view expect_name(Expect e) {
  switch (e) {
    case Expect::integer: return "an integer";
    case Expect::number: return "a number";
    case Expect::boolean: return "a boolean";
    case Expect::string: return "a string";
    case Expect::array: return "an array";
    case Expect::object: return "an object";
    case Expect::string_or_array: return "a string or an array";
    case Expect::string_or_object: return "a string or an object";
  }
  return "a value";
}

std::string got_name(const json::Value& v) {
  if (v.type == json::Type::number && !json::as_int(v)) return "a decimal";
  std::string_view t = json::type_name(v.type);
  return std::string(v.type == json::Type::array || v.type == json::Type::object ? "an " : "a ") +
         std::string(t);
}

bool matches(Expect e, const json::Value& v) {
  switch (e) {
    case Expect::integer: return json::as_int(v).has_value();
    case Expect::number: return v.type == json::Type::number;
    case Expect::boolean: return v.type == json::Type::boolean;
    case Expect::string: return v.type == json::Type::string;
    case Expect::array: return v.type == json::Type::array;
    case Expect::object: return v.type == json::Type::object;
    case Expect::string_or_array: return v.type == json::Type::string || v.type == json::Type::array;
    case Expect::string_or_object:
      return v.type == json::Type::string || v.type == json::Type::object;
  }
  return false;
}

/// The key as text: the raw bytes, or their unescaped form when they hold an escape (rare).
std::string_view key_text(std::string_view raw, std::string& storage) {
  if (raw.find('\\') == std::string_view::npos) return raw;
  storage = json::unescape(raw);
  return storage;
}

/// A member key of a scanned document as text; looks for escapes only when the validator saw
/// one in some key.
std::string_view key_text(const json::Tape& tape, std::string_view raw, std::string& storage) {
  return tape.escaped_keys() ? key_text(raw, storage) : raw;
}

ApiError invalid_type(std::string param, Expect expect, const json::Value& got) {
  std::string msg = "Invalid type for '" + param + "': expected " + std::string(expect_name(expect)) +
                    ", but got " + got_name(got) + " instead.";
  return ApiError::make(ErrorKind::invalid_request, std::move(msg), std::move(param),
                        "invalid_type");
}

ApiError missing(std::string param) {
  std::string msg = "Missing required parameter: '" + param + "'.";
  return ApiError::make(ErrorKind::invalid_request, std::move(msg), std::move(param),
                        "missing_required_parameter");
}

std::optional<ApiError> check_message(const json::Tape& tape, std::string_view doc,
                                      std::size_t entry, const json::Value& msg,
                                      std::size_t index, ChatRequestInfo& info) {
  // The path is only spelled out on the error paths (this runs for every message).
  auto path = [index] { return "messages[" + std::to_string(index) + "]"; };
  if (msg.type != json::Type::object) return invalid_type(path(), Expect::object, msg);
  std::optional<json::Value> role, content, tool_calls, function_call;
  std::string storage;
  tape.for_each_child(doc, entry, [&](std::string_view raw, const json::Value& v, std::size_t) {
    std::string_view key = key_text(tape, raw, storage);
    if (key == "role") role = v;
    else if (key == "content") content = v;
    else if (key == "tool_calls") tool_calls = v;
    else if (key == "function_call") function_call = v;
    return true;
  });
  if (!role) return missing(path() + ".role");
  if (role->type != json::Type::string) return invalid_type(path() + ".role", Expect::string, *role);
  std::string role_storage;
  std::string_view role_name = key_text(role->raw.substr(1, role->raw.size() - 2), role_storage);
  if (std::find(kRoles.begin(), kRoles.end(), role_name) == kRoles.end()) {
    return ApiError::make(ErrorKind::invalid_request,
                          "Invalid value: '" + std::string(role_name) + "'. Supported values are: 'system', "
                          "'developer', 'user', 'assistant', 'tool', and 'function'.",
                          path() + ".role", "invalid_value");
  }
  if (content && content->type != json::Type::null && content->type != json::Type::string &&
      content->type != json::Type::array)
    return invalid_type(path() + ".content", Expect::string_or_array, *content);
  bool has_content = content && content->type != json::Type::null;
  if (has_content) {
    info.content_bytes += content->raw.size();
    // Inside JSON strings quotes are escaped, so an unescaped "image_url" is a part's type or key.
    if (content->type == json::Type::array && content->raw.find("\"image_url\"") != std::string_view::npos)
      info.has_images = true;
  }
  if (role_name == "assistant") {
    if (!has_content && !tool_calls && !function_call) return missing(path() + ".content");
  } else if (!has_content) {
    return missing(path() + ".content");
  }
  return std::nullopt;
}

}  // namespace

std::uint32_t param_bit(std::string_view name) {
  const int i = find_rule(name);
  return i < 0 ? 0 : 1u << i;
}

InspectResult inspect_chat_request(std::string_view body, const RequestLimits& limits) {
  // One pass: the validator records the values down to the messages' fields (depth 3), and
  // the checks below walk that record instead of the bytes again.
  thread_local json::Tape tape;
  json::ScanResult scan = json::validate(body, limits.max_json_depth, tape, 3);
  if (!scan) {
    std::string why;
    switch (scan.error) {
      case json::ScanError::depth:
        why = "The JSON body nests deeper than " + std::to_string(limits.max_json_depth) +
              " levels.";
        break;
      case json::ScanError::utf8:
        why = "The request body is not valid UTF-8 (at byte " + std::to_string(scan.offset) + ").";
        break;
      case json::ScanError::empty:
        why = "The request body is empty; a JSON object is required.";
        break;
      default:
        why = "We could not parse the JSON body of your request (syntax error at byte " +
              std::to_string(scan.offset) + ").";
    }
    return ApiError::make(ErrorKind::invalid_request, std::move(why), {}, "invalid_json");
  }
  if (scan.root.type != json::Type::object) {
    return ApiError::make(ErrorKind::invalid_request,
                          "The request body must be a JSON object, not " + got_name(scan.root) + ".",
                          {}, "invalid_json");
  }

  ChatRequestInfo info;
  info.root_end = scan.root.offset + scan.root.raw.size() - 1;
  std::optional<json::Value> model, messages;
  std::size_t messages_entry = 0;
  std::optional<ApiError> error;
  std::string storage;
  // A member the gateway reads, given twice, is refused: parsers disagree on which one counts
  // (the gateway would route by one while an upstream read the other).
  std::uint32_t seen_rules = 0;
  auto duplicate = [&](std::string_view key) {
    error = ApiError::make(ErrorKind::invalid_request,
                           "The request body gives '" + std::string(key) + "' more than once.", std::string(key),
                           "duplicate_member");
    return false;
  };
  tape.for_each_child(body, 0, [&](std::string_view raw, const json::Value& v, std::size_t entry) {
    std::string_view key = key_text(tape, raw, storage);
    if (key == "model") {
      if (model) return duplicate(key);
      model = v;
      return true;
    }
    if (key == "messages") {
      if (messages) return duplicate(key);
      messages = v;
      messages_entry = entry;
      return true;
    }
    const int i = find_rule(key);
    if (i < 0) return true;
    if (seen_rules & (1u << i)) return duplicate(key);
    seen_rules |= 1u << i;
    const FieldRule& rule = kFieldRules[static_cast<std::size_t>(i)];
    if (v.type != json::Type::null) info.params |= 1u << i;
    if (v.type != json::Type::null && !matches(rule.expect, v)) {
      error = invalid_type(std::string(rule.name), rule.expect, v);
      return false;
    }
    if (i == kStreamRule) info.stream = v.raw == "true";
    if (i == kUserRule && v.type == json::Type::string) json::unescape_to(v.raw, info.user);
    if (i == kToolsRule) info.content_bytes += v.raw.size();
    if (i == kResponseFormatRule && v.raw.find("\"json_schema\"") != std::string_view::npos)
      info.json_schema = true;
    if (i == kMaxCompletionTokensRule || (i == kMaxTokensRule && !info.max_output_tokens))
      if (auto n = json::as_int(v)) info.max_output_tokens = *n;
    if (i == kStreamOptionsRule && v.type == json::Type::object) {
      info.has_stream_options = true;
      info.stream_options_begin = v.offset;
      info.stream_options_end = v.offset + v.raw.size();
      std::string inner;
      tape.for_each_child(body, entry, [&](std::string_view k, const json::Value& u, std::size_t) {
        if (key_text(tape, k, inner) != "include_usage") return true;
        if (u.type != json::Type::boolean && u.type != json::Type::null) {
          error = invalid_type("stream_options.include_usage", Expect::boolean, u);
          return false;
        }
        info.has_include_usage = true;
        info.include_usage_begin = u.offset;
        info.include_usage_end = u.offset + u.raw.size();
        info.client_wants_usage = u.raw == "true";
        return true;
      });
    }
    return !error;
  });
  if (error) return *error;

  if (!model) return missing("model");
  if (model->type != json::Type::string) return invalid_type("model", Expect::string, *model);
  json::unescape_to(model->raw, info.model);
  if (info.model.empty()) {
    return ApiError::make(ErrorKind::invalid_request, "'model' must not be empty.", "model",
                          "invalid_value");
  }
  info.model_begin = model->offset;
  info.model_end = model->offset + model->raw.size();

  if (!messages) return missing("messages");
  if (messages->type != json::Type::array) return invalid_type("messages", Expect::array, *messages);
  tape.for_each_child(body, messages_entry, [&](std::string_view, const json::Value& m, std::size_t entry) {
    error = check_message(tape, body, entry, m, info.message_count++, info);
    return !error;
  });
  if (error) return *error;
  if (info.message_count == 0) {
    return ApiError::make(ErrorKind::invalid_request,
                          "Invalid 'messages': empty array. Expected an array with minimum length "
                          "1, but got an empty array instead.",
                          "messages", "empty_array");
  }
  return info;
}

void patch_chat_request(std::string_view body, const ChatRequestInfo& info,
                        std::string_view model_literal, std::string& out) {
  struct Edit {
    std::size_t begin, end;
    std::string_view text;
  };

  Edit edits[3];
  std::size_t n = 0;
  edits[n++] = {info.model_begin, info.model_end, model_literal};
  if (info.stream && !info.client_wants_usage) {
    if (info.has_include_usage) {
      edits[n++] = {info.include_usage_begin, info.include_usage_end, "true"};
    } else if (info.has_stream_options) {
      // Insert right after the opening brace of stream_options.
      bool empty = body.substr(info.stream_options_begin + 1,
                               info.stream_options_end - info.stream_options_begin - 2)
                       .find_first_not_of(" \t\r\n") == std::string_view::npos;
      edits[n++] = {info.stream_options_begin + 1, info.stream_options_begin + 1,
                    empty ? R"("include_usage":true)" : R"("include_usage":true,)"};
    } else {
      edits[n++] = {info.root_end, info.root_end, R"(,"stream_options":{"include_usage":true})"};
    }
  }
  std::sort(edits, edits + n, [](const Edit& a, const Edit& b) { return a.begin < b.begin; });

  out.reserve(out.size() + body.size() + model_literal.size() + 48);
  std::size_t pos = 0;
  for (std::size_t i = 0; i < n; ++i) {
    out.append(body.substr(pos, edits[i].begin - pos));
    out.append(edits[i].text);
    pos = edits[i].end;
  }
  out.append(body.substr(pos));
}

}  // namespace switchyard::dialects::openai
