#include "dialects/responses/translate.hpp"

#include <ctime>

#include "dialects/call_id.hpp"
#include "dialects/json_util.hpp"
#include "dialects/json_view.hpp"
#include "dialects/json_writer.hpp"

namespace switchyard::dialects::responses {

using core::ApiError;
using core::Block;
using core::ChatRequest;

namespace {

/// Request members with nothing to carry to another provider: what they ask for is the
/// gateway's business (it keeps no state: `store` is moot) or bookkeeping.
bool is_ignored(std::string_view key) {
  static constexpr std::string_view kIgnored[] = {"store", "metadata", "include", "truncation", "service_tier",
                                                  "prompt_cache_key", "safety_identifier", "stream_options",
                                                  "user", "top_logprobs", "text", "reasoning", "max_tool_calls",
                                                  "client_metadata"};
  for (auto k : kIgnored)
    if (k == key) return true;
  return false;
}

/// The text of a content given as a string or as parts (`input_text`, `output_text`).
std::optional<ApiError> read_parts(const json::value& content, const std::string& path, std::vector<Block>& out,
                                   bool& unsupported, std::string& unsupported_name) {
  if (content.is_string()) {
    out.push_back(Block::make_text(std::string(content.get_string())));
    return std::nullopt;
  }
  if (!content.is_array()) return bad_request(path + " must be a string or an array of parts", path);
  std::size_t i = 0;
  for (const json::value& part : content.get_array()) {
    const std::string part_path = path + "[" + std::to_string(i++) + "]";
    if (!part.is_object()) return bad_request(part_path + " must be an object", part_path);
    const json::object& p = part.get_object();
    const std::string_view type = str_or(p, "type");
    if (type == "input_text" || type == "output_text" || type == "text") {
      out.push_back(Block::make_text(std::string(str_or(p, "text"))));
    } else if (type == "refusal") {
      out.push_back(Block::make_text(std::string(str_or(p, "refusal"))));
    } else if (type == "input_image") {
      const std::string_view url = str_or(p, "image_url");
      if (url.empty()) {  // a file_id: the file lives at OpenAI
        unsupported = true;
        unsupported_name = "input_image.file_id";
        continue;
      }
      Block b;
      b.type = Block::Type::image;
      if (url.starts_with("data:")) {
        // data:<media type>;base64,<data>
        const auto semi = url.find(';'), comma = url.find(',');
        if (semi == std::string_view::npos || comma == std::string_view::npos || comma < semi)
          return bad_request(part_path + ".image_url is not a valid data URL", part_path + ".image_url");
        b.media_type = std::string(url.substr(5, semi - 5));
        b.data = std::string(url.substr(comma + 1));
      } else {
        b.url = std::string(url);
      }
      out.push_back(std::move(b));
    } else {
      unsupported = true;
      unsupported_name = std::string(type.empty() ? "content part without a type" : type);
    }
  }
  return std::nullopt;
}

void add(ChatRequest& r, core::Role role, Block b) {
  if (r.messages.empty() || r.messages.back().role != role) r.messages.push_back({role, {}});
  r.messages.back().content.push_back(std::move(b));
}

std::optional<ApiError> read_input(const json::value& input, ChatRequest& r) {
  if (input.is_string()) {
    add(r, core::Role::user, Block::make_text(std::string(input.get_string())));
    return std::nullopt;
  }
  if (!input.is_array()) return bad_request("input must be a string or an array of items", "input");
  std::size_t i = 0;
  for (const json::value& v : input.get_array()) {
    const std::string path = "input[" + std::to_string(i++) + "]";
    if (!v.is_object()) return bad_request(path + " must be an object", path);
    const json::object& item = v.get_object();
    std::string_view type = str_or(item, "type");
    if (type.empty() && item.contains("role")) type = "message";
    if (type == "message") {
      const std::string_view role = str_or(item, "role");
      const json::value* content = member(item, "content");
      if (!content) return bad_request(path + ".content is required", path + ".content");
      std::vector<Block> blocks;
      bool unsupported = false;
      std::string name;
      if (auto e = read_parts(*content, path + ".content", blocks, unsupported, name)) return e;
      if (unsupported) r.extra[std::string(name)] = true;
      if (role == "system" || role == "developer") {
        for (Block& b : blocks)
          if (b.type == Block::Type::text) r.system.push_back(std::move(b));
      } else if (role == "user" || role == "assistant") {
        for (Block& b : blocks) add(r, role == "user" ? core::Role::user : core::Role::assistant, std::move(b));
      } else {
        return bad_request(path + ".role must be user, assistant, system or developer", path + ".role");
      }
    } else if (type == "function_call") {
      Block b;
      b.type = Block::Type::tool_use;
      b.id = std::string(str_or(item, "call_id"));
      b.signature = take_signature(b.id);  // a Gemini call's (call_id.hpp)
      b.name = std::string(str_or(item, "name"));
      b.arguments = std::string(str_or(item, "arguments", "{}"));
      if (b.id.empty() || b.name.empty())
        return bad_request(path + ": a function_call needs call_id and name", path);
      add(r, core::Role::assistant, std::move(b));
    } else if (type == "function_call_output") {
      Block b;
      b.type = Block::Type::tool_result;
      b.id = std::string(str_or(item, "call_id"));
      take_signature(b.id);
      if (b.id.empty()) return bad_request(path + ".call_id is required", path + ".call_id");
      const json::value* output = member(item, "output");
      if (!output) return bad_request(path + ".output is required", path + ".output");
      bool unsupported = false;
      std::string name;
      if (auto e = read_parts(*output, path + ".output", b.content, unsupported, name)) return e;
      if (unsupported) r.extra[std::string(name)] = true;
      add(r, core::Role::user, std::move(b));
    } else if (type == "reasoning") {
      // Another provider's thinking comes back with its signature in encrypted_content; OpenAI's
      // own encrypted reasoning means nothing elsewhere and is not sent (only to OpenAI, which
      // gets the client's body as it is).
      Block b;
      b.type = Block::Type::thinking;
      if (const json::array* summary = array_at(item, "summary"))
        for (const json::value& s : *summary)
          if (s.is_object()) b.text += str_or(s.get_object(), "text");
      const std::string_view sealed = str_or(item, "encrypted_content");
      if (!sealed.starts_with(kSignaturePrefix)) continue;
      b.signature = std::string(sealed.substr(kSignaturePrefix.size()));
      add(r, core::Role::assistant, std::move(b));
    } else {
      // Hosted tools' calls and results, item references, MCP, shell and computer items: only
      // OpenAI can take them.
      r.extra[std::string(type.empty() ? "input item without a type" : type)] = true;
    }
  }
  return std::nullopt;
}

std::optional<ApiError> read_function(const json::object& t, const std::string& path, ChatRequest& r) {
  core::Tool tool;
  tool.name = std::string(str_or(t, "name"));
  if (tool.name.empty()) return bad_request(path + ".name is required", path + ".name");
  tool.description = std::string(str_or(t, "description"));
  if (const json::value* p = member(t, "parameters"); p && p->is_object()) tool.parameters = *p;
  if (const json::value* s = member(t, "strict"); s && s->is_bool()) tool.strict = s->get_bool();
  r.tools.push_back(std::move(tool));
  return std::nullopt;
}

std::optional<ApiError> read_tools(const json::object& o, ChatRequest& r) {
  if (const json::array* tools = array_at(o, "tools")) {
    std::size_t i = 0;
    for (const json::value& v : *tools) {
      const std::string path = "tools[" + std::to_string(i++) + "]";
      if (!v.is_object()) return bad_request(path + " must be an object", path);
      const json::object& t = v.get_object();
      const std::string_view type = str_or(t, "type");
      if (type == "namespace") {
        // A group of functions (Codex's multi_agent_v1): offered to the model as the plain
        // functions it holds; a call comes back under the function's own name.
        if (const json::array* inner = array_at(t, "tools")) {
          for (const json::value& f : *inner) {
            if (f.is_object() && str_or(f.get_object(), "type") == "function") {
              if (auto e = read_function(f.get_object(), path + ".tools", r)) return e;
            } else {
              r.extra[std::string(f.is_object() ? str_or(f.get_object(), "type", "tool without a type") : "tool")] = true;
            }
          }
        }
        continue;
      }
      if (type != "function") {
        r.extra[std::string(type.empty() ? "tool without a type" : type)] = true;  // a hosted tool
        continue;
      }
      if (auto e = read_function(t, path, r)) return e;
    }
  }
  if (const json::value* tc = member(o, "tool_choice")) {
    using Mode = core::ToolChoice::Mode;
    if (tc->is_string()) {
      const std::string_view s = tc->get_string();
      if (s == "auto") r.tool_choice.mode = Mode::auto_;
      else if (s == "none") r.tool_choice.mode = Mode::none;
      else if (s == "required") r.tool_choice.mode = Mode::required;
      else return bad_request("tool_choice must be auto, none, required or a function", "tool_choice");
    } else if (tc->is_object() && str_or(tc->get_object(), "type") == "function") {
      r.tool_choice.mode = Mode::named;
      r.tool_choice.name = std::string(str_or(tc->get_object(), "name"));
    } else if (!tc->is_null()) {
      r.extra["tool_choice"] = *tc;  // allowed_tools, a hosted tool
    }
  }
  return std::nullopt;
}

void write_usage(JsonWriter& w, const core::TokenUsage& u) {
  w.key("usage").begin_object();
  w.key("input_tokens").integer(u.input);
  w.key("input_tokens_details").begin_object().key("cached_tokens").integer(u.cache_read).end_object();
  w.key("output_tokens").integer(u.output);
  w.key("output_tokens_details").begin_object().key("reasoning_tokens").integer(u.reasoning).end_object();
  w.key("total_tokens").integer(u.input + u.output);
  w.end_object();
}

std::string_view incomplete_reason(core::FinishReason f) {
  if (f == core::FinishReason::length) return "max_output_tokens";
  if (f == core::FinishReason::content_filter) return "content_filter";
  return {};
}

/// An id of the Responses API's shape from an upstream's (`chatcmpl-…`, `msg_…`): `prefix_…`.
std::string item_id(std::string_view prefix, std::string_view base, std::size_t n) {
  std::string id(prefix);
  id += '_';
  for (char c : base)
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) id += c;
  id += '_';
  id += std::to_string(n);
  return id;
}

/// The Response's id from the upstream's: `resp_…`.
std::string response_id(std::string_view base) {
  std::string id = item_id("resp", base, 0);
  id.resize(id.size() - 2);  // no item number
  return id;
}

void write_message(JsonWriter& w, std::string_view id, std::string_view text, std::string_view status) {
  w.begin_object().key("type").string("message").key("id").string(id).key("status").string(status);
  w.key("role").string("assistant").key("content").begin_array();
  if (status == "completed" || !text.empty())
    w.begin_object().key("type").string("output_text").key("text").string(text)
        .key("annotations").begin_array().end_array().end_object();
  w.end_array().end_object();
}

void write_reasoning(JsonWriter& w, std::string_view id, std::string_view text, std::string_view signature) {
  w.begin_object().key("type").string("reasoning").key("id").string(id).key("summary").begin_array();
  if (!text.empty()) w.begin_object().key("type").string("summary_text").key("text").string(text).end_object();
  w.end_array();
  if (!signature.empty()) w.key("encrypted_content").string(std::string(kSignaturePrefix) + std::string(signature));
  w.end_object();
}

void write_call(JsonWriter& w, std::string_view id, std::string_view call_id, std::string_view name,
                std::string_view arguments, std::string_view status) {
  w.begin_object().key("type").string("function_call").key("id").string(id).key("call_id").string(call_id);
  w.key("name").string(name).key("arguments").string(arguments).key("status").string(status).end_object();
}

/// The members every Response object has, around its output.
void write_head(JsonWriter& w, std::string_view id, std::int64_t created, std::string_view status,
                std::string_view model) {
  w.key("id").string(id).key("object").string("response").key("created_at").integer(created);
  w.key("status").string(status).key("model").string(model);
}

}  // namespace

std::variant<ChatRequest, ApiError> decode_request(std::string_view body, std::size_t max_depth) {
  auto parsed = parse_json(body, max_depth + 1);
  if (!parsed || !parsed->is_object())
    return bad_request("We could not parse the JSON body of your request.", {}, "invalid_json");
  const json::object& o = parsed->get_object();
  ChatRequest r;
  r.model = std::string(str_or(o, "model"));
  if (r.model.empty()) return bad_request("Missing required parameter: 'model'.", "model", "missing_required_parameter");
  if (const json::value* ins = member(o, "instructions"); ins && ins->is_string() && !ins->get_string().empty())
    r.system.push_back(Block::make_text(std::string(ins->get_string())));
  const json::value* input = member(o, "input");
  if (!input) return bad_request("Missing required parameter: 'input'.", "input", "missing_required_parameter");
  if (auto e = read_input(*input, r)) return *e;
  if (auto e = read_tools(o, r)) return *e;
  if (const json::value* v = member(o, "max_output_tokens"); v && !v->is_null()) {
    r.max_tokens = int_of(v);
    if (!r.max_tokens || *r.max_tokens < 1)
      return bad_request("max_output_tokens must be a positive integer", "max_output_tokens");
  }
  if (const json::value* v = member(o, "temperature"); v && !v->is_null()) {
    r.temperature = number_of(v);
    if (!r.temperature) return bad_request("temperature must be a number", "temperature");
  }
  if (const json::value* v = member(o, "top_p"); v && !v->is_null()) {
    r.top_p = number_of(v);
    if (!r.top_p) return bad_request("top_p must be a number", "top_p");
  }
  if (const json::value* v = member(o, "parallel_tool_calls"); v && v->is_bool()) r.parallel_tool_calls = v->get_bool();
  if (const json::value* v = member(o, "stream"); v && v->is_bool()) r.stream = v->get_bool();
  r.include_usage = true;
  if (const json::object* reasoning = object_at(o, "reasoning")) r.reasoning_effort = std::string(str_or(*reasoning, "effort"));
  if (const json::object* text = object_at(o, "text"))
    if (const json::object* format = object_at(*text, "format")) {
      using Kind = core::ResponseFormat::Kind;
      const std::string_view type = str_or(*format, "type");
      if (type == "text") {
        r.response_format.kind = Kind::text;
      } else if (type == "json_object") {
        r.response_format.kind = Kind::json_object;
      } else if (type == "json_schema") {
        r.response_format.kind = Kind::json_schema;
        r.response_format.name = std::string(str_or(*format, "name", "response"));
        r.response_format.description = std::string(str_or(*format, "description"));
        if (const json::value* s = member(*format, "schema")) r.response_format.schema = *s;
        if (const json::value* s = member(*format, "strict"); s && s->is_bool()) r.response_format.strict = s->get_bool();
      } else {
        return bad_request("text.format.type must be text, json_object or json_schema", "text.format.type");
      }
    }
  r.user = std::string(str_or(o, "user"));
  for (const auto& kv : o) {
    const std::string_view key = kv.key();
    if (key == "model" || key == "input" || key == "instructions" || key == "tools" || key == "tool_choice" ||
        key == "max_output_tokens" || key == "temperature" || key == "top_p" || key == "parallel_tool_calls" ||
        key == "stream" || is_ignored(key))
      continue;
    // previous_response_id (the conversation is stored at OpenAI), background, prompt, ...
    if (!kv.value().is_null()) r.extra[key] = kv.value();
  }
  return r;
}

void encode_response(const core::ChatResponse& r, std::string& out) {
  JsonWriter w(out);
  const std::int64_t created = r.created ? r.created : static_cast<std::int64_t>(std::time(nullptr));
  const std::string_view reason = incomplete_reason(r.finish);
  w.begin_object();
  write_head(w, response_id(r.id), created, reason.empty() ? "completed" : "incomplete",
             r.model);
  w.key("output").begin_array();
  std::size_t n = 0;
  for (std::size_t i = 0; i < r.content.size(); ++i) {
    const Block& b = r.content[i];
    if (b.type == Block::Type::text) {
      // Consecutive text blocks are one message.
      std::string text = b.text;
      while (i + 1 < r.content.size() && r.content[i + 1].type == Block::Type::text) text += r.content[++i].text;
      write_message(w, item_id("msg", r.id, n++), text, "completed");
    } else if (b.type == Block::Type::thinking || b.type == Block::Type::redacted_thinking) {
      write_reasoning(w, item_id("rs", r.id, n++), b.type == Block::Type::thinking ? b.text : "",
                      b.type == Block::Type::thinking ? b.signature : b.text);
    } else if (b.type == Block::Type::tool_use) {
      write_call(w, item_id("fc", r.id, n++), id_with_signature(b.id, b.signature), b.name,
                 b.arguments.empty() ? "{}" : b.arguments, "completed");
    }
  }
  w.end_array();
  w.key("error").null();
  w.key("incomplete_details");
  if (reason.empty()) w.null();
  else w.begin_object().key("reason").string(reason).end_object();
  w.key("parallel_tool_calls").boolean(true).key("previous_response_id").null().key("store").boolean(false);
  write_usage(w, r.usage);
  w.end_object();
}

void probe_usage(std::string_view text, core::TokenUsage& usage) {
  JsonView view;
  if (!view.parse(text) || !view.root().is_object()) return;
  JsonView::Node u = view.root()["usage"];
  if (!u.is_object()) u = view.root()["response"]["usage"];
  if (!u.is_object()) return;
  usage = {};
  usage.known = true;
  usage.input = u["input_tokens"].integer_or(0);
  usage.output = u["output_tokens"].integer_or(0);
  usage.cache_read = u["input_tokens_details"]["cached_tokens"].integer_or(0);
  usage.reasoning = u["output_tokens_details"]["reasoning_tokens"].integer_or(0);
}

bool is_terminal_event(std::string_view type) {
  return type == "response.completed" || type == "response.incomplete" || type == "response.failed";
}

bool is_error_event(std::string_view type) { return type == "error" || type == "response.failed"; }

// ---- streams ------------------------------------------------------------------------------------

void EventEncoder::emit(std::string_view type, const std::string& fields) {
  out_ += "event: ";
  out_ += type;
  out_ += "\ndata: {\"type\":\"";
  out_ += type;
  out_ += "\",\"sequence_number\":";
  out_ += std::to_string(sequence_++);
  if (!fields.empty()) {
    out_ += ',';
    out_ += fields;
  }
  out_ += "}\n\n";
}

void EventEncoder::write_done(JsonWriter& w, const Item& it) {
  switch (it.kind) {
    case Item::Kind::message: write_message(w, it.id, it.text, "completed"); break;
    case Item::Kind::reasoning: write_reasoning(w, it.id, it.text, it.signature); break;
    case Item::Kind::function_call:
      write_call(w, it.id, it.call_id, it.name, it.text.empty() ? "{}" : it.text, "completed");
      break;
  }
}

std::string EventEncoder::response_json(std::string_view status, const core::ApiError* error) const {
  std::string s;
  JsonWriter w(s);
  w.begin_object();
  write_head(w, id_, created_, status, model_);
  w.key("output").begin_array();
  if (status != "in_progress")
    for (const Item& it : items_) write_done(w, it);
  w.end_array();
  w.key("error");
  if (error)
    w.begin_object().key("code").string(error->code.empty() ? "server_error" : error->code)
        .key("message").string(error->message).end_object();
  else
    w.null();
  const std::string_view reason = incomplete_reason(finish_);
  w.key("incomplete_details");
  if (status == "incomplete") w.begin_object().key("reason").string(reason).end_object();
  else w.null();
  w.key("parallel_tool_calls").boolean(true).key("previous_response_id").null().key("store").boolean(false);
  if (status == "in_progress") w.key("usage").null();
  else write_usage(w, usage_);
  w.end_object();
  return s;
}

void EventEncoder::start(const core::StreamEvent* start) {
  if (started_) return;
  started_ = true;
  base_ = start ? start->id : std::string("stream");
  id_ = response_id(base_);
  created_ = start && start->created ? start->created : static_cast<std::int64_t>(std::time(nullptr));
  if (start && !start->model.empty()) model_ = start->model;
  const std::string response = "\"response\":" + response_json("in_progress", nullptr);
  emit("response.created", response);
  emit("response.in_progress", response);
}

EventEncoder::Item& EventEncoder::open(Item::Kind kind, const core::StreamEvent* tool) {
  start(nullptr);
  if (open_ && items_.back().kind == kind && kind != Item::Kind::function_call) return items_.back();
  close();
  Item it;
  it.kind = kind;
  const std::size_t n = items_.size();
  std::string s = "\"output_index\":" + std::to_string(n) + ",\"item\":";
  JsonWriter w(s);
  switch (kind) {
    case Item::Kind::message:
      it.id = item_id("msg", base_, n);
      write_message(w, it.id, "", "in_progress");
      break;
    case Item::Kind::reasoning:
      it.id = item_id("rs", base_, n);
      write_reasoning(w, it.id, "", "");
      break;
    case Item::Kind::function_call:
      it.id = item_id("fc", base_, n);
      it.call_id = tool ? id_with_signature(tool->id, tool->text) : std::string();  // text: a Gemini signature
      it.name = tool ? tool->name : std::string();
      write_call(w, it.id, it.call_id, it.name, "", "in_progress");
      break;
  }
  emit("response.output_item.added", s);
  items_.push_back(std::move(it));
  open_ = true;
  Item& added = items_.back();
  const std::string where = "\"item_id\":\"" + added.id + "\",\"output_index\":" + std::to_string(n);
  if (kind == Item::Kind::message)
    emit("response.content_part.added",
         where + R"(,"content_index":0,"part":{"type":"output_text","text":"","annotations":[]})");
  else if (kind == Item::Kind::reasoning)
    emit("response.reasoning_summary_part.added", where + R"(,"summary_index":0,"part":{"type":"summary_text","text":""})");
  return added;
}

void EventEncoder::close() {
  if (!open_) return;
  open_ = false;
  const Item& it = items_.back();
  const std::size_t n = items_.size() - 1;
  const std::string where = "\"item_id\":\"" + it.id + "\",\"output_index\":" + std::to_string(n);
  std::string text;
  core::append_json_string(text, it.text);
  switch (it.kind) {
    case Item::Kind::message:
      emit("response.output_text.done", where + ",\"content_index\":0,\"text\":" + text);
      emit("response.content_part.done",
           where + ",\"content_index\":0,\"part\":{\"type\":\"output_text\",\"text\":" + text + ",\"annotations\":[]}");
      break;
    case Item::Kind::reasoning:
      emit("response.reasoning_summary_text.done", where + ",\"summary_index\":0,\"text\":" + text);
      emit("response.reasoning_summary_part.done",
           where + ",\"summary_index\":0,\"part\":{\"type\":\"summary_text\",\"text\":" + text + "}");
      break;
    case Item::Kind::function_call: {
      std::string args;
      core::append_json_string(args, it.text.empty() ? std::string_view("{}") : std::string_view(it.text));
      emit("response.function_call_arguments.done", where + ",\"arguments\":" + args);
      break;
    }
  }
  std::string s = "\"output_index\":" + std::to_string(n) + ",\"item\":";
  JsonWriter w(s);
  write_done(w, it);
  emit("response.output_item.done", s);
}

void EventEncoder::on_event(const core::StreamEvent& e) {
  using Kind = core::StreamEvent::Kind;
  if (ended_) return;
  auto delta = [&](std::string_view type, const Item& it, std::string_view index_field) {
    std::string fields = "\"item_id\":\"" + it.id + "\",\"output_index\":" + std::to_string(items_.size() - 1);
    if (!index_field.empty()) {
      fields += ",\"";
      fields += index_field;
      fields += "\":0";
    }
    fields += ",\"delta\":";
    core::append_json_string(fields, e.text);
    emit(type, fields);
  };
  switch (e.kind) {
    case Kind::start:
      start(&e);
      if (e.usage.known) usage_ = e.usage;
      break;
    case Kind::text: {
      if (e.text.empty()) break;
      Item& it = open(Item::Kind::message, nullptr);
      it.text += e.text;
      delta("response.output_text.delta", it, "content_index");
      break;
    }
    case Kind::thinking: {
      if (e.text.empty()) break;
      Item& it = open(Item::Kind::reasoning, nullptr);
      it.text += e.text;
      delta("response.reasoning_summary_text.delta", it, "summary_index");
      break;
    }
    case Kind::signature:
    case Kind::redacted: {
      Item& it = open(Item::Kind::reasoning, nullptr);
      it.signature += e.text;
      break;
    }
    case Kind::tool_start: open(Item::Kind::function_call, &e); break;
    case Kind::tool_args: {
      if (!open_ || items_.back().kind != Item::Kind::function_call) {
        core::StreamEvent call = e;  // arguments without their start: its text is no signature
        call.text.clear();
        open(Item::Kind::function_call, &call);
      }
      Item& it = items_.back();
      it.text += e.text;
      delta("response.function_call_arguments.delta", it, {});
      break;
    }
    case Kind::finish: finish_ = e.finish; break;
    case Kind::usage: usage_ = e.usage; break;
    case Kind::error: {
      start(nullptr);
      close();
      emit("response.failed", "\"response\":" + response_json("failed", &e.error));
      ended_ = true;
      break;
    }
  }
}

void EventEncoder::end() {
  if (ended_) return;
  start(nullptr);
  close();
  ended_ = true;
  const bool incomplete = !incomplete_reason(finish_).empty();
  const std::string_view status = incomplete ? "incomplete" : "completed";
  emit(incomplete ? "response.incomplete" : "response.completed", "\"response\":" + response_json(status, nullptr));
}

}  // namespace switchyard::dialects::responses
