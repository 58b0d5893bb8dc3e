#include "net/buffer.hpp"

#include <gtest/gtest.h>

#include <string>

using switchyard::net::ByteBuffer;

namespace {

void put(ByteBuffer& b, std::string_view s) {
  ASSERT_GE(b.free(), s.size());
  std::memcpy(b.tail(), s.data(), s.size());
  b.commit(s.size());
}

}  // namespace

TEST(ByteBuffer, ConsumingTheFrontLeavesTheRestInPlaceWhileRoomRemainsBehindIt) {
  ByteBuffer b(4096);
  std::string first(700, 'a'), second(700, 'b');
  put(b, first);
  put(b, second);
  const char* second_at = b.data() + first.size();
  b.consume(first.size());
  EXPECT_EQ(b.data(), second_at);  // not copied
  EXPECT_EQ(b.view(), second);
  EXPECT_EQ(b.free(), 4096u - 1400u);
  EXPECT_EQ(b.capacity(), 4096u - 700u);
}

TEST(ByteBuffer, TheRestGoesToTheFrontWhenLessThanAQuarterIsLeftBehindIt) {
  ByteBuffer b(4096);
  // Request after request, each read behind the one before (as the read-ahead does).
  std::string previous(700, '0');
  put(b, previous);
  const char* front = b.data();
  bool moved_back = false;
  for (int i = 1; i < 12; ++i) {
    std::string next(700, static_cast<char>('0' + i));
    put(b, next);
    b.consume(previous.size());
    ASSERT_EQ(b.view(), next) << i;
    ASSERT_GE(b.free(), 1024u) << i;  // room for the next read, always
    if (b.data() == front) moved_back = true;
    previous = next;
  }
  EXPECT_TRUE(moved_back);
}

TEST(ByteBuffer, ConsumingEverythingStartsOverAtTheFront) {
  ByteBuffer b(1024);
  put(b, "hello");
  const char* front = b.data();
  b.consume(2);
  EXPECT_NE(b.data(), front);
  b.consume(10);
  EXPECT_EQ(b.size(), 0u);
  EXPECT_EQ(b.data(), front);
  EXPECT_EQ(b.free(), 1024u);
}

TEST(ByteBuffer, ReserveMovesToTheFrontBeforeGrowingAndKeepsTheData) {
  ByteBuffer b(1000);
  put(b, std::string(600, 'x'));
  put(b, "tail");
  b.consume(600);
  // 996 bytes of room needed from data(): the allocation has it once the data is at the front.
  b.reserve(996);
  EXPECT_EQ(b.view(), "tail");
  EXPECT_EQ(b.capacity(), 1000u);
  EXPECT_EQ(b.free(), 996u);
  b.reserve(5000);  // grows
  EXPECT_EQ(b.view(), "tail");
  EXPECT_GE(b.capacity(), 5000u);
  b.reserve_free(6000);
  EXPECT_EQ(b.view(), "tail");
  EXPECT_GE(b.free(), 6000u);
}

TEST(ByteBuffer, TruncateAppendAndShrinkWorkFromWhereTheDataStarts) {
  ByteBuffer b(64);
  put(b, "0123456789");
  b.consume(4);
  b.truncate(3);
  EXPECT_EQ(b.view(), "456");
  b.append("abc");
  EXPECT_EQ(b.view(), "456abc");
  b.append(std::string(200, 'z'));  // grows
  EXPECT_EQ(b.view().substr(0, 6), "456abc");
  EXPECT_EQ(b.size(), 206u);
  b.consume(200);
  b.shrink(32, 100);
  EXPECT_EQ(b.capacity(), 32u);
  EXPECT_EQ(b.view(), std::string(6, 'z'));
  b.clear();
  EXPECT_EQ(b.size(), 0u);
  EXPECT_EQ(b.free(), 32u);
}
