#include "testing/fake_provider.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
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
  for (const auto& [key, val] : v.as_object()) {
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
    else if (key == "ttft_ms") as_uint(b.ttft_ms);
    else if (key == "chunk_delay_ms") as_uint(b.chunk_delay_ms);
    else if (key == "chunks") as_int(b.chunks);
    else if (key == "content") as_string(b.content);
    else if (key == "reset") as_bool(b.reset);
    else if (key == "cut_after_chunks") as_int(b.cut_after_chunks);
    else if (key == "malformed") as_bool(b.malformed);
    else if (key == "error_body") as_string(b.error_body);
    else if (key == "finish_reason") as_string(b.finish_reason);
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

Behavior FakeProviderState::next_behavior(const std::string& model) {
  std::lock_guard lock(mutex_);
  ++request_count_;
  for (auto it = scripts_.begin(); it != scripts_.end(); ++it) {
    if (!it->model.empty() && it->model != model) continue;
    Behavior b = it->behavior;
    if (--it->times <= 0) scripts_.erase(it);
    return b;
  }
  return default_;
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

void FakeProviderState::add_script(Behavior b, int times, std::string model) {
  std::lock_guard lock(mutex_);
  scripts_.push_back({std::move(b), std::max(1, times), std::move(model)});
}

void FakeProviderState::stream_finished(bool aborted) {
  std::lock_guard lock(mutex_);
  (aborted ? aborted_streams_ : completed_streams_)++;
}

FakeProvider::FakeProvider(net::Loop& loop, std::shared_ptr<FakeProviderState> state)
    : loop_(loop), state_(std::move(state)) {}

asio::awaitable<void> FakeProvider::sleep(std::uint32_t ms) {
  if (ms == 0) co_return;
  asio::steady_timer timer(loop_.io(), std::chrono::milliseconds(ms));
  co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
}

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

asio::awaitable<void> FakeProvider::handle(net::Request request, net::ResponseWriter& writer) {
  std::string_view path = request.path();
  std::string_view method = request.method();
  if (path.starts_with("/_fake/")) {
    std::string error;
    if (path == "/_fake/requests" && method == "GET") {
      co_await writer.send(200, "application/json", state_->requests_json());
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
      std::string model;
      if (!ec && v.is_object() && v.as_object().contains("behavior")) {
        b = parse_behavior(json::serialize(v.at("behavior")), error);
        if (auto* t = v.as_object().if_contains("times"); t && t->is_int64())
          times = static_cast<int>(t->as_int64());
        if (auto* m = v.as_object().if_contains("model"); m && m->is_string())
          model = std::string(m->as_string());
      } else {
        error = "expected {\"behavior\": {...}, \"times\": n, \"model\": \"...\"}";
      }
      if (b) state_->add_script(*b, times, model);
      std::string reply = b ? std::string(R"({"ok":true})") : openai_error(400, error);
      co_await writer.send(b ? 200 : 400, "application/json", reply);
    } else {
      co_await writer.send(404, "application/json", openai_error(404, "unknown control path"));
    }
    co_return;
  }
  if (path.ends_with("/chat/completions") && method == "POST") {
    co_await chat(request, writer);
    co_return;
  }
  if (path.ends_with("/models") && method == "GET") {
    co_await writer.send(200, "application/json",
                         R"({"object":"list","data":[{"id":"fake-model","object":"model","created":0,"owned_by":"fake"}]})");
    co_return;
  }
  co_await writer.send(404, "application/json", openai_error(404, "Unknown request URL"));
}

asio::awaitable<void> FakeProvider::chat(net::Request& request, net::ResponseWriter& writer) {
  RecordedRequest rec;
  rec.method = std::string(request.method());
  rec.path = std::string(request.target());
  for (std::size_t i = 0; i < request.head->header_count; ++i)
    rec.headers.emplace_back(std::string(request.head->headers[i].name),
                             std::string(request.head->headers[i].value));
  rec.body = std::string(request.body);
  state_->record(rec);

  boost::system::error_code ec;
  json::value parsed = json::parse(request.body, ec);
  if (ec || !parsed.is_object()) {
    co_await writer.send(400, "application/json", openai_error(400, "We could not parse the JSON body of your request."));
    co_return;
  }
  const json::object& body = parsed.as_object();
  std::string model = body.contains("model") && body.at("model").is_string()
                          ? std::string(body.at("model").as_string())
                          : "";
  bool stream = body.contains("stream") && body.at("stream").is_bool() && body.at("stream").as_bool();
  bool include_usage = false;
  if (auto* so = body.if_contains("stream_options"); so && so->is_object())
    if (auto* iu = so->as_object().if_contains("include_usage"); iu && iu->is_bool())
      include_usage = iu->as_bool();

  Behavior b = state_->next_behavior(model);
  co_await sleep(b.latency_ms);
  if (b.reset) {
    writer.abort();
    co_return;
  }
  std::vector<net::HeaderField> headers;
  for (const auto& [k, v] : b.headers) headers.push_back({k, v});
  if (b.status != 200) {
    std::string err = b.error_body.empty() ? openai_error(b.status, "Scripted failure from the fake provider.")
                                           : b.error_body;
    co_await writer.send(b.status, "application/json", err, headers);
    co_return;
  }
  if (b.malformed) {
    co_await writer.send(200, "application/json", R"({"id":"chatcmpl-broken","choices":[{"mess)", headers);
    co_return;
  }

  std::string content = b.content;
  std::size_t prompt_chars = 0;
  if (auto* messages = body.if_contains("messages"); messages && messages->is_array()) {
    for (const auto& m : messages->as_array()) {
      if (!m.is_object()) continue;
      const auto* c = m.as_object().if_contains("content");
      if (c && c->is_string()) {
        prompt_chars += c->as_string().size();
        if (b.content.empty() && m.as_object().contains("role") &&
            m.at("role").is_string() && m.at("role").as_string() == "user")
          content = "Hello from Switchyard's demo provider! You said: " + std::string(c->as_string());
      }
    }
  }
  if (content.empty()) content = "Hello from Switchyard's demo provider!";
  std::int64_t prompt_tokens = static_cast<std::int64_t>(prompt_chars / 4 + 8);
  std::vector<std::string> pieces = split_chunks(content, b.chunks);
  std::int64_t completion_tokens = 0;
  for (const auto& p : pieces) completion_tokens += p.empty() ? 0 : 1;
  completion_tokens += static_cast<std::int64_t>(content.size() / 8);
  json::object usage{{"prompt_tokens", prompt_tokens},
                     {"completion_tokens", completion_tokens},
                     {"total_tokens", prompt_tokens + completion_tokens},
                     {"prompt_tokens_details", json::object{{"cached_tokens", 0}}},
                     {"completion_tokens_details", json::object{{"reasoning_tokens", 0}}}};
  std::string id = "chatcmpl-fake-" + std::to_string(loop_.index()) + "-" + std::to_string(++counter_);
  auto created = std::chrono::duration_cast<std::chrono::seconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();

  if (!stream) {
    json::object response{
        {"id", id},
        {"object", "chat.completion"},
        {"created", created},
        {"model", model},
        {"choices", json::array{json::object{
                        {"index", 0},
                        {"message", json::object{{"role", "assistant"}, {"content", content}, {"refusal", nullptr}}},
                        {"logprobs", nullptr},
                        {"finish_reason", b.finish_reason}}}},
        {"usage", usage},
        {"system_fingerprint", "fp_fake"}};
    co_await writer.send(200, "application/json", json::serialize(response), headers);
    co_return;
  }

  // The head goes out at once, as real providers send it, before the time to first token.
  if (!co_await writer.start_stream(200, "text/event-stream; charset=utf-8", headers) ||
      !co_await writer.flush()) {
    state_->stream_finished(true);
    co_return;
  }
  auto chunk = [&](json::object delta, json::value finish, bool with_usage_null) {
    json::object c{{"id", id},
                   {"object", "chat.completion.chunk"},
                   {"created", created},
                   {"model", model},
                   {"system_fingerprint", "fp_fake"},
                   {"choices", json::array{json::object{{"index", 0},
                                                        {"delta", std::move(delta)},
                                                        {"logprobs", nullptr},
                                                        {"finish_reason", std::move(finish)}}}}};
    if (with_usage_null) c["usage"] = nullptr;
    return "data: " + json::serialize(c) + "\n\n";
  };
  co_await sleep(b.ttft_ms);
  json::object first_delta{{"role", "assistant"}, {"content", ""}, {"refusal", nullptr}};
  std::string first = chunk(std::move(first_delta), nullptr, include_usage);
  bool ok = co_await writer.write_chunk(first);
  int sent = 0;
  for (std::size_t i = 0; ok && i < pieces.size(); ++i) {
    if (b.cut_after_chunks >= 0 && sent >= b.cut_after_chunks) {
      writer.abort();
      state_->stream_finished(true);
      co_return;
    }
    if (i > 0) co_await sleep(b.chunk_delay_ms);
    json::object delta{{"content", pieces[i]}};
    std::string event = chunk(std::move(delta), nullptr, include_usage);
    ok = co_await writer.write_chunk(event);
    ++sent;
  }
  std::string last = chunk(json::object{}, json::string(b.finish_reason), include_usage);
  if (ok) ok = co_await writer.write_chunk(last);
  if (ok && include_usage) {
    json::object u{{"id", id}, {"object", "chat.completion.chunk"}, {"created", created},
                   {"model", model}, {"system_fingerprint", "fp_fake"}, {"choices", json::array{}},
                   {"usage", usage}};
    std::string usage_event = "data: " + json::serialize(u) + "\n\n";
    ok = co_await writer.write_chunk(usage_event);
  }
  if (ok) ok = co_await writer.write_chunk(std::string_view("data: [DONE]\n\n"));
  if (ok) ok = co_await writer.end_stream();
  state_->stream_finished(!ok);
}

}  // namespace switchyard::testing
