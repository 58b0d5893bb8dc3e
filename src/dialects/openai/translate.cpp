#include "dialects/openai/translate.hpp"

#include <ctime>
#include <map>

#include "dialects/json_util.hpp"
#include "dialects/json_view.hpp"

namespace switchyard::dialects::openai {

using core::Block;
using core::ChatRequest;
using core::FinishReason;
using core::Message;
using core::Role;

namespace {

using Error = core::ApiError;

/// `data:<media type>;base64,<data>` → media type and data.
bool split_data_url(std::string_view url, std::string& media_type, std::string& data) {
  if (url.substr(0, 5) != "data:") return false;
  std::size_t comma = url.find(',');
  if (comma == std::string_view::npos) return false;
  std::string_view meta = url.substr(5, comma - 5);
  std::size_t b64 = meta.find(";base64");
  if (b64 == std::string_view::npos) return false;
  media_type = std::string(meta.substr(0, b64));
  data = std::string(url.substr(comma + 1));
  return true;
}

using Node = JsonView::Node;

/// A sub-document kept whole in the canonical form (schemas, cache_control, unknown members).
json::value to_value(const Node& n) {
  boost::system::error_code ec;
  json::value v = json::parse(n.raw(), ec);
  return ec ? json::value(nullptr) : v;
}

/// Content (string, or array of parts) → blocks. `allow_images` for user turns.
std::optional<Error> decode_content(const Node& content, std::vector<Block>& out,
                                    const std::string& path, bool allow_images) {
  if (!content || content.is_null()) return std::nullopt;
  if (content.is_string()) {
    out.push_back(Block::make_text(content.text()));
    return std::nullopt;
  }
  if (!content.is_array()) return bad_request(path + " must be a string or an array of parts", path);
  std::optional<Error> error;
  std::size_t i = 0;
  content.each([&](const Node& part) {
    if (error) return;
    std::string part_path = path + "[" + std::to_string(i++) + "]";
    if (!part.is_object()) {
      error = bad_request(part_path + " must be an object", part_path);
      return;
    }
    Node type = part["type"];
    Block b;
    if (type.equals("text")) {
      Node text = part["text"];
      if (!text.is_string()) {
        error = bad_request(part_path + ".text must be a string", part_path + ".text");
        return;
      }
      b.text = text.text();
    } else if (type.equals("image_url") && allow_images) {
      Node image = part["image_url"];
      std::string url = image.is_object() ? image["url"].text() : image.text();
      if (url.empty()) {
        error = bad_request(part_path + ".image_url.url must be a string", part_path + ".image_url");
        return;
      }
      b.type = Block::Type::image;
      if (!split_data_url(url, b.media_type, b.data)) b.url = std::move(url);
    } else {
      error = bad_request("Content part type \"" + type.text() + "\" at " + part_path +
                              " cannot be translated for this deployment's provider.",
                          part_path + ".type", "unsupported_content");
      return;
    }
    if (Node cc = part["cache_control"]) b.cache_control = to_value(cc);
    out.push_back(std::move(b));
  });
  return error;
}

Message& user_turn(ChatRequest& r) {
  if (r.messages.empty() || r.messages.back().role != Role::user) r.messages.push_back({Role::user, {}});
  return r.messages.back();
}

std::optional<Error> decode_tools(const Node& body, ChatRequest& r) {
  std::optional<Error> error;
  if (Node tools = body["tools"]; tools.is_array()) {
    std::size_t i = 0;
    tools.each([&](const Node& t) {
      if (error) return;
      std::string path = "tools[" + std::to_string(i++) + "]";
      Node fn = t["function"];
      if (!fn.is_object() || !fn["name"].has_text()) {
        error = bad_request(path + ".function.name is required", path + ".function.name");
        return;
      }
      core::Tool tool;
      tool.name = fn["name"].text();
      tool.description = fn["description"].text();
      if (Node p = fn["parameters"]) tool.parameters = to_value(p);
      if (Node st = fn["strict"]; st.is_bool()) tool.strict = st.is_true();
      if (Node cc = t["cache_control"]) tool.cache_control = to_value(cc);
      r.tools.push_back(std::move(tool));
    });
  } else if (Node functions = body["functions"]; functions.is_array()) {
    functions.each([&](const Node& f) {
      if (error) return;
      if (!f["name"].has_text()) {
        error = bad_request("functions[].name is required", "functions");
        return;
      }
      core::Tool tool;
      tool.name = f["name"].text();
      tool.description = f["description"].text();
      if (Node p = f["parameters"]) tool.parameters = to_value(p);
      r.tools.push_back(std::move(tool));
    });
  }
  if (error) return error;
  Node choice = body["tool_choice"];
  if (!choice) choice = body["function_call"];
  if (choice) {
    using Mode = core::ToolChoice::Mode;
    if (choice.is_string()) {
      if (choice.equals("auto")) r.tool_choice.mode = Mode::auto_;
      else if (choice.equals("none")) r.tool_choice.mode = Mode::none;
      else if (choice.equals("required")) r.tool_choice.mode = Mode::required;
      else return bad_request("tool_choice must be auto, none, required or a named function", "tool_choice");
    } else if (choice.is_object()) {
      std::string name = choice["name"].text();
      if (Node fn = choice["function"]; fn.is_object()) name = fn["name"].text();
      if (name.empty()) return bad_request("tool_choice.function.name is required", "tool_choice");
      r.tool_choice.mode = Mode::named;
      r.tool_choice.name = std::move(name);
    } else if (!choice.is_null()) {
      return bad_request("tool_choice must be a string or an object", "tool_choice");
    }
  }
  if (Node p = body["parallel_tool_calls"]; p.is_bool()) r.parallel_tool_calls = p.is_true();
  return std::nullopt;
}

std::optional<Error> decode_message(const Node& m, const std::string& path, ChatRequest& r,
                                    std::vector<std::pair<std::string, std::string>>& open_function_calls,
                                    int& function_counter) {
  if (!m.is_object()) return bad_request(path + " must be an object", path);
  std::string role = m["role"].text();
  Node content = m["content"];
  if (role == "system" || role == "developer") {
    return decode_content(content, r.system, path + ".content", false);
  }
  if (role == "user") {
    if (!content) return bad_request(path + ".content is required", path + ".content");
    Message& turn = user_turn(r);
    return decode_content(content, turn.content, path + ".content", true);
  }
  if (role == "assistant") {
    Message turn{Role::assistant, {}};
    if (Node blocks = m["thinking_blocks"]; blocks.is_array()) {
      blocks.each([&](const Node& tb) {
        if (!tb.is_object()) return;
        Block b;
        if (tb["type"].equals("redacted_thinking")) {
          b.type = Block::Type::redacted_thinking;
          b.text = tb["data"].text();
        } else {
          b.type = Block::Type::thinking;
          b.text = tb["thinking"].text();
          b.signature = tb["signature"].text();
        }
        turn.content.push_back(std::move(b));
      });
    } else if (Node rc = m["reasoning_content"]; rc.has_text()) {
      Block b;
      b.type = Block::Type::thinking;
      b.text = rc.text();
      turn.content.push_back(std::move(b));
    }
    if (auto e = decode_content(content, turn.content, path + ".content", false)) return e;
    if (Node calls = m["tool_calls"]; calls.is_array()) {
      std::optional<Error> error;
      std::size_t k = 0;
      calls.each([&](const Node& call) {
        if (error) return;
        std::string cpath = path + ".tool_calls[" + std::to_string(k++) + "]";
        Node fn = call["function"];
        if (!fn.is_object()) {
          error = bad_request(cpath + ".function is required", cpath + ".function");
          return;
        }
        Block b;
        b.type = Block::Type::tool_use;
        b.id = call["id"].text();
        b.name = fn["name"].text();
        b.arguments = fn["arguments"].text();
        if (b.id.empty() || b.name.empty()) {
          error = bad_request(cpath + " needs an id and a function name", cpath);
          return;
        }
        b.signature = call["extra_content"]["google"]["thought_signature"].text();
        turn.content.push_back(std::move(b));
      });
      if (error) return error;
    } else if (Node fc = m["function_call"]; fc.is_object()) {
      Block b;
      b.type = Block::Type::tool_use;
      b.name = fc["name"].text();
      b.arguments = fc["arguments"].text();
      b.id = "call_fn_" + std::to_string(++function_counter);
      open_function_calls.emplace_back(b.name, b.id);
      turn.content.push_back(std::move(b));
    }
    if (!r.messages.empty() && r.messages.back().role == Role::assistant) {
      for (auto& b : turn.content) r.messages.back().content.push_back(std::move(b));
    } else {
      r.messages.push_back(std::move(turn));
    }
    return std::nullopt;
  }
  if (role == "tool" || role == "function") {
    Block b;
    b.type = Block::Type::tool_result;
    if (role == "tool") {
      b.id = m["tool_call_id"].text();
      if (b.id.empty()) return bad_request(path + ".tool_call_id is required", path + ".tool_call_id");
    } else {
      std::string name = m["name"].text();
      for (auto it = open_function_calls.rbegin(); it != open_function_calls.rend(); ++it) {
        if (it->first == name) {
          b.id = it->second;
          open_function_calls.erase(std::next(it).base());
          break;
        }
      }
      if (b.id.empty())
        return bad_request(path + " answers no earlier function_call named \"" + name + "\"", path + ".name");
    }
    if (auto e = decode_content(content, b.content, path + ".content", true)) return e;
    Message& turn = user_turn(r);
    // Tool results open the user turn that answers the assistant's calls.
    auto first_other = std::find_if(turn.content.begin(), turn.content.end(), [](const Block& x) {
      return x.type != Block::Type::tool_result;
    });
    turn.content.insert(first_other, std::move(b));
    return std::nullopt;
  }
  return bad_request(path + ".role \"" + role + "\" is not one of system, developer, user, assistant, tool",
                     path + ".role");
}

/// Members turned into canonical fields; the rest go to `extra`.
bool is_modelled(std::string_view key) {
  static constexpr std::string_view kKnown[] = {
      "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k",
      "stop", "seed", "n", "presence_penalty", "frequency_penalty", "stream", "stream_options",
      "tools", "functions", "tool_choice", "function_call", "parallel_tool_calls",
      "response_format", "thinking", "reasoning_effort", "user"};
  for (auto k : kKnown)
    if (k == key) return true;
  return false;
}

}  // namespace

std::variant<ChatRequest, Error> decode_request(std::string_view body, std::size_t max_depth) {
  // Read with the lean scanner's tape, as the fast path reads it: no tree for the common parts.
  JsonView view;
  if (!view.parse(body, max_depth + 1) || !view.root().is_object())
    return bad_request("We could not parse the JSON body of your request.", {}, "invalid_json");
  Node o = view.root();
  ChatRequest r;
  r.model = o["model"].text();
  Node messages = o["messages"];
  if (!messages.is_array()) return bad_request("messages must be an array", "messages");
  {
    std::vector<std::pair<std::string, std::string>> open_function_calls;  // name, id
    int function_counter = 0;
    std::optional<Error> error;
    std::size_t i = 0;
    messages.each([&](const Node& m) {
      if (!error)
        error = decode_message(m, "messages[" + std::to_string(i++) + "]", r, open_function_calls, function_counter);
    });
    if (error) return *error;
  }
  if (auto e = decode_tools(o, r)) return *e;

  auto number = [&](std::string_view key, std::optional<double>& out) -> std::optional<Error> {
    if (Node v = o[key]; v && !v.is_null()) {
      out = v.number();
      if (!out) return bad_request(std::string(key) + " must be a number", std::string(key));
    }
    return std::nullopt;
  };
  auto integer = [&](std::string_view key, std::optional<std::int64_t>& out) -> std::optional<Error> {
    if (Node v = o[key]; v && !v.is_null()) {
      out = v.integer();
      if (!out) return bad_request(std::string(key) + " must be an integer", std::string(key));
    }
    return std::nullopt;
  };
  if (auto e = integer("max_completion_tokens", r.max_tokens)) return *e;
  if (!r.max_tokens)
    if (auto e = integer("max_tokens", r.max_tokens)) return *e;
  if (auto e = number("temperature", r.temperature)) return *e;
  if (auto e = number("top_p", r.top_p)) return *e;
  if (auto e = integer("top_k", r.top_k)) return *e;
  if (auto e = integer("seed", r.seed)) return *e;
  if (auto e = integer("n", r.n)) return *e;
  if (auto e = number("presence_penalty", r.presence_penalty)) return *e;
  if (auto e = number("frequency_penalty", r.frequency_penalty)) return *e;
  if (Node stop = o["stop"]) {
    if (stop.is_string()) {
      r.stop.push_back(stop.text());
    } else if (stop.is_array()) {
      bool bad = false;
      stop.each([&](const Node& s) {
        if (!s.is_string()) bad = true;
        else r.stop.push_back(s.text());
      });
      if (bad) return bad_request("stop must be a string or an array of strings", "stop");
    } else if (!stop.is_null()) {
      return bad_request("stop must be a string or an array of strings", "stop");
    }
  }
  if (Node s = o["stream"]; s.is_bool()) r.stream = s.is_true();
  if (Node iu = o["stream_options"]["include_usage"]; iu.is_bool()) r.include_usage = iu.is_true();
  if (Node rf = o["response_format"]; rf.is_object()) {
    using Kind = core::ResponseFormat::Kind;
    Node type = rf["type"];
    if (type.equals("text")) {
      r.response_format.kind = Kind::text;
    } else if (type.equals("json_object")) {
      r.response_format.kind = Kind::json_object;
    } else if (type.equals("json_schema")) {
      Node js = rf["json_schema"];
      if (!js.is_object()) return bad_request("response_format.json_schema is required", "response_format.json_schema");
      r.response_format.kind = Kind::json_schema;
      r.response_format.name = js["name"].has_text() ? js["name"].text() : std::string("response");
      r.response_format.description = js["description"].text();
      if (Node schema = js["schema"]) r.response_format.schema = to_value(schema);
      if (Node st = js["strict"]; st.is_bool()) r.response_format.strict = st.is_true();
    } else {
      return bad_request("response_format.type must be text, json_object or json_schema",
                         "response_format.type");
    }
  }
  if (Node th = o["thinking"]; th.is_object() && th["type"].equals("enabled"))
    r.thinking_budget = th["budget_tokens"].integer_or(1024);
  r.reasoning_effort = o["reasoning_effort"].text();
  r.user = o["user"].text();
  o.each_member([&](std::string_view key, const Node& value) {
    if (!is_modelled(key)) r.extra.emplace(key, to_value(value));
  });
  return r;
}

namespace {

json::value content_value(const std::vector<const Block*>& blocks, core::Unsupported& unsupported) {
  bool plain = blocks.size() == 1 && blocks[0]->type == Block::Type::text &&
               blocks[0]->cache_control.is_null();
  if (plain) return json::string(blocks[0]->text);
  json::array parts;
  for (const Block* b : blocks) {
    json::object part;
    if (b->type == Block::Type::text) {
      part["type"] = "text";
      part["text"] = b->text;
    } else if (b->type == Block::Type::image) {
      part["type"] = "image_url";
      json::object image;
      image["url"] = b->url.empty() ? "data:" + b->media_type + ";base64," + b->data : b->url;
      part["image_url"] = std::move(image);
    } else {
      unsupported.params.push_back("content block");
      continue;
    }
    if (!b->cache_control.is_null()) part["cache_control"] = b->cache_control;
    parts.push_back(std::move(part));
  }
  return parts;
}

std::string tool_result_text(const Block& b) {
  std::string text;
  for (const Block& c : b.content)
    if (c.type == Block::Type::text) {
      if (!text.empty()) text += "\n";
      text += c.text;
    }
  return text;
}

}  // namespace

void encode_request(const ChatRequest& r, std::string_view model, const EncodeOptions& options,
                    std::string& out, core::Unsupported& unsupported) {
  json::object o;
  o["model"] = model;
  json::array messages;
  if (!r.system.empty()) {
    std::vector<const Block*> blocks;
    for (const Block& b : r.system) blocks.push_back(&b);
    json::object m;
    m["role"] = "system";
    m["content"] = content_value(blocks, unsupported);
    messages.push_back(std::move(m));
  }
  for (const Message& msg : r.messages) {
    if (msg.role == Role::user) {
      std::vector<const Block*> rest;
      for (const Block& b : msg.content) {
        if (b.type == Block::Type::tool_result) {
          json::object m;
          m["role"] = "tool";
          m["tool_call_id"] = b.id;
          for (const Block& c : b.content)
            if (c.type != Block::Type::text) unsupported.params.push_back("tool_result image");
          m["content"] = tool_result_text(b);
          messages.push_back(std::move(m));
        } else {
          rest.push_back(&b);
        }
      }
      if (!rest.empty()) {
        json::object m;
        m["role"] = "user";
        m["content"] = content_value(rest, unsupported);
        messages.push_back(std::move(m));
      }
    } else {
      json::object m;
      m["role"] = "assistant";
      std::string text;
      json::array calls;
      for (const Block& b : msg.content) {
        if (b.type == Block::Type::text) {
          text += b.text;
        } else if (b.type == Block::Type::tool_use) {
          json::object call;
          call["id"] = b.id;
          call["type"] = "function";
          json::object fn;
          fn["name"] = b.name;
          fn["arguments"] = b.arguments.empty() ? "{}" : b.arguments;
          call["function"] = std::move(fn);
          calls.push_back(std::move(call));
        }
        // Thinking blocks are the provider's own state; an OpenAI-dialect upstream takes none.
      }
      if (text.empty() && !calls.empty()) m["content"] = nullptr;
      else m["content"] = text;
      if (!calls.empty()) m["tool_calls"] = std::move(calls);
      messages.push_back(std::move(m));
    }
  }
  o["messages"] = std::move(messages);
  if (r.max_tokens) o[options.max_completion_tokens ? "max_completion_tokens" : "max_tokens"] = *r.max_tokens;
  if (r.temperature) o["temperature"] = *r.temperature;
  if (r.top_p) o["top_p"] = *r.top_p;
  if (r.top_k) {
    if (options.top_k) o["top_k"] = *r.top_k;
    else unsupported.params.push_back("top_k");
  }
  if (!r.stop.empty()) {
    json::array stop;
    for (const auto& s : r.stop) stop.push_back(json::string(s));
    o["stop"] = std::move(stop);
  }
  if (r.seed) o["seed"] = *r.seed;
  if (r.n) o["n"] = *r.n;
  if (r.presence_penalty) o["presence_penalty"] = *r.presence_penalty;
  if (r.frequency_penalty) o["frequency_penalty"] = *r.frequency_penalty;
  if (r.stream) {
    o["stream"] = true;
    o["stream_options"] = json::object{{"include_usage", true}};
  }
  if (!r.tools.empty()) {
    json::array tools;
    for (const auto& t : r.tools) {
      json::object fn;
      fn["name"] = t.name;
      if (!t.description.empty()) fn["description"] = t.description;
      fn["parameters"] = t.parameters.is_null() ? json::value(json::object{{"type", "object"}, {"properties", json::object{}}})
                                                : t.parameters;
      if (t.strict) fn["strict"] = *t.strict;
      tools.push_back(json::object{{"type", "function"}, {"function", std::move(fn)}});
    }
    o["tools"] = std::move(tools);
  }
  using Mode = core::ToolChoice::Mode;
  switch (r.tool_choice.mode) {
    case Mode::unset: break;
    case Mode::auto_: o["tool_choice"] = "auto"; break;
    case Mode::none: o["tool_choice"] = "none"; break;
    case Mode::required: o["tool_choice"] = "required"; break;
    case Mode::named:
      o["tool_choice"] = json::object{{"type", "function"}, {"function", json::object{{"name", r.tool_choice.name}}}};
      break;
  }
  if (r.parallel_tool_calls && !r.tools.empty()) o["parallel_tool_calls"] = *r.parallel_tool_calls;
  using Kind = core::ResponseFormat::Kind;
  switch (r.response_format.kind) {
    case Kind::unset: break;
    case Kind::text: o["response_format"] = json::object{{"type", "text"}}; break;
    case Kind::json_object: o["response_format"] = json::object{{"type", "json_object"}}; break;
    case Kind::json_schema: {
      json::object js;
      js["name"] = r.response_format.name;
      if (!r.response_format.description.empty()) js["description"] = r.response_format.description;
      js["schema"] = r.response_format.schema;
      if (r.response_format.strict) js["strict"] = *r.response_format.strict;
      o["response_format"] = json::object{{"type", "json_schema"}, {"json_schema", std::move(js)}};
      break;
    }
  }
  if (!r.reasoning_effort.empty()) {
    o["reasoning_effort"] = r.reasoning_effort;
  } else if (r.thinking_budget) {
    // A thinking budget in tokens becomes OpenAI's coarse effort.
    std::int64_t b = *r.thinking_budget;
    o["reasoning_effort"] = b < 4096 ? "low" : b < 16384 ? "medium" : "high";
  }
  if (!r.user.empty()) o["user"] = r.user;
  // Members of another dialect the canonical form does not model (an Anthropic beta field, a
  // Responses hosted tool): OpenAI-compatible APIs refuse unknown members, so they are refused
  // (or dropped) by name as by every encoder, never copied into the body.
  core::add_extras(r, unsupported);
  out += json::serialize(o);
}

std::optional<core::ApiError> adapt_for_vendor(
    std::string_view body, std::string_view model, std::span<const std::string_view> rejected,
    std::span<const Rename> renamed, std::string_view vendor,
    bool drop, std::string& out, std::vector<std::string>& dropped) {
  auto parsed = parse_json(body, 256);
  if (!parsed || !parsed->is_object())
    return bad_request("We could not parse the JSON body of your request.", {}, "invalid_json");
  json::object& o = parsed->get_object();
  std::vector<std::string> refused;
  for (auto name : rejected) {
    const json::value* v = o.if_contains(name);
    if (!v || v->is_null()) continue;
    if (name == "n" && int_of(v) == 1) continue;  // n = 1 is what every vendor does
    refused.emplace_back(name);
  }
  if (!refused.empty() && !drop) {
    std::string names;
    for (const auto& p : refused) names += (names.empty() ? "`" : ", `") + p + "`";
    return bad_request("Unsupported parameter(s) for " + std::string(vendor) + ": " + names +
                           ". Remove them, or set drop_unsupported_params on the provider.",
                       refused.front(), "unsupported_parameter");
  }
  for (const auto& name : refused) o.erase(name);
  for (const Rename& rename : renamed) {
    if (json::value* v = o.if_contains(rename.from)) {
      json::value moved = std::move(*v);
      o.erase(rename.from);
      o[rename.to] = std::move(moved);
    }
  }
  o["model"] = model;
  if (const json::value* s = o.if_contains("stream"); s && s->is_bool() && s->get_bool()) {
    json::value& so = o["stream_options"];
    if (!so.is_object()) so = json::object{};
    so.get_object()["include_usage"] = true;
  }
  dropped.insert(dropped.end(), refused.begin(), refused.end());
  out += json::serialize(o);
  return std::nullopt;
}

std::string_view finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::stop: return "stop";
    case FinishReason::length: return "length";
    case FinishReason::tool_calls: return "tool_calls";
    case FinishReason::content_filter: return "content_filter";
    case FinishReason::none: return "";
  }
  return "";
}

FinishReason finish_reason_from(std::string_view name) {
  if (name == "stop") return FinishReason::stop;
  if (name == "length") return FinishReason::length;
  if (name == "tool_calls" || name == "function_call") return FinishReason::tool_calls;
  if (name == "content_filter") return FinishReason::content_filter;
  return FinishReason::none;
}


void append_usage(std::string& out, const core::TokenUsage& u) {
  out += R"({"prompt_tokens":)";
  out += std::to_string(u.input);
  out += R"(,"completion_tokens":)";
  out += std::to_string(u.output);
  out += R"(,"total_tokens":)";
  out += std::to_string(u.input + u.output);
  out += R"(,"prompt_tokens_details":{"cached_tokens":)";
  out += std::to_string(u.cache_read);
  if (u.cache_creation) {
    out += R"(,"cache_creation_tokens":)";
    out += std::to_string(u.cache_creation);
  }
  out += R"(},"completion_tokens_details":{"reasoning_tokens":)";
  out += std::to_string(u.reasoning);
  out += "}}";
}

namespace {
void read_usage_view(const JsonView::Node& u, core::TokenUsage& usage);
}  // namespace

std::variant<core::ChatResponse, Error> decode_response(std::string_view body) {
  JsonView view;
  if (!view.parse(body) || !view.root().is_object())
    return core::ApiError::make(core::ErrorKind::upstream_connect, "The upstream answered invalid JSON.");
  JsonView::Node o = view.root();
  core::ChatResponse r;
  r.id = o["id"].text();
  r.model = o["model"].text();
  r.created = o["created"].integer_or(0);
  if (auto u = o["usage"]; u.is_object()) read_usage_view(u, r.usage);
  JsonView::Node choice = o["choices"].at(0);
  if (!choice.is_object())
    return core::ApiError::make(core::ErrorKind::upstream_connect, "The upstream answered no choices.");
  r.finish = finish_reason_from(choice["finish_reason"].text());
  if (JsonView::Node m = choice["message"]; m.is_object()) {
    if (auto rc = m["reasoning_content"]; rc.has_text()) {
      Block b;
      b.type = Block::Type::thinking;
      b.text = rc.text();
      r.content.push_back(std::move(b));
    }
    if (auto text = m["content"]; text.has_text())
      r.content.push_back(Block::make_text(text.text()));
    else if (auto refusal = m["refusal"]; refusal.has_text())
      r.content.push_back(Block::make_text(refusal.text()));
    m["tool_calls"].each([&](const JsonView::Node& call) {
      JsonView::Node fn = call["function"];
      if (!fn.is_object()) return;
      Block b;
      b.type = Block::Type::tool_use;
      b.id = call["id"].text();
      b.name = fn["name"].text();
      b.arguments = fn["arguments"].text();
      r.content.push_back(std::move(b));
    });
  }
  return r;
}

void encode_response(const core::ChatResponse& r, std::string& out) {
  // Written directly (no tree): this runs for every translated answer.
  using core::append_json_string;
  std::string text, reasoning;
  bool calls = false, signed_thinking = false;
  for (const Block& b : r.content) {
    if (b.type == Block::Type::text) text += b.text;
    else if (b.type == Block::Type::thinking) reasoning += b.text;
    else if (b.type == Block::Type::tool_use) calls = true;
    if ((b.type == Block::Type::thinking && !b.signature.empty()) || b.type == Block::Type::redacted_thinking)
      signed_thinking = true;
  }
  std::int64_t created = r.created ? r.created : static_cast<std::int64_t>(std::time(nullptr));
  out += R"({"id":)";
  append_json_string(out, r.id);
  out += R"(,"object":"chat.completion","created":)";
  out += std::to_string(created);
  out += R"(,"model":)";
  append_json_string(out, r.model);
  out += R"(,"choices":[{"index":0,"message":{"role":"assistant","content":)";
  if (text.empty() && calls) out += "null";
  else append_json_string(out, text);
  if (!reasoning.empty()) {
    out += R"(,"reasoning_content":)";
    append_json_string(out, reasoning);
  }
  if (signed_thinking) {
    // The blocks with their signatures, for the client to send back next turn.
    out += R"(,"thinking_blocks":[)";
    bool first = true;
    for (const Block& b : r.content) {
      if (b.type != Block::Type::thinking && b.type != Block::Type::redacted_thinking) continue;
      if (!first) out += ',';
      first = false;
      if (b.type == Block::Type::thinking) {
        out += R"({"type":"thinking","thinking":)";
        append_json_string(out, b.text);
        out += R"(,"signature":)";
        append_json_string(out, b.signature);
      } else {
        out += R"({"type":"redacted_thinking","data":)";
        append_json_string(out, b.text);
      }
      out += '}';
    }
    out += ']';
  }
  if (calls) {
    out += R"(,"tool_calls":[)";
    bool first = true;
    for (const Block& b : r.content) {
      if (b.type != Block::Type::tool_use) continue;
      if (!first) out += ',';
      first = false;
      out += R"({"id":)";
      append_json_string(out, b.id);
      out += R"(,"type":"function","function":{"name":)";
      append_json_string(out, b.name);
      out += R"(,"arguments":)";
      append_json_string(out, b.arguments.empty() ? std::string_view("{}") : std::string_view(b.arguments));
      out += '}';
      if (!b.signature.empty()) {
        out += R"(,"extra_content":{"google":{"thought_signature":)";
        append_json_string(out, b.signature);
        out += "}}";
      }
      out += '}';
    }
    out += ']';
  }
  out += R"(,"refusal":null},"logprobs":null,"finish_reason":)";
  std::string_view finish = finish_reason_name(r.finish);
  if (finish.empty()) out += "null";
  else append_json_string(out, finish);
  out += R"(}],"usage":)";
  append_usage(out, r.usage);
  out += '}';
}

// ---------------------------------------------------------------------------------------------
// Streams

namespace {

void read_usage_view(const JsonView::Node& u, core::TokenUsage& usage) {
  usage.known = true;
  usage.input = u["prompt_tokens"].integer_or(0);
  usage.output = u["completion_tokens"].integer_or(0);
  auto details = u["prompt_tokens_details"];
  usage.cache_read = details["cached_tokens"].integer_or(0);
  usage.cache_creation = details["cache_creation_tokens"].integer_or(0);
  if (usage.cache_read == 0) usage.cache_read = u["prompt_cache_hit_tokens"].integer_or(0);  // DeepSeek
  usage.reasoning = u["completion_tokens_details"]["reasoning_tokens"].integer_or(0);
}

}  // namespace

bool ChunkDecoder::feed(std::string_view data, core::StreamSink& sink) {
  if (data == "[DONE]") {
    finish(sink);
    return true;
  }
  if (!view_.parse(data) || !view_.root().is_object()) return false;
  JsonView::Node o = view_.root();
  using Kind = core::StreamEvent::Kind;
  core::StreamEvent ev;
  if (!started_) {
    started_ = true;
    ev.kind = Kind::start;
    ev.id = o["id"].text();
    ev.model = o["model"].text();
    ev.created = o["created"].integer_or(0);
    sink.on_event(ev);
  }
  if (auto u = o["usage"]; u.is_object()) read_usage_view(u, usage_);
  JsonView::Node choice = o["choices"].at(0);
  if (!choice.is_object()) return true;
  if (JsonView::Node delta = choice["delta"]; delta.is_object()) {
    if (auto rc = delta["reasoning_content"]; rc.has_text()) {
      ev = {};
      ev.kind = Kind::thinking;
      ev.text = rc.text();
      sink.on_event(ev);
    }
    if (auto text = delta["content"]; text.has_text()) {
      ev = {};
      ev.kind = Kind::text;
      ev.text = text.text();
      sink.on_event(ev);
    }
    delta["tool_calls"].each([&](const JsonView::Node& call) {
      if (!call.is_object()) return;
      int index = static_cast<int>(call["index"].integer_or(0));
      JsonView::Node fn = call["function"];
      JsonView::Node id = call["id"];
      JsonView::Node name = fn["name"];
      if (id.has_text() || name.has_text()) {
        ev = {};
        ev.kind = Kind::tool_start;
        ev.index = index;
        ev.id = id.text();
        ev.name = name.text();
        sink.on_event(ev);
      }
      if (auto args = fn["arguments"]; args.has_text()) {
        ev = {};
        ev.kind = Kind::tool_args;
        ev.index = index;
        ev.text = args.text();
        sink.on_event(ev);
      }
    });
  }
  if (auto fr = choice["finish_reason"]; fr.has_text()) {
    ev = {};
    ev.kind = Kind::finish;
    ev.finish = finish_reason_from(fr.text());
    sink.on_event(ev);
  }
  return true;
}

void ChunkDecoder::finish(core::StreamSink& sink) {
  if (finished_) return;
  finished_ = true;
  core::emit_usage(sink, usage_);
}

void ChunkEncoder::ensure_prefix() {
  if (prefix_.empty()) {
    prefix_ = R"(data: {"id":)";
    core::append_json_string(prefix_, id_);
    prefix_ += R"(,"object":"chat.completion.chunk","created":)";
    prefix_ += std::to_string(created_);
    prefix_ += R"(,"model":)";
    core::append_json_string(prefix_, model_);
    prefix_ += R"(,"choices":[)";
  }
}

void ChunkEncoder::chunk_head() {
  ensure_prefix();
  out_ += prefix_;
  out_ += R"({"index":0,"delta":)";
}

void ChunkEncoder::chunk_tail(std::string_view finish_reason) {
  out_ += R"(,"logprobs":null,"finish_reason":)";
  if (finish_reason.empty()) out_ += "null";
  else core::append_json_string(out_, finish_reason);
  out_ += "}]}\n\n";
}

void ChunkEncoder::on_event(const core::StreamEvent& ev) {
  using Kind = core::StreamEvent::Kind;
  switch (ev.kind) {
    case Kind::start:
      id_ = ev.id;
      model_ = ev.model;
      created_ = ev.created ? ev.created : static_cast<std::int64_t>(std::time(nullptr));
      if (ev.usage.known) usage_ = ev.usage;
      chunk_head();
      out_ += R"({"role":"assistant","content":""})";
      chunk_tail({});
      break;
    case Kind::text:
      chunk_head();
      out_ += R"({"content":)";
      core::append_json_string(out_, ev.text);
      out_ += '}';
      chunk_tail({});
      break;
    case Kind::thinking:
      chunk_head();
      out_ += R"({"reasoning_content":)";
      core::append_json_string(out_, ev.text);
      out_ += '}';
      chunk_tail({});
      break;
    case Kind::signature:
      chunk_head();
      out_ += R"({"thinking_blocks":[{"type":"thinking","thinking":"","signature":)";
      core::append_json_string(out_, ev.text);
      out_ += "}]}";
      chunk_tail({});
      break;
    case Kind::redacted:
      chunk_head();
      out_ += R"({"thinking_blocks":[{"type":"redacted_thinking","data":)";
      core::append_json_string(out_, ev.text);
      out_ += "}]}";
      chunk_tail({});
      break;
    case Kind::tool_start:
      chunk_head();
      out_ += R"({"tool_calls":[{"index":)";
      out_ += std::to_string(ev.index);
      out_ += R"(,"id":)";
      core::append_json_string(out_, ev.id);
      out_ += R"(,"type":"function","function":{"name":)";
      core::append_json_string(out_, ev.name);
      out_ += R"(,"arguments":""})";
      if (!ev.text.empty()) {  // a thought signature on the call (Gemini)
        out_ += R"(,"extra_content":{"google":{"thought_signature":)";
        core::append_json_string(out_, ev.text);
        out_ += "}}";
      }
      out_ += "}]}";
      chunk_tail({});
      break;
    case Kind::tool_args:
      chunk_head();
      out_ += R"({"tool_calls":[{"index":)";
      out_ += std::to_string(ev.index);
      out_ += R"(,"function":{"arguments":)";
      core::append_json_string(out_, ev.text);
      out_ += "}}]}";
      chunk_tail({});
      break;
    case Kind::finish:
      chunk_head();
      out_ += "{}";
      chunk_tail(finish_reason_name(ev.finish == FinishReason::none ? FinishReason::stop : ev.finish));
      break;
    case Kind::usage:
      usage_ = ev.usage;
      break;
    case Kind::error:
      out_ += "data: ";
      out_ += core::openai_error_body(ev.error);
      out_ += "\n\n";
      ended_ = true;
      break;
  }
}

void ChunkEncoder::end() {
  if (ended_) return;
  ended_ = true;
  if (include_usage_ && usage_.known) {
    ensure_prefix();
    out_ += prefix_;
    out_ += R"(],"usage":)";
    append_usage(out_, usage_);
    out_ += "}\n\n";
  }
  out_ += "data: [DONE]\n\n";
}

}  // namespace switchyard::dialects::openai
