#include "governance/reservation.hpp"

#include <gtest/gtest.h>

#include "catalog/catalog.hpp"

namespace {

using namespace switchyard;
using core::Money;

constexpr std::int64_t kNoonNov25 = 1764072000;

TEST(Reservation, TheCeilingCoversTheDearestWayTheTokensCanBill) {
  // gpt-4o: $2.50 in, $10 out; writes bill as input, reads cheaper: 1,000 x 2.50 + 500 x 10.
  const catalog::ModelInfo* gpt = catalog::builtin().find("gpt-4o");
  EXPECT_EQ(governance::max_cost(gpt->pricing, 1000, 500, kNoonNov25), Money::nanos(7'500'000));
  // claude-sonnet-4-5: a prompt token can cost a one-hour cache write, $6 (2 x $3): 1,000 x 6 +
  // 500 x 15 = $0.0135.
  const catalog::ModelInfo* claude = catalog::builtin().find("claude-sonnet-4-5");
  EXPECT_EQ(governance::max_cost(claude->pricing, 1000, 500, kNoonNov25), Money::nanos(13'500'000));
  // Over 200K tokens: the long-context tier, $12 a written prompt token, $22.50 out.
  EXPECT_EQ(governance::max_cost(claude->pricing, 300'000, 1000, kNoonNov25),
            Money::nanos(300'000LL * 12'000 + 1000LL * 22'500));
}

TEST(Reservation, NoActualBillUnderThePriceTableExceedsIt) {
  // Whatever split of the same tokens the provider reports, the bill stays under the ceiling.
  const catalog::ModelInfo* claude = catalog::builtin().find("claude-sonnet-4-5");
  const Money ceiling = *governance::max_cost(claude->pricing, 10'000, 2'000, kNoonNov25);
  for (std::int64_t read : {0LL, 5'000LL, 10'000LL})
    for (std::int64_t written : {std::int64_t{0}, std::int64_t{2000}, 10000 - read})
      for (std::int64_t one_hour : {std::int64_t{0}, written})
        for (std::int64_t out : {0LL, 1'000LL, 2'000LL}) {
          core::TokenUsage u;
          u.known = true;
          u.input = 10'000;
          u.cache_read = read;
          u.cache_creation = std::min(written, 10'000 - read);
          u.cache_creation_1h = std::min(one_hour, u.cache_creation);
          u.output = out;
          u.reasoning = out / 2;
          EXPECT_LE(*catalog::cost(claude->pricing, u, kNoonNov25), ceiling)
              << read << " " << written << " " << one_hour << " " << out;
        }
}

TEST(Reservation, UnpricedHasNoCeiling) {
  catalog::Pricing none;
  EXPECT_FALSE(governance::max_cost(none, 1000, 1000, kNoonNov25));
  // A fraction of a nano-dollar rounds up: a ceiling is never below the bill.
  catalog::Pricing tiny;
  tiny.versions.push_back({});
  tiny.versions.back().base = {1, 1};  // $0.000001 per 1M tokens: a pico-dollar a token
  EXPECT_EQ(governance::max_cost(tiny, 1, 0, kNoonNov25), Money::nanos(1));
}

}  // namespace
