#include "governance/budgets.hpp"
#include "governance/limits.hpp"

#include <gtest/gtest.h>

#include <map>

namespace {

using namespace switchyard::governance;
using switchyard::core::Money;

Money usd(const char* text) { return *Money::parse(text); }

Budget budget(std::string id, Scope scope, std::string subject, const char* limit, Period p = Period::month) {
  Budget b;
  b.id = std::move(id);
  b.scope = scope;
  b.subject = std::move(subject);
  b.limit = usd(limit);
  b.period = p;
  return b;
}

Subjects request(std::string_view key, std::string_view team = {}, std::string_view user = {},
                 std::string_view route = "auto") {
  Subjects s;
  s[Scope::key] = key;
  s[Scope::team] = team;
  s[Scope::user] = user;
  s[Scope::route] = route;
  return s;
}

constexpr std::int64_t kNoon = 1'796'644'800'000;  // 2026-12-07T12:00:00Z

TEST(Periods, DayWeekMonthAndTotalInUtcAndOffsets) {
  // 2026-12-07 is a Monday.
  auto day = period_bounds(Period::day, 0, kNoon);
  EXPECT_EQ(day.start_ms, kNoon - 12 * 3'600'000);
  EXPECT_EQ(day.end_ms, day.start_ms + 86'400'000);
  auto week = period_bounds(Period::week, 0, kNoon + 3 * 86'400'000);  // Thursday
  EXPECT_EQ(week.start_ms, day.start_ms) << "weeks start on Monday";
  EXPECT_EQ(week.end_ms, day.start_ms + 7 * 86'400'000);
  auto month = period_bounds(Period::month, 0, kNoon);
  EXPECT_EQ(month.start_ms, day.start_ms - 6 * 86'400'000);   // 2026-12-01
  EXPECT_EQ(month.end_ms, day.start_ms + 25LL * 86'400'000);    // 2027-01-01
  auto total = period_bounds(Period::total, 0, kNoon);
  EXPECT_EQ(total.start_ms, 0);
  EXPECT_EQ(total.end_ms, INT64_MAX);
  // At 12:00 UTC it is 17:30 in +05:30: that day started at 18:30 UTC the day before.
  auto india = period_bounds(Period::day, 330, kNoon);
  EXPECT_EQ(india.start_ms, day.start_ms - 330 * 60'000);
  // At 02:00 UTC on the 1st it is still November in -08:00.
  auto pacific = period_bounds(Period::month, -480, month.start_ms + 2 * 3'600'000);
  EXPECT_EQ(pacific.end_ms, month.start_ms + 480 * 60'000);

  EXPECT_EQ(parse_utc_offset("UTC"), 0);
  EXPECT_EQ(parse_utc_offset("+05:30"), 330);
  EXPECT_EQ(parse_utc_offset("-08:00"), -480);
  EXPECT_EQ(parse_utc_offset("UTC+02:00"), 120);
  EXPECT_EQ(parse_utc_offset("+0545"), 345);
  EXPECT_FALSE(parse_utc_offset("Europe/Paris"));
  EXPECT_FALSE(parse_utc_offset("+25:00"));
  EXPECT_FALSE(parse_utc_offset("+05:60"));
}

TEST(Budgets, AReservationGoesOnEveryBudgetOrOnNone) {
  BudgetBook book(nullptr);
  book.set({budget("k", Scope::key, "key_a", "1"), budget("t", Scope::team, "search", "0.5"),
            budget("other", Scope::key, "key_b", "0.001")},
           kNoon);
  BudgetBook::Hold h1;
  EXPECT_FALSE(book.reserve(request("key_a", "search"), usd("0.3"), kNoon, h1));
  EXPECT_EQ(h1.entries.size(), 2u) << "the key's and the team's budgets, not key_b's";
  BudgetBook::Hold h2;
  auto refused = book.reserve(request("key_a", "search"), usd("0.3"), kNoon, h2);
  ASSERT_TRUE(refused) << "the team's 0.5 cannot hold 0.3 + 0.3";
  EXPECT_EQ(refused->budget.id, "t");
  EXPECT_EQ(refused->reserved, usd("0.3"));
  EXPECT_EQ(refused->asked, usd("0.3"));
  EXPECT_EQ(refused->resets_ms, period_bounds(Period::month, 0, kNoon).end_ms);
  EXPECT_FALSE(h2.active());
  for (const auto& v : book.view(kNoon))
    if (v.budget.id == "k") EXPECT_EQ(v.reserved, usd("0.3")) << "the refusal reserved nothing on the key's";
}

TEST(Budgets, SettlementTurnsTheReservationIntoTheCostOnceAndReleasesOnFailure) {
  BudgetBook book(nullptr);
  book.set({budget("k", Scope::key, "key_a", "1")}, kNoon);
  std::vector<BudgetAlert> alerts;
  std::vector<BudgetCharge> charges;
  BudgetBook::Hold ok, failed;
  ASSERT_FALSE(book.reserve(request("key_a"), usd("0.4"), kNoon, ok));
  ASSERT_FALSE(book.reserve(request("key_a"), usd("0.4"), kNoon, failed));
  book.settle(ok, usd("0.01"), kNoon, alerts, charges);
  book.settle(ok, usd("0.01"), kNoon, alerts, charges);  // again: nothing more
  book.settle(failed, std::nullopt, kNoon, alerts, charges);
  auto v = book.view(kNoon);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].spent, usd("0.01"));
  EXPECT_EQ(v[0].reserved, Money{});
  ASSERT_EQ(charges.size(), 1u) << "only the settled cost is charged";
  EXPECT_EQ(charges[0].budget_id, "k");
  EXPECT_EQ(charges[0].period_start_ms, period_bounds(Period::month, 0, kNoon).start_ms);
  EXPECT_EQ(book.overruns(), 0);
}

TEST(Budgets, ConcurrentMaximumsNeverAdmitMoreThanTheLimit) {
  BudgetBook book(nullptr);
  book.set({budget("k", Scope::key, "key_a", "1")}, kNoon);
  std::vector<BudgetBook::Hold> holds(200);
  int admitted = 0;
  for (auto& h : holds) admitted += !book.reserve(request("key_a"), usd("0.03"), kNoon, h);
  EXPECT_EQ(admitted, 33) << "floor(1 / 0.03)";
  std::vector<BudgetAlert> alerts;
  std::vector<BudgetCharge> charges;
  for (auto& h : holds) book.settle(h, usd("0.03"), kNoon, alerts, charges);  // every one billed its maximum
  EXPECT_EQ(book.view(kNoon)[0].spent, usd("0.99"));
}

TEST(Budgets, ACostAboveTheReservationIsCountedAsAnOverrun) {
  BudgetBook book(nullptr);
  book.set({budget("k", Scope::key, "key_a", "1")}, kNoon);
  BudgetBook::Hold h;
  ASSERT_FALSE(book.reserve(request("key_a"), usd("0.1"), kNoon, h));
  std::vector<BudgetAlert> alerts;
  std::vector<BudgetCharge> charges;
  book.settle(h, usd("0.2"), kNoon, alerts, charges);
  EXPECT_EQ(book.overruns(), 1);
  EXPECT_EQ(book.view(kNoon)[0].spent, usd("0.2")) << "what was billed is what is spent";
}

TEST(Budgets, APeriodBoundaryResetsCleanlyWithRequestsInFlight) {
  std::map<std::pair<std::string, std::int64_t>, Money> stored;  // what the ledger holds
  BudgetBook book([&](const std::string& id, std::int64_t start) { return stored[{id, start}]; });
  book.set({budget("d", Scope::key, "key_a", "1", Period::day)}, kNoon);
  const std::int64_t midnight = period_bounds(Period::day, 0, kNoon).end_ms;
  BudgetBook::Hold before, spanning;
  ASSERT_FALSE(book.reserve(request("key_a"), usd("0.6"), kNoon, before));
  ASSERT_FALSE(book.reserve(request("key_a"), usd("0.4"), midnight - 1, spanning));
  std::vector<BudgetAlert> alerts;
  std::vector<BudgetCharge> charges;
  book.settle(before, usd("0.6"), kNoon, alerts, charges);
  // The next day: the budget starts empty; the request admitted yesterday settles into yesterday.
  BudgetBook::Hold today;
  EXPECT_FALSE(book.reserve(request("key_a"), usd("0.9"), midnight + 1, today))
      << "yesterday's reservation does not hold back today's budget";
  charges.clear();
  book.settle(spanning, usd("0.4"), midnight + 2, alerts, charges);
  ASSERT_EQ(charges.size(), 1u);
  EXPECT_EQ(charges[0].period_start_ms, midnight - 86'400'000) << "charged to the day it was admitted";
  auto v = book.view(midnight + 3);
  EXPECT_EQ(v[0].spent, Money{});
  EXPECT_EQ(v[0].reserved, usd("0.9"));
}

TEST(Budgets, ARestartWithinAPeriodStartsFromTheLedger) {
  BudgetBook book([](const std::string& id, std::int64_t) { return id == "k" ? *Money::parse("0.75") : Money{}; });
  book.set({budget("k", Scope::key, "key_a", "1")}, kNoon);
  BudgetBook::Hold h;
  auto refused = book.reserve(request("key_a"), usd("0.3"), kNoon, h);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->spent, usd("0.75"));
}

TEST(Budgets, SoftLimitsAlertOnceAndNeverRefuse) {
  BudgetBook book(nullptr);
  Budget b = budget("soft", Scope::user, "alice", "1");
  b.hard = false;
  b.alert_percents = {50, 90};
  book.set({b}, kNoon);
  std::vector<BudgetAlert> alerts;
  std::vector<BudgetCharge> charges;
  for (int i = 0; i < 6; ++i) {
    BudgetBook::Hold h;
    ASSERT_FALSE(book.reserve(request("key_a", {}, "alice"), usd("5"), kNoon, h)) << "soft: never refused";
    book.settle(h, usd("0.3"), kNoon, alerts, charges);
  }
  ASSERT_EQ(alerts.size(), 3u);
  EXPECT_EQ(alerts[0].percent, 50);
  EXPECT_EQ(alerts[0].spent, usd("0.6"));
  EXPECT_EQ(alerts[1].percent, 90);
  EXPECT_EQ(alerts[1].spent, usd("0.9"));
  EXPECT_EQ(alerts[2].percent, 100);
}

TEST(Budgets, ChangedDefinitionsKeepTheirCounters) {
  BudgetBook book(nullptr);
  book.set({budget("k", Scope::key, "key_a", "1")}, kNoon);
  BudgetBook::Hold h;
  ASSERT_FALSE(book.reserve(request("key_a"), usd("0.5"), kNoon, h));
  book.set({budget("k", Scope::key, "key_a", "0.6")}, kNoon);
  BudgetBook::Hold h2;
  EXPECT_TRUE(book.reserve(request("key_a"), usd("0.2"), kNoon, h2)) << "0.5 still reserved under the new 0.6";
  std::vector<BudgetAlert> alerts;
  std::vector<BudgetCharge> charges;
  book.set({}, kNoon);  // deleted while the request runs
  book.settle(h, usd("0.1"), kNoon, alerts, charges);
  EXPECT_TRUE(book.view(kNoon).empty());
}

Limit limit(std::string id, Scope scope, std::string subject, std::int64_t rpm, std::int64_t tpm = 0,
            std::int64_t concurrent = 0) {
  Limit l;
  l.id = std::move(id);
  l.scope = scope;
  l.subject = std::move(subject);
  l.rpm = rpm;
  l.tpm = tpm;
  l.concurrent = concurrent;
  return l;
}

TEST(Limits, RequestsPerMinuteRefillContinuouslyAndRefuseWithWhen) {
  LimitBook book;
  book.set({limit("l", Scope::key, "key_a", 60)});
  std::int64_t now = kNoon;
  for (int i = 0; i < 60; ++i) {
    LimitBook::Ticket t;
    ASSERT_FALSE(book.take(request("key_a"), 0, now, t)) << i;
    book.settle(t, -1, now);
  }
  LimitBook::Ticket t;
  auto refused = book.take(request("key_a"), 0, now, t);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->kind, LimitKind::requests);
  EXPECT_EQ(refused->allowed, 60);
  EXPECT_EQ(refused->remaining, 0);
  EXPECT_EQ(refused->retry_after_ms, 1000) << "one request a second comes back";
  EXPECT_FALSE(book.take(request("key_a"), 0, now + 1000, t));
  EXPECT_TRUE(book.take(request("key_b"), 0, now, t) == std::nullopt) << "another key is not limited";
}

TEST(Limits, AllOrNothingAcrossScopesAndConcurrency) {
  LimitBook book;
  book.set({limit("key", Scope::key, "key_a", 3), limit("team", Scope::team, "search", 0, 0, 2)});
  LimitBook::Ticket a, b, c, d;
  ASSERT_FALSE(book.take(request("key_a", "search"), 0, kNoon, a));
  ASSERT_FALSE(book.take(request("key_a", "search"), 0, kNoon, b));
  auto refused = book.take(request("key_a", "search"), 0, kNoon, c);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->kind, LimitKind::concurrent);
  EXPECT_EQ(refused->limit.id, "team");
  book.settle(a, -1, kNoon);
  // The refused take took nothing from the key's 3 a minute: this is its third.
  EXPECT_FALSE(book.take(request("key_a", "search"), 0, kNoon, c)) << "a place in flight was given back";
  book.settle(b, -1, kNoon);
  refused = book.take(request("key_a", "search"), 0, kNoon, d);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->kind, LimitKind::requests);
  // A changed figure starts with a full allowance (the old state counts in the old rate's units).
  book.set({limit("key", Scope::key, "key_a", 4)});
  EXPECT_FALSE(book.take(request("key_a"), 0, kNoon, d));
}

TEST(Limits, TokensAreEstimatedAtAdmissionAndCorrectedAtSettlement) {
  LimitBook book;
  book.set({limit("t", Scope::key, "key_a", 0, 1000)});
  LimitBook::Ticket t1;
  ASSERT_FALSE(book.take(request("key_a"), 800, kNoon, t1));
  LimitBook::Ticket t2;
  auto refused = book.take(request("key_a"), 300, kNoon, t2);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->kind, LimitKind::tokens);
  book.settle(t1, 100, kNoon);  // it used 100 of the 800 estimated
  EXPECT_FALSE(book.take(request("key_a"), 300, kNoon, t2)) << "700 tokens were given back";
  book.settle(t2, 900, kNoon);  // used 600 more than estimated: owed
  LimitBook::Ticket t3;
  refused = book.take(request("key_a"), 1, kNoon, t3);
  ASSERT_TRUE(refused) << "1000 used of 1000";
  EXPECT_EQ(refused->retry_after_ms, 60);
}

}  // namespace
