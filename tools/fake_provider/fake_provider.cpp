#include "fake_provider.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/detail/base64.hpp>
#include <boost/json.hpp>

#include <chrono>

namespace switchyard::testing {

namespace asio = boost::asio;
namespace json = boost::json;

std::optional<Behavior> parse_behavior(const std::string& text, std::string& error) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) {
    error = "behavior must be a JSON object";
    return std::nullopt;
  }
  Behavior b;
  for (const auto& member : v.as_object()) {
    // Named, not a structured binding: lambdas capture them (clang 14 cannot capture bindings).
    const std::string_view key = member.key();
    const json::value& val = member.value();
    auto as_uint = [&](std::uint32_t& out) {
      if (val.is_int64() && val.as_int64() >= 0) out = static_cast<std::uint32_t>(val.as_int64());
      else error = std::string(key) + " must be a non-negative integer";
    };
    auto as_int = [&](int& out) {
      if (val.is_int64()) out = static_cast<int>(val.as_int64());
      else error = std::string(key) + " must be an integer";
    };
    auto as_bool = [&](bool& out) {
      if (val.is_bool()) out = val.as_bool();
      else error = std::string(key) + " must be a boolean";
    };
    auto as_string = [&](std::string& out) {
      if (val.is_string()) out = std::string(val.as_string());
      else error = std::string(key) + " must be a string";
    };
    if (key == "status") as_int(b.status);
    else if (key == "latency_ms") as_uint(b.latency_ms);
    else if (key == "stall_every") as_uint(b.stall_every);
    else if (key == "stall_ms") as_uint(b.stall_ms);
    else if (key == "ttft_ms") as_uint(b.ttft_ms);
    else if (key == "chunk_delay_ms") as_uint(b.chunk_delay_ms);
    else if (key == "content_delay_ms") as_uint(b.content_delay_ms);
    else if (key == "trickle_ms") as_uint(b.trickle_ms);
    else if (key == "chunks") as_int(b.chunks);
    else if (key == "content") as_string(b.content);
    else if (key == "reset") as_bool(b.reset);
    else if (key == "cut_after_chunks") as_int(b.cut_after_chunks);
    else if (key == "malformed") as_bool(b.malformed);
    else if (key == "cut_body") as_bool(b.cut_body);
    else if (key == "malformed_after") as_int(b.malformed_after);
    else if (key == "error_after") as_int(b.error_after);
    else if (key == "error_body") as_string(b.error_body);
    else if (key == "finish_reason") as_string(b.finish_reason);
    else if (key == "reasoning") as_string(b.reasoning);
    else if (key == "cached_tokens" && val.is_int64()) b.cached_tokens = val.as_int64();
    else if (key == "cache_write_tokens" && val.is_int64()) b.cache_write_tokens = val.as_int64();
    else if (key == "cache_write_1h_tokens" && val.is_int64()) b.cache_write_1h_tokens = val.as_int64();
    else if (key == "tool_calls" && val.is_array()) {
      for (const auto& t : val.as_array()) {
        if (!t.is_object() || !t.as_object().contains("name")) {
          error = "tool_calls entries need a name";
          break;
        }
        Behavior::ToolCall call;
        call.name = std::string(t.at("name").as_string());
        if (auto* a = t.as_object().if_contains("arguments"))
          call.arguments = a->is_string() ? std::string(a->as_string()) : json::serialize(*a);
        else
          call.arguments = "{}";
        b.tool_calls.push_back(std::move(call));
      }
    }
    else if (key == "headers" && val.is_object()) {
      for (const auto& [hk, hv] : val.as_object())
        if (hv.is_string()) b.headers[std::string(hk)] = std::string(hv.as_string());
    } else error = "unknown behavior field \"" + std::string(key) + "\"";
    if (!error.empty()) return std::nullopt;
  }
  if (b.status < 100 || b.status > 599) {
    error = "status must be an HTTP status";
    return std::nullopt;
  }
  return b;
}

Behavior FakeProviderState::next_behavior(const std::string& model, std::string_view body) {
  std::lock_guard lock(mutex_);
  ++request_count_;
  for (auto it = scripts_.begin(); it != scripts_.end(); ++it) {
    if (!it->model.empty() && it->model != model) continue;
    if (!it->contains.empty() && body.find(it->contains) == std::string_view::npos) continue;
    Behavior b = it->behavior;
    if (--it->times <= 0) scripts_.erase(it);
    return b;
  }
  Behavior b = default_;
  // Deterministic tail latency: every Nth request stalls (hedging benchmarks and tests).
  if (b.stall_every && request_count_ % b.stall_every == 0) b.latency_ms += b.stall_ms;
  return b;
}

void FakeProviderState::record(RecordedRequest r) {
  std::lock_guard lock(mutex_);
  if (requests_.size() < 10000) requests_.push_back(std::move(r));
}

std::string FakeProviderState::requests_json() {
  std::lock_guard lock(mutex_);
  json::array out;
  for (const auto& r : requests_) {
    json::object headers;
    for (const auto& [k, v] : r.headers) headers[k] = v;
    out.push_back(json::object{{"method", r.method}, {"path", r.path}, {"headers", headers},
                               {"body", r.body}});
  }
  return json::serialize(out);
}

std::string FakeProviderState::stats_json() {
  std::lock_guard lock(mutex_);
  return json::serialize(json::object{{"requests", request_count_},
                                      {"aborted_streams", aborted_streams_},
                                      {"completed_streams", completed_streams_}});
}

void FakeProviderState::reset() {
  std::lock_guard lock(mutex_);
  requests_.clear();
  scripts_.clear();
  request_count_ = aborted_streams_ = completed_streams_ = 0;
}

void FakeProviderState::set_default(Behavior b) {
  std::lock_guard lock(mutex_);
  default_ = std::move(b);
}

void FakeProviderState::add_script(Behavior b, int times, std::string model, std::string contains) {
  std::lock_guard lock(mutex_);
  scripts_.push_back({std::move(b), std::max(1, times), std::move(model), std::move(contains)});
}

void FakeProviderState::stream_finished(bool aborted) {
  std::lock_guard lock(mutex_);
  (aborted ? aborted_streams_ : completed_streams_)++;
}

FakeProvider::FakeProvider(net::Loop& loop, std::shared_ptr<FakeProviderState> state)
    : loop_(loop), state_(std::move(state)) {}

net::Task<> FakeProvider::sleep(std::uint32_t ms) {
  if (ms == 0) co_return;
  net::Timer timer(loop_.io(), std::chrono::milliseconds(ms));
  co_await timer.async_wait(net::nothrow);
}

static RecordedRequest recorded(const net::Request& request);

namespace {

std::string openai_error(int status, std::string_view message) {
  std::string_view type = status == 429 ? "rate_limit_error"
                          : status >= 500 ? "server_error"
                          : status == 401 ? "authentication_error"
                                          : "invalid_request_error";
  return json::serialize(json::object{
      {"error", json::object{{"message", message}, {"type", type}, {"param", nullptr},
                             {"code", nullptr}}}});
}

/// Splits text into at most n pieces at spaces (never inside a UTF-8 sequence).
std::vector<std::string> split_chunks(const std::string& text, int n) {
  std::vector<std::string> words;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t sp = text.find(' ', start + 1);
    if (sp == std::string::npos) sp = text.size();
    words.push_back(text.substr(start, sp - start));
    start = sp;
  }
  if (n < 1) n = 1;
  std::vector<std::string> chunks(static_cast<std::size_t>(n));
  if (words.empty()) return chunks;
  for (std::size_t i = 0; i < words.size(); ++i)
    chunks[i * static_cast<std::size_t>(n) / words.size()] += words[i];
  return chunks;
}

}  // namespace

net::Task<> FakeProvider::handle(net::Request request, net::ResponseWriter& writer) {
  std::string_view path = request.path();
  std::string_view method = request.method();
  if (path.starts_with("/_fake/")) {
    std::string error;
    if (path == "/_fake/requests" && method == "GET") {
      co_await writer.send(200, "application/json", state_->requests_json());
    } else if (path == "/_fake/webhook" && method == "POST") {
      // A webhook receiver for the gateway's alerts: recorded like any request.
      state_->record(recorded(request));
      co_await writer.send(200, "application/json", R"({"ok":true})");
    } else if (path == "/_fake/requests" && method == "DELETE") {
      state_->reset();
      co_await writer.send(200, "application/json", R"({"ok":true})");
    } else if (path == "/_fake/stats") {
      co_await writer.send(200, "application/json", state_->stats_json());
    } else if (path == "/_fake/default" && method == "POST") {
      auto b = parse_behavior(std::string(request.body), error);
      if (b) state_->set_default(*b);
      // Built before the co_await: GCC 12 mishandles conditional temporaries in co_await
      // expressions (double free).
      std::string reply = b ? std::string(R"({"ok":true})") : openai_error(400, error);
      co_await writer.send(b ? 200 : 400, "application/json", reply);
    } else if (path == "/_fake/script" && method == "POST") {
      boost::system::error_code ec;
      json::value v = json::parse(request.body, ec);
      std::optional<Behavior> b;
      int times = 1;
      std::string model, contains;
      if (!ec && v.is_object() && v.as_object().contains("behavior")) {
        if (auto* c = v.as_object().if_contains("contains"); c && c->is_string())
          contains = std::string(c->as_string());
        b = parse_behavior(json::serialize(v.at("behavior")), error);
        if (auto* t = v.as_object().if_contains("times"); t && t->is_int64())
          times = static_cast<int>(t->as_int64());
        if (auto* m = v.as_object().if_contains("model"); m && m->is_string())
          model = std::string(m->as_string());
      } else {
        error = "expected {\"behavior\": {...}, \"times\": n, \"model\": \"...\"}";
      }
      if (b) state_->add_script(*b, times, model, contains);
      std::string reply = b ? std::string(R"({"ok":true})") : openai_error(400, error);
      co_await writer.send(b ? 200 : 400, "application/json", reply);
    } else {
      co_await writer.send(404, "application/json", openai_error(404, "unknown control path"));
    }
    co_return;
  }
  if (method == "POST" && (path.ends_with("/chat/completions") || path.ends_with("/messages") ||
                           path.ends_with("/responses") ||
                           path.ends_with(":generateContent") ||
                           path.ends_with(":streamGenerateContent"))) {
    co_await chat(request, writer);
    co_return;
  }
  if (method == "POST" && (path.ends_with("/embeddings") || path.ends_with(":batchEmbedContents"))) {
    co_await embeddings(request, writer);
    co_return;
  }
  if (path.ends_with("/models") && method == "GET") {
    co_await writer.send(200, "application/json",
                         R"({"object":"list","data":[{"id":"fake-model","object":"model","created":0,"owned_by":"fake"}]})");
    co_return;
  }
  co_await writer.send(404, "application/json", openai_error(404, "Unknown request URL"));
}

namespace {

enum class Wire { openai, anthropic, gemini, responses };

std::string error_for(Wire wire, int status, std::string_view message) {
  if (wire == Wire::anthropic) {
    std::string_view type = status == 400 ? "invalid_request_error"
                            : status == 401 ? "authentication_error"
                            : status == 404 ? "not_found_error"
                            : status == 429 ? "rate_limit_error"
                            : status == 529 ? "overloaded_error"
                                            : "api_error";
    return json::serialize(json::object{
        {"type", "error"}, {"error", json::object{{"type", type}, {"message", message}}}});
  }
  if (wire == Wire::gemini) {
    std::string_view st = status == 400 ? "INVALID_ARGUMENT"
                          : status == 403 ? "PERMISSION_DENIED"
                          : status == 404 ? "NOT_FOUND"
                          : status == 429 ? "RESOURCE_EXHAUSTED"
                          : status == 503 ? "UNAVAILABLE"
                                          : "INTERNAL";
    return json::serialize(json::object{
        {"error", json::object{{"code", status}, {"message", message}, {"status", st}}}});
  }
  return openai_error(status, message);
}

/// Schema keywords Gemini's API refuses in function declarations and response schemas.
std::string gemini_schema_problem(const json::value& v, const std::string& path) {
  static constexpr std::string_view kAllowed[] = {
      "type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems",
      "properties", "required", "minProperties", "maxProperties", "minLength", "maxLength",
      "pattern", "example", "anyOf", "propertyOrdering", "default", "items", "minimum", "maximum"};
  if (!v.is_object()) return path + ": schema must be an object";
  for (const auto& [k, val] : v.as_object()) {
    bool ok = false;
    for (auto a : kAllowed) ok = ok || a == k;
    if (!ok) return "Invalid JSON payload received. Unknown name \"" + std::string(k) + "\" at '" + path + "': Cannot find field.";
    if (k == "type" && !val.is_string()) return path + ".type: must be a string";
    if (k == "properties" && val.is_object()) {
      if (val.as_object().empty() ) return path + ".properties: should be non-empty for OBJECT type";
      for (const auto& [pk, pv] : val.as_object())
        if (auto p = gemini_schema_problem(pv, path + ".properties[" + std::string(pk) + "]"); !p.empty()) return p;
    }
    if (k == "items")
      if (auto p = gemini_schema_problem(val, path + ".items"); !p.empty()) return p;
    if (k == "anyOf" && val.is_array())
      for (const auto& o : val.as_array())
        if (auto p = gemini_schema_problem(o, path + ".anyOf"); !p.empty()) return p;
  }
  return {};
}

/// What the real API would refuse in this request ("" when it is acceptable).
std::string validate(Wire wire, const net::Request& request, const json::object& body) {
  if (wire == Wire::responses) {
    // OpenAI refuses members it does not know ("Unknown parameter: 'x'.").
    static constexpr std::string_view kKnown[] = {
        "model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls", "max_output_tokens",
        "temperature", "top_p", "stream", "store", "metadata", "previous_response_id", "reasoning", "text",
        "include", "truncation", "user", "service_tier", "background", "prompt_cache_key", "safety_identifier",
        "max_tool_calls", "top_logprobs", "stream_options", "prompt", "conversation", "client_metadata"};
    for (const auto& [k, v] : body) {
      bool known = false;
      for (auto name : kKnown) known = known || name == k;
      if (!known) return "Unknown parameter: '" + std::string(k) + "'.";
    }
    const auto* input = body.if_contains("input");
    if (!input || !(input->is_string() || input->is_array())) return "Missing required parameter: 'input'.";
    if (input->is_array())
      for (const auto& item : input->as_array()) {
        if (!item.is_object()) return "Invalid type for 'input[]': expected an object.";
        const json::object& o = item.as_object();
        const json::value* type = o.if_contains("type");
        if (type && type->is_string() && type->as_string() == "function_call_output" &&
            (!o.contains("call_id") || !o.contains("output")))
          return "Missing required parameter: 'input[].call_id'.";
      }
    return {};
  }
  if (wire == Wire::anthropic) {
    if (request.header("anthropic-version").empty()) return "anthropic-version: header is required";
    if (request.header("x-api-key").empty() && request.header("authorization").empty())
      return "x-api-key: header is required";
    const auto* mt = body.if_contains("max_tokens");
    if (!mt || !mt->is_int64() || mt->as_int64() < 1) return "max_tokens: Field required";
    // Beta fields need their beta named in anthropic-beta.
    static constexpr std::pair<std::string_view, std::string_view> kBetaFields[] = {
        {"context_management", "context-management-"}, {"mcp_servers", "mcp-client-"}, {"container", "code-execution-"}};
    for (const auto& [field, beta] : kBetaFields)
      if (body.contains(field) && request.header("anthropic-beta").find(beta) == std::string_view::npos)
        return std::string(field) + ": Extra inputs are not permitted";
    const auto* messages = body.if_contains("messages");
    if (!messages || !messages->is_array() || messages->as_array().empty()) return "messages: Field required";
    std::vector<std::string> open_tool_ids;
    std::size_t i = 0;
    for (const auto& m : messages->as_array()) {
      std::string path = "messages." + std::to_string(i++);
      if (!m.is_object()) return path + ": Input should be an object";
      auto role = m.as_object().if_contains("role");
      // A system message in the conversation needs its beta.
      const bool system_ok = request.header("anthropic-beta").find("mid-conversation-tool-changes") != std::string_view::npos;
      if (role && role->is_string() && role->as_string() == "system" && system_ok) continue;
      if (!role || !role->is_string() || (role->as_string() != "user" && role->as_string() != "assistant"))
        return path + ".role: Input should be 'user' or 'assistant'";
      const auto* content = m.as_object().if_contains("content");
      if (!content) return path + ".content: Field required";
      std::vector<std::string> answered;
      if (content->is_array()) {
        bool seen_other = false;
        for (const auto& b : content->as_array()) {
          std::string_view type = b.at("type").as_string();
          if (type == "text" && b.at("text").as_string().empty())
            return path + ": text content blocks must be non-empty";
          if (type == "tool_result") {
            if (role->as_string() != "user") return path + ": tool_result blocks are only allowed in user messages";
            if (seen_other) return path + ": tool_result blocks must come first in the user message";
            std::string id(b.at("tool_use_id").as_string());
            if (std::find(open_tool_ids.begin(), open_tool_ids.end(), id) == open_tool_ids.end())
              return path + ": unexpected `tool_use_id` found in `tool_result` blocks: " + id +
                     ". Each `tool_result` block must have a corresponding `tool_use` block in the previous message.";
            answered.push_back(id);
          } else {
            seen_other = true;
          }
          if (type == "thinking" && (!b.as_object().contains("signature") || b.at("signature").as_string().empty()))
            return path + ": thinking blocks need their signature";
        }
      } else if (!content->is_string()) {
        return path + ".content: Input should be a valid list";
      }
      if (role->as_string() == "user") {
        for (const auto& id : open_tool_ids)
          if (std::find(answered.begin(), answered.end(), id) == answered.end())
            return path + ": `tool_use` ids were found without `tool_result` blocks immediately after: " + id;
        open_tool_ids.clear();
      } else {
        open_tool_ids.clear();
        if (content->is_array())
          for (const auto& b : content->as_array())
            if (b.at("type").as_string() == "tool_use") open_tool_ids.emplace_back(b.at("id").as_string());
      }
    }
    if (const auto* tools = body.if_contains("tools"); tools && tools->is_array())
      for (const auto& t : tools->as_array())
        if (!t.as_object().contains("input_schema")) return "tools: input_schema: Field required";
    return {};
  }
  if (wire == Wire::gemini) {
    if (request.header("x-goog-api-key").empty()) return "API key not valid. Please pass a valid API key.";
    // Gemini 3 wants the thought signature of each step's first function call back.
    const bool gemini3 = request.path().find("/models/gemini-3") != std::string_view::npos;
    if (const auto* contents = body.if_contains("contents"); gemini3 && contents && contents->is_array()) {
      std::size_t position = 0;
      for (const auto& c : contents->as_array()) {
        ++position;
        const auto* role = c.as_object().if_contains("role");
        const auto* parts = c.as_object().if_contains("parts");
        if (!role || role->as_string() != "model" || !parts || !parts->is_array()) continue;
        for (const auto& p : parts->as_array()) {
          const auto* fc = p.as_object().if_contains("functionCall");
          if (!fc) continue;
          if (!p.as_object().contains("thoughtSignature"))
            return "Function call is missing a thought_signature in functionCall parts. This is required for tools to "
                   "work correctly, and missing thought_signature may lead to degraded model performance. Additional "
                   "data, function call `default_api:" + std::string(fc->at("name").as_string()) + "` , position " +
                   std::to_string(position) + ".";
          break;  // the step's first call carries it
        }
      }
    }
    const auto* contents = body.if_contains("contents");
    if (!contents || !contents->is_array() || contents->as_array().empty())
      return "* GenerateContentRequest.contents: contents is not specified";
    std::vector<std::string> called;
    std::size_t i = 0;
    for (const auto& c : contents->as_array()) {
      std::string path = "contents[" + std::to_string(i++) + "]";
      auto* role = c.as_object().if_contains("role");
      if (role && role->as_string() != "user" && role->as_string() != "model")
        return "Please use a valid role: user, model.";
      const auto* parts = c.as_object().if_contains("parts");
      if (!parts || !parts->is_array() || parts->as_array().empty())
        return "* GenerateContentRequest." + path + ".parts: contents.parts must not be empty.";
      for (const auto& p : parts->as_array()) {
        if (const auto* fc = p.as_object().if_contains("functionCall")) called.emplace_back(fc->at("name").as_string());
        if (const auto* fr = p.as_object().if_contains("functionResponse")) {
          std::string name(fr->at("name").as_string());
          if (std::find(called.begin(), called.end(), name) == called.end())
            return "* GenerateContentRequest." + path + ".function_response.name: no function call named " + name;
        }
      }
    }
    if (const auto* tools = body.if_contains("tools"); tools && tools->is_array())
      for (const auto& t : tools->as_array())
        if (const auto* decls = t.as_object().if_contains("functionDeclarations"))
          for (const auto& d : decls->as_array())
            if (const auto* params = d.as_object().if_contains("parameters"))
              if (auto p = gemini_schema_problem(*params, "tools[0].function_declarations[" + std::string(d.at("name").as_string()) + "].parameters"); !p.empty())
                return p;
    if (const auto* gc = body.if_contains("generationConfig"))
      if (const auto* rs = gc->as_object().if_contains("responseSchema"))
        if (auto p = gemini_schema_problem(*rs, "generation_config.response_schema"); !p.empty()) return p;
    return {};
  }
  const auto* messages = body.if_contains("messages");
  if (!messages || !messages->is_array()) return "Missing required parameter: 'messages'.";
  // OpenAI refuses members it does not know; OpenAI-compatible vendors' own ones are let through.
  static constexpr std::string_view kKnownChat[] = {
      "model", "messages", "frequency_penalty", "logit_bias", "logprobs", "top_logprobs", "max_tokens",
      "max_completion_tokens", "n", "presence_penalty", "response_format", "seed", "service_tier", "stop", "stream",
      "stream_options", "temperature", "top_p", "tools", "tool_choice", "parallel_tool_calls", "user", "functions",
      "function_call", "reasoning_effort", "metadata", "store", "modalities", "audio", "prediction",
      "web_search_options", "verbosity", "prompt_cache_key", "safety_identifier",
      // vendors (Together, Fireworks, vLLM, Mistral, DeepSeek, ...)
      "top_k", "min_p", "repetition_penalty", "safe_prompt", "random_seed", "thinking", "enable_thinking"};
  for (const auto& [k, v] : body) {
    bool known = false;
    for (auto name : kKnownChat) known = known || name == k;
    if (!known) return "Unrecognized request argument supplied: " + std::string(k);
  }
  return {};
}

/// The last user text of the conversation, in any dialect.
std::string last_user_text(Wire wire, const json::object& body, std::size_t& prompt_chars) {
  std::string last;
  auto text_of = [](const json::value& content) {
    std::string t;
    if (content.is_string()) return std::string(content.as_string());
    if (content.is_array())
      for (const auto& b : content.as_array())
        if (b.is_object() && b.as_object().contains("text") && b.at("text").is_string())
          t += b.at("text").as_string();
    return t;
  };
  if (wire == Wire::gemini) {
    if (const auto* contents = body.if_contains("contents"); contents && contents->is_array())
      for (const auto& c : contents->as_array()) {
        std::string t;
        for (const auto& p : c.at("parts").as_array())
          if (p.as_object().contains("text")) t += p.at("text").as_string();
        prompt_chars += t.size();
        if (c.as_object().contains("role") && c.at("role").as_string() == "user" && !t.empty()) last = t;
      }
    return last;
  }
  if (wire == Wire::responses) {
    // input: a string, or items (messages with a role; function_call_output answers a call).
    const json::value* input = body.if_contains("input");
    if (input && input->is_string()) {
      prompt_chars += input->as_string().size();
      return std::string(input->as_string());
    }
    if (input && input->is_array())
      for (const auto& item : input->as_array()) {
        if (!item.is_object()) continue;
        const json::object& o = item.as_object();
        if (o.contains("content") && o.contains("role")) {
          std::string t = text_of(o.at("content"));
          prompt_chars += t.size();
          if (o.at("role").is_string() && o.at("role").as_string() == "user" && !t.empty()) last = t;
        } else if (o.contains("output")) {
          prompt_chars += text_of(o.at("output")).size();
        }
      }
    return last;
  }
  if (const auto* messages = body.if_contains("messages"); messages && messages->is_array())
    for (const auto& m : messages->as_array()) {
      if (!m.is_object() || !m.as_object().contains("content")) continue;
      std::string t = text_of(m.at("content"));
      prompt_chars += t.size();
      if (m.at("role").as_string() == "user" && !t.empty()) last = t;
    }
  return last;
}

std::string sse(std::string_view event, const json::value& data) {
  std::string out;
  if (!event.empty()) {
    out += "event: ";
    out += event;
    out += "\n";
  }
  out += "data: " + json::serialize(data) + "\n\n";
  return out;
}

/// A whole answer, or a stream's events (content pieces marked for delays and cuts).
struct Plan {
  std::string whole;
  std::vector<std::string> events;
  std::vector<bool> is_piece;
  void add(std::string e, bool piece = false) {
    events.push_back(std::move(e));
    is_piece.push_back(piece);
  }
};

Plan plan_answer(Wire wire, const std::string& model, bool stream, bool include_usage,
                 const Behavior& b, const json::object& body, std::size_t loop_index,
                 std::uint64_t n) {
  Plan plan;
  std::size_t prompt_chars = 0;
  std::string said = last_user_text(wire, body, prompt_chars);
  std::string content = b.content;
  if (content.empty() && !said.empty() && b.tool_calls.empty()) content = "Hello from Switchyard's demo provider! You said: " + said;
  if (content.empty() && b.tool_calls.empty()) content = "Hello from Switchyard's demo provider!";
  std::int64_t prompt_tokens = static_cast<std::int64_t>(prompt_chars / 4 + 8);
  std::vector<std::string> pieces;
  if (!content.empty()) pieces = split_chunks(content, b.chunks);
  std::int64_t completion_tokens = 0;
  for (const auto& p : pieces) completion_tokens += p.empty() ? 0 : 1;
  completion_tokens += static_cast<std::int64_t>(content.size() / 8);
  std::int64_t reasoning_tokens = static_cast<std::int64_t>(b.reasoning.size() / 4);
  std::string finish = b.tool_calls.empty() ? b.finish_reason : std::string("tool_calls");
  std::string id = "fake-" + std::to_string(loop_index) + "-" + std::to_string(n);
  auto created = std::chrono::duration_cast<std::chrono::seconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
  auto tool_id = [&](std::size_t i) {
    return (wire == Wire::anthropic ? "toolu_" : "call_") + id + "_" + std::to_string(i);
  };
  auto parse_args = [](const std::string& a) {
    boost::system::error_code e;
    json::value v = json::parse(a, e);
    return e ? json::value(json::object{}) : v;
  };

  if (wire == Wire::openai) {
    json::object usage{{"prompt_tokens", prompt_tokens},
                       {"completion_tokens", completion_tokens + reasoning_tokens},
                       {"total_tokens", prompt_tokens + completion_tokens + reasoning_tokens},
                       {"prompt_tokens_details", json::object{{"cached_tokens", b.cached_tokens}}},
                       {"completion_tokens_details", json::object{{"reasoning_tokens", reasoning_tokens}}}};
    if (!stream) {
      json::object message{{"role", "assistant"}, {"refusal", nullptr}};
      message["content"] = content.empty() ? json::value(nullptr) : json::value(content);
      if (!b.reasoning.empty()) message["reasoning_content"] = b.reasoning;
      if (!b.tool_calls.empty()) {
        json::array calls;
        for (std::size_t i = 0; i < b.tool_calls.size(); ++i)
          calls.push_back(json::object{{"id", tool_id(i)}, {"type", "function"},
                                       {"function", json::object{{"name", b.tool_calls[i].name},
                                                                 {"arguments", b.tool_calls[i].arguments}}}});
        message["tool_calls"] = std::move(calls);
      }
      plan.whole = json::serialize(json::object{
          {"id", "chatcmpl-" + id}, {"object", "chat.completion"}, {"created", created}, {"model", model},
          {"choices", json::array{json::object{{"index", 0}, {"message", std::move(message)},
                                               {"logprobs", nullptr}, {"finish_reason", finish}}}},
          {"usage", usage}, {"system_fingerprint", "fp_fake"}});
      return plan;
    }
    auto chunk = [&](json::object delta, json::value fin) {
      json::object c{{"id", "chatcmpl-" + id}, {"object", "chat.completion.chunk"}, {"created", created},
                     {"model", model}, {"system_fingerprint", "fp_fake"},
                     {"choices", json::array{json::object{{"index", 0}, {"delta", std::move(delta)},
                                                          {"logprobs", nullptr},
                                                          {"finish_reason", std::move(fin)}}}}};
      if (include_usage) c["usage"] = nullptr;
      return "data: " + json::serialize(c) + "\n\n";
    };
    plan.add(chunk(json::object{{"role", "assistant"}, {"content", ""}, {"refusal", nullptr}}, nullptr));
    if (!b.reasoning.empty()) plan.add(chunk(json::object{{"reasoning_content", b.reasoning}}, nullptr));
    for (const auto& piece : pieces) plan.add(chunk(json::object{{"content", piece}}, nullptr), true);
    for (std::size_t i = 0; i < b.tool_calls.size(); ++i) {
      // The name first, then the arguments in two pieces, as OpenAI streams them.
      const auto& call = b.tool_calls[i];
      json::object start{{"index", i}, {"id", tool_id(i)}, {"type", "function"},
                         {"function", json::object{{"name", call.name}, {"arguments", ""}}}};
      plan.add(chunk(json::object{{"tool_calls", json::array{start}}}, nullptr));
      std::size_t half = call.arguments.size() / 2;
      for (const std::string& piece : {call.arguments.substr(0, half), call.arguments.substr(half)}) {
        if (piece.empty()) continue;
        json::object d{{"index", i}, {"function", json::object{{"arguments", piece}}}};
        plan.add(chunk(json::object{{"tool_calls", json::array{d}}}, nullptr));
      }
    }
    plan.add(chunk(json::object{}, json::string(finish)));
    if (include_usage) {
      json::object u{{"id", "chatcmpl-" + id}, {"object", "chat.completion.chunk"}, {"created", created},
                     {"model", model}, {"system_fingerprint", "fp_fake"}, {"choices", json::array{}},
                     {"usage", usage}};
      plan.add("data: " + json::serialize(u) + "\n\n");
    }
    plan.add("data: [DONE]\n\n");
    return plan;
  }

  if (wire == Wire::responses) {
    // The Responses API: a Response object, or its typed events (each with a sequence number).
    json::object usage{{"input_tokens", prompt_tokens},
                       {"input_tokens_details", json::object{{"cached_tokens", b.cached_tokens}}},
                       {"output_tokens", completion_tokens + reasoning_tokens},
                       {"output_tokens_details", json::object{{"reasoning_tokens", reasoning_tokens}}},
                       {"total_tokens", prompt_tokens + completion_tokens + reasoning_tokens}};
    const std::string resp_id = "resp_" + id;
    json::array output;
    if (!b.reasoning.empty())
      output.push_back(json::object{{"type", "reasoning"}, {"id", "rs_" + id},
                                    {"summary", json::array{json::object{{"type", "summary_text"}, {"text", b.reasoning}}}}});
    if (!content.empty())
      output.push_back(json::object{
          {"type", "message"}, {"id", "msg_" + id}, {"status", "completed"}, {"role", "assistant"},
          {"content", json::array{json::object{{"type", "output_text"}, {"text", content}, {"annotations", json::array{}}}}}});
    for (std::size_t i = 0; i < b.tool_calls.size(); ++i)
      output.push_back(json::object{{"type", "function_call"}, {"id", "fc_" + id + "_" + std::to_string(i)},
                                    {"call_id", tool_id(i)}, {"name", b.tool_calls[i].name},
                                    {"arguments", b.tool_calls[i].arguments}, {"status", "completed"}});
    const bool incomplete = finish == "length";
    auto response = [&](std::string_view status, bool with_output) {
      return json::object{{"id", resp_id}, {"object", "response"}, {"created_at", created}, {"status", status},
                          {"model", model}, {"output", with_output ? output : json::array{}},
                          {"error", nullptr},
                          {"incomplete_details", incomplete && with_output
                                                     ? json::value(json::object{{"reason", "max_output_tokens"}})
                                                     : json::value(nullptr)},
                          {"usage", with_output ? json::value(usage) : json::value(nullptr)}};
    };
    if (!stream) {
      plan.whole = json::serialize(response(incomplete ? "incomplete" : "completed", true));
      return plan;
    }
    int seq = 0;
    auto event = [&](std::string_view type, json::object data, bool piece = false) {
      data["type"] = type;
      data["sequence_number"] = seq++;
      plan.add(sse(type, data), piece);
    };
    event("response.created", json::object{{"response", response("in_progress", false)}});
    event("response.in_progress", json::object{{"response", response("in_progress", false)}});
    std::size_t index = 0;
    if (!b.reasoning.empty()) {
      json::object item = output[index].as_object();
      event("response.output_item.added",
            json::object{{"output_index", index}, {"item", json::object{{"type", "reasoning"}, {"id", "rs_" + id}, {"summary", json::array{}}}}});
      event("response.reasoning_summary_text.delta",
            json::object{{"item_id", "rs_" + id}, {"output_index", index}, {"summary_index", 0}, {"delta", b.reasoning}});
      event("response.output_item.done", json::object{{"output_index", index}, {"item", item}});
      ++index;
    }
    if (!content.empty()) {
      const std::string item_id = "msg_" + id;
      event("response.output_item.added",
            json::object{{"output_index", index},
                         {"item", json::object{{"type", "message"}, {"id", item_id}, {"status", "in_progress"},
                                               {"role", "assistant"}, {"content", json::array{}}}}});
      event("response.content_part.added",
            json::object{{"item_id", item_id}, {"output_index", index}, {"content_index", 0},
                         {"part", json::object{{"type", "output_text"}, {"text", ""}, {"annotations", json::array{}}}}});
      for (const auto& piece : pieces)
        event("response.output_text.delta",
              json::object{{"item_id", item_id}, {"output_index", index}, {"content_index", 0}, {"delta", piece},
                           {"logprobs", json::array{}}},
              true);
      event("response.output_text.done",
            json::object{{"item_id", item_id}, {"output_index", index}, {"content_index", 0}, {"text", content}});
      event("response.output_item.done", json::object{{"output_index", index}, {"item", output[index]}});
      ++index;
    }
    for (std::size_t i = 0; i < b.tool_calls.size(); ++i, ++index) {
      const auto& call = b.tool_calls[i];
      const std::string item_id = "fc_" + id + "_" + std::to_string(i);
      event("response.output_item.added",
            json::object{{"output_index", index},
                         {"item", json::object{{"type", "function_call"}, {"id", item_id}, {"call_id", tool_id(i)},
                                               {"name", call.name}, {"arguments", ""}, {"status", "in_progress"}}}});
      std::size_t half = call.arguments.size() / 2;
      for (const std::string& piece : {call.arguments.substr(0, half), call.arguments.substr(half)})
        if (!piece.empty())
          event("response.function_call_arguments.delta",
                json::object{{"item_id", item_id}, {"output_index", index}, {"delta", piece}});
      event("response.function_call_arguments.done",
            json::object{{"item_id", item_id}, {"output_index", index}, {"arguments", call.arguments}});
      event("response.output_item.done", json::object{{"output_index", index}, {"item", output[index]}});
    }
    event(incomplete ? "response.incomplete" : "response.completed",
          json::object{{"response", response(incomplete ? "incomplete" : "completed", true)}});
    return plan;
  }

  if (wire == Wire::anthropic) {
    std::string stop_reason = !b.tool_calls.empty() ? "tool_use"
                              : finish == "length"  ? "max_tokens"
                                                    : "end_turn";
    std::string signature = "sig_" + id;
    json::object usage{{"input_tokens", prompt_tokens},
                       {"cache_creation_input_tokens", b.cache_write_tokens},
                       {"cache_read_input_tokens", b.cached_tokens},
                       {"cache_creation", json::object{{"ephemeral_5m_input_tokens",
                                                        b.cache_write_tokens - b.cache_write_1h_tokens},
                                                       {"ephemeral_1h_input_tokens", b.cache_write_1h_tokens}}},
                       {"output_tokens", completion_tokens + reasoning_tokens}};
    if (!stream) {
      json::array blocks;
      if (!b.reasoning.empty())
        blocks.push_back(json::object{{"type", "thinking"}, {"thinking", b.reasoning}, {"signature", signature}});
      if (!content.empty()) blocks.push_back(json::object{{"type", "text"}, {"text", content}});
      for (std::size_t i = 0; i < b.tool_calls.size(); ++i)
        blocks.push_back(json::object{{"type", "tool_use"}, {"id", tool_id(i)}, {"name", b.tool_calls[i].name},
                                      {"input", parse_args(b.tool_calls[i].arguments)}});
      plan.whole = json::serialize(json::object{
          {"id", "msg_" + id}, {"type", "message"}, {"role", "assistant"}, {"model", model},
          {"content", std::move(blocks)}, {"stop_reason", stop_reason}, {"stop_sequence", nullptr},
          {"usage", usage}});
      return plan;
    }
    json::object start_usage = usage;
    start_usage["output_tokens"] = 1;
    plan.add(sse("message_start", json::object{
        {"type", "message_start"},
        {"message", json::object{{"id", "msg_" + id}, {"type", "message"}, {"role", "assistant"},
                                 {"model", model}, {"content", json::array{}}, {"stop_reason", nullptr},
                                 {"stop_sequence", nullptr}, {"usage", start_usage}}}}));
    plan.add(sse("ping", json::object{{"type", "ping"}}));
    int index = 0;
    auto block_start = [&](json::object block) {
      return sse("content_block_start", json::object{{"type", "content_block_start"}, {"index", index}, {"content_block", std::move(block)}});
    };
    auto block_delta = [&](json::object delta) {
      return sse("content_block_delta", json::object{{"type", "content_block_delta"}, {"index", index}, {"delta", std::move(delta)}});
    };
    auto block_stop = [&]() {
      return sse("content_block_stop", json::object{{"type", "content_block_stop"}, {"index", index}});
    };
    if (!b.reasoning.empty()) {
      plan.add(block_start(json::object{{"type", "thinking"}, {"thinking", ""}, {"signature", ""}}));
      plan.add(block_delta(json::object{{"type", "thinking_delta"}, {"thinking", b.reasoning}}));
      plan.add(block_delta(json::object{{"type", "signature_delta"}, {"signature", signature}}));
      plan.add(block_stop());
      ++index;
    }
    if (!pieces.empty()) {
      plan.add(block_start(json::object{{"type", "text"}, {"text", ""}}));
      for (const auto& piece : pieces)
        plan.add(block_delta(json::object{{"type", "text_delta"}, {"text", piece}}), true);
      plan.add(block_stop());
      ++index;
    }
    for (std::size_t i = 0; i < b.tool_calls.size(); ++i) {
      const auto& call = b.tool_calls[i];
      plan.add(block_start(json::object{{"type", "tool_use"}, {"id", tool_id(i)}, {"name", call.name}, {"input", json::object{}}}));
      // An empty first delta, then the arguments in pieces, as Anthropic streams them.
      std::size_t third = call.arguments.size() / 3;
      for (const std::string& piece : {std::string(), call.arguments.substr(0, third), call.arguments.substr(third)})
        plan.add(block_delta(json::object{{"type", "input_json_delta"}, {"partial_json", piece}}));
      plan.add(block_stop());
      ++index;
    }
    plan.add(sse("message_delta", json::object{
        {"type", "message_delta"},
        {"delta", json::object{{"stop_reason", stop_reason}, {"stop_sequence", nullptr}}},
        {"usage", json::object{{"output_tokens", completion_tokens + reasoning_tokens}}}}));
    plan.add(sse("message_stop", json::object{{"type", "message_stop"}}));
    return plan;
  }

  // Gemini
  std::string finish_reason = finish == "length" ? "MAX_TOKENS" : "STOP";
  json::object usage{{"promptTokenCount", prompt_tokens},
                     {"candidatesTokenCount", completion_tokens},
                     {"totalTokenCount", prompt_tokens + completion_tokens + reasoning_tokens}};
  if (reasoning_tokens) usage["thoughtsTokenCount"] = reasoning_tokens;
  if (b.cached_tokens) usage["cachedContentTokenCount"] = b.cached_tokens;
  auto call_parts = [&]() {
    json::array parts;
    for (std::size_t i = 0; i < b.tool_calls.size(); ++i) {
      json::object part{{"functionCall", json::object{{"name", b.tool_calls[i].name}, {"args", parse_args(b.tool_calls[i].arguments)}}}};
      if (i == 0) part["thoughtSignature"] = "gsig_" + id;
      parts.push_back(std::move(part));
    }
    return parts;
  };
  auto response = [&](json::array parts, bool last) {
    json::object candidate{{"content", json::object{{"role", "model"}, {"parts", std::move(parts)}}}, {"index", 0}};
    if (last) candidate["finishReason"] = finish_reason;
    json::object r{{"candidates", json::array{std::move(candidate)}}, {"modelVersion", model}, {"responseId", "resp_" + id}};
    r["usageMetadata"] = usage;
    return r;
  };
  if (!stream) {
    json::array parts;
    if (!b.reasoning.empty()) parts.push_back(json::object{{"text", b.reasoning}, {"thought", true}});
    if (!content.empty()) parts.push_back(json::object{{"text", content}});
    for (auto& p : call_parts()) parts.push_back(p);
    plan.whole = json::serialize(response(std::move(parts), true));
    return plan;
  }
  if (!b.reasoning.empty())
    plan.add(sse({}, response(json::array{json::object{{"text", b.reasoning}, {"thought", true}}}, false)));
  for (std::size_t i = 0; i < pieces.size(); ++i) {
    bool last = i + 1 == pieces.size() && b.tool_calls.empty();
    plan.add(sse({}, response(json::array{json::object{{"text", pieces[i]}}}, last)), true);
  }
  if (!b.tool_calls.empty() || pieces.empty()) plan.add(sse({}, response(call_parts(), true)));
  return plan;
}

}  // namespace

/// What the fake keeps of a request for `/_fake/requests`.
static RecordedRequest recorded(const net::Request& request) {
  RecordedRequest rec;
  rec.method = std::string(request.method());
  rec.path = std::string(request.target());
  for (std::size_t i = 0; i < request.head->header_count; ++i)
    rec.headers.emplace_back(std::string(request.head->header(i).name),
                             std::string(request.head->header(i).value));
  rec.body = std::string(request.body);
  return rec;
}

net::Task<> FakeProvider::chat(net::Request& request, net::ResponseWriter& writer) {
  state_->record(recorded(request));

  std::string_view path = request.path();
  Wire wire = path.ends_with("/messages")           ? Wire::anthropic
              : path.ends_with("/chat/completions") ? Wire::openai
              : path.ends_with("/responses")        ? Wire::responses
                                                    : Wire::gemini;
  boost::system::error_code ec;
  json::value parsed = json::parse(request.body, ec);
  if (ec || !parsed.is_object()) {
    std::string err = error_for(wire, 400, "We could not parse the JSON body of your request.");
    co_await writer.send(400, "application/json", err);
    co_return;
  }
  const json::object& body = parsed.as_object();
  std::string model;
  if (wire == Wire::gemini) {
    // /v1beta/models/{model}:generateContent
    std::string_view p = path.substr(path.find("/models/") + 8);
    model = std::string(p.substr(0, p.find(':')));
  } else if (body.contains("model") && body.at("model").is_string()) {
    model = std::string(body.at("model").as_string());
  }
  bool stream = wire == Wire::gemini ? path.ends_with(":streamGenerateContent")
                                     : body.contains("stream") && body.at("stream").is_bool() &&
                                           body.at("stream").as_bool();
  bool include_usage = false;
  if (auto* so = body.if_contains("stream_options"); so && so->is_object())
    if (auto* iu = so->as_object().if_contains("include_usage"); iu && iu->is_bool())
      include_usage = iu->as_bool();

  std::string problem;
  try {
    problem = validate(wire, request, body);
  } catch (const std::exception& e) {
    problem = std::string("malformed request: ") + e.what();
  }
  if (!problem.empty()) {
    std::string err = error_for(wire, 400, problem);
    co_await writer.send(400, "application/json", err);
    co_return;
  }

  Behavior b = state_->next_behavior(model, request.body);
  co_await sleep(b.latency_ms);
  if (b.reset) {
    writer.abort();
    co_return;
  }
  std::vector<net::HeaderField> headers;
  for (const auto& [k, v] : b.headers) headers.push_back({k, v});
  if (b.status != 200) {
    std::string err = b.error_body.empty() ? error_for(wire, b.status, "Scripted failure from the fake provider.")
                                           : b.error_body;
    co_await writer.send(b.status, "application/json", err, headers);
    co_return;
  }
  if (b.malformed) {
    co_await writer.send(200, "application/json", R"({"id":"chatcmpl-broken","choices":[{"mess)", headers);
    co_return;
  }

  Plan plan = plan_answer(wire, model, stream, include_usage, b, body, loop_.index(), ++counter_);
  if (!stream && b.cut_body) {
    if (co_await writer.start_stream(200, "application/json", headers))
      co_await writer.write_chunk(std::string_view(plan.whole).substr(0, plan.whole.size() / 2));
    writer.abort();
    co_return;
  }
  if (!stream && b.trickle_ms) {
    // A slow upstream that is not stalled: bytes keep coming, few at a time.
    bool ok = co_await writer.start_stream(200, "application/json", headers) && co_await writer.flush();
    for (std::size_t at = 0; ok && at < plan.whole.size(); at += 16) {
      co_await sleep(b.trickle_ms);
      ok = co_await writer.write_chunk(std::string_view(plan.whole).substr(at, 16));
    }
    if (ok) co_await writer.end_stream();
    co_return;
  }
  if (!stream) {
    co_await writer.send(200, "application/json", plan.whole, headers);
    co_return;
  }
  // The head goes out at once, as real providers send it, before the time to first token.
  if (!co_await writer.start_stream(200, "text/event-stream; charset=utf-8", headers) ||
      !co_await writer.flush()) {
    state_->stream_finished(true);
    co_return;
  }
  co_await sleep(b.ttft_ms);
  bool ok = true;
  int pieces_sent = 0;
  for (std::size_t i = 0; ok && i < plan.events.size(); ++i) {
    // malformed_after / error_after 0: before any event (the role chunk included).
    if (plan.is_piece[i] || (i == 0 && (b.malformed_after == 0 || b.error_after == 0))) {
      if (b.cut_after_chunks >= 0 && pieces_sent >= b.cut_after_chunks) {
        writer.abort();
        state_->stream_finished(true);
        co_return;
      }
      if (pieces_sent == b.malformed_after || pieces_sent == b.error_after) {
        // A broken line, or the API's own error event mid-stream (each dialect's shape); then
        // the stream ends, as a provider's would.
        std::string last = pieces_sent == b.malformed_after
                               ? std::string("data: {\"id\":\"chatcmpl-broken\",\"choices\":[{\"del\n\n")
                           : wire == Wire::responses
                               ? std::string("event: error\ndata: {\"type\":\"error\",\"code\":\"server_error\","
                                             "\"message\":\"The server had an error.\",\"param\":null,"
                                             "\"sequence_number\":99}\n\n")
                           : wire == Wire::anthropic
                               ? std::string("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":"
                                             "\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n")
                               : std::string("data: {\"error\":{\"message\":\"The server had an error while "
                                             "processing your request.\",\"type\":\"server_error\",\"param\":null,"
                                             "\"code\":null}}\n\n");
        ok = co_await writer.write_chunk(last);
        if (ok) ok = co_await writer.end_stream();
        state_->stream_finished(!ok);
        co_return;
      }
      if (pieces_sent > 0) co_await sleep(b.chunk_delay_ms);
      else if (b.content_delay_ms) {
        // What came so far (a role chunk, a message_start) reaches the client before the wait.
        if (!co_await writer.flush()) {
          ok = false;
          break;
        }
        co_await sleep(b.content_delay_ms);
      }
      ++pieces_sent;
    }
    ok = co_await writer.write_chunk(plan.events[i]);
  }
  if (ok) ok = co_await writer.end_stream();
  state_->stream_finished(!ok);
}

namespace {

/// The fake's embeddings answer (OpenAI or Gemini batchEmbedContents).
std::string embeddings_reply(std::string_view path, std::string_view body_text, int& status) {
  bool gemini = path.ends_with(":batchEmbedContents");
  boost::system::error_code ec;
  json::value parsed = json::parse(body_text, ec);
  Wire wire = gemini ? Wire::gemini : Wire::openai;
  if (ec || !parsed.is_object()) {
    status = 400;
    return error_for(wire, 400, "We could not parse the JSON body of your request.");
  }
  // A text's embedding: 4 numbers derived from it, so tests can tell inputs apart.
  auto vector_of = [](std::string_view text) {
    json::array v;
    v.push_back(static_cast<double>(text.size()));
    v.push_back(text.empty() ? 0.0 : static_cast<double>(static_cast<unsigned char>(text[0])));
    v.push_back(0.5);
    v.push_back(-0.25);
    return v;
  };
  std::string reply;
  status = 200;
  if (gemini) {
    json::array out;
    for (const auto& r : parsed.at("requests").as_array())
      out.push_back(json::object{{"values", vector_of(r.at("content").at("parts").at(0).at("text").as_string())}});
    reply = json::serialize(json::object{{"embeddings", std::move(out)}});
  } else {
    const json::object& o = parsed.as_object();
    std::vector<std::string> inputs;
    const json::value& input = o.at("input");
    if (input.is_string()) inputs.emplace_back(input.as_string());
    else
      for (const auto& v : input.as_array()) inputs.emplace_back(v.is_string() ? std::string(v.as_string()) : json::serialize(v));
    bool base64 = o.contains("encoding_format") && o.at("encoding_format").as_string() == "base64";
    json::array data;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      json::array v = vector_of(inputs[i]);
      json::value embedding = v;
      if (base64) {
        std::string bytes;
        for (const auto& x : v) {
          float f = static_cast<float>(x.as_double());
          bytes.append(reinterpret_cast<const char*>(&f), 4);
        }
        std::string b64;
        b64.resize(boost::beast::detail::base64::encoded_size(bytes.size()));
        b64.resize(boost::beast::detail::base64::encode(b64.data(), bytes.data(), bytes.size()));
        embedding = json::string(b64);
      }
      data.push_back(json::object{{"object", "embedding"}, {"index", i}, {"embedding", embedding}});
    }
    reply = json::serialize(json::object{{"object", "list"}, {"data", std::move(data)},
                                         {"model", o.at("model")},
                                         {"usage", json::object{{"prompt_tokens", 8}, {"total_tokens", 8}}}});
  }
  return reply;
}

}  // namespace

net::Task<> FakeProvider::embeddings(net::Request& request, net::ResponseWriter& writer) {
  state_->record(recorded(request));
  int status = 200;
  std::string reply = embeddings_reply(request.path(), request.body, status);
  co_await writer.send(status, "application/json", reply);
}

}  // namespace switchyard::testing
