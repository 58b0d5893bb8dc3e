#include "governance/gcra.hpp"

#include <gtest/gtest.h>

namespace {

using switchyard::governance::gcra_give_back;
using switchyard::governance::gcra_take;
using switchyard::governance::GcraLimit;
using switchyard::governance::GcraState;

TEST(Gcra, ABurstThenOneUnitPerInterval) {
  const GcraLimit ten_per_second{10, 1000, 10};
  GcraState s;
  for (int i = 0; i < 10; ++i) {
    auto d = gcra_take(ten_per_second, s, 0, 1);
    ASSERT_TRUE(d.allowed) << i;
    EXPECT_EQ(d.remaining, 9 - i);
  }
  auto refused = gcra_take(ten_per_second, s, 0, 1);
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after_ms, 100) << "one unit's interval";
  EXPECT_EQ(refused.remaining, 0);
  EXPECT_EQ(refused.reset_ms, 1000) << "the whole burst refills in a second";
  EXPECT_FALSE(gcra_take(ten_per_second, s, 99, 1).allowed);
  EXPECT_TRUE(gcra_take(ten_per_second, s, 100, 1).allowed);
  EXPECT_FALSE(gcra_take(ten_per_second, s, 100, 1).allowed);
}

TEST(Gcra, RefillIsExactWhenThePeriodDoesNotDivide) {
  const GcraLimit seven_per_minute{7, 60000, 2};  // one every 8,571.43 ms, two at once
  GcraState s;
  ASSERT_TRUE(gcra_take(seven_per_minute, s, 0, 1).allowed);
  ASSERT_TRUE(gcra_take(seven_per_minute, s, 0, 1).allowed);
  auto early = gcra_take(seven_per_minute, s, 8571, 1);
  EXPECT_FALSE(early.allowed);
  EXPECT_EQ(early.retry_after_ms, 1);
  EXPECT_TRUE(gcra_take(seven_per_minute, s, 8572, 1).allowed);
  // Taken as soon as allowed for an hour: the burst and then exactly 7 a minute — the fractions
  // of a millisecond are not lost to rounding (floor(3,599,999 x 7 / 60,000) = 419).
  GcraState g;
  int allowed = 0;
  for (std::int64_t t = 0; t < 3'600'000; ++t)
    while (gcra_take(seven_per_minute, g, t, 1).allowed) ++allowed;
  EXPECT_EQ(allowed, 2 + 419);
}

TEST(Gcra, NoDoubleBurstAtAWindowsEdge) {
  // A fixed window would let 10 through at 999 ms and 10 more at 1,000 ms.
  const GcraLimit ten_per_second{10, 1000, 10};
  GcraState s;
  ASSERT_TRUE(gcra_take(ten_per_second, s, 999, 10).allowed);
  auto d = gcra_take(ten_per_second, s, 1000, 1);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after_ms, 99);
  // A greedy client over ten seconds: the burst, then the rate, never more.
  GcraState g;
  int allowed = 0;
  for (std::int64_t t = 0; t <= 10000; ++t)
    while (gcra_take(ten_per_second, g, t, 1).allowed) ++allowed;
  EXPECT_EQ(allowed, 10 + 100);
}

TEST(Gcra, TokensAreTakenByTheEstimateAndCorrectedAtSettlement) {
  const GcraLimit tpm{1000, 60000, 1000};  // 1,000 tokens a minute: 60 ms a token
  GcraState s;
  auto first = gcra_take(tpm, s, 0, 600);
  ASSERT_TRUE(first.allowed);
  EXPECT_EQ(first.remaining, 400);
  auto second = gcra_take(tpm, s, 0, 500);
  EXPECT_FALSE(second.allowed);
  EXPECT_EQ(second.retry_after_ms, 100 * 60) << "100 tokens short";
  gcra_give_back(tpm, s, 200);  // the first request used 400, not the 600 estimated
  EXPECT_TRUE(gcra_take(tpm, s, 0, 500).allowed);
  gcra_give_back(tpm, s, 1'000'000);  // never more than full
  EXPECT_FALSE(gcra_take(tpm, s, 0, 1001).allowed);
  EXPECT_TRUE(gcra_take(tpm, s, 0, 1000).allowed);
}

TEST(Gcra, ATakeLargerThanTheBurstIsRefusedAndLargeFiguresDoNotOverflow) {
  const GcraLimit big{2'000'000'000, 60000, 2'000'000'000};
  GcraState s;
  const std::int64_t late = 50LL * 365 * 86400 * 1000;  // fifty years of milliseconds
  auto d = gcra_take(big, s, late, 1'500'000'000);
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.remaining, 500'000'000);
  auto over = gcra_take(big, s, late, 2'000'000'001);
  EXPECT_FALSE(over.allowed);
  EXPECT_EQ(over.retry_after_ms, 60000);
}

}  // namespace
