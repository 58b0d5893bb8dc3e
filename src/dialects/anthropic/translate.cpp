#include "dialects/anthropic/translate.hpp"

#include "dialects/call_id.hpp"

#include "dialects/json_util.hpp"
#include "dialects/json_writer.hpp"

namespace switchyard::dialects::anthropic {

using core::ApiError;
using core::Block;
using core::ChatRequest;
using core::FinishReason;
using core::Message;
using core::Role;

namespace {

/// Anthropic input blocks → canonical blocks (shared by requests and responses).
std::optional<ApiError> decode_blocks(const json::value& content, std::vector<Block>& out,
                                      const std::string& path) {
  if (content.is_string()) {
    out.push_back(Block::make_text(std::string(content.get_string())));
    return std::nullopt;
  }
  if (!content.is_array()) return bad_request(path + ": Input should be a valid list", path);
  std::size_t i = 0;
  for (const json::value& bv : content.get_array()) {
    std::string bpath = path + "." + std::to_string(i++);
    if (!bv.is_object()) return bad_request(bpath + ": Input should be an object", bpath);
    const json::object& o = bv.get_object();
    std::string_view type = str_or(o, "type");
    Block b;
    if (type == "text") {
      const json::value* text = member(o, "text");
      if (!text || !text->is_string()) return bad_request(bpath + ".text: Field required", bpath + ".text");
      b.text = std::string(text->get_string());
    } else if (type == "image") {
      const json::object* source = object_at(o, "source");
      if (!source) return bad_request(bpath + ".source: Field required", bpath + ".source");
      b.type = Block::Type::image;
      std::string_view st = str_or(*source, "type");
      if (st == "base64") {
        b.media_type = std::string(str_or(*source, "media_type"));
        b.data = std::string(str_or(*source, "data"));
      } else if (st == "url") {
        b.url = std::string(str_or(*source, "url"));
      } else {
        return bad_request(bpath + ".source.type must be base64 or url", bpath + ".source.type");
      }
    } else if (type == "thinking") {
      b.type = Block::Type::thinking;
      b.text = std::string(str_or(o, "thinking"));
      b.signature = std::string(str_or(o, "signature"));
    } else if (type == "redacted_thinking") {
      b.type = Block::Type::redacted_thinking;
      b.text = std::string(str_or(o, "data"));
    } else if (type == "tool_use") {
      b.type = Block::Type::tool_use;
      b.id = std::string(str_or(o, "id"));
      b.signature = take_signature(b.id);  // a Gemini call's (call_id.hpp)
      b.name = std::string(str_or(o, "name"));
      if (b.id.empty() || b.name.empty())
        return bad_request(bpath + ": tool_use blocks need an id and a name", bpath);
      const json::value* input = member(o, "input");
      b.arguments = input ? json::serialize(*input) : "{}";
    } else if (type == "tool_result") {
      b.type = Block::Type::tool_result;
      b.id = std::string(str_or(o, "tool_use_id"));
      take_signature(b.id);  // the call's own id, as its tool_use block has it
      if (b.id.empty()) return bad_request(bpath + ".tool_use_id: Field required", bpath + ".tool_use_id");
      if (const json::value* c = member(o, "content"); c && !c->is_null())
        if (auto e = decode_blocks(*c, b.content, bpath + ".content")) return e;
      if (const json::value* err = member(o, "is_error"); err && err->is_bool()) b.is_error = err->get_bool();
    } else if (type == "tool_reference") {
      // Tool search's answer (a deferred tool loaded): Anthropic gets the body as it is; for
      // another provider, which is sent every tool in full, it is the tool's name as text.
      b.text = "Tool reference: " + std::string(str_or(o, "tool_name"));
    } else {
      return bad_request(bpath + ": content block type \"" + std::string(type) +
                             "\" cannot be translated for this deployment's provider",
                         bpath + ".type", "unsupported_content");
    }
    if (const json::value* cc = member(o, "cache_control")) b.cache_control = *cc;
    out.push_back(std::move(b));
  }
  return std::nullopt;
}

bool is_modelled(std::string_view key) {
  static constexpr std::string_view kKnown[] = {
      "model", "messages", "system", "max_tokens", "temperature", "top_p", "top_k",
      "stop_sequences", "stream", "tools", "tool_choice", "thinking", "metadata", "output_config",
      // Asks nothing another provider can do, and is dropped for them (docs/translation.md):
      // context editing (old tool results cleared on Anthropic's side; elsewhere the whole
      // context is sent, as the client gave it) and Anthropic's service tier.
      "context_management", "service_tier"};
  for (auto k : kKnown)
    if (k == key) return true;
  return false;
}

void append_usage(std::string& out, const core::TokenUsage& u) {
  out += R"({"input_tokens":)";
  out += std::to_string(std::max<std::int64_t>(0, u.input - u.cache_read - u.cache_creation));
  out += R"(,"cache_creation_input_tokens":)";
  out += std::to_string(u.cache_creation);
  out += R"(,"cache_read_input_tokens":)";
  out += std::to_string(u.cache_read);
  out += R"(,"output_tokens":)";
  out += std::to_string(u.output);
  out += '}';
}

}  // namespace

std::int64_t default_max_tokens(std::string_view model) {
  // Anthropic's maximum output per model family (their models overview, 2026); a client that
  // gives no max_tokens gets the model's maximum, as an OpenAI model would allow.
  struct Entry {
    std::string_view prefix;
    std::int64_t max_tokens;
  };
  static constexpr Entry kTable[] = {
      {"claude-opus-4-1", 32000}, {"claude-opus-4-0", 32000}, {"claude-opus-4-2", 32000},
      {"claude-opus-4", 64000},   {"claude-sonnet-4", 64000}, {"claude-haiku-4", 64000},
      {"claude-3-7-sonnet", 64000}, {"claude-3-5-haiku", 8192}, {"claude-3-5-sonnet", 8192},
      {"claude-3-haiku", 4096},   {"claude-3-opus", 4096},
  };
  for (const auto& e : kTable)
    if (model.substr(0, e.prefix.size()) == e.prefix) return e.max_tokens;
  return 8192;
}

bool patch_model(std::string_view body, std::string_view model, std::string& out, std::int64_t max_tokens_cap) {
  auto parsed = parse_json(body, 256);
  if (!parsed || !parsed->is_object()) return false;
  parsed->get_object()["model"] = model;
  if (max_tokens_cap > 0)
    if (auto given = int_of(parsed->get_object().if_contains("max_tokens")); given && *given > max_tokens_cap)
      parsed->get_object()["max_tokens"] = max_tokens_cap;
  out += json::serialize(*parsed);
  return true;
}

namespace {
void read_usage_view(const JsonView::Node& u, core::TokenUsage& usage);
}  // namespace

void probe_usage(std::string_view text, core::TokenUsage& usage) {
  JsonView view;
  if (!view.parse(text) || !view.root().is_object()) return;
  JsonView::Node o = view.root();
  if (auto u = o["usage"]; u.is_object()) read_usage_view(u, usage);
  if (auto u = o["message"]["usage"]; u.is_object()) read_usage_view(u, usage);
}

std::variant<ChatRequest, ApiError> decode_request(std::string_view body, std::size_t max_depth,
                                                   bool require_max_tokens) {
  auto parsed = parse_json(body, max_depth + 1);
  if (!parsed || !parsed->is_object())
    return bad_request("The request body is not valid JSON.", {}, "invalid_json");
  const json::object& o = parsed->get_object();
  ChatRequest r;
  const json::value* model = member(o, "model");
  if (!model || !model->is_string()) return bad_request("model: Field required", "model");
  r.model = std::string(model->get_string());
  const json::value* max_tokens = member(o, "max_tokens");
  if (!max_tokens && require_max_tokens) return bad_request("max_tokens: Field required", "max_tokens");
  if (max_tokens) {
    r.max_tokens = int_of(max_tokens);
    if (!r.max_tokens || *r.max_tokens < 1)
      return bad_request("max_tokens: Input should be a positive integer", "max_tokens");
  }
  const json::array* messages = array_at(o, "messages");
  if (!messages) return bad_request("messages: Field required", "messages");
  if (const json::value* system = member(o, "system"); system && !system->is_null())
    if (auto e = decode_blocks(*system, r.system, "system")) return *e;
  std::size_t i = 0;
  for (const json::value& mv : *messages) {
    std::string path = "messages." + std::to_string(i++);
    if (!mv.is_object()) return bad_request(path + ": Input should be an object", path);
    const json::object& m = mv.get_object();
    std::string_view role = str_or(m, "role");
    Message msg;
    const json::value* content = member(m, "content");
    if (role == "system") {
      // A system message mid-conversation (Claude Code, beta mid-conversation-tool-changes):
      // Anthropic gets it where it is (the body passes as it is); for another provider it joins
      // the system prompt.
      if (!content) return bad_request(path + ".content: Field required", path + ".content");
      if (auto e = decode_blocks(*content, r.system, path + ".content")) return *e;
      continue;
    }
    if (role == "user") msg.role = Role::user;
    else if (role == "assistant") msg.role = Role::assistant;
    else
      return bad_request(path + ".role: Input should be 'user', 'assistant' or 'system'", path + ".role");
    if (!content) return bad_request(path + ".content: Field required", path + ".content");
    if (auto e = decode_blocks(*content, msg.content, path + ".content")) return *e;
    if (!r.messages.empty() && r.messages.back().role == msg.role) {
      for (auto& b : msg.content) r.messages.back().content.push_back(std::move(b));
    } else {
      r.messages.push_back(std::move(msg));
    }
  }
  if (const json::value* v = member(o, "temperature"); v && !v->is_null()) r.temperature = number_of(v);
  if (const json::value* v = member(o, "top_p"); v && !v->is_null()) r.top_p = number_of(v);
  if (const json::value* v = member(o, "top_k"); v && !v->is_null()) r.top_k = int_of(v);
  if (const json::array* stops = array_at(o, "stop_sequences"))
    for (const json::value& s : *stops)
      if (s.is_string()) r.stop.emplace_back(s.get_string());
  if (const json::value* s = member(o, "stream"); s && s->is_bool()) r.stream = s->get_bool();
  r.include_usage = true;  // Anthropic streams always carry usage
  if (const json::array* tools = array_at(o, "tools")) {
    std::size_t k = 0;
    for (const json::value& tv : *tools) {
      std::string path = "tools." + std::to_string(k++);
      if (!tv.is_object()) return bad_request(path + ": Input should be an object", path);
      const json::object& t = tv.get_object();
      std::string_view type = str_or(t, "type", "custom");
      if (type != "custom")
        return bad_request(path + ": server tool \"" + std::string(type) +
                               "\" is only available from Anthropic",
                           path + ".type", "unsupported_tool");
      core::Tool tool;
      tool.name = std::string(str_or(t, "name"));
      if (tool.name.empty()) return bad_request(path + ".name: Field required", path + ".name");
      tool.description = std::string(str_or(t, "description"));
      if (const json::value* s = member(t, "input_schema")) tool.parameters = *s;
      else return bad_request(path + ".input_schema: Field required", path + ".input_schema");
      if (const json::value* cc = member(t, "cache_control")) tool.cache_control = *cc;
      r.tools.push_back(std::move(tool));
    }
  }
  if (const json::object* tc = object_at(o, "tool_choice")) {
    using Mode = core::ToolChoice::Mode;
    std::string_view type = str_or(*tc, "type");
    if (type == "auto") r.tool_choice.mode = Mode::auto_;
    else if (type == "any") r.tool_choice.mode = Mode::required;
    else if (type == "none") r.tool_choice.mode = Mode::none;
    else if (type == "tool") {
      r.tool_choice.mode = Mode::named;
      r.tool_choice.name = std::string(str_or(*tc, "name"));
    } else {
      return bad_request("tool_choice.type must be auto, any, tool or none", "tool_choice.type");
    }
    if (const json::value* d = member(*tc, "disable_parallel_tool_use"); d && d->is_bool() && d->get_bool())
      r.parallel_tool_calls = false;
  }
  if (const json::object* th = object_at(o, "thinking")) {
    const std::string_view type = str_or(*th, "type");
    if (type == "enabled") r.thinking_budget = int_or(*th, "budget_tokens", 1024);
    // Adaptive: the model decides how much to think; elsewhere that is a reasoning effort (the
    // request's own `output_config.effort` below, else medium).
    else if (type == "adaptive") r.reasoning_effort = "medium";
  }
  if (const json::object* oc = object_at(o, "output_config")) {
    // effort: low | medium | high | max → the reasoning controls of other providers.
    const std::string_view effort = str_or(*oc, "effort");
    if (effort == "max") r.reasoning_effort = "high";
    else if (effort == "low" || effort == "medium" || effort == "high") r.reasoning_effort = std::string(effort);
    if (const json::object* format = object_at(*oc, "format"); format && str_or(*format, "type") == "json_schema") {
      r.response_format.kind = core::ResponseFormat::Kind::json_schema;
      r.response_format.name = "response";
      if (const json::value* schema = member(*format, "schema")) r.response_format.schema = *schema;
    }
  }
  if (const json::object* md = object_at(o, "metadata")) r.user = std::string(str_or(*md, "user_id"));
  for (const auto& kv : o)
    if (!is_modelled(kv.key())) r.extra.emplace(kv.key(), kv.value());
  return r;
}

namespace {

void write_value(JsonWriter& w, const json::value& v) { w.raw(json::serialize(v)); }

/// Tool arguments as the `input` object: the client's JSON when it is an object, else kept under
/// `_raw_arguments` (a truncated call, for example) rather than lost.
void write_input(JsonWriter& w, std::string_view arguments) {
  if (arguments.empty()) {
    w.raw("{}");
    return;
  }
  core::json::ScanResult scan = core::json::validate(arguments, 64);
  if (scan && scan.root.type == core::json::Type::object) {
    w.raw(scan.root.raw);
    return;
  }
  w.begin_object().field("_raw_arguments", arguments).end_object();
}

void write_blocks(JsonWriter& w, const std::vector<Block>& blocks);

void write_block(JsonWriter& w, const Block& b) {
  w.begin_object();
  switch (b.type) {
    case Block::Type::text:
      w.field("type", "text").field("text", b.text);
      break;
    case Block::Type::image:
      w.field("type", "image").key("source").begin_object();
      if (!b.url.empty()) w.field("type", "url").field("url", b.url);
      else w.field("type", "base64").field("media_type", b.media_type).field("data", b.data);
      w.end_object();
      break;
    case Block::Type::thinking:
      w.field("type", "thinking").field("thinking", b.text).field("signature", b.signature);
      break;
    case Block::Type::redacted_thinking:
      w.field("type", "redacted_thinking").field("data", b.text);
      break;
    case Block::Type::tool_use:
      w.field("type", "tool_use").field("id", b.id).field("name", b.name).key("input");
      write_input(w, b.arguments);
      break;
    case Block::Type::tool_result:
      w.field("type", "tool_result").field("tool_use_id", b.id);
      if (!b.content.empty()) {
        w.key("content");
        write_blocks(w, b.content);
      }
      if (b.is_error) w.key("is_error").boolean(true);
      break;
  }
  if (!b.cache_control.is_null()) {
    w.key("cache_control");
    write_value(w, b.cache_control);
  }
  w.end_object();
}

/// A single plain text as a string, anything else as blocks (empty texts left out).
void write_blocks(JsonWriter& w, const std::vector<Block>& blocks) {
  if (blocks.size() == 1 && blocks[0].type == Block::Type::text && blocks[0].cache_control.is_null()) {
    w.string(blocks[0].text);
    return;
  }
  w.begin_array();
  for (const Block& b : blocks)
    if (!(b.type == Block::Type::text && b.text.empty())) write_block(w, b);
  w.end_array();
}

/// Blocks Anthropic can take in a message: empty texts and unsigned thinking (from another
/// provider: it cannot be replayed) are left out.
bool sendable(const Block& b) {
  if (b.type == Block::Type::text && b.text.empty()) return false;
  if (b.type == Block::Type::thinking && b.signature.empty()) return false;
  return true;
}

}  // namespace

EncodeResult encode_request(const ChatRequest& r, std::string_view model,
                            std::int64_t default_max, std::string& out,
                            core::Unsupported& unsupported) {
  EncodeResult result;
  JsonWriter w(out);
  w.begin_object().field("model", model);
  std::int64_t max_tokens = r.max_tokens.value_or(default_max);
  std::optional<std::int64_t> budget = r.thinking_budget;
  if (!budget && !r.reasoning_effort.empty()) {
    if (r.reasoning_effort == "minimal" || r.reasoning_effort == "low") budget = 2048;
    else if (r.reasoning_effort == "medium") budget = 8192;
    else if (r.reasoning_effort == "high") budget = 24576;
    else if (r.reasoning_effort != "none") unsupported.params.push_back("reasoning_effort");
  }
  if (budget) {
    *budget = std::max<std::int64_t>(*budget, 1024);
    // The budget counts within max_tokens: room is made for the answer itself.
    if (max_tokens <= *budget) max_tokens += *budget;
    w.key("thinking").begin_object().field("type", "enabled").field_int("budget_tokens", *budget).end_object();
  }
  w.field_int("max_tokens", max_tokens);
  if (!r.system.empty()) {
    w.key("system");
    write_blocks(w, r.system);
  }

  // Messages: consecutive turns of one role merged (Anthropic alternates), empty turns left out.
  w.key("messages").begin_array();
  core::for_each_turn(r.messages, sendable, [&](Role role, const std::vector<const Block*>& blocks) {
    w.begin_object().field("role", role == Role::user ? "user" : "assistant").key("content").begin_array();
    for (const Block* b : blocks) write_block(w, *b);
    w.end_array().end_object();
  });
  w.end_array();
  if (r.temperature) w.key("temperature").number(*r.temperature);
  if (r.top_p) w.key("top_p").number(*r.top_p);
  if (r.top_k) w.field_int("top_k", *r.top_k);
  if (!r.stop.empty()) {
    w.key("stop_sequences").begin_array();
    for (const auto& s : r.stop) w.string(s);
    w.end_array();
  }
  if (r.stream) w.key("stream").boolean(true);
  if (!r.user.empty()) w.key("metadata").begin_object().field("user_id", r.user).end_object();
  if (r.seed) unsupported.params.push_back("seed");
  if (r.n && *r.n != 1) unsupported.params.push_back("n");
  if (r.presence_penalty && *r.presence_penalty != 0) unsupported.params.push_back("presence_penalty");
  if (r.frequency_penalty && *r.frequency_penalty != 0) unsupported.params.push_back("frequency_penalty");
  core::add_extras(r, unsupported);

  using Kind = core::ResponseFormat::Kind;
  using Mode = core::ToolChoice::Mode;
  bool json_mode = r.response_format.kind == Kind::json_object || r.response_format.kind == Kind::json_schema;
  if (json_mode) {
    result.json_tool = r.response_format.kind == Kind::json_schema && !r.response_format.name.empty()
                           ? r.response_format.name
                           : "json_response";
  }
  if (!r.tools.empty() || json_mode) {
    w.key("tools").begin_array();
    for (const auto& t : r.tools) {
      w.begin_object().field("name", t.name);
      if (!t.description.empty()) w.field("description", t.description);
      w.key("input_schema");
      if (t.parameters.is_null()) w.raw(R"({"type":"object","properties":{}})");
      else write_value(w, t.parameters);
      if (!t.cache_control.is_null()) {
        w.key("cache_control");
        write_value(w, t.cache_control);
      }
      w.end_object();
    }
    if (json_mode) {
      // JSON mode as a tool whose input is the answer: works on every Claude model, and the
      // schema is enforced by the tool's input_schema.
      w.begin_object().field("name", result.json_tool);
      w.field("description", r.response_format.description.empty()
                                 ? std::string_view("Respond with the answer as this tool's input.")
                                 : std::string_view(r.response_format.description));
      w.key("input_schema");
      if (r.response_format.kind == Kind::json_schema && r.response_format.schema.is_object())
        write_value(w, r.response_format.schema);
      else
        w.raw(R"({"type":"object"})");
      w.end_object();
    }
    w.end_array();

    std::string_view type;
    std::string_view name;
    switch (r.tool_choice.mode) {
      case Mode::unset: break;
      case Mode::auto_: type = "auto"; break;
      case Mode::none: type = "none"; break;
      case Mode::required: type = "any"; break;
      case Mode::named: type = "tool"; name = r.tool_choice.name; break;
    }
    if (json_mode) {
      if (r.tools.empty() && !budget) {
        type = "tool";
        name = result.json_tool;
      } else if (type.empty()) {
        // Thinking forbids forcing a tool; with tools of its own the model may still call those.
        type = budget ? "auto" : "any";
      }
    }
    bool no_parallel = r.parallel_tool_calls && !*r.parallel_tool_calls;
    if (no_parallel && type.empty()) type = "auto";
    if (!type.empty()) {
      w.key("tool_choice").begin_object().field("type", type);
      if (!name.empty()) w.field("name", name);
      if (no_parallel) w.key("disable_parallel_tool_use").boolean(true);
      w.end_object();
    }
  }
  w.end_object();
  return result;
}

std::string_view stop_reason_name(FinishReason reason, bool stop_sequence) {
  switch (reason) {
    case FinishReason::length: return "max_tokens";
    case FinishReason::tool_calls: return "tool_use";
    case FinishReason::content_filter: return "refusal";
    default: return stop_sequence ? "stop_sequence" : "end_turn";
  }
}

FinishReason finish_from_stop_reason(std::string_view s) {
  if (s == "max_tokens" || s == "model_context_window_exceeded") return FinishReason::length;
  if (s == "tool_use") return FinishReason::tool_calls;
  if (s == "refusal") return FinishReason::content_filter;
  if (s.empty()) return FinishReason::none;
  return FinishReason::stop;  // end_turn, stop_sequence, pause_turn
}

namespace {
void read_usage_view(const JsonView::Node& u, core::TokenUsage& usage);
}  // namespace

std::variant<core::ChatResponse, ApiError> decode_response(std::string_view body,
                                                           const EncodeResult& encoded) {
  JsonView view;
  if (!view.parse(body) || !view.root().is_object())
    return ApiError::make(core::ErrorKind::upstream_connect, "The upstream answered invalid JSON.");
  JsonView::Node o = view.root();
  core::ChatResponse r;
  r.id = o["id"].text();
  r.model = o["model"].text();
  r.stop_sequence = o["stop_sequence"].text();
  r.finish = finish_from_stop_reason(o["stop_reason"].text());
  if (auto u = o["usage"]; u.is_object()) read_usage_view(u, r.usage);
  o["content"].each([&](const JsonView::Node& c) {
    JsonView::Node type = c["type"];
    Block b;
    if (type.equals("text")) {
      b.text = c["text"].text();
    } else if (type.equals("thinking")) {
      b.type = Block::Type::thinking;
      b.text = c["thinking"].text();
      b.signature = c["signature"].text();
    } else if (type.equals("redacted_thinking")) {
      b.type = Block::Type::redacted_thinking;
      b.text = c["data"].text();
    } else if (type.equals("tool_use")) {
      b.type = Block::Type::tool_use;
      b.id = c["id"].text();
      b.name = c["name"].text();
      JsonView::Node input = c["input"];
      b.arguments = input ? std::string(input.raw()) : std::string("{}");
      if (!encoded.json_tool.empty() && b.name == encoded.json_tool) {
        // JSON mode: the forced tool's input is the answer.
        b = Block::make_text(std::move(b.arguments));
        if (r.finish == FinishReason::tool_calls) r.finish = FinishReason::stop;
      }
    } else {
      return;  // server tool results, citations: nothing an OpenAI client can show
    }
    r.content.push_back(std::move(b));
  });
  return r;
}

void encode_response(const core::ChatResponse& r, std::string& out) {
  JsonWriter w(out);
  w.begin_object().field("id", r.id).field("type", "message").field("role", "assistant").field("model", r.model);
  w.key("content").begin_array();
  for (const Block& b : r.content) {
    if (b.type == Block::Type::text && b.text.empty()) continue;
    if (b.type == Block::Type::tool_use && !b.signature.empty()) {
      // Gemini's thought signature of the call, in the id the client sends back (call_id.hpp).
      Block call = b;
      call.id = id_with_signature(b.id, b.signature);
      write_block(w, call);
      continue;
    }
    write_block(w, b);
  }
  w.end_array();
  w.field("stop_reason", stop_reason_name(r.finish, !r.stop_sequence.empty())).key("stop_sequence");
  if (r.stop_sequence.empty()) w.null();
  else w.string(r.stop_sequence);
  std::string usage;
  append_usage(usage, r.usage);
  w.key("usage").raw(usage).end_object();
}

// ---------------------------------------------------------------------------------------------
// Streams

namespace {
constexpr std::int64_t kMaxBlocks = 100000;
}  // namespace

namespace {

void read_usage_view(const JsonView::Node& u, core::TokenUsage& usage) {
  usage.known = true;
  std::optional<std::int64_t> plain = u["input_tokens"].integer();
  auto created_node = u["cache_creation_input_tokens"];
  auto read_node = u["cache_read_input_tokens"];
  std::int64_t created = created_node.integer_or(0);
  std::int64_t read = read_node.integer_or(0);
  // message_delta repeats only what changed; keep what message_start said otherwise.
  if (plain) usage.input = *plain + created + read;
  if (created_node) usage.cache_creation = created;
  if (auto ttl = u["cache_creation"]; ttl.is_object())  // by lifetime: 1 h writes bill at 2x, 5 min at 1.25x
    usage.cache_creation_1h = ttl["ephemeral_1h_input_tokens"].integer_or(0);
  if (read_node) usage.cache_read = read;
  if (!plain && (created_node || read_node)) usage.input = std::max(usage.input, created + read);
  if (auto out = u["output_tokens"].integer()) usage.output = *out;
}

}  // namespace

bool EventDecoder::feed(std::string_view event_name, std::string_view data, core::StreamSink& sink) {
  if (!view_.parse(data) || !view_.root().is_object()) return false;
  JsonView::Node o = view_.root();
  JsonView::Node type_node = o["type"];
  auto is = [&](std::string_view name) {
    return type_node.is_string() ? type_node.equals(name) : event_name == name;
  };
  using Kind = core::StreamEvent::Kind;
  core::StreamEvent ev;
  if (is("message_start")) {
    JsonView::Node m = o["message"];
    ev.kind = Kind::start;
    ev.id = m["id"].text();
    ev.model = m["model"].text();
    if (auto u = m["usage"]; u.is_object()) read_usage_view(u, usage_);
    ev.usage = usage_;
    sink.on_event(ev);
  } else if (is("content_block_start")) {
    std::int64_t raw_index = o["index"].integer_or(-1);
    if (raw_index < 0 || raw_index > kMaxBlocks) return false;  // not a block index Anthropic sends
    std::size_t index = static_cast<std::size_t>(raw_index);
    if (block_tool_.size() <= index) block_tool_.resize(index + 1, -1);
    JsonView::Node cb = o["content_block"];
    if (!cb.is_object()) return true;
    JsonView::Node bt = cb["type"];
    if (bt.equals("tool_use")) {
      std::string name = cb["name"].text();
      if (!encoded_.json_tool.empty() && name == encoded_.json_tool) {
        block_tool_[index] = -2;
      } else {
        block_tool_[index] = tool_count_++;
        ev.kind = Kind::tool_start;
        ev.index = block_tool_[index];
        ev.id = cb["id"].text();
        ev.name = std::move(name);
        sink.on_event(ev);
      }
    } else if (bt.equals("text")) {
      if (auto t = cb["text"]; t.has_text()) {
        ev.kind = Kind::text;
        ev.text = t.text();
        sink.on_event(ev);
      }
    } else if (bt.equals("thinking")) {
      if (auto t = cb["thinking"]; t.has_text()) {
        ev.kind = Kind::thinking;
        ev.text = t.text();
        sink.on_event(ev);
      }
    } else if (bt.equals("redacted_thinking")) {
      ev.kind = Kind::redacted;
      ev.text = cb["data"].text();
      sink.on_event(ev);
    }
  } else if (is("content_block_delta")) {
    std::int64_t raw_index = o["index"].integer_or(-1);
    JsonView::Node d = o["delta"];
    if (!d.is_object()) return true;
    JsonView::Node dt = d["type"];
    if (dt.equals("text_delta")) {
      ev.kind = Kind::text;
      ev.text = d["text"].text();
    } else if (dt.equals("thinking_delta")) {
      ev.kind = Kind::thinking;
      ev.text = d["thinking"].text();
    } else if (dt.equals("signature_delta")) {
      ev.kind = Kind::signature;
      ev.text = d["signature"].text();
    } else if (dt.equals("input_json_delta")) {
      int tool = raw_index >= 0 && static_cast<std::uint64_t>(raw_index) < block_tool_.size()
                     ? block_tool_[static_cast<std::size_t>(raw_index)]
                     : -1;
      ev.text = d["partial_json"].text();
      if (tool == -2) {
        ev.kind = Kind::text;
      } else {
        ev.kind = Kind::tool_args;
        ev.index = tool < 0 ? 0 : tool;
      }
    } else {
      return true;  // citations and future delta types
    }
    if (!ev.text.empty()) sink.on_event(ev);
  } else if (is("message_delta")) {
    if (JsonView::Node d = o["delta"]; d.is_object()) {
      if (auto sr = d["stop_reason"]; sr.has_text()) {
        finish_ = finish_from_stop_reason(sr.text());
        if (finish_ == FinishReason::tool_calls && tool_count_ == 0 && !encoded_.json_tool.empty())
          finish_ = FinishReason::stop;
        stop_sequence_ = d["stop_sequence"].text();
        ev.kind = Kind::finish;
        ev.finish = finish_;
        ev.stop_sequence = stop_sequence_;
        sink.on_event(ev);
      }
    }
    if (auto u = o["usage"]; u.is_object()) read_usage_view(u, usage_);
  } else if (is("message_stop")) {
    stopped_ = true;
    ev.kind = Kind::usage;
    ev.usage = usage_;
    sink.on_event(ev);
  } else if (is("error")) {
    JsonView::Node e = o["error"];
    std::string et = e["type"].text();
    std::string message = e ? e["message"].text() : std::string("The upstream stream failed.");
    ev.kind = Kind::error;
    core::ErrorKind kind = et == "overloaded_error" ? core::ErrorKind::unavailable
                           : et == "rate_limit_error" ? core::ErrorKind::rate_limited
                                                      : core::ErrorKind::upstream_connect;
    ev.error = ApiError::make(kind, message, {}, et.empty() ? std::string("upstream_error") : et);
    stopped_ = true;
    sink.on_event(ev);
  }
  return true;  // ping and unknown events
}

void EventEncoder::event(std::string_view name, const std::string& data) {
  out_ += "event: ";
  out_ += name;
  out_ += "\ndata: ";
  out_ += data;
  out_ += "\n\n";
}

void EventEncoder::start_message(const core::StreamEvent* start) {
  if (started_) return;
  started_ = true;
  std::string data = R"({"type":"message_start","message":{"id":)";
  core::append_json_string(data, start && !start->id.empty() ? start->id : std::string("msg_switchyard"));
  data += R"(,"type":"message","role":"assistant","model":)";
  core::append_json_string(data, start && !start->model.empty() ? start->model : model_);
  data += R"(,"content":[],"stop_reason":null,"stop_sequence":null,"usage":)";
  core::TokenUsage u = start ? start->usage : core::TokenUsage{};
  if (start && start->usage.known) usage_ = start->usage;
  append_usage(data, u);
  data += "}}";
  event("message_start", data);
}

void EventEncoder::close_block() {
  if (open_ == Open::none) return;
  std::string data = R"({"type":"content_block_stop","index":)" + std::to_string(block_index_) + "}";
  event("content_block_stop", data);
  open_ = Open::none;
  open_tool_ = -1;
}

void EventEncoder::open_block(Open kind, const core::StreamEvent* tool) {
  close_block();
  ++block_index_;
  open_ = kind;
  std::string data = R"({"type":"content_block_start","index":)" + std::to_string(block_index_) +
                     R"(,"content_block":)";
  if (kind == Open::text) {
    data += R"({"type":"text","text":""})";
  } else if (kind == Open::thinking) {
    data += R"({"type":"thinking","thinking":"","signature":""})";
  } else {
    open_tool_ = tool->index;
    data += R"({"type":"tool_use","id":)";
    core::append_json_string(data, id_with_signature(tool->id, tool->text));  // text: a Gemini signature
    data += R"(,"name":)";
    core::append_json_string(data, tool->name);
    data += R"(,"input":{}})";
  }
  data += '}';
  event("content_block_start", data);
}

void EventEncoder::on_event(const core::StreamEvent& ev) {
  using Kind = core::StreamEvent::Kind;
  if (ended_) return;
  if (ev.kind == Kind::start) {
    start_message(&ev);
    return;
  }
  start_message(nullptr);
  auto delta = [&](std::string_view type, std::string_view field, const std::string& text) {
    std::string data = R"({"type":"content_block_delta","index":)" + std::to_string(block_index_) +
                       R"(,"delta":{"type":")";
    data += type;
    data += R"(",")";
    data += field;
    data += R"(":)";
    core::append_json_string(data, text);
    data += "}}";
    event("content_block_delta", data);
  };
  switch (ev.kind) {
    case Kind::text:
      if (ev.text.empty()) return;
      if (open_ != Open::text) open_block(Open::text, nullptr);
      delta("text_delta", "text", ev.text);
      break;
    case Kind::thinking:
      if (ev.text.empty()) return;
      if (open_ != Open::thinking) open_block(Open::thinking, nullptr);
      delta("thinking_delta", "thinking", ev.text);
      break;
    case Kind::signature:
      if (open_ != Open::thinking) open_block(Open::thinking, nullptr);
      delta("signature_delta", "signature", ev.text);
      break;
    case Kind::redacted: {
      close_block();
      ++block_index_;
      std::string data = R"({"type":"content_block_start","index":)" + std::to_string(block_index_) +
                         R"(,"content_block":{"type":"redacted_thinking","data":)";
      core::append_json_string(data, ev.text);
      data += "}}";
      event("content_block_start", data);
      open_ = Open::text;  // closed by the next block or the end
      break;
    }
    case Kind::tool_start:
      open_block(Open::tool, &ev);
      break;
    case Kind::tool_args:
      if (ev.text.empty()) return;
      // OpenAI-dialect upstreams stream one call after another; arguments always belong to the
      // open block.
      if (open_ != Open::tool) {
        core::StreamEvent synthetic;
        synthetic.index = ev.index;
        synthetic.id = "toolu_" + std::to_string(ev.index);
        open_block(Open::tool, &synthetic);
      }
      delta("input_json_delta", "partial_json", ev.text);
      break;
    case Kind::finish:
      finish_ = ev.finish;
      break;
    case Kind::usage:
      usage_ = ev.usage;
      break;
    case Kind::error: {
      close_block();
      event("error", error_body(ev.error));
      ended_ = true;
      break;
    }
    case Kind::start: break;
  }
}

void EventEncoder::end() {
  if (ended_) return;
  start_message(nullptr);
  close_block();
  ended_ = true;
  std::string data = R"({"type":"message_delta","delta":{"stop_reason":")";
  data += stop_reason_name(finish_ == FinishReason::none ? FinishReason::stop : finish_, false);
  data += R"(","stop_sequence":null},"usage":)";
  append_usage(data, usage_);
  data += '}';
  event("message_delta", data);
  event("message_stop", R"({"type":"message_stop"})");
}

std::string_view error_type(core::ErrorKind kind, int status) {
  switch (status) {
    case 400: return "invalid_request_error";
    case 401: return "authentication_error";
    case 402: return "billing_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 503:
    case 529: return "overloaded_error";
    case 504: return "timeout_error";
    default: break;
  }
  if (kind == core::ErrorKind::invalid_request || status / 100 == 4) return "invalid_request_error";
  return "api_error";
}

std::string error_body(const ApiError& e, std::string_view request_id) {
  std::string out = R"({"type":"error","error":{"type":)";
  core::append_json_string(out, error_type(e.kind, e.status));
  out += R"(,"message":)";
  core::append_json_string(out, e.message);
  out += '}';
  if (!request_id.empty()) {
    out += R"(,"request_id":)";
    core::append_json_string(out, request_id);
  }
  out += '}';
  return out;
}

}  // namespace switchyard::dialects::anthropic
