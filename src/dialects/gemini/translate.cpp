#include "dialects/gemini/translate.hpp"

#include <cstring>
#include <map>

#include "dialects/json_util.hpp"
#include "dialects/json_writer.hpp"

namespace switchyard::dialects::gemini {

using core::ApiError;
using core::Block;
using core::ChatRequest;
using core::FinishReason;
using core::Role;

namespace {

constexpr int kMaxSchemaDepth = 32;

/// Keywords of Gemini's Schema object (an OpenAPI 3.0 subset).
bool gemini_keyword(std::string_view k) {
  static constexpr std::string_view kAllowed[] = {
      "type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems",
      "properties", "required", "minProperties", "maxProperties", "minLength", "maxLength",
      "pattern", "example", "anyOf", "propertyOrdering", "default", "items", "minimum", "maximum"};
  for (auto a : kAllowed)
    if (a == k) return true;
  return false;
}

const json::value* resolve_ref(std::string_view ref, const json::object& root) {
  // Local references only: #/$defs/Name or #/definitions/Name.
  for (std::string_view prefix : {std::string_view("#/$defs/"), std::string_view("#/definitions/")}) {
    if (ref.substr(0, prefix.size()) == prefix) {
      const json::object* defs = object_at(root, prefix == "#/$defs/" ? "$defs" : "definitions");
      if (defs) return defs->if_contains(ref.substr(prefix.size()));
    }
  }
  return nullptr;
}

json::value sanitize(const json::value& v, const json::object& root, int depth) {
  if (!v.is_object() || depth > kMaxSchemaDepth) return json::object{};
  const json::object& in = v.get_object();
  if (std::string_view ref = str_or(in, "$ref"); !ref.empty()) {
    if (const json::value* target = resolve_ref(ref, root)) return sanitize(*target, root, depth + 1);
    return json::object{};
  }
  json::object out;
  for (const auto& kv : in) {
    std::string_view key = kv.key();
    const json::value& val = kv.value();
    if (key == "type" && val.is_array()) {
      // ["string", "null"] → type string, nullable
      for (const json::value& t : val.get_array()) {
        if (t.is_string() && t.get_string() == "null") out["nullable"] = true;
        else if (t.is_string() && !out.contains("type")) out["type"] = t;
      }
    } else if (key == "const") {
      out["enum"] = json::array{val.is_string() ? val : json::value(json::serialize(val))};
    } else if (key == "oneOf" || key == "anyOf") {
      json::array options;
      bool nullable = false;
      for (const json::value& o : val.is_array() ? val.get_array() : json::array{}) {
        if (o.is_object() && str_or(o.get_object(), "type") == "null") {
          nullable = true;
          continue;
        }
        options.push_back(sanitize(o, root, depth + 1));
      }
      if (nullable) out["nullable"] = true;
      if (options.size() == 1) {
        for (auto& m : options[0].get_object()) out[m.key()] = m.value();
      } else if (!options.empty()) {
        out["anyOf"] = std::move(options);
      }
    } else if (key == "allOf" && val.is_array() && val.get_array().size() == 1) {
      json::value merged = sanitize(val.get_array()[0], root, depth + 1);
      for (auto& m : merged.get_object()) out[m.key()] = m.value();
    } else if (key == "properties" && val.is_object()) {
      json::object props;
      for (const auto& p : val.get_object()) props[p.key()] = sanitize(p.value(), root, depth + 1);
      out["properties"] = std::move(props);
    } else if (key == "items") {
      out["items"] = sanitize(val, root, depth + 1);
    } else if (key == "enum" && val.is_array()) {
      json::array values;
      for (const json::value& e : val.get_array())
        values.push_back(e.is_string() ? e : json::value(json::serialize(e)));
      out["enum"] = std::move(values);
      if (!in.contains("type")) out["type"] = "string";
    } else if (key == "format") {
      // Gemini takes few formats; others are dropped rather than refused.
      if (val.is_string()) {
        std::string_view f = val.get_string();
        if (f == "enum" || f == "date-time" || f == "int32" || f == "int64" || f == "float" ||
            f == "double")
          out["format"] = val;
      }
    } else if (gemini_keyword(key)) {
      out[key] = val;
    }
  }
  // An enum of non-strings became strings above.
  if (out.contains("enum")) out["type"] = "string";
  // `required` may only name listed properties.
  out.erase("required");
  if (const json::array* req = array_at(in, "required")) {
    const json::object* props = object_at(out, "properties");
    json::array kept;
    for (const json::value& name : *req)
      if (name.is_string() && props && props->contains(name.get_string())) kept.push_back(name);
    if (!kept.empty()) out["required"] = std::move(kept);
  }
  return out;
}

/// `parameters` for a function declaration: nullopt for a function without arguments (Gemini
/// refuses an OBJECT schema with no properties).
std::optional<json::value> function_parameters(const json::value& schema) {
  if (schema.is_null()) return std::nullopt;
  json::value s = sanitize_schema(schema);
  const json::object& o = s.get_object();
  const json::object* props = object_at(o, "properties");
  if (str_or(o, "type") == "object" && (!props || props->empty())) return std::nullopt;
  return s;
}

std::string guess_mime(std::string_view url) {
  auto ends = [&](std::string_view ext) {
    return url.size() >= ext.size() && url.substr(url.size() - ext.size()) == ext;
  };
  if (ends(".png")) return "image/png";
  if (ends(".gif")) return "image/gif";
  if (ends(".webp")) return "image/webp";
  if (ends(".pdf")) return "application/pdf";
  return "image/jpeg";
}

void read_usage_view(const JsonView::Node& u, core::TokenUsage& usage) {
  usage.known = true;
  usage.input = u["promptTokenCount"].integer_or(0);
  usage.reasoning = u["thoughtsTokenCount"].integer_or(0);
  // candidatesTokenCount leaves thoughts out; OpenAI's completion tokens include reasoning.
  usage.output = u["candidatesTokenCount"].integer_or(0) + usage.reasoning;
  usage.cache_read = u["cachedContentTokenCount"].integer_or(0);
}

FinishReason finish_from(std::string_view reason) {
  if (reason.empty() || reason == "FINISH_REASON_UNSPECIFIED") return FinishReason::none;
  if (reason == "MAX_TOKENS") return FinishReason::length;
  if (reason == "SAFETY" || reason == "RECITATION" || reason == "BLOCKLIST" ||
      reason == "PROHIBITED_CONTENT" || reason == "SPII" || reason == "IMAGE_SAFETY")
    return FinishReason::content_filter;
  return FinishReason::stop;  // STOP, OTHER, LANGUAGE, MALFORMED_FUNCTION_CALL
}

}  // namespace

json::value sanitize_schema(const json::value& schema) {
  if (!schema.is_object()) return json::object{};
  return sanitize(schema, schema.get_object(), 0);
}

namespace {

/// A tool result as a functionResponse `response`: a JSON object result as it is, anything else
/// under "result" (or "error").
void write_tool_response(JsonWriter& w, const Block& b) {
  std::string text;
  for (const Block& c : b.content)
    if (c.type == Block::Type::text) text += c.text;
  if (!b.is_error) {
    core::json::ScanResult scan = core::json::validate(text, 64);
    if (scan && scan.root.type == core::json::Type::object) {
      w.raw(scan.root.raw);
      return;
    }
  }
  w.begin_object().field(b.is_error ? "error" : "result", text).end_object();
}

/// Whether a block becomes a part (Gemini refuses contents without parts).
bool has_part(const Block& b) {
  switch (b.type) {
    case Block::Type::text: return !b.text.empty() || !b.signature.empty();
    case Block::Type::thinking: return !b.signature.empty();  // only Gemini's own signed thoughts
    case Block::Type::redacted_thinking: return false;
    default: return true;
  }
}

void write_part(JsonWriter& w, const Block& b,
                const std::map<std::string, std::string, std::less<>>& call_names) {
  w.begin_object();
  switch (b.type) {
    case Block::Type::text:
      w.field("text", b.text);
      break;
    case Block::Type::image:
      if (!b.data.empty())
        w.key("inlineData").begin_object().field("mimeType", b.media_type).field("data", b.data).end_object();
      else
        w.key("fileData").begin_object().field("mimeType", guess_mime(b.url)).field("fileUri", b.url).end_object();
      break;
    case Block::Type::thinking:
      w.field("text", b.text).key("thought").boolean(true);
      break;
    case Block::Type::tool_use: {
      w.key("functionCall").begin_object().field("name", b.name).key("args");
      core::json::ScanResult scan = core::json::validate(b.arguments, 64);
      if (scan && scan.root.type == core::json::Type::object) w.raw(scan.root.raw);
      else w.raw("{}");
      w.end_object();
      break;
    }
    case Block::Type::tool_result: {
      auto it = call_names.find(b.id);
      std::string_view name = it != call_names.end() ? std::string_view(it->second) : std::string_view(b.id);
      w.key("functionResponse").begin_object().field("name", name).key("response");
      write_tool_response(w, b);
      w.end_object();
      break;
    }
    case Block::Type::redacted_thinking:
      break;
  }
  if (!b.signature.empty()) w.field("thoughtSignature", b.signature);
  w.end_object();
}

}  // namespace

void encode_request(const ChatRequest& r, std::string& out, core::Unsupported& unsupported) {
  JsonWriter w(out);
  w.begin_object();
  // Tool results name the function they answer: found by the id of the call.
  std::map<std::string, std::string, std::less<>> call_names;
  for (const auto& m : r.messages)
    for (const Block& b : m.content)
      if (b.type == Block::Type::tool_use) call_names[b.id] = b.name;

  // Contents: consecutive turns of one role merged, turns without parts left out.
  w.key("contents").begin_array();
  core::for_each_turn(r.messages, has_part, [&](Role role, const std::vector<const Block*>& blocks) {
    w.begin_object().field("role", role == Role::user ? "user" : "model").key("parts").begin_array();
    for (const Block* b : blocks) write_part(w, *b, call_names);
    w.end_array().end_object();
  });
  w.end_array();
  bool system = false;
  for (const Block& b : r.system) system = system || (b.type == Block::Type::text && !b.text.empty());
  if (system) {
    w.key("systemInstruction").begin_object().key("parts").begin_array();
    for (const Block& b : r.system)
      if (b.type == Block::Type::text && !b.text.empty()) w.begin_object().field("text", b.text).end_object();
    w.end_array().end_object();
  }
  if (!r.tools.empty()) {
    w.key("tools").begin_array().begin_object().key("functionDeclarations").begin_array();
    for (const auto& t : r.tools) {
      w.begin_object().field("name", t.name);
      if (!t.description.empty()) w.field("description", t.description);
      if (auto params = function_parameters(t.parameters)) w.key("parameters").raw(json::serialize(*params));
      w.end_object();
    }
    w.end_array().end_object().end_array();
    using Mode = core::ToolChoice::Mode;
    std::string_view mode;
    switch (r.tool_choice.mode) {
      case Mode::unset: break;
      case Mode::auto_: mode = "AUTO"; break;
      case Mode::none: mode = "NONE"; break;
      case Mode::required:
      case Mode::named: mode = "ANY"; break;
    }
    if (!mode.empty()) {
      w.key("toolConfig").begin_object().key("functionCallingConfig").begin_object().field("mode", mode);
      if (r.tool_choice.mode == Mode::named)
        w.key("allowedFunctionNames").begin_array().string(r.tool_choice.name).end_array();
      w.end_object().end_object();
    }
    if (r.parallel_tool_calls && !*r.parallel_tool_calls) unsupported.params.push_back("parallel_tool_calls");
  }

  std::optional<std::int64_t> budget = r.thinking_budget;
  if (!budget && !r.reasoning_effort.empty()) {
    if (r.reasoning_effort == "none") budget = 0;
    else if (r.reasoning_effort == "minimal" || r.reasoning_effort == "low") budget = 1024;
    else if (r.reasoning_effort == "medium") budget = 8192;
    else if (r.reasoning_effort == "high") budget = 24576;
    else unsupported.params.push_back("reasoning_effort");
  }
  using Kind = core::ResponseFormat::Kind;
  bool json_mode = r.response_format.kind == Kind::json_object || r.response_format.kind == Kind::json_schema;
  bool any_config = r.temperature || r.top_p || r.top_k || r.max_tokens || !r.stop.empty() || r.seed ||
                    r.n || r.presence_penalty || r.frequency_penalty || json_mode ||
                    r.response_format.kind == Kind::text || budget;
  if (any_config) {
    w.key("generationConfig").begin_object();
    if (r.temperature) w.key("temperature").number(*r.temperature);
    if (r.top_p) w.key("topP").number(*r.top_p);
    if (r.top_k) w.field_int("topK", *r.top_k);
    if (r.max_tokens) w.field_int("maxOutputTokens", *r.max_tokens);
    if (!r.stop.empty()) {
      w.key("stopSequences").begin_array();
      for (const auto& s : r.stop) w.string(s);
      w.end_array();
    }
    if (r.seed) w.field_int("seed", *r.seed);
    if (r.n) w.field_int("candidateCount", *r.n);
    if (r.presence_penalty) w.key("presencePenalty").number(*r.presence_penalty);
    if (r.frequency_penalty) w.key("frequencyPenalty").number(*r.frequency_penalty);
    if (json_mode) {
      w.field("responseMimeType", "application/json");
      if (r.response_format.kind == Kind::json_schema && r.response_format.schema.is_object())
        w.key("responseSchema").raw(json::serialize(sanitize_schema(r.response_format.schema)));
    } else if (r.response_format.kind == Kind::text) {
      w.field("responseMimeType", "text/plain");
    }
    if (budget) {
      w.key("thinkingConfig").begin_object().field_int("thinkingBudget", *budget);
      if (*budget > 0) w.key("includeThoughts").boolean(true);
      w.end_object();
    }
    w.end_object();
  }
  core::add_extras(r, unsupported);
  w.end_object();
}

std::variant<core::ChatResponse, ApiError> decode_response(std::string_view body, IdSource& ids) {
  JsonView view;
  if (!view.parse(body) || !view.root().is_object())
    return ApiError::make(core::ErrorKind::upstream_connect, "The upstream answered invalid JSON.");
  JsonView::Node o = view.root();
  JsonView::Node c = o["candidates"].at(0);
  if (!c) {
    if (auto reason = o["promptFeedback"]["blockReason"]; reason.has_text())
      return ApiError::make(core::ErrorKind::invalid_request,
                            "The prompt was blocked by Gemini's safety filters (" + reason.text() + ").",
                            "messages", "content_filter");
  }
  core::ChatResponse r;
  r.id = o["responseId"].text();
  r.model = o["modelVersion"].text();
  if (JsonView::Node u = o["usageMetadata"]; u.is_object()) read_usage_view(u, r.usage);
  if (!c.is_object())
    return ApiError::make(core::ErrorKind::upstream_connect, "The upstream answered no candidates.");
  bool tool_call = false;
  c["content"]["parts"].each([&](const JsonView::Node& p) {
    if (!p.is_object()) return;
    Block b;
    b.signature = p["thoughtSignature"].text();
    if (JsonView::Node fc = p["functionCall"]; fc.is_object()) {
      b.type = Block::Type::tool_use;
      b.id = fc["id"].text();
      if (b.id.empty()) b.id = ids.make();
      b.name = fc["name"].text();
      JsonView::Node args = fc["args"];
      b.arguments = args ? std::string(args.raw()) : std::string("{}");
      tool_call = true;
    } else if (JsonView::Node t = p["text"]; t.is_string()) {
      b.type = p["thought"].is_true() ? Block::Type::thinking : Block::Type::text;
      b.text = t.text();
    } else {
      return;
    }
    r.content.push_back(std::move(b));
  });
  r.finish = finish_from(c["finishReason"].text());
  if (tool_call && r.finish == FinishReason::stop) r.finish = FinishReason::tool_calls;
  return r;
}

bool ChunkDecoder::feed(std::string_view data, core::StreamSink& sink) {
  if (!view_.parse(data) || !view_.root().is_object()) return false;
  JsonView::Node o = view_.root();
  using Kind = core::StreamEvent::Kind;
  core::StreamEvent ev;
  JsonView::Node candidate = o["candidates"].at(0);
  if (!candidate) {
    if (auto reason = o["promptFeedback"]["blockReason"]; reason.has_text()) {
      ev.kind = Kind::error;
      ev.error = ApiError::make(core::ErrorKind::invalid_request,
                                "The prompt was blocked by Gemini's safety filters (" + reason.text() + ").",
                                "messages", "content_filter");
      sink.on_event(ev);
      finished_ = true;
      return true;
    }
  }
  if (!started_) {
    started_ = true;
    ev.kind = Kind::start;
    ev.id = o["responseId"].text();
    ev.model = o["modelVersion"].text();
    sink.on_event(ev);
  }
  if (JsonView::Node u = o["usageMetadata"]; u.is_object()) read_usage_view(u, usage_);
  if (!candidate.is_object()) return true;
  candidate["content"]["parts"].each([&](const JsonView::Node& p) {
    if (!p.is_object()) return;
    std::string signature = p["thoughtSignature"].text();
    if (JsonView::Node fc = p["functionCall"]; fc.is_object()) {
      // Gemini sends each call whole: a start and all its arguments at once.
      ev = {};
      ev.kind = Kind::tool_start;
      ev.index = tools_++;
      ev.id = fc["id"].text();
      if (ev.id.empty()) ev.id = ids_.make();
      ev.name = fc["name"].text();
      ev.text = std::move(signature);
      sink.on_event(ev);
      JsonView::Node args = fc["args"];
      ev.kind = Kind::tool_args;
      ev.text = args ? std::string(args.raw()) : std::string("{}");
      sink.on_event(ev);
      return;
    }
    if (JsonView::Node t = p["text"]; t.has_text()) {
      ev = {};
      ev.kind = p["thought"].is_true() ? Kind::thinking : Kind::text;
      ev.text = t.text();
      sink.on_event(ev);
    }
    if (!signature.empty()) {
      ev = {};
      ev.kind = Kind::signature;
      ev.text = std::move(signature);
      sink.on_event(ev);
    }
  });
  if (FinishReason f = finish_from(candidate["finishReason"].text()); f != FinishReason::none) {
    finish_ = f == FinishReason::stop && tools_ > 0 ? FinishReason::tool_calls : f;
    ev = {};
    ev.kind = Kind::finish;
    ev.finish = finish_;
    sink.on_event(ev);
  }
  return true;
}

void ChunkDecoder::finish(core::StreamSink& sink) {
  if (finished_) return;
  finished_ = true;
  core::emit_usage(sink, usage_);
}

// ---------------------------------------------------------------------------------------------
// Embeddings

std::variant<std::string, ApiError> encode_embeddings(std::string_view body, std::string_view model) {
  auto parsed = parse_json(body, 64);
  if (!parsed || !parsed->is_object())
    return bad_request("We could not parse the JSON body of your request.", {}, "invalid_json");
  const json::object& o = parsed->get_object();
  const json::value* input = member(o, "input");
  std::vector<std::string> texts;
  if (input && input->is_string()) {
    texts.emplace_back(input->get_string());
  } else if (input && input->is_array()) {
    for (const json::value& v : input->get_array()) {
      if (!v.is_string())
        return bad_request("input must be a string or an array of strings for this deployment "
                           "(token arrays cannot be sent to Gemini)", "input");
      texts.emplace_back(v.get_string());
    }
  } else {
    return bad_request("input must be a string or an array of strings", "input");
  }
  if (texts.empty()) return bad_request("input must not be empty", "input");
  std::string model_path = "models/" + std::string(model);
  json::array requests;
  std::optional<std::int64_t> dims = int_of(member(o, "dimensions"));
  for (auto& t : texts) {
    json::object req{{"model", model_path},
                     {"content", json::object{{"parts", json::array{json::object{{"text", t}}}}}}};
    if (dims) req["outputDimensionality"] = *dims;
    requests.push_back(std::move(req));
  }
  return json::serialize(json::object{{"requests", std::move(requests)}});
}

namespace {

void append_base64(std::string& out, const unsigned char* data, std::size_t n) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    std::uint32_t v = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2];
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (n - i == 1) {
    std::uint32_t v = data[i] << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (n - i == 2) {
    std::uint32_t v = (data[i] << 16) | (data[i + 1] << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
}

}  // namespace

std::variant<std::string, ApiError> decode_embeddings(std::string_view body, std::string_view model,
                                                      bool base64) {
  auto parsed = parse_json(body, 64);
  if (!parsed || !parsed->is_object())
    return ApiError::make(core::ErrorKind::upstream_connect, "The upstream answered invalid JSON.");
  const json::array* embeddings = array_at(parsed->get_object(), "embeddings");
  if (!embeddings)
    return ApiError::make(core::ErrorKind::upstream_connect, "The upstream answered no embeddings.");
  std::string out = R"({"object":"list","data":[)";
  std::size_t index = 0;
  for (const json::value& e : *embeddings) {
    const json::array* values = e.is_object() ? array_at(e.get_object(), "values") : nullptr;
    if (!values)
      return ApiError::make(core::ErrorKind::upstream_connect, "The upstream answered an embedding without values.");
    if (index) out += ',';
    out += R"({"object":"embedding","index":)";
    out += std::to_string(index++);
    out += R"(,"embedding":)";
    if (base64) {
      // What OpenAI sends for encoding_format=base64: little-endian float32, base64.
      std::vector<unsigned char> bytes(values->size() * 4);
      for (std::size_t i = 0; i < values->size(); ++i) {
        float f = static_cast<float>(number_of(&(*values)[i]).value_or(0));
        std::memcpy(&bytes[i * 4], &f, 4);
      }
      out += '"';
      append_base64(out, bytes.data(), bytes.size());
      out += '"';
    } else {
      out += json::serialize(*values);
    }
    out += '}';
  }
  out += R"(],"model":)";
  core::append_json_string(out, model);
  out += R"(,"usage":{"prompt_tokens":0,"total_tokens":0}})";
  return out;
}

}  // namespace switchyard::dialects::gemini
