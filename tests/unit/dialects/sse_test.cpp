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
