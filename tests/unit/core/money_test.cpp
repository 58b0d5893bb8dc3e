#include <gtest/gtest.h>

#include "core/money.hpp"

using switchyard::core::Money;
using switchyard::core::parse_rate;

TEST(Money, ParsesAndWritesDecimalDollarsExactly) {
  EXPECT_EQ(Money::parse("0.000000001")->nanos(), 1);
  EXPECT_EQ(Money::parse("12")->nanos(), 12'000'000'000);
  EXPECT_EQ(Money::parse("0.25")->nanos(), 250'000'000);
  EXPECT_EQ(Money::parse("-3.5")->nanos(), -3'500'000'000);
  EXPECT_EQ(Money::parse(".5")->nanos(), 500'000'000);
  for (const char* bad : {"", "-", "1.", "1e-3", "0.0000000001", "abc", "1.2.3", "+1", "10000000000"})
    EXPECT_FALSE(Money::parse(bad)) << bad;
  EXPECT_EQ(Money::nanos(5'615'000).to_string(), "0.005615");
  EXPECT_EQ(Money::nanos(12'000'000'000).to_string(), "12");
  EXPECT_EQ(Money::nanos(-1).to_string(), "-0.000000001");
  EXPECT_EQ(Money::nanos(0).to_string(), "0");
  // A tenth of a cent ten thousand times is exactly ten dollars (a double sum is not).
  Money sum;
  for (int i = 0; i < 10000; ++i) sum += *Money::parse("0.001");
  EXPECT_EQ(sum, *Money::parse("10"));
}

TEST(Money, RatesAreMicroDollarsPerMillionTokens) {
  EXPECT_EQ(parse_rate("0.0375"), 37'500);
  EXPECT_EQ(parse_rate("15"), 15'000'000);
  EXPECT_EQ(parse_rate("0.000001"), 1);
  EXPECT_FALSE(parse_rate("0.0000001"));  // finer than any published price
  EXPECT_FALSE(parse_rate("-1"));
  EXPECT_FALSE(parse_rate("1e2"));
}
