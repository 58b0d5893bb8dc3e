// The real gateway translating between dialects, against the fake provider speaking Anthropic,
// Gemini and OpenAI (and checking requests the way those APIs do).
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <chrono>
#include <thread>

#include "core/money.hpp"
#include "harness.hpp"

using harness::Fake;
using harness::Gateway;
using harness::Response;
namespace json = boost::json;

namespace {

const std::string kKey = "sk-test-client-key";

std::string config(int port, const std::string& provider_extra = "") {
  std::string p = std::to_string(port);
  // Translation tests script upstream errors one after another: no circuit breaking between them.
  return "server:\n  host: 127.0.0.1\n  port: 0\n  threads: 1\n  access_log: stdout\n"
         "health:\n  circuit_breaking: false\n"
         "providers:\n"
         "  oa:\n    type: openai\n    base_url: http://127.0.0.1:" + p + "/v1\n    api_key: sk-oa\n"
         "  an:\n    type: anthropic\n    base_url: http://127.0.0.1:" + p + "/v1\n    api_key: sk-an\n" + provider_extra +
         "  ge:\n    type: gemini\n    base_url: http://127.0.0.1:" + p + "/v1beta\n    api_key: sk-ge\n"
         "  ds:\n    type: deepseek\n    base_url: http://127.0.0.1:" + p + "/v1\n    api_key: sk-ds\n"
         "  mi:\n    type: mistral\n    base_url: http://127.0.0.1:" + p + "/v1\n    api_key: sk-mi\n"
         "  az:\n    type: azure\n    base_url: http://127.0.0.1:" + p + "\n    api_key: sk-az\n    api_version: 2024-10-21\n"
         "deployments:\n"
         "  oa-d: {provider: oa, model: gpt-test}\n"
         "  an-d: {provider: an, model: claude-sonnet-4-5}\n"
         "  ge-d: {provider: ge, model: gemini-2.5-flash}\n"
         "  mi-d: {provider: mi, model: mistral-small}\n"
         "  ds-d: {provider: ds, model: deepseek-reasoner}\n"
         "  az-d: {provider: az, model: my-gpt-deployment}\n"
         "  ge-embed: {provider: ge, model: text-embedding-004}\n"
         "routes:\n"
         "  oa: {candidates: [oa-d]}\n  an: {candidates: [an-d]}\n  ge: {candidates: [ge-d]}\n"
         "  mi: {candidates: [mi-d]}\n  ds: {candidates: [ds-d]}\n  az: {candidates: [az-d]}\n  an-then-ge: {candidates: [an-d, ge-d]}\n"
         "  embed: {candidates: [ge-embed]}\n"
         "keys:\n  - name: tester\n    sha256: " + harness::sha256_hex(kKey) + "\n    routes: [\"*\"]\n";
}

std::map<std::string, std::string> openai_auth() {
  return {{"Authorization", "Bearer " + kKey}, {"Content-Type", "application/json"}};
}
std::map<std::string, std::string> anthropic_auth() {
  return {{"x-api-key", kKey}, {"anthropic-version", "2023-06-01"}, {"Content-Type", "application/json"}};
}

json::object last_request(Fake& fake) {
  json::array all = json::parse(fake.requests_json()).as_array();
  return all.back().as_object();
}

bool harness_iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string header_of(const json::object& rec, std::string_view name) {
  for (const auto& h : rec.at("headers").as_object())
    if (harness_iequals(h.key(), name)) return std::string(h.value().as_string());
  return {};
}

class TranslateTest : public ::testing::Test {
 protected:
  Fake fake_;
};

TEST_F(TranslateTest, OpenAIClientServedByAnthropicAndGemini) {
  Gateway gw(config(fake_.port()));
  for (std::string route : {"an", "ge"}) {
    Response r = harness::http(gw.port(), "POST", "/v1/chat/completions", openai_auth(),
                               R"({"model":")" + route + R"(","max_tokens":50,"messages":[{"role":"system","content":"S"},{"role":"user","content":"hi"}]})");
    ASSERT_EQ(r.status, 200) << r.body;
    json::value v = json::parse(r.body);
    EXPECT_EQ(v.at("object").as_string(), "chat.completion");
    EXPECT_EQ(v.at("choices").at(0).at("message").at("content").as_string(),
              "Hello from Switchyard's demo provider! You said: hi");
    EXPECT_EQ(v.at("choices").at(0).at("finish_reason").as_string(), "stop");
    EXPECT_GT(v.at("usage").at("prompt_tokens").as_int64(), 0);
    json::object rec = last_request(fake_);
    json::value sent = json::parse(rec.at("body").as_string());
    if (route == "an") {
      EXPECT_EQ(rec.at("path").as_string(), "/v1/messages");
      EXPECT_EQ(header_of(rec, "x-api-key"), "sk-an");
      EXPECT_EQ(header_of(rec, "anthropic-version"), "2023-06-01");
      EXPECT_EQ(sent.at("system").as_string(), "S");
      EXPECT_EQ(sent.at("max_tokens").as_int64(), 50);
    } else {
      EXPECT_EQ(rec.at("path").as_string(), "/v1beta/models/gemini-2.5-flash:generateContent");
      EXPECT_EQ(header_of(rec, "x-goog-api-key"), "sk-ge");
      EXPECT_EQ(sent.at("systemInstruction").at("parts").at(0).at("text").as_string(), "S");
    }
  }
}

TEST_F(TranslateTest, StreamedToolCallsFromAnthropicAndGemini) {
  Gateway gw(config(fake_.port()));
  for (std::string route : {"an", "ge"}) {
    fake_.script(R"({"tool_calls":[{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"},{"name":"get_time","arguments":"{\"tz\":\"CET\"}"}]})");
    Response r = harness::http(gw.port(), "POST", "/v1/chat/completions", openai_auth(),
                               R"({"model":")" + route + R"(","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"w?"}],
                                  "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"additionalProperties":false}}},
                                           {"type":"function","function":{"name":"get_time","parameters":{"type":"object","properties":{"tz":{"type":"string"}}}}}]})");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.header("content-type").substr(0, 17), "text/event-stream");
    std::map<std::int64_t, std::string> args, names;
    std::string finish;
    bool usage_seen = false, done = false;
    for (const auto& d : harness::sse_data(r.body)) {
      if (d == "[DONE]") {
        done = true;
        continue;
      }
      json::value c = json::parse(d);
      if (c.as_object().contains("usage") && c.at("usage").is_object()) usage_seen = true;
      if (c.at("choices").as_array().empty()) continue;
      const auto& choice = c.at("choices").at(0);
      if (choice.at("finish_reason").is_string()) finish = choice.at("finish_reason").as_string();
      if (const auto* calls = choice.at("delta").as_object().if_contains("tool_calls"))
        for (const auto& call : calls->as_array()) {
          auto i = call.at("index").as_int64();
          const auto& fn = call.at("function").as_object();
          if (fn.contains("name")) names[i] = fn.at("name").as_string();
          args[i] += fn.at("arguments").as_string();
        }
    }
    EXPECT_TRUE(done) << route;
    EXPECT_TRUE(usage_seen) << route;
    EXPECT_EQ(finish, "tool_calls") << route;
    EXPECT_EQ(names[0], "get_weather") << route;
    EXPECT_EQ(names[1], "get_time") << route;
    EXPECT_EQ(json::parse(args[0]), json::parse(R"({"city":"Paris"})")) << route;
    EXPECT_EQ(json::parse(args[1]), json::parse(R"({"tz":"CET"})")) << route;
  }
}

TEST_F(TranslateTest, AnthropicClientServedByOpenAIAndGemini) {
  Gateway gw(config(fake_.port()));
  for (std::string route : {"oa", "ge"}) {
    Response r = harness::http(gw.port(), "POST", "/v1/messages", anthropic_auth(),
                               R"({"model":")" + route + R"(","max_tokens":100,"system":"S","messages":[{"role":"user","content":"hello"}]})");
    ASSERT_EQ(r.status, 200) << r.body;
    json::value v = json::parse(r.body);
    EXPECT_EQ(v.at("type").as_string(), "message");
    EXPECT_EQ(v.at("content").at(0).at("text").as_string(), "Hello from Switchyard's demo provider! You said: hello");
    EXPECT_EQ(v.at("stop_reason").as_string(), "end_turn");
    EXPECT_GT(v.at("usage").at("input_tokens").as_int64(), 0);

    r = harness::http(gw.port(), "POST", "/v1/messages", anthropic_auth(),
                      R"({"model":")" + route + R"(","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"hello"}]})");
    ASSERT_EQ(r.status, 200) << r.body;
    std::vector<std::string> types;
    std::string text;
    for (const auto& d : harness::sse_data(r.body)) {
      json::value e = json::parse(d);
      types.emplace_back(e.at("type").as_string());
      if (types.back() == "content_block_delta") text += e.at("delta").at("text").as_string();
    }
    ASSERT_GE(types.size(), 5u);
    EXPECT_EQ(types.front(), "message_start");
    EXPECT_EQ(std::count(types.begin(), types.end(), "message_start"), 1);
    EXPECT_EQ(types[types.size() - 2], "message_delta");
    EXPECT_EQ(types.back(), "message_stop");
    EXPECT_EQ(text, "Hello from Switchyard's demo provider! You said: hello");
  }
}

TEST_F(TranslateTest, AnthropicClientToAnthropicUpstreamPassesThrough) {
  Gateway gw(config(fake_.port()));
  Response r = harness::http(gw.port(), "POST", "/v1/messages", anthropic_auth(),
                             R"({"model":"an","max_tokens":10,"messages":[{"role":"user","content":[{"type":"text","text":"hey","cache_control":{"type":"ephemeral"}}]}],"metadata":{"user_id":"u1"}})");
  ASSERT_EQ(r.status, 200) << r.body;
  json::value sent = json::parse(last_request(fake_).at("body").as_string());
  EXPECT_EQ(sent.at("model").as_string(), "claude-sonnet-4-5");
  EXPECT_EQ(sent.at("messages").at(0).at("content").at(0).at("cache_control").at("type").as_string(), "ephemeral");
  EXPECT_EQ(sent.at("metadata").at("user_id").as_string(), "u1");
}

TEST_F(TranslateTest, ErrorsComeInTheClientsDialect) {
  Gateway gw(config(fake_.port()));
  // Anthropic ingress: bad key, missing max_tokens, unknown model.
  Response r = harness::http(gw.port(), "POST", "/v1/messages", {{"x-api-key", "wrong"}}, R"({})");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(json::parse(r.body).at("error").at("type").as_string(), "authentication_error");
  r = harness::http(gw.port(), "POST", "/v1/messages", anthropic_auth(), R"({"model":"oa","messages":[]})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(json::parse(r.body).at("type").as_string(), "error");
  EXPECT_EQ(json::parse(r.body).at("error").at("message").as_string(), "max_tokens: Field required");
  r = harness::http(gw.port(), "POST", "/v1/messages", anthropic_auth(), R"({"model":"nope","max_tokens":5,"messages":[]})");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(json::parse(r.body).at("error").at("type").as_string(), "not_found_error");

  // An Anthropic upstream's 429 reaches an OpenAI client in OpenAI's shape, status kept.
  fake_.script(R"({"status":429})");
  r = harness::http(gw.port(), "POST", "/v1/chat/completions", openai_auth(),
                    R"({"model":"an","messages":[{"role":"user","content":"x"}]})");
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(json::parse(r.body).at("error").at("type").as_string(), "rate_limit_error");
  // A Gemini upstream's 400 reaches an Anthropic client in Anthropic's shape.
  fake_.script(R"({"status":400})");
  r = harness::http(gw.port(), "POST", "/v1/messages", anthropic_auth(),
                    R"({"model":"ge","max_tokens":5,"messages":[{"role":"user","content":"x"}]})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(json::parse(r.body).at("error").at("type").as_string(), "invalid_request_error");
  EXPECT_EQ(json::parse(r.body).at("error").at("message").as_string(), "Scripted failure from the fake provider.");
}

TEST_F(TranslateTest, UnsupportedParametersRefusedOrFailedOverNeverDropped) {
  Gateway gw(config(fake_.port()));
  // Anthropic cannot take `seed`: that deployment is skipped, Gemini answers.
  Response r = harness::http(gw.port(), "POST", "/v1/chat/completions", openai_auth(),
                             R"({"model":"an-then-ge","seed":5,"messages":[{"role":"user","content":"x"}]})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("x-switchyard-deployment"), "ge-d");
  EXPECT_EQ(json::parse(last_request(fake_).at("body").as_string()).at("generationConfig").at("seed").as_int64(), 5);
  // With Anthropic alone: a clear 400 naming the parameter.
  r = harness::http(gw.port(), "POST", "/v1/chat/completions", openai_auth(),
                    R"({"model":"an","seed":5,"messages":[{"role":"user","content":"x"}]})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(json::parse(r.body).at("error").at("param").as_string(), "seed");
  // Configured to drop: dropped and reported.
  Gateway dropping(config(fake_.port(), "    drop_unsupported_params: true\n"));
  r = harness::http(dropping.port(), "POST", "/v1/chat/completions", openai_auth(),
                    R"({"model":"an","seed":5,"messages":[{"role":"user","content":"x"}]})");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("x-switchyard-dropped-params"), "seed");
}

TEST_F(TranslateTest, VendorTableRenamesAndAzurePaths) {
  Gateway gw(config(fake_.port()));
  Response r = harness::http(gw.port(), "POST", "/v1/chat/completions", openai_auth(),
                             R"({"model":"mi","seed":9,"messages":[{"role":"user","content":"x"}]})");
  ASSERT_EQ(r.status, 200) << r.body;
  json::value sent = json::parse(last_request(fake_).at("body").as_string());
  EXPECT_EQ(sent.at("random_seed").as_int64(), 9);  // Mistral spells it random_seed
  EXPECT_FALSE(sent.as_object().contains("seed"));

  r = harness::http(gw.port(), "POST", "/v1/chat/completions", openai_auth(),
                    R"({"model":"az","messages":[{"role":"user","content":"x"}]})");
  ASSERT_EQ(r.status, 200) << r.body;
  json::object rec = last_request(fake_);
  EXPECT_EQ(rec.at("path").as_string(), "/openai/deployments/my-gpt-deployment/chat/completions?api-version=2024-10-21");
  EXPECT_EQ(header_of(rec, "api-key"), "sk-az");
  EXPECT_EQ(header_of(rec, "Authorization"), "");
}

TEST_F(TranslateTest, DeepSeekReasoningIsSurfacedToBothDialects) {
  Gateway gw(config(fake_.port()));
  fake_.script(R"({"content":"42","reasoning":"six times seven","cached_tokens":5})");
  Response r = harness::http(gw.port(), "POST", "/v1/chat/completions", openai_auth(),
                             R"({"model":"ds","messages":[{"role":"user","content":"6x7?"}]})");
  ASSERT_EQ(r.status, 200) << r.body;
  json::value v = json::parse(r.body);
  EXPECT_EQ(v.at("choices").at(0).at("message").at("reasoning_content").as_string(), "six times seven");
  EXPECT_EQ(v.at("usage").at("prompt_tokens_details").at("cached_tokens").as_int64(), 5);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the access log is flushed every 100 ms
  EXPECT_NE(gw.log().find("\"cached_tokens\":5"), std::string::npos) << gw.log();

  fake_.script(R"({"content":"42","reasoning":"six times seven","cached_tokens":5})");
  r = harness::http(gw.port(), "POST", "/v1/messages", anthropic_auth(),
                    R"({"model":"ds","max_tokens":50,"messages":[{"role":"user","content":"6x7?"}]})");
  ASSERT_EQ(r.status, 200) << r.body;
  v = json::parse(r.body);
  EXPECT_EQ(v.at("content").at(0).at("type").as_string(), "thinking");
  EXPECT_EQ(v.at("content").at(0).at("thinking").as_string(), "six times seven");
  EXPECT_EQ(v.at("content").at(1).at("text").as_string(), "42");
  EXPECT_EQ(v.at("usage").at("cache_read_input_tokens").as_int64(), 5);
}

TEST_F(TranslateTest, EmbeddingsThroughGeminiIncludingBase64) {
  Gateway gw(config(fake_.port()));
  Response r = harness::http(gw.port(), "POST", "/v1/embeddings", openai_auth(),
                             R"({"model":"embed","input":["ab","xyz"]})");
  ASSERT_EQ(r.status, 200) << r.body;
  json::value v = json::parse(r.body);
  ASSERT_EQ(v.at("data").as_array().size(), 2u);
  EXPECT_EQ(v.at("data").at(1).at("embedding").at(0).as_double(), 3.0);  // the fake: length first
  EXPECT_EQ(last_request(fake_).at("path").as_string(), "/v1beta/models/text-embedding-004:batchEmbedContents");
  r = harness::http(gw.port(), "POST", "/v1/embeddings", openai_auth(),
                    R"({"model":"embed","input":"ab","encoding_format":"base64"})");
  ASSERT_EQ(r.status, 200) << r.body;
  // [2, 97, 0.5, -0.25] as little-endian float32
  EXPECT_EQ(json::parse(r.body).at("data").at(0).at("embedding").as_string(), "AAAAQAAAwkIAAAA/AACAvg==");
}

TEST_F(TranslateTest, AnthropicCacheWritesAreBilledByLifetimeInTheHeaderTheLogAndTheRecord) {
  // claude-sonnet-4-5 pinned at $3 / $15 per 1M; cache writes at 1.25x (5 min) and 2x (1 h),
  // reads at $0.30 (set here: the catalogue's may change).
  Gateway gw("models:\n  - id: claude-sonnet-4-5\n    price: {input: 3, output: 15, cached_input: 0.3}\n" +
             config(fake_.port()));
  fake_.script(R"({"content":"ok","cached_tokens":1000,"cache_write_tokens":400,"cache_write_1h_tokens":100})");
  Response r = harness::http(gw.port(), "POST", "/v1/chat/completions", openai_auth(),
                             R"({"model":"an","max_tokens":50,"messages":[{"role":"user","content":"hi"}]})");
  ASSERT_EQ(r.status, 200) << r.body;
  json::value usage = json::parse(r.body).at("usage");
  const std::int64_t prompt = usage.at("prompt_tokens").as_int64();
  const std::int64_t completion = usage.at("completion_tokens").as_int64();
  ASSERT_GT(prompt, 1400);  // the fake's own input tokens plus the cache's
  // (prompt - 1000 - 400) x 3 + 1000 x 0.30 + 300 x 3.75 + 100 x 6 + completion x 15, in
  // micro-dollars per million: pico-dollars, written in dollars.
  const std::int64_t pico = (prompt - 1400) * 3'000'000 + 1000 * 300'000 + 300 * 3'750'000 + 100 * 6'000'000 +
                            completion * 15'000'000;
  std::string expected = switchyard::core::Money::nanos((pico + 500) / 1000).to_string();
  EXPECT_EQ(r.header("x-switchyard-cost-usd"), expected);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  std::string log = gw.log();
  EXPECT_NE(log.find("\"cache_write_tokens\":400"), std::string::npos) << log;
  EXPECT_NE(log.find("\"cache_write_1h_tokens\":100"), std::string::npos) << log;
  EXPECT_NE(log.find("\"cost_usd\":" + expected), std::string::npos) << log;
  EXPECT_NE(log.find("\"provider\":\"an\""), std::string::npos) << log;
  Response d = harness::http(gw.port(), "GET", "/v1/switchyard/decisions?request_id=" + r.header("x-request-id"),
                             openai_auth());
  ASSERT_EQ(d.status, 200) << d.body;
  EXPECT_NE(d.body.find("\"cost_usd\":" + expected + ","), std::string::npos) << d.body;
}

}  // namespace
