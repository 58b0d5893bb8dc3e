// The Responses API dialect: a Responses body to the canonical model, and canonical answers and
// stream events back to a Response object and the API's typed events.
#include "dialects/responses/translate.hpp"
#include "dialects/call_id.hpp"
#include "dialects/translate.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <string>
#include <vector>

using namespace switchyard;
namespace json = boost::json;
using core::Block;

namespace {

core::ChatRequest decode(const std::string& body) {
  auto r = dialects::responses::decode_request(body, 64);
  if (auto* e = std::get_if<core::ApiError>(&r)) ADD_FAILURE() << e->message;
  return std::get<core::ChatRequest>(r);
}

/// The data of each event, with its `event:` name checked against its type.
std::vector<json::object> events_of(const std::string& sse) {
  std::vector<json::object> out;
  std::size_t at = 0;
  while ((at = sse.find("event: ", at)) != std::string::npos) {
    const std::size_t name_end = sse.find('\n', at);
    const std::string name = sse.substr(at + 7, name_end - at - 7);
    const std::size_t data = sse.find("data: ", name_end) + 6;
    const std::size_t end = sse.find("\n\n", data);
    json::object o = json::parse(sse.substr(data, end - data)).as_object();
    EXPECT_EQ(o.at("type").as_string(), name);
    out.push_back(std::move(o));
    at = end;
  }
  return out;
}

}  // namespace

TEST(ResponsesDecode, InputItemsBecomeTheConversation) {
  core::ChatRequest r = decode(R"({"model":"auto","instructions":"Be brief.","input":[
      {"role":"developer","content":"Use metric units."},
      {"role":"user","content":[{"type":"input_text","text":"weather?"},{"type":"input_image","image_url":"data:image/png;base64,AAAA"}]},
      {"type":"function_call","call_id":"c1","name":"get_weather","arguments":"{\"city\":\"Paris\"}"},
      {"type":"function_call_output","call_id":"c1","output":"sunny"},
      {"type":"message","role":"assistant","content":[{"type":"output_text","text":"It is sunny."}]}],
    "max_output_tokens":100,"temperature":0.2,"reasoning":{"effort":"high"},"stream":true,
    "tools":[{"type":"function","name":"get_weather","parameters":{"type":"object"},"strict":true}],
    "tool_choice":{"type":"function","name":"get_weather"},"parallel_tool_calls":false,
    "text":{"format":{"type":"json_schema","name":"w","schema":{"type":"object"},"strict":true}},
    "store":false,"metadata":{"a":"b"}})");
  ASSERT_EQ(r.system.size(), 2u);
  EXPECT_EQ(r.system[0].text, "Be brief.");
  EXPECT_EQ(r.system[1].text, "Use metric units.");
  ASSERT_EQ(r.messages.size(), 4u);
  EXPECT_EQ(r.messages[0].role, core::Role::user);
  ASSERT_EQ(r.messages[0].content.size(), 2u);
  EXPECT_EQ(r.messages[0].content[1].type, Block::Type::image);
  EXPECT_EQ(r.messages[0].content[1].media_type, "image/png");
  EXPECT_EQ(r.messages[0].content[1].data, "AAAA");
  EXPECT_EQ(r.messages[1].content[0].type, Block::Type::tool_use);
  EXPECT_EQ(r.messages[1].content[0].id, "c1");
  EXPECT_EQ(r.messages[1].content[0].arguments, R"({"city":"Paris"})");
  EXPECT_EQ(r.messages[2].content[0].type, Block::Type::tool_result);
  EXPECT_EQ(r.messages[2].content[0].content[0].text, "sunny");
  EXPECT_EQ(r.messages[3].role, core::Role::assistant);
  EXPECT_EQ(r.max_tokens, 100);
  EXPECT_EQ(r.reasoning_effort, "high");
  EXPECT_TRUE(r.stream);
  ASSERT_EQ(r.tools.size(), 1u);
  EXPECT_EQ(r.tools[0].strict, true);
  EXPECT_EQ(r.tool_choice.mode, core::ToolChoice::Mode::named);
  EXPECT_EQ(r.parallel_tool_calls, false);
  EXPECT_EQ(r.response_format.kind, core::ResponseFormat::Kind::json_schema);
  EXPECT_EQ(r.response_format.name, "w");
  EXPECT_TRUE(r.extra.empty()) << json::serialize(r.extra) << ": store and metadata ask nothing of a provider";
}

TEST(ResponsesDecode, WhatOnlyOpenAIHasIsKeptByNameForTheEncodersToRefuse) {
  core::ChatRequest r = decode(R"({"model":"m","input":[{"type":"web_search_call","id":"ws_1"},{"role":"user","content":"hi"}],
    "tools":[{"type":"web_search"},{"type":"function","name":"f"}],"previous_response_id":"resp_1","background":true})");
  EXPECT_TRUE(r.extra.contains("web_search_call"));
  EXPECT_TRUE(r.extra.contains("web_search"));
  EXPECT_TRUE(r.extra.contains("previous_response_id"));
  EXPECT_TRUE(r.extra.contains("background"));
  ASSERT_EQ(r.tools.size(), 1u);
  EXPECT_EQ(r.tools[0].name, "f");
}

TEST(ResponsesDecode, AnotherProvidersThinkingComesBackWithItsSignatureOpenAIsIsNotSentElsewhere) {
  core::ChatRequest r = decode(R"({"model":"m","input":[{"role":"user","content":"q"},
    {"type":"reasoning","id":"rs_1","summary":[{"type":"summary_text","text":"thought"}],"encrypted_content":"switchyard-signature:sig-abc"},
    {"type":"reasoning","id":"rs_2","summary":[],"encrypted_content":"gAAAAopenai-sealed"},
    {"type":"function_call","call_id":"c","name":"f","arguments":"{}"}]})");
  ASSERT_EQ(r.messages.size(), 2u);
  ASSERT_EQ(r.messages[1].content.size(), 2u) << "OpenAI's sealed reasoning is left out";
  EXPECT_EQ(r.messages[1].content[0].type, Block::Type::thinking);
  EXPECT_EQ(r.messages[1].content[0].text, "thought");
  EXPECT_EQ(r.messages[1].content[0].signature, "sig-abc");
}

TEST(ResponsesDecode, RefusesWhatTheResponsesApiRefuses) {
  for (const char* body : {R"({"input":"hi"})", R"({"model":"m"})", R"({"model":"m","input":5})",
                           R"({"model":"m","input":[{"role":"robot","content":"x"}]})",
                           R"({"model":"m","input":"x","max_output_tokens":0})",
                           R"({"model":"m","input":[{"type":"function_call_output","output":"x"}]})", "not json"}) {
    auto r = dialects::responses::decode_request(body, 64);
    ASSERT_TRUE(std::holds_alternative<core::ApiError>(r)) << body;
    EXPECT_EQ(std::get<core::ApiError>(r).status, 400) << body;
  }
}

TEST(ResponsesEncode, AnAnswerIsAResponseWithItsItemsInOrder) {
  core::ChatResponse a;
  a.id = "msg_01";
  a.model = "claude-x";
  Block thinking;
  thinking.type = Block::Type::thinking;
  thinking.text = "Let me see.";
  thinking.signature = "sig";
  Block call;
  call.type = Block::Type::tool_use;
  call.id = "toolu_1";
  call.name = "f";
  call.arguments = R"({"x":1})";
  a.content = {thinking, Block::make_text("Calling f."), call};
  a.finish = core::FinishReason::tool_calls;
  a.usage = {10, 20, 4, 0, 0, 5, true};
  std::string out;
  dialects::responses::encode_response(a, out);
  json::object r = json::parse(out).as_object();
  EXPECT_EQ(r.at("object").as_string(), "response");
  EXPECT_EQ(r.at("status").as_string(), "completed");
  const json::array& items = r.at("output").as_array();
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0].at("type").as_string(), "reasoning");
  EXPECT_EQ(items[0].at("summary").at(0).at("text").as_string(), "Let me see.");
  EXPECT_EQ(items[0].at("encrypted_content").as_string(), "switchyard-signature:sig");
  EXPECT_EQ(items[1].at("content").at(0).at("text").as_string(), "Calling f.");
  EXPECT_EQ(items[2].at("call_id").as_string(), "toolu_1");
  EXPECT_EQ(items[2].at("arguments").as_string(), R"({"x":1})");
  EXPECT_EQ(r.at("usage").at("input_tokens").as_int64(), 10);
  EXPECT_EQ(r.at("usage").at("input_tokens_details").at("cached_tokens").as_int64(), 4);
  EXPECT_EQ(r.at("usage").at("output_tokens_details").at("reasoning_tokens").as_int64(), 5);
  EXPECT_EQ(r.at("usage").at("total_tokens").as_int64(), 30);

  a.finish = core::FinishReason::length;
  out.clear();
  dialects::responses::encode_response(a, out);
  r = json::parse(out).as_object();
  EXPECT_EQ(r.at("status").as_string(), "incomplete");
  EXPECT_EQ(r.at("incomplete_details").at("reason").as_string(), "max_output_tokens");
}

TEST(ResponsesStream, CanonicalEventsBecomeTypedEventsWithSequenceNumbers) {
  using Kind = core::StreamEvent::Kind;
  dialects::responses::EventEncoder enc("route-model");
  auto ev = [](Kind k, std::string text = {}) {
    core::StreamEvent e;
    e.kind = k;
    e.text = std::move(text);
    return e;
  };
  core::StreamEvent start = ev(Kind::start);
  start.id = "chatcmpl-9";
  start.model = "gpt-x";
  enc.on_event(start);
  enc.on_event(ev(Kind::text, "Hel"));
  enc.on_event(ev(Kind::text, "lo"));
  core::StreamEvent tool = ev(Kind::tool_start);
  tool.id = "call_1";
  tool.name = "f";
  enc.on_event(tool);
  enc.on_event(ev(Kind::tool_args, R"({"a")"));
  enc.on_event(ev(Kind::tool_args, R"(:1})"));
  core::StreamEvent fin = ev(Kind::finish);
  fin.finish = core::FinishReason::tool_calls;
  enc.on_event(fin);
  core::StreamEvent usage = ev(Kind::usage);
  usage.usage = {7, 3, 0, 0, 0, 0, true};
  enc.on_event(usage);
  enc.end();
  std::vector<json::object> events = events_of(enc.out());
  std::vector<std::string> types;
  for (std::size_t i = 0; i < events.size(); ++i) {
    types.emplace_back(events[i].at("type").as_string());
    EXPECT_EQ(events[i].at("sequence_number").as_int64(), static_cast<std::int64_t>(i));
  }
  const std::vector<std::string> expected = {
      "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
      "response.output_text.delta", "response.output_text.delta", "response.output_text.done",
      "response.content_part.done", "response.output_item.done", "response.output_item.added",
      "response.function_call_arguments.delta", "response.function_call_arguments.delta",
      "response.function_call_arguments.done", "response.output_item.done", "response.completed"};
  EXPECT_EQ(types, expected);
  EXPECT_EQ(events[6].at("text").as_string(), "Hello");
  EXPECT_EQ(events[12].at("arguments").as_string(), R"({"a":1})");
  const json::object& done = events.back().at("response").as_object();
  EXPECT_EQ(done.at("status").as_string(), "completed");
  EXPECT_EQ(done.at("model").as_string(), "gpt-x");
  EXPECT_EQ(done.at("output").as_array().size(), 2u);
  EXPECT_EQ(done.at("output").at(1).at("name").as_string(), "f");
  EXPECT_EQ(done.at("usage").at("total_tokens").as_int64(), 10);
  EXPECT_EQ(events[0].at("response").at("id"), done.at("id"));

  // An upstream failure mid-stream ends it with response.failed, and nothing after.
  dialects::responses::EventEncoder failing("m");
  failing.on_event(start);
  failing.on_event(ev(Kind::text, "Hi"));
  core::StreamEvent err = ev(Kind::error);
  err.error = core::ApiError::make(core::ErrorKind::upstream_connect, "broke", {}, "upstream_stream_incomplete");
  failing.on_event(err);
  failing.end();
  std::vector<json::object> failed = events_of(failing.out());
  EXPECT_EQ(failed.back().at("type").as_string(), "response.failed");
  EXPECT_EQ(failed.back().at("response").at("error").at("code").as_string(), "upstream_stream_incomplete");
}

TEST(ResponsesDecode, CodexsNamespaceOfFunctionsAndClientMetadataAreNotRefused) {
  core::ChatRequest r = decode(R"({"model":"m","input":"hi","client_metadata":{"session_id":"s"},
    "tools":[{"type":"function","name":"exec_command","parameters":{"type":"object"}},
             {"type":"namespace","name":"multi_agent_v1","description":"agents","tools":[
               {"type":"function","name":"spawn_agent","parameters":{"type":"object"}},
               {"type":"function","name":"wait_agent","parameters":{"type":"object"}}]}]})");
  std::vector<std::string> names;
  for (const auto& t : r.tools) names.push_back(t.name);
  EXPECT_EQ(names, (std::vector<std::string>{"exec_command", "spawn_agent", "wait_agent"}));
  EXPECT_TRUE(r.extra.empty()) << json::serialize(r.extra);
}

TEST(CallIds, AGeminiSignatureRidesInTheCallsIdAndComesBackOut) {
  // Any bytes, the fake's and Gemini's base64 alike.
  for (std::string signature : {std::string("gsig_fake-0-1"), std::string("CiQBjz1rX+/aZ==\n\x01\xff\0z", 20), std::string()}) {
    std::string id = dialects::id_with_signature("toolu_01", signature);
    for (char c : id)
      EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-') << id;
    EXPECT_EQ(dialects::take_signature(id), signature);
    EXPECT_EQ(id, "toolu_01");
  }
  std::string plain = "call_abc";
  EXPECT_EQ(dialects::take_signature(plain), "");
  EXPECT_EQ(plain, "call_abc");
  // Through the Responses dialect: the call's id in the next turn gives the signature back.
  core::ChatRequest r = decode(R"({"model":"m","input":[{"role":"user","content":"q"},
    {"type":"function_call","call_id":")" + dialects::id_with_signature("call_1", "sig-xyz") + R"(","name":"f","arguments":"{}"},
    {"type":"function_call_output","call_id":")" + dialects::id_with_signature("call_1", "sig-xyz") + R"(","output":"ok"}]})");
  EXPECT_EQ(r.messages[1].content[0].id, "call_1");
  EXPECT_EQ(r.messages[1].content[0].signature, "sig-xyz");
  EXPECT_EQ(r.messages[2].content[0].id, "call_1");
}

TEST(ResponsesStream, AStreamEndsWithAnErrorEventInEachClientsDialect) {
  const core::ApiError e = core::ApiError::make(core::ErrorKind::unavailable, "cut", {}, "switchyard_draining");
  const std::string responses = dialects::stream_error_event(dialects::Dialect::responses, e, "req_1");
  ASSERT_TRUE(responses.starts_with("event: error\ndata: "));
  json::object o = json::parse(responses.substr(19)).as_object();
  EXPECT_EQ(o.at("type").as_string(), "error");
  EXPECT_EQ(o.at("code").as_string(), "switchyard_draining");
  EXPECT_EQ(o.at("message").as_string(), "cut");
  EXPECT_TRUE(dialects::stream_error_event(dialects::Dialect::anthropic, e, "req_1").starts_with("event: error\ndata: {\"type\":\"error\""));
  EXPECT_TRUE(dialects::stream_error_event(dialects::Dialect::openai, e, "req_1").starts_with("data: {\"error\":"));
}
