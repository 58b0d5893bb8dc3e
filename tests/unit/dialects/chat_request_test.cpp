#include "dialects/openai/chat_request.hpp"
#include "dialects/openai/usage.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/json_scan.hpp"

using namespace switchyard;
namespace openai = dialects::openai;

namespace {

openai::ChatRequestInfo inspect_ok(const std::string& body) {
  auto r = openai::inspect_chat_request(body, {64});
  if (auto* e = std::get_if<core::ApiError>(&r)) {
    ADD_FAILURE() << "unexpected error: " << e->message;
    return {};
  }
  return std::get<openai::ChatRequestInfo>(r);
}

core::ApiError inspect_error(const std::string& body, std::size_t depth = 64) {
  auto r = openai::inspect_chat_request(body, {depth});
  if (auto* e = std::get_if<core::ApiError>(&r)) return *e;
  ADD_FAILURE() << "expected an error for " << body;
  return {};
}

std::string patch(const std::string& body, const std::string& model) {
  auto info = inspect_ok(body);
  std::string out;
  std::string literal;
  core::append_json_string(literal, model);
  openai::patch_chat_request(body, info, literal, out);
  EXPECT_TRUE(core::json::validate(out, 64)) << out;
  return out;
}

}  // namespace

TEST(ChatRequest, InspectsTheFieldsTheRouterNeeds) {
  auto info = inspect_ok(R"({"model":"auto","messages":[{"role":"user","content":"hi"}],"stream":true})");
  EXPECT_EQ(info.model, "auto");
  EXPECT_TRUE(info.stream);
  EXPECT_FALSE(info.client_wants_usage);
  EXPECT_EQ(info.message_count, 1u);
  info = inspect_ok(
      R"({"messages":[{"role":"system","content":"s"},{"role":"assistant","tool_calls":[]},{"role":"tool","content":"r","tool_call_id":"1"}],"model":"m","stream_options":{"include_usage":true},"stream":true})");
  EXPECT_EQ(info.message_count, 3u);
  EXPECT_TRUE(info.client_wants_usage);
}

TEST(ChatRequest, ReplacesOnlyTheModel) {
  std::string body = R"({"model": "auto", "messages":[{"role":"user","content":"héllo \"model\""}], "temperature":0.2})";
  EXPECT_EQ(patch(body, "gpt-4.1-mini"),
            R"({"model": "gpt-4.1-mini", "messages":[{"role":"user","content":"héllo \"model\""}], "temperature":0.2})");
  // Model names are JSON-escaped.
  EXPECT_EQ(patch(R"({"messages":[{"role":"user","content":"x"}],"model":"a"})", "we\"ird"),
            R"({"messages":[{"role":"user","content":"x"}],"model":"we\"ird"})");
}

TEST(ChatRequest, AddsIncludeUsageToStreams) {
  EXPECT_EQ(patch(R"({"model":"a","messages":[{"role":"user","content":"x"}],"stream":true})", "b"),
            R"({"model":"b","messages":[{"role":"user","content":"x"}],"stream":true,"stream_options":{"include_usage":true}})");
  EXPECT_EQ(patch(R"({"model":"a","stream":true,"stream_options":{},"messages":[{"role":"user","content":"x"}]})", "b"),
            R"({"model":"b","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"x"}]})");
  EXPECT_EQ(patch(R"({"model":"a","stream":true,"stream_options":{"x":1},"messages":[{"role":"user","content":"x"}]})", "b"),
            R"({"model":"b","stream":true,"stream_options":{"include_usage":true,"x":1},"messages":[{"role":"user","content":"x"}]})");
  EXPECT_EQ(patch(R"({"model":"a","stream":true,"stream_options":{"include_usage":false},"messages":[{"role":"user","content":"x"}]})", "b"),
            R"({"model":"b","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"x"}]})");
  // Not a stream: untouched apart from the model.
  EXPECT_EQ(patch(R"({"model":"a","stream":false,"messages":[{"role":"user","content":"x"}]})", "b"),
            R"({"model":"b","stream":false,"messages":[{"role":"user","content":"x"}]})");
}

TEST(ChatRequest, RejectsBadBodiesInOpenAIsWords) {
  auto e = inspect_error("{\"model\":\"a\",");
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.code, "invalid_json");
  e = inspect_error(R"([1,2])");
  EXPECT_EQ(e.code, "invalid_json");
  e = inspect_error(R"({"messages":[{"role":"user","content":"x"}]})");
  EXPECT_EQ(e.code, "missing_required_parameter");
  EXPECT_EQ(e.param, "model");
  e = inspect_error(R"({"model":"a"})");
  EXPECT_EQ(e.param, "messages");
  EXPECT_EQ(e.message, "Missing required parameter: 'messages'.");
  e = inspect_error(R"({"model":7,"messages":[{"role":"user","content":"x"}]})");
  EXPECT_EQ(e.code, "invalid_type");
  EXPECT_EQ(e.message, "Invalid type for 'model': expected a string, but got a number instead.");
  e = inspect_error(R"({"model":"a","messages":[]})");
  EXPECT_EQ(e.code, "empty_array");
  e = inspect_error(R"({"model":"a","messages":[{"role":"robot","content":"x"}]})");
  EXPECT_EQ(e.param, "messages[0].role");
  e = inspect_error(R"({"model":"a","messages":[{"role":"user"}]})");
  EXPECT_EQ(e.param, "messages[0].content");
  e = inspect_error(R"({"model":"a","messages":["hi"]})");
  EXPECT_EQ(e.param, "messages[0]");
  e = inspect_error(R"({"model":"a","messages":[{"role":"user","content":"x"}],"temperature":"hot"})");
  EXPECT_EQ(e.param, "temperature");
  e = inspect_error(R"({"model":"a","messages":[{"role":"user","content":"x"}],"max_tokens":1.5})");
  EXPECT_EQ(e.message, "Invalid type for 'max_tokens': expected an integer, but got a decimal instead.");
  e = inspect_error(R"({"model":"a","messages":[{"role":"user","content":"x"}],"stream":"yes"})");
  EXPECT_EQ(e.param, "stream");
  e = inspect_error("{\"model\":\"a\",\"messages\":[{\"role\":\"user\",\"content\":\"\xff\"}]}");
  EXPECT_NE(e.message.find("UTF-8"), std::string::npos);
  e = inspect_error(R"({"model":"a","messages":[{"role":"user","content":[[[[1]]]]}]})", 4);
  EXPECT_NE(e.message.find("nests deeper than 4"), std::string::npos);
}

TEST(ChatRequest, AMemberTheGatewayReadsMayNotBeGivenTwice) {
  // {"model":"nope","model":"auto"}: the gateway and an upstream could each read another one.
  for (const char* body : {R"({"model":"nope","model":"auto","messages":[{"role":"user","content":"x"}]})",
                           R"({"model":"a","messages":[{"role":"user","content":"x"}],"messages":[]})",
                           R"({"model":"a","stream":false,"messages":[{"role":"user","content":"x"}],"stream":true})",
                           R"({"model":"a","max_tokens":1,"messages":[{"role":"user","content":"x"}],"max_tokens":9})"}) {
    auto e = inspect_error(body);
    EXPECT_EQ(e.status, 400) << body;
    EXPECT_EQ(e.code, "duplicate_member") << body;
  }
  EXPECT_EQ(inspect_error(R"({"model":"nope","model":"auto","messages":[{"role":"user","content":"x"}]})").message,
            "The request body gives 'model' more than once.");
  // Members the gateway does not read are the upstream's business.
  inspect_ok(R"({"model":"a","messages":[{"role":"user","content":"x"}],"x_vendor":1,"x_vendor":2})");
}

TEST(ChatRequest, EveryCheckedMemberIsFoundByItsNameAlone) {
  // Each optional member the gateway type-checks (found through a hashed table, not a scan):
  // its own bit, a wrong type refused under its name, and names that differ only slightly
  // (case, one byte, a prefix) are unknown members, passed on unchecked.
  const std::vector<std::pair<std::string, std::string>> members = {
      {"stream", "1"},          {"stream_options", "1"},      {"temperature", "\"x\""},
      {"top_p", "\"x\""},       {"presence_penalty", "\"x\""}, {"frequency_penalty", "\"x\""},
      {"n", "1.5"},             {"max_tokens", "1.5"},        {"max_completion_tokens", "1.5"},
      {"seed", "1.5"},          {"top_logprobs", "1.5"},      {"logprobs", "1"},
      {"parallel_tool_calls", "1"}, {"tools", "1"},          {"tool_choice", "1"},
      {"stop", "1"},            {"user", "1"},                {"response_format", "1"},
      {"logit_bias", "1"},      {"metadata", "1"},            {"top_k", "1.5"},
      {"reasoning_effort", "1"}, {"service_tier", "1"},      {"store", "1"}};
  std::uint32_t seen = 0;
  for (const auto& [name, wrong] : members) {
    const std::uint32_t bit = openai::param_bit(name);
    EXPECT_NE(bit, 0u) << name;
    EXPECT_EQ(bit & (bit - 1), 0u) << name;
    EXPECT_EQ(seen & bit, 0u) << name << " shares a bit";
    seen |= bit;
    const std::string base = R"({"model":"a","messages":[{"role":"user","content":"x"}],")";
    auto e = inspect_error(base + name + "\":" + wrong + "}");
    EXPECT_EQ(e.param, name);
    EXPECT_EQ(inspect_ok(base + name + "\":null}").params & bit, 0u) << name;
    std::string upper = name;
    upper[0] = static_cast<char>(upper[0] - 'a' + 'A');
    std::string changed = name;
    changed[changed.size() / 2] = changed[changed.size() / 2] == 'q' ? 'r' : 'q';
    for (const std::string& other : {upper, changed, name + "s", name.substr(0, name.size() - 1)}) {
      if (other.empty() || openai::param_bit(other) != 0) {
        // A prefix that is itself a member ("stream" of "stream_options") is fine.
        EXPECT_TRUE(other.empty() || std::any_of(members.begin(), members.end(),
                                                 [&](const auto& m) { return m.first == other; }))
            << other;
        continue;
      }
      inspect_ok(base + other + "\":" + wrong + "}");
    }
  }
  EXPECT_EQ(openai::param_bit(""), 0u);
  EXPECT_EQ(openai::param_bit("model"), 0u);
  const auto info = inspect_ok(
      R"({"model":"a","messages":[{"role":"user","content":"x"}],"stream":true,"max_tokens":7,"tools":[]})");
  EXPECT_TRUE(info.stream);
  EXPECT_EQ(info.max_output_tokens, 7);
  EXPECT_EQ(info.params, openai::param_bit("stream") | openai::param_bit("max_tokens") |
                             openai::param_bit("tools"));
}

TEST(ChatRequest, KeysWithEscapesAreTheSameKeys) {
  auto info = inspect_ok(R"({"mod\u0065l":"a","messages":[{"r\u006fle":"user","content":"x"}]})");
  EXPECT_EQ(info.model, "a");
  EXPECT_EQ(info.message_count, 1u);
  // A model name with an escape is read unescaped (one without is copied as it is).
  EXPECT_EQ(inspect_ok(R"({"model":"gpt\u002d4o \"x\"","messages":[{"role":"user","content":"x"}]})").model,
            "gpt-4o \"x\"");
  EXPECT_EQ(patch(R"({"model":"a","messages":[{"role":"user","content":"x"}]})", "up \"q\""),
            R"({"model":"up \"q\"","messages":[{"role":"user","content":"x"}]})");
}

TEST(ChatRequest, NullOptionalsAreAccepted) {
  inspect_ok(R"({"model":"a","messages":[{"role":"user","content":"x"}],"temperature":null,"stream":null,"max_tokens":null})");
}

TEST(Usage, ReadsUsageFromResponsesAndChunks) {
  auto p = openai::probe_usage(
      R"({"id":"x","choices":[{"index":0}],"usage":{"prompt_tokens":11,"completion_tokens":7,"total_tokens":18,"prompt_tokens_details":{"cached_tokens":3},"completion_tokens_details":{"reasoning_tokens":2}}})");
  ASSERT_TRUE(p.usage);
  EXPECT_EQ(p.usage->prompt_tokens, 11);
  EXPECT_EQ(p.usage->completion_tokens, 7);
  EXPECT_EQ(p.usage->total_tokens, 18);
  EXPECT_EQ(p.usage->cached_tokens, 3);
  EXPECT_EQ(p.usage->reasoning_tokens, 2);
  EXPECT_FALSE(p.no_choices);

  p = openai::probe_usage(R"({"choices":[],"usage": {"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}})");
  ASSERT_TRUE(p.usage);
  EXPECT_TRUE(p.no_choices);
  EXPECT_FALSE(openai::probe_usage(R"({"choices":[{"delta":{"content":"\"usage\":{"}}],"usage":null})").usage);
}

TEST(Usage, UsualAndUnusualShapesReadTheSame) {
  // The usual shape is read in one pass; anything else (fractions, exponents, strings, deeper
  // objects, escapes) by the general validator. Both must give the same counts.
  struct Case {
    const char* usage;
    std::int64_t prompt, completion, total, cached, reasoning;
  };
  const Case cases[] = {
      // usual: OpenAI with details, whitespace, DeepSeek's cache field, nulls, zeros
      {R"({ "prompt_tokens" : 142, "completion_tokens": 96, "total_tokens": 238,
            "prompt_tokens_details": {"cached_tokens": 5, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 7, "accepted_prediction_tokens": 0}})",
       142, 96, 238, 5, 7},
      {R"({"prompt_tokens":9,"completion_tokens":1,"total_tokens":10,"prompt_cache_hit_tokens":4,"prompt_cache_miss_tokens":5})",
       9, 1, 10, 4, 0},
      {R"({"prompt_tokens":9,"prompt_tokens_details":null,"completion_tokens":null,"total_tokens":0})", 9, 0, 0, 0, 0},
      {R"({})", 0, 0, 0, 0, 0},
      {R"({"prompt_tokens":3,"prompt_tokens":4})", 4, 0, 0, 0, 0},  // the last wins
      {R"({"prompt_tokens":{"x":1},"completion_tokens":2})", 0, 2, 0, 0, 0},
      {R"({"other_details":{"cached_tokens":8},"prompt_tokens":1})", 1, 0, 0, 0, 0},
      {R"({"prompt_tokens":999999999999999999})", 999999999999999999, 0, 0, 0, 0},  // 18 digits
      // unusual: the general path
      {R"({"prompt_tokens":2.0,"completion_tokens":1e3,"total_tokens":1002})", 2, 1000, 1002, 0, 0},
      {R"({"prompt_tokens":"7","completion_tokens":3,"flags":[1,2],"ok":true})", 0, 3, 0, 0, 0},
      {R"({"a":{"b":{"c":1}},"prompt_tokens":5,"note":"caf\u00e9 \"q\""})", 5, 0, 0, 0, 0},
      {R"({"prompt_tokens":-1,"completion_tokens":12345678901234567890})", -1, 0, 0, 0, 0},
      {R"({"prompt_tokens":33333333333333333333333333333333,"completion_tokens":2})", 0, 2, 0, 0, 0},  // found by fuzzing
      {R"({"completion_tokens_details":{"reasoning_tokens":6,"x":{"y":[]}}})", 0, 0, 0, 0, 6},
  };
  // The first eight shapes are read in one pass, the rest by the validator.
  for (std::size_t i = 0; i < std::size(cases); ++i) {
    openai::Usage u;
    EXPECT_EQ(openai::read_usual_usage(cases[i].usage, u), i < 8) << cases[i].usage;
  }
  for (const Case& c : cases) {
    std::string body = std::string(R"({"id":"x","choices":[],"usage":)") + c.usage + R"(,"system_fingerprint":"fp"})";
    auto p = openai::probe_usage(body);
    ASSERT_TRUE(p.usage) << c.usage;
    EXPECT_EQ(p.usage->prompt_tokens, c.prompt) << c.usage;
    EXPECT_EQ(p.usage->completion_tokens, c.completion) << c.usage;
    EXPECT_EQ(p.usage->total_tokens, c.total) << c.usage;
    EXPECT_EQ(p.usage->cached_tokens, c.cached) << c.usage;
    EXPECT_EQ(p.usage->reasoning_tokens, c.reasoning) << c.usage;
  }
  // Not JSON: no usage from either path.
  for (const char* bad : {R"({"prompt_tokens":01})", R"({"prompt_tokens":1,})", R"({"prompt_tokens" 1})",
                          R"({"prompt_tokens":1])", R"({"prompt_tokens":nul})", R"({prompt_tokens:1})"}) {
    std::string body = std::string(R"({"choices":[],"usage":)") + bad + "}";
    EXPECT_FALSE(openai::probe_usage(body).usage) << bad;
  }
  // The key is found however far from the end it is, and not inside a string.
  std::string body = R"({"usage":{"prompt_tokens":21},"choices":[{"message":{"content":")" + std::string(300, 'x') +
                     R"( \"usage\":{\"prompt_tokens\":99} "}}],"z":")" + std::string(40, 'y') + "\"}";
  auto p = openai::probe_usage(body);
  ASSERT_TRUE(p.usage);
  EXPECT_EQ(p.usage->prompt_tokens, 21);
}
