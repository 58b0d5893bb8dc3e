// Targeted checks of the known translation bug classes (the golden suite covers whole exchanges).
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "dialects/translate.hpp"

namespace {

namespace json = boost::json;
using namespace switchyard;
using dialects::Dialect;

core::ChatRequest decode(Dialect client, std::string_view body) {
  auto r = dialects::decode_client_request(client, body, 64);
  if (auto* e = std::get_if<core::ApiError>(&r)) ADD_FAILURE() << e->message;
  return std::get<core::ChatRequest>(r);
}

json::object encode(const core::ChatRequest& r, Dialect upstream, std::string* error = nullptr,
                    bool drop = false) {
  dialects::Target t;
  t.dialect = upstream;
  t.type = dialects::find_provider_type(upstream == Dialect::anthropic ? "anthropic"
                                        : upstream == Dialect::gemini  ? "gemini"
                                                                       : "openai");
  t.model = upstream == Dialect::anthropic ? "claude-sonnet-4-5" : "m";
  t.drop_unsupported = drop;
  dialects::UpstreamRequest out;
  if (auto e = dialects::encode_upstream_request(r, t, out)) {
    if (error) *error = e->message;
    return {};
  }
  return json::parse(out.body).as_object();
}

/// Feeds a whole upstream stream, returns the client's bytes.
std::string transcode(Dialect client, Dialect upstream, std::string_view sse, core::TokenUsage* usage = nullptr,
                      bool include_usage = true) {
  dialects::UpstreamRequest sent;
  dialects::gemini::IdSource ids;
  dialects::StreamTranslator t(client, upstream, sent, include_usage, "route", ids);
  dialects::SseSplitter splitter;
  splitter.feed(sse, [&](const dialects::SseEvent& e) { EXPECT_TRUE(t.feed(e)); });
  t.finish();
  if (usage) *usage = t.usage();
  return t.out();
}

std::vector<json::value> data_of(std::string_view sse) {
  std::vector<json::value> out;
  dialects::SseSplitter splitter;
  splitter.feed(sse, [&](const dialects::SseEvent& e) {
    if (e.data != "[DONE]") out.push_back(json::parse(e.data));
  });
  return out;
}

TEST(Translate, AnthropicToolArgumentsSplitAcrossEventsReachOpenAIWhole) {
  std::string sse =
      "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"c\",\"usage\":{\"input_tokens\":10,\"cache_read_input_tokens\":4,\"output_tokens\":1}}}\n\n"
      "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_A\",\"name\":\"f\",\"input\":{}}}\n\n"
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\"}}\n\n"
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"a\\\":\"}}\n\n"
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"1}\"}}\n\n"
      "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
      "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_B\",\"name\":\"g\",\"input\":{}}}\n\n"
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}}\n\n"
      "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n"
      "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":7}}\n\n"
      "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
  core::TokenUsage usage;
  auto chunks = data_of(transcode(Dialect::openai, Dialect::anthropic, sse, &usage));
  std::map<std::int64_t, std::string> args, names, ids;
  std::string finish;
  for (const auto& c : chunks) {
    const auto& choices = c.at("choices").as_array();
    if (choices.empty()) continue;
    const auto& choice = choices[0].as_object();
    if (choice.at("finish_reason").is_string()) finish = choice.at("finish_reason").as_string();
    const auto* calls = choice.at("delta").as_object().if_contains("tool_calls");
    if (!calls) continue;
    for (const auto& call : calls->as_array()) {
      std::int64_t i = call.at("index").as_int64();
      const auto& fn = call.at("function").as_object();
      if (call.as_object().contains("id")) ids[i] = call.at("id").as_string();
      if (fn.contains("name")) names[i] = fn.at("name").as_string();
      args[i] += fn.at("arguments").as_string();
    }
  }
  EXPECT_EQ(args[0], "{\"a\":1}");
  EXPECT_EQ(args[1], "{}");
  EXPECT_EQ(names[0], "f");
  EXPECT_EQ(names[1], "g");
  EXPECT_EQ(ids[0], "toolu_A");
  EXPECT_EQ(ids[1], "toolu_B");
  EXPECT_EQ(finish, "tool_calls");
  EXPECT_EQ(usage.input, 14);  // input_tokens + cache reads
  EXPECT_EQ(usage.cache_read, 4);
  EXPECT_EQ(usage.output, 7);
  json::value last = chunks.back();
  EXPECT_EQ(last.at("usage").at("prompt_tokens_details").at("cached_tokens").as_int64(), 4);
}

TEST(Translate, OpenAIStreamBecomesOneMessageStartAndNoEmptyTextBlock) {
  std::string sse =
      "data: {\"id\":\"c1\",\"model\":\"gpt\",\"created\":1,\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n"
      "data: {\"id\":\"c1\",\"model\":\"gpt\",\"created\":1,\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]}}]}\n\n"
      "data: {\"id\":\"c1\",\"model\":\"gpt\",\"created\":1,\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"x\\\":2}\"}}]}}]}\n\n"
      "data: {\"id\":\"c1\",\"model\":\"gpt\",\"created\":1,\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n"
      "data: {\"id\":\"c1\",\"model\":\"gpt\",\"created\":1,\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":3,\"completion_tokens_details\":{\"reasoning_tokens\":1}}}\n\n"
      "data: [DONE]\n\n";
  std::string out = transcode(Dialect::anthropic, Dialect::openai, sse);
  auto events = data_of(out);
  int starts = 0, text_blocks = 0;
  std::string partial, stop_reason;
  for (const auto& e : events) {
    std::string_view type = e.at("type").as_string();
    if (type == "message_start") ++starts;
    if (type == "content_block_start" && e.at("content_block").at("type").as_string() == "text") ++text_blocks;
    if (type == "content_block_start" && e.at("content_block").at("type").as_string() == "tool_use") {
      EXPECT_EQ(e.at("content_block").at("id").as_string(), "call_1");
      EXPECT_EQ(e.at("content_block").at("name").as_string(), "f");
    }
    if (type == "content_block_delta") partial += e.at("delta").at("partial_json").as_string();
    if (type == "message_delta") {
      stop_reason = e.at("delta").at("stop_reason").as_string();
      EXPECT_EQ(e.at("usage").at("output_tokens").as_int64(), 3);
      EXPECT_EQ(e.at("usage").at("input_tokens").as_int64(), 5);
    }
  }
  EXPECT_EQ(starts, 1);
  EXPECT_EQ(text_blocks, 0);
  EXPECT_EQ(partial, "{\"x\":2}");
  EXPECT_EQ(stop_reason, "tool_use");
  EXPECT_EQ(events.back().at("type").as_string(), "message_stop");
}

TEST(Translate, GeminiToolCallFinishesAsToolCallsWithUsageIncludingThoughts) {
  std::string sse =
      "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"functionCall\":{\"name\":\"f\",\"args\":{\"q\":1}},\"thoughtSignature\":\"S1\"}]},\"finishReason\":\"STOP\"}],"
      "\"usageMetadata\":{\"promptTokenCount\":9,\"candidatesTokenCount\":4,\"thoughtsTokenCount\":6,\"cachedContentTokenCount\":2}}\n\n";
  core::TokenUsage usage;
  auto chunks = data_of(transcode(Dialect::openai, Dialect::gemini, sse, &usage));
  std::string finish, signature, name;
  for (const auto& c : chunks) {
    const auto& choices = c.at("choices").as_array();
    if (choices.empty()) continue;
    if (choices[0].at("finish_reason").is_string()) finish = choices[0].at("finish_reason").as_string();
    if (const auto* calls = choices[0].at("delta").as_object().if_contains("tool_calls")) {
      const auto& call = calls->as_array()[0].as_object();
      if (call.contains("extra_content")) signature = call.at("extra_content").at("google").at("thought_signature").as_string();
      if (call.at("function").as_object().contains("name")) name = call.at("function").at("name").as_string();
    }
  }
  EXPECT_EQ(finish, "tool_calls");
  EXPECT_EQ(signature, "S1");
  EXPECT_EQ(name, "f");
  EXPECT_EQ(usage.output, 10);  // candidates + thoughts
  EXPECT_EQ(usage.reasoning, 6);
  EXPECT_EQ(usage.cache_read, 2);
}

TEST(Translate, ParametersAreNeverSilentlyDropped) {
  auto r = decode(Dialect::openai, R"({"model":"a","seed":3,"max_tokens":77,"stop":"X","messages":[{"role":"user","content":"hi"}]})");
  std::string error;
  EXPECT_TRUE(encode(r, Dialect::anthropic, &error).empty());
  EXPECT_NE(error.find("`seed`"), std::string::npos) << error;
  // Dropped only when configured, and then reported.
  dialects::Target t;
  t.dialect = Dialect::anthropic;
  t.model = "claude-sonnet-4-5";
  t.drop_unsupported = true;
  dialects::UpstreamRequest out;
  EXPECT_FALSE(dialects::encode_upstream_request(r, t, out));
  EXPECT_EQ(out.dropped, std::vector<std::string>{"seed"});
  json::object a = json::parse(out.body).as_object();
  EXPECT_EQ(a.at("max_tokens").as_int64(), 77);
  EXPECT_EQ(a.at("stop_sequences").as_array()[0].as_string(), "X");
  // Gemini takes all three.
  json::object g = encode(r, Dialect::gemini);
  EXPECT_EQ(g.at("generationConfig").at("seed").as_int64(), 3);
  EXPECT_EQ(g.at("generationConfig").at("maxOutputTokens").as_int64(), 77);
  EXPECT_EQ(g.at("generationConfig").at("stopSequences").as_array()[0].as_string(), "X");
}

TEST(Translate, AnthropicMaxTokensDefaultsFromTheModelWhenTheClientGaveNone) {
  auto r = decode(Dialect::openai, R"({"model":"a","messages":[{"role":"user","content":"hi"}]})");
  EXPECT_EQ(encode(r, Dialect::anthropic).at("max_tokens").as_int64(), 64000);
}

TEST(Translate, SystemAndToolRolesMapToAnthropicShapes) {
  auto r = decode(Dialect::openai, R"({"model":"a","messages":[
    {"role":"system","content":"S"},{"role":"user","content":"U"},
    {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"k\":1}"}}]},
    {"role":"tool","tool_call_id":"c1","content":"R"}]})");
  json::object a = encode(r, Dialect::anthropic);
  EXPECT_EQ(a.at("system").as_string(), "S");
  const auto& m = a.at("messages").as_array();
  ASSERT_EQ(m.size(), 3u);
  for (const auto& msg : m) EXPECT_NE(msg.at("role").as_string(), "system");
  EXPECT_EQ(m[1].at("content").at(0).at("type").as_string(), "tool_use");
  EXPECT_EQ(m[1].at("content").at(0).at("input").at("k").as_int64(), 1);
  EXPECT_EQ(m[2].at("role").as_string(), "user");
  EXPECT_EQ(m[2].at("content").at(0).at("type").as_string(), "tool_result");
  EXPECT_EQ(m[2].at("content").at(0).at("tool_use_id").as_string(), "c1");
}

TEST(Translate, GeminiFunctionResponsesCarryTheCallsNameAndNoContentIsEmpty) {
  auto r = decode(Dialect::openai, R"({"model":"a","messages":[
    {"role":"user","content":"U"},
    {"role":"assistant","content":"","tool_calls":[{"id":"c9","type":"function","function":{"name":"lookup","arguments":"{}"}}]},
    {"role":"tool","tool_call_id":"c9","content":"{\"ok\":true}"},
    {"role":"assistant","content":""},
    {"role":"user","content":"more"}]})");
  json::object g = encode(r, Dialect::gemini);
  const auto& contents = g.at("contents").as_array();
  for (const auto& c : contents) EXPECT_FALSE(c.at("parts").as_array().empty());
  const auto& fr = contents[2].at("parts").at(0).at("functionResponse");
  EXPECT_EQ(fr.at("name").as_string(), "lookup");
  EXPECT_EQ(fr.at("response").at("ok").as_bool(), true);
}

TEST(Translate, ThinkingBlocksAndCacheControlSurviveTheRoundTrip) {
  auto r = decode(Dialect::openai, R"({"model":"a","messages":[
    {"role":"user","content":[{"type":"text","text":"Q","cache_control":{"type":"ephemeral"}}]},
    {"role":"assistant","content":"A","thinking_blocks":[{"type":"thinking","thinking":"T","signature":"SIG"}]},
    {"role":"user","content":"Q2"}]})");
  json::object a = encode(r, Dialect::anthropic);
  const auto& m = a.at("messages").as_array();
  EXPECT_EQ(m[0].at("content").at(0).at("cache_control").at("type").as_string(), "ephemeral");
  EXPECT_EQ(m[1].at("content").at(0).at("type").as_string(), "thinking");
  EXPECT_EQ(m[1].at("content").at(0).at("signature").as_string(), "SIG");
  EXPECT_EQ(m[1].at("content").at(1).at("text").as_string(), "A");
}

TEST(Translate, AnthropicIngressValidatesLikeTheRealApi) {
  auto r = dialects::decode_client_request(Dialect::anthropic, R"({"model":"a","messages":[]})", 64);
  ASSERT_TRUE(std::holds_alternative<core::ApiError>(r));
  EXPECT_EQ(std::get<core::ApiError>(r).message, "max_tokens: Field required");
  std::string body = dialects::error_body(Dialect::anthropic, std::get<core::ApiError>(r), "req_1");
  json::value v = json::parse(body);
  EXPECT_EQ(v.at("type").as_string(), "error");
  EXPECT_EQ(v.at("error").at("type").as_string(), "invalid_request_error");
  r = dialects::decode_client_request(Dialect::anthropic,
                                      R"({"model":"a","max_tokens":5,"messages":[{"role":"robot","content":"x"}]})", 64);
  ASSERT_TRUE(std::holds_alternative<core::ApiError>(r));
  // A system message in the conversation (Claude Code's, with its beta) joins the system prompt
  // for other providers; a tool_reference (tool search's answer) is the tool's name as text.
  r = dialects::decode_client_request(
      Dialect::anthropic,
      R"({"model":"a","max_tokens":5,"system":"s1","messages":[{"role":"user","content":"hi"},{"role":"system","content":"env"},
          {"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"ToolSearch","input":{}}]},
          {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":[{"type":"tool_reference","tool_name":"WebFetch"}]}]}]})",
      64);
  ASSERT_TRUE(std::holds_alternative<core::ChatRequest>(r));
  const core::ChatRequest& c = std::get<core::ChatRequest>(r);
  ASSERT_EQ(c.system.size(), 2u);
  EXPECT_EQ(c.system[1].text, "env");
  ASSERT_EQ(c.messages.size(), 3u);
  EXPECT_EQ(c.messages[2].content[0].content[0].text, "Tool reference: WebFetch");
}

TEST(Translate, GeminiSchemaSubset) {
  json::value s = dialects::gemini::sanitize_schema(json::parse(R"({
    "$schema":"x","type":"object","additionalProperties":false,"$defs":{"D":{"type":"integer","exclusiveMinimum":0}},
    "properties":{"a":{"$ref":"#/$defs/D"},"b":{"type":["string","null"]},"c":{"const":"k"},
                  "d":{"oneOf":[{"type":"string"},{"type":"number"}]}},
    "required":["a","zz"]})"));
  EXPECT_EQ(s, json::parse(R"({"type":"object","properties":{"a":{"type":"integer"},"b":{"nullable":true,"type":"string"},"c":{"enum":["k"],"type":"string"},"d":{"anyOf":[{"type":"string"},{"type":"number"}]}},"required":["a"]})"));
}

TEST(Translate, StreamThatEndsEarlyEndsWithAnErrorEvent) {
  std::string sse =
      "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\",\"usage\":{\"input_tokens\":1}}}\n\n"
      "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n";
  auto chunks = data_of(transcode(Dialect::openai, Dialect::anthropic, sse));
  ASSERT_FALSE(chunks.empty());
  EXPECT_EQ(chunks.back().at("error").at("code").as_string(), "upstream_stream_incomplete");
}

TEST(Translate, MidStreamUpstreamErrorBecomesTheLastEventInTheClientsDialect) {
  std::string sse =
      "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\",\"usage\":{\"input_tokens\":1}}}\n\n"
      "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n"
      "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
  auto chunks = data_of(transcode(Dialect::openai, Dialect::anthropic, sse));
  ASSERT_GE(chunks.size(), 3u);
  EXPECT_EQ(chunks[1].at("choices").at(0).at("delta").at("content").as_string(), "Hi");
  EXPECT_EQ(chunks.back().at("error").at("message").as_string(), "Overloaded");
  EXPECT_EQ(chunks.back().at("error").at("code").as_string(), "overloaded_error");

  // Gemini → Anthropic client: a stream cut before its finish reason ends with an error event.
  std::string gemini = "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"par\"}]}}]}\r\n\r\n";
  std::string out = transcode(Dialect::anthropic, Dialect::gemini, gemini);
  auto events = data_of(out);
  EXPECT_EQ(events.back().at("type").as_string(), "error");
  EXPECT_EQ(events.back().at("error").at("type").as_string(), "api_error");
  EXPECT_NE(out.find("event: error\n"), std::string::npos);
}

TEST(Translate, LongStreamsKeepTheirMemoryBounded) {
  // 20,000 events through one decoder: each event's parse reuses the same memory (a monotonic
  // resource reused without care grows its blocks geometrically and soon asks for gigabytes).
  std::string head =
      "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\",\"usage\":{\"input_tokens\":1}}}\n\n"
      "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n";
  dialects::UpstreamRequest sent;
  dialects::StreamTranslator t(Dialect::openai, Dialect::anthropic, sent, false, "r", {});
  dialects::SseSplitter splitter;
  splitter.feed(head, [&](const dialects::SseEvent& e) { ASSERT_TRUE(t.feed(e)); });
  std::string delta =
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"ab\"}}\n\n";
  std::size_t text = 0;
  for (int i = 0; i < 20000; ++i) {
    splitter.feed(delta, [&](const dialects::SseEvent& e) { ASSERT_TRUE(t.feed(e)); });
    for (const auto& c : data_of(t.out())) text += c.at("choices").at(0).at("delta").at("content").as_string().size();
    t.out().clear();
  }
  EXPECT_EQ(text, 40000u);
}

TEST(Translate, GeminiEmbeddingsAsOpenAIBase64) {
  auto body = dialects::gemini::encode_embeddings(R"({"model":"e","input":["a","bb"],"encoding_format":"base64"})", "text-embedding-004");
  json::value req = json::parse(std::get<std::string>(body));
  EXPECT_EQ(req.at("requests").as_array().size(), 2u);
  EXPECT_EQ(req.at("requests").at(1).at("model").as_string(), "models/text-embedding-004");
  auto out = dialects::gemini::decode_embeddings(R"({"embeddings":[{"values":[1.0,0.5]},{"values":[-2]}]})", "e", true);
  json::value v = json::parse(std::get<std::string>(out));
  // 1.0f, 0.5f little-endian = 00 00 80 3f 00 00 00 3f
  EXPECT_EQ(v.at("data").at(0).at("embedding").as_string(), "AACAPwAAAD8=");
  EXPECT_EQ(v.at("data").at(1).at("index").as_int64(), 1);
}

}  // namespace
