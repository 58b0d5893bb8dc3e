#include "dialects/sse.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using switchyard::dialects::SseEvent;
using switchyard::dialects::SseSplitter;

namespace {

struct Seen {
  std::string raw, name, data;
};

std::vector<Seen> feed_in_pieces(const std::string& stream, std::size_t piece) {
  SseSplitter splitter;
  std::vector<Seen> seen;
  for (std::size_t i = 0; i < stream.size(); i += piece) {
    splitter.feed(std::string_view(stream).substr(i, piece), [&](const SseEvent& e) {
      seen.push_back({std::string(e.raw), std::string(e.name), std::string(e.data)});
    });
  }
  return seen;
}

}  // namespace

TEST(Sse, SplitsEventsWhateverTheReadBoundaries) {
  std::string stream =
      "data: {\"a\":1}\n\n"
      ": keep-alive comment\n\n"
      "event: message_start\r\ndata: {\"b\":2}\r\n\r\n"
      "data: line1\ndata: line2\n\n"
      "data: [DONE]\n\n";
  for (std::size_t piece : {1u, 2u, 3u, 7u, 16u, 1000u}) {
    auto seen = feed_in_pieces(stream, piece);
    ASSERT_EQ(seen.size(), 5u) << "piece " << piece;
    EXPECT_EQ(seen[0].data, "{\"a\":1}");
    EXPECT_EQ(seen[0].raw, "data: {\"a\":1}\n\n");
    EXPECT_EQ(seen[1].data, "");
    EXPECT_EQ(seen[2].name, "message_start");
    EXPECT_EQ(seen[2].data, "{\"b\":2}");
    EXPECT_EQ(seen[2].raw, "event: message_start\r\ndata: {\"b\":2}\r\n\r\n");
    EXPECT_EQ(seen[3].data, "line1\nline2");
    EXPECT_EQ(seen[4].data, "[DONE]");
  }
}

TEST(Sse, KeepsAnIncompleteTail) {
  SseSplitter splitter;
  int events = 0;
  splitter.feed("data: x\n\ndata: partial", [&](const SseEvent&) { ++events; });
  EXPECT_EQ(events, 1);
  EXPECT_EQ(splitter.pending(), "data: partial");
  splitter.feed("\n\n", [&](const SseEvent& e) {
    ++events;
    EXPECT_EQ(e.data, "partial");
  });
  EXPECT_EQ(events, 2);
  EXPECT_TRUE(splitter.pending().empty());
}

TEST(Sse, NoSpaceAfterColonAndCrOnlyLines) {
  auto seen = feed_in_pieces("data:x\r\rdata:  y\n\n", 1);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].data, "x");
  EXPECT_EQ(seen[1].data, " y");
}

TEST(Sse, RefusesAnEventBeyondTheLimit) {
  SseSplitter splitter(16);
  EXPECT_TRUE(splitter.feed("data: 0123456", [](const SseEvent&) {}));
  EXPECT_FALSE(splitter.feed("789abcdef", [](const SseEvent&) {}));
}

TEST(SseContent, EventsThatOnlyOpenAStreamAreNotContent) {
  using switchyard::dialects::carries_content;
  using switchyard::dialects::Dialect;
  auto ev = [](std::string_view name, std::string_view data) { return SseEvent{{}, name, data}; };
  // OpenAI: the role chunk (with or without empty text), then what counts.
  EXPECT_FALSE(carries_content(Dialect::openai, ev("", R"({"id":"c","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]})")));
  EXPECT_FALSE(carries_content(Dialect::openai, ev("", R"({"id":"c","choices":[{"index":0,"delta":{"role":"assistant"}}],"usage":null})")));
  EXPECT_FALSE(carries_content(Dialect::openai, ev("", "")));  // a keep-alive comment
  EXPECT_TRUE(carries_content(Dialect::openai, ev("", R"({"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]})")));
  EXPECT_TRUE(carries_content(Dialect::openai, ev("", R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","function":{"name":"f","arguments":""}}]}}]})")));
  EXPECT_TRUE(carries_content(Dialect::openai, ev("", R"({"choices":[{"index":0,"delta":{"reasoning_content":"Let me"}}]})")));
  EXPECT_TRUE(carries_content(Dialect::openai, ev("", R"({"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]})")));
  EXPECT_TRUE(carries_content(Dialect::openai, ev("", R"({"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":0}})")));
  EXPECT_TRUE(carries_content(Dialect::openai, ev("", R"({"error":{"message":"boom"}})")));
  EXPECT_TRUE(carries_content(Dialect::openai, ev("", "[DONE]")));
  EXPECT_TRUE(carries_content(Dialect::openai, ev("", "not json"))) << "unsure means content";
  // Anthropic: by event name.
  EXPECT_FALSE(carries_content(Dialect::anthropic, ev("message_start", R"({"type":"message_start"})")));
  EXPECT_FALSE(carries_content(Dialect::anthropic, ev("content_block_start", R"({"type":"content_block_start"})")));
  EXPECT_FALSE(carries_content(Dialect::anthropic, ev("ping", R"({"type":"ping"})")));
  EXPECT_TRUE(carries_content(Dialect::anthropic, ev("content_block_delta", R"({"type":"content_block_delta"})")));
  EXPECT_TRUE(carries_content(Dialect::anthropic, ev("error", R"({"type":"error"})")));
  EXPECT_TRUE(carries_content(Dialect::gemini, ev("", R"({"candidates":[]})")));
}
