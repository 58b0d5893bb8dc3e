#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "net/buffer.hpp"
#include "net/client_limits.hpp"

using namespace switchyard::net;
using namespace std::chrono_literals;

namespace {

AddressTable::Address address(unsigned char last) {
  AddressTable::Address a{};
  a[10] = a[11] = 0xff;  // IPv4-mapped 127.0.0.last
  a[12] = 127;
  a[15] = last;
  return a;
}

}  // namespace

TEST(AddressTable, HoldsAnAddressToItsUnauthenticatedConnectionsAndForgetsItWhenItLeaves) {
  AddressTable table({.max_connections = 3, .requests_per_second = 0});
  const auto a = address(2), b = address(3);
  EXPECT_TRUE(table.open(a));
  EXPECT_TRUE(table.open(a));
  EXPECT_TRUE(table.open(a));
  EXPECT_FALSE(table.open(a)) << "the fourth of one address";
  EXPECT_TRUE(table.open(b)) << "another address is not affected";
  EXPECT_TRUE(table.open(a, /*enforce=*/false)) << "counted, not refused, while slots are plentiful";
  table.release(a);
  table.release(a);  // one authenticated (or closed)
  EXPECT_TRUE(table.open(a));
  for (int i = 0; i < 3; ++i) table.release(a);
  table.release(b);
  EXPECT_EQ(table.size(), 0u) << "nothing kept for addresses that left";
}

TEST(AddressTable, RefusalsAreRatedPerAddressWithASecondsBurst) {
  AddressTable table({.max_connections = 0, .requests_per_second = 10});
  const auto a = address(2), b = address(3);
  const Clock::time_point t0 = Clock::now();
  int charged = 0;
  while (!table.over_rate(a, t0) && charged < 100) {
    table.charge_refusal(a, t0);
    ++charged;
  }
  EXPECT_EQ(charged, 10) << "one second's worth at once";
  EXPECT_FALSE(table.over_rate(b, t0));
  EXPECT_TRUE(table.over_rate(a, t0 + 50ms));
  EXPECT_FALSE(table.over_rate(a, t0 + 110ms)) << "a tenth of a second later, one more";
  table.charge_refusal(a, t0 + 110ms);
  EXPECT_TRUE(table.over_rate(a, t0 + 110ms));
}

TEST(AddressTable, CountsStayExactUnderConcurrentLoops) {
  AddressTable table({.max_connections = 1000000, .requests_per_second = 0});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&table] {
      for (int i = 0; i < 20000; ++i) {
        const auto a = address(static_cast<unsigned char>(i % 7));
        ASSERT_TRUE(table.open(a));
        table.release(a);
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(table.size(), 0u);
}

TEST(MemoryBudget, TakesWhatFitsAndNothingBeyond) {
  MemoryBudget budget(100);
  EXPECT_TRUE(budget.take(60));
  EXPECT_FALSE(budget.take(41));
  EXPECT_EQ(budget.used(), 60u) << "a refused take takes nothing";
  EXPECT_TRUE(budget.take(40));
  budget.give(60);
  EXPECT_TRUE(budget.take(60));
  EXPECT_EQ(budget.used(), 100u);
  EXPECT_GE(MemoryBudget::machine_default(), 64u << 20);
}

TEST(ByteBuffer, LargeAllocationsAreMappedAndSurviveGrowthAndRelease) {
  ByteBuffer buffer(16);
  buffer.append("head|");
  buffer.reserve(ByteBuffer::kMapped * 2);  // mapped from here
  std::string big(ByteBuffer::kMapped, 'x');
  buffer.append(big);
  EXPECT_EQ(buffer.size(), 5 + big.size());
  EXPECT_EQ(buffer.view().substr(0, 5), "head|");
  buffer.consume(5);
  buffer.shrink(4096, 64 * 1024);  // still holds more than 4096: kept
  EXPECT_EQ(buffer.size(), big.size());
  buffer.clear();
  buffer.shrink(4096, 64 * 1024);  // back to a small, allocator-made buffer
  EXPECT_EQ(buffer.capacity(), 4096u);
  buffer.release();
  EXPECT_EQ(buffer.capacity(), 0u);
  buffer.append("again");
  EXPECT_EQ(buffer.view(), "again");
}
