#include "routing/decision.hpp"
#include "routing/execution.hpp"
#include "routing/planner.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include <charconv>

#include <cmath>
#include <map>

using namespace switchyard;
using namespace switchyard::routing;
using routing::Objective;
using routing::Strategy;

namespace {

catalog::ModelInfo model(std::string id, double in, double out, double ttft, double tps, float quality,
                         std::uint32_t caps = catalog::kTools | catalog::kVision | catalog::kJsonSchema,
                         std::int64_t window = 128000, std::int64_t max_out = 16000) {
  catalog::ModelInfo m;
  m.id = std::move(id);
  m.pricing.versions.push_back({});
  m.pricing.versions.back().base = {std::llround(in * 1e6), std::llround(out * 1e6)};
  m.latency = {ttft, tps};
  m.quality.fill(quality);
  m.has_quality = true;
  m.capabilities = caps;
  m.context_window = window;
  m.max_output = max_out;
  return m;
}

/// A route over deployments given as (name, model); models by id.
struct Fixture {
  std::vector<catalog::ModelInfo> models;
  RouteRules config;  // the route's rules (its name is "auto")
  RouteTable table;
  std::vector<health::Snapshot> health;

  Fixture() {
    models.push_back(model("big", 10, 30, 900, 40, 0.9f));
    models.push_back(model("mid", 2, 8, 500, 80, 0.75f));
    models.push_back(model("small", 0.1, 0.4, 300, 150, 0.5f, catalog::kTools, 16000, 4000));
  }
  const catalog::ModelInfo* find(const std::string& id) {
    for (auto& m : models)
      if (m.id == id) return &m;
    return nullptr;
  }
  void add(std::string_view deployment, const std::string& model_id, std::string_view provider = "p",
           std::string_view region = "") {
    Candidate c;
    c.deployment = deployment;
    c.provider = provider;
    c.provider_type = provider;
    c.region = region;
    c.model = find(model_id);
    c.model_id = c.model->id;
    c.price = c.model->pricing.current();
    c.priced = true;
    std::uint16_t g = 0;
    for (; g < table.candidates.size(); ++g)
      if (table.candidates[g].model_id == c.model_id) break;
    c.group = g < table.candidates.size() ? table.candidates[g].group : table.groups++;
    table.candidates.push_back(c);
    health.emplace_back();
  }
  Plan plan(RequestTraits traits = {1000, 0, 0}, Overrides o = {}, std::uint64_t seed = 7,
            double exploration = 0) {
    table.name = "auto";
    table.rules = &config;
    prepare_route(table);
    Plan p;
    PlanContext ctx;
    ctx.now_ms = 10000;
    ctx.seed = seed;
    ctx.exploration = exploration;
    make_plan(table, traits, o, health, ctx, p);
    return p;
  }
  std::vector<std::string> names(const Plan& p) {
    std::vector<std::string> out;
    for (auto i : p.order) out.emplace_back(table.candidates[i].deployment);
    return out;
  }
};

using Names = std::vector<std::string>;

}  // namespace

TEST(Planner, OrderedKeepsTheWrittenOrder) {
  Fixture f;
  f.add("b", "big");
  f.add("s", "small");
  f.add("m", "mid");
  EXPECT_EQ(f.names(f.plan()), (Names{"b", "s", "m"}));
}

// A route with one deployment takes a shorter path (nothing to rank): the same plan as the
// general one gives, for every objective and strategy, and an empty order when it is excluded.
TEST(Planner, OneCandidateIsPlannedAsTheGeneralPathWouldPlanIt) {
  for (Objective objective : {Objective::ordered, Objective::cost, Objective::latency,
                              Objective::quality, Objective::balanced}) {
    for (Strategy strategy : {Strategy::priority, Strategy::weighted, Strategy::least_latency,
                              Strategy::lowest_cost}) {
      Fixture f;
      f.config.policy.objective = objective;
      f.config.strategy = strategy;
      f.add("s", "small");
      Plan p = f.plan({1000, 0, 0}, {}, 7, 1.0);  // exploration on: nothing to swap with
      EXPECT_EQ(f.names(p), (Names{"s"}));
      EXPECT_FALSE(p.explored);
      ASSERT_EQ(p.scores.size(), 1u);
      EXPECT_EQ(p.scores[0].excluded, Exclusion::none);
      EXPECT_GT(p.scores[0].est_cost_usd, 0);
      Plan too_long = f.plan({15000, 2000, 0});
      EXPECT_TRUE(too_long.order.empty());
      EXPECT_EQ(too_long.scores[0].excluded, Exclusion::context_window);
      EXPECT_EQ(too_long.scores[0].score, 0);
      // Its score too: the general path's, for a route whose other model is out (circuit open).
      Fixture g;
      g.config.policy.objective = objective;
      g.config.strategy = strategy;
      g.add("s", "small");
      g.add("b", "big");
      g.health[1].state = health::State::open;
      Plan general = g.plan({1000, 0, 0}, {}, 7, 1.0);
      ASSERT_EQ(g.names(general), (Names{"s"}));
      EXPECT_EQ(p.scores[0].score, general.scores[0].score) << static_cast<int>(objective);
    }
  }
}

TEST(Planner, EachObjectiveRanksModelsByItsMeasure) {
  Fixture f;
  f.add("b", "big");
  f.add("s", "small");
  f.add("m", "mid");
  f.config.policy.objective = Objective::cost;
  EXPECT_EQ(f.names(f.plan()), (Names{"s", "m", "b"}));
  f.config.policy.objective = Objective::quality;
  EXPECT_EQ(f.names(f.plan()), (Names{"b", "m", "s"}));
  f.config.policy.objective = Objective::latency;
  // 500 expected output tokens: small 300 + 3333 ms, mid 500 + 6250, big 900 + 12500.
  Plan p = f.plan();
  EXPECT_EQ(f.names(p), (Names{"s", "m", "b"}));
  EXPECT_NEAR(p.scores[1].est_latency_ms, 300 + 500.0 / 150 * 1000, 1e-3);
  // Cost estimate: 1000 input tokens and 500 output at the model's prices.
  EXPECT_NEAR(p.scores[0].est_cost_usd, (1000 * 10 + 500 * 30) / 1e6, 1e-12);
}

TEST(Planner, BalancedFormulaWeighsNormalisedQualityCostAndLatency) {
  Fixture f;
  f.add("b", "big");
  f.add("s", "small");
  f.add("m", "mid");
  f.config.policy.objective = Objective::balanced;
  f.config.policy.weight_quality = 1;
  f.config.policy.weight_cost = 0;
  f.config.policy.weight_latency = 0;
  EXPECT_EQ(f.names(f.plan()), (Names{"b", "m", "s"}));
  f.config.policy.weight_quality = 0;
  f.config.policy.weight_cost = 1;
  EXPECT_EQ(f.names(f.plan()), (Names{"s", "m", "b"}));
  // Equal weights: big q=0 c=1 l=1 → 2/3; small q=1 c=0 l=0 → 1/3; mid: q=(0.9-0.75)/0.4=0.375,
  // cost and latency in between on a log scale.
  f.config.policy.weight_quality = f.config.policy.weight_cost = f.config.policy.weight_latency = 1;
  Plan p = f.plan();
  EXPECT_NEAR(p.scores[0].score, 2.0 / 3, 1e-9);
  EXPECT_NEAR(p.scores[1].score, 1.0 / 3, 1e-9);
  double c = (std::log(p.scores[2].est_cost_usd + 1e-9) - std::log(p.scores[1].est_cost_usd + 1e-9)) /
             (std::log(p.scores[0].est_cost_usd + 1e-9) - std::log(p.scores[1].est_cost_usd + 1e-9));
  double l = (std::log(p.scores[2].est_latency_ms + 1) - std::log(p.scores[1].est_latency_ms + 1)) /
             (std::log(p.scores[0].est_latency_ms + 1) - std::log(p.scores[1].est_latency_ms + 1));
  EXPECT_NEAR(p.scores[2].score, (0.375 + c + l) / 3, 1e-5);  // priors and logs are floats
}

TEST(Planner, HardConstraintsExcludeWithReasons) {
  Fixture f;
  f.add("b", "big", "openai", "us");
  f.add("s", "small", "groq", "eu");
  f.add("m", "mid", "anthropic", "eu");
  RequestTraits vision{1000, 0, catalog::kVision};
  Plan p = f.plan(vision);
  EXPECT_EQ(f.names(p), (Names{"b", "m"}));
  EXPECT_EQ(p.scores[1].excluded, Exclusion::capability);
  EXPECT_EQ(exclusion_reason(f.table.candidates[1], p.scores[1], vision, p, 0), "model small lacks vision");

  RequestTraits long_prompt{15000, 2000, 0};
  p = f.plan(long_prompt);
  EXPECT_EQ(p.scores[1].excluded, Exclusion::context_window);
  RequestTraits long_output{100, 8000, 0};
  EXPECT_EQ(f.plan(long_output).scores[1].excluded, Exclusion::max_output);

  f.config.policy.regions = {"eu"};
  EXPECT_EQ(f.names(f.plan()), (Names{"s", "m"}));
  f.config.policy.regions.clear();
  f.config.policy.providers = {"groq", "openai"};
  EXPECT_EQ(f.names(f.plan()), (Names{"b", "s"}));
  f.config.policy.providers.clear();
  f.config.policy.max_output_price = 10;
  EXPECT_EQ(f.names(f.plan()), (Names{"s", "m"}));
  f.config.policy.max_output_price = -1;
  Overrides cap;
  cap.max_cost_usd = 0.01;  // big: 0.025, mid: 0.006, small: 0.0003
  p = f.plan({1000, 0, 0}, cap);
  EXPECT_EQ(f.names(p), (Names{"s", "m"}));
  EXPECT_EQ(p.scores[0].excluded, Exclusion::max_cost);
}

TEST(Planner, AnEstimateOverTheDeadlineOrdersLastAndUsesObservedLatencyOverThePrior) {
  Fixture f;
  f.add("b", "big");
  f.add("s", "small");
  Overrides o;
  o.deadline_ms = 5000;  // big's prior: 900 + 12500 ms
  Plan p = f.plan({1000, 0, 0}, o);
  EXPECT_EQ(f.names(p), (Names{"s", "b"})) << "tried last, not left out";
  EXPECT_EQ(p.scores[0].excluded, Exclusion::deadline);
  EXPECT_TRUE(p.scores[0].tried_last);
  // Alone (the others unhealthy), it is still tried: an estimate never empties a plan.
  f.health[1].state = health::State::open;
  f.health[1].recovers_at_ms = 50000;
  f.config.panic_threshold = 0;
  p = f.plan({1000, 0, 0}, o);
  EXPECT_EQ(f.names(p), (Names{"b"}));
  f.health[1] = {};
  f.health[0].ttft_ms = 200;
  f.health[0].tokens_per_s = 500;  // observed: 200 + 1000 ms
  p = f.plan({1000, 0, 0}, o);
  EXPECT_EQ(f.names(p), (Names{"b", "s"}));
  EXPECT_TRUE(p.scores[0].live_latency);
}

TEST(Planner, OpenCircuitsAndRateLimitsAreExcludedWithTheEarliestRecovery) {
  Fixture f;
  f.config.panic_threshold = 0;  // no last resort (below)
  f.add("b", "big");
  f.add("s", "small");
  f.health[0].state = health::State::open;
  f.health[0].recovers_at_ms = 14000;
  f.health[1].state = health::State::cooling;
  f.health[1].recovers_at_ms = 12500;
  Plan p = f.plan();
  EXPECT_TRUE(p.order.empty());
  EXPECT_EQ(p.earliest_recovery_ms, 12500);
  EXPECT_EQ(exclusion_reason(f.table.candidates[0], p.scores[0], {}, p, 10000),
            "circuit open after failures; recovers in 4.0 s");
  f.health[1].state = health::State::half_open;  // a probe may go
  EXPECT_EQ(f.names(f.plan()), (Names{"s"}));
}

TEST(Planner, BelowThePanicThresholdWhatWaitsOnHealthIsTriedLastSoonestRecoveryFirst) {
  Fixture f;
  f.add("b", "big");
  f.add("m", "mid");
  f.add("s", "small");
  f.health[0].state = health::State::open;
  f.health[0].recovers_at_ms = 14000;
  f.health[2].state = health::State::cooling;
  f.health[2].recovers_at_ms = 12500;
  // One healthy of three (33 % < 50 %): the two waiting join the tail, the sooner first.
  Plan p = f.plan();
  EXPECT_EQ(f.names(p), (Names{"m", "s", "b"}));
  EXPECT_TRUE(p.panic);
  EXPECT_FALSE(p.scores[1].last_resort);
  EXPECT_TRUE(p.scores[2].last_resort);
  EXPECT_TRUE(p.scores[0].last_resort);
  EXPECT_EQ(p.scores[0].excluded, Exclusion::circuit_open) << "still said why";
  // Two healthy of three (67 %): the open one stays out.
  f.health[2].state = health::State::closed;
  Plan enough = f.plan();
  EXPECT_EQ(f.names(enough), (Names{"m", "s"}));
  EXPECT_FALSE(enough.panic);
  // None healthy: everything, soonest recovery first; a route's own threshold 0 turns it off.
  f.health[1].state = health::State::open;
  f.health[1].recovers_at_ms = 20000;
  f.health[2].state = health::State::cooling;
  EXPECT_EQ(f.names(f.plan()), (Names{"s", "b", "m"}));
  f.config.panic_threshold = 0;
  EXPECT_TRUE(f.plan().order.empty());
  // Excluded by the request's own needs: never a last resort.
  f.config.panic_threshold = 100;
  RequestTraits too_long{10'000'000, 0, 0};  // over every context window
  EXPECT_TRUE(f.plan(too_long).order.empty());
}

TEST(Planner, StrategiesOrderDeploymentsOfOneModel) {
  Fixture f;
  f.add("m1", "mid");
  f.add("m2", "mid");
  f.add("m3", "mid");
  f.add("s", "small");
  f.config.strategy = Strategy::least_busy;
  f.health[0].in_flight = 5;
  f.health[1].in_flight = 1;
  f.health[2].in_flight = 3;
  EXPECT_EQ(f.names(f.plan()), (Names{"m2", "m3", "m1", "s"}));

  f.config.strategy = Strategy::lowest_cost;
  f.table.candidates[2].price = {1'000'000, 4'000'000};  // $1 and $4 per 1M
  EXPECT_EQ(f.names(f.plan()).front(), "m3");

  f.config.strategy = Strategy::rate_limit_aware;
  f.health[0].rl_remaining_requests = 0;
  f.health[1].rl_remaining_requests = 50;
  f.health[2].rl_remaining_requests = -1;  // unknown
  EXPECT_EQ(f.names(f.plan()), (Names{"m2", "m3", "m1", "s"}));
}

TEST(Planner, WeightedSpreadsByWeight) {
  Fixture f;
  f.add("m1", "mid");
  f.add("m2", "mid");
  f.table.candidates[0].weight = 3;
  f.table.candidates[1].weight = 1;
  f.config.strategy = Strategy::weighted;
  int first = 0;
  for (std::uint64_t seed = 0; seed < 4000; ++seed) first += f.names(f.plan({1000, 0, 0}, {}, seed))[0] == "m1";
  EXPECT_NEAR(first / 4000.0, 0.75, 0.03);
}

TEST(Planner, LeastLatencyPicksTheFasterOfTwoRandomDeployments) {
  Fixture f;
  for (auto name : {"a", "b", "c", "d"}) f.add(name, "mid");
  f.config.strategy = Strategy::least_latency;
  double ttft[] = {100, 200, 300, 400};
  for (int i = 0; i < 4; ++i) {
    f.health[i].ttft_ms = ttft[i];
    f.health[i].tokens_per_s = 100;
  }
  std::map<std::string, int> firsts;
  for (std::uint64_t seed = 0; seed < 6000; ++seed) ++firsts[f.names(f.plan({1000, 0, 0}, {}, seed))[0]];
  // Two distinct random picks out of 4: the fastest leads in 3/6 pairs, b in 2/6, c in 1/6.
  EXPECT_NEAR(firsts["a"] / 6000.0, 0.5, 0.03);
  EXPECT_NEAR(firsts["b"] / 6000.0, 1.0 / 3, 0.03);
  EXPECT_NEAR(firsts["c"] / 6000.0, 1.0 / 6, 0.03);
  EXPECT_EQ(firsts["d"], 0);
}

TEST(Planner, ALatencyRouteMeasuresWhatItHasNotMeasuredBeforeTrustingAPrior) {
  Fixture f;
  f.config.policy.objective = Objective::latency;
  f.add("slow", "big");   // listed first; measured below
  f.add("fast", "small");  // catalogue prior says fast too, but it is the measuring that counts
  f.add("other", "mid");
  f.health[0].ttft_ms = 300;
  f.health[0].tokens_per_s = 500;  // measured: 300 + 1000 ms, faster than any prior
  f.health[0].sampled_at_ms = 9000;
  Plan p = f.plan();
  // Not measured yet, none in flight: tried first, in their priors' order.
  EXPECT_EQ(f.names(p), (Names{"fast", "other", "slow"}));
  EXPECT_TRUE(p.scores[1].measuring);
  EXPECT_FALSE(p.scores[0].measuring);
  // One request on it is measuring already: the others do not pile on.
  f.health[1].in_flight = 1;
  f.health[2].in_flight = 1;
  EXPECT_EQ(f.names(f.plan())[0], "slow");
  // Measured, and slower than the first: the measurement ranks.
  f.health[1] = {};
  f.health[2] = {};
  f.health[1].ttft_ms = 900;
  f.health[1].tokens_per_s = 100;
  f.health[1].sampled_at_ms = 9000;
  f.health[2].ttft_ms = 50;
  f.health[2].tokens_per_s = 1000;
  f.health[2].sampled_at_ms = 9000;
  EXPECT_EQ(f.names(f.plan()), (Names{"other", "slow", "fast"}));
  // A measurement older than stale_after_ms is taken again: the next request measures it.
  f.health[1].sampled_at_ms = -60000;
  EXPECT_EQ(f.names(f.plan())[0], "fast");
  // Other objectives do not measure: cost ranks by cost.
  f.config.policy.objective = Objective::cost;
  EXPECT_EQ(f.names(f.plan())[0], "fast");
  EXPECT_FALSE(f.plan().scores[1].measuring);
}

TEST(Planner, AMaxTokensAboveAModelsMaximumExcludesItUnlessTheRouteClamps) {
  Fixture f;
  f.add("s", "small");  // maximum output 4,000; context 16,000
  f.add("m", "mid");
  RequestTraits big{1000, 12000, 0};
  Plan p = f.plan(big);
  EXPECT_EQ(f.names(p), (Names{"m"}));
  EXPECT_EQ(p.scores[0].excluded, Exclusion::max_output);
  big.clamp_max_tokens = true;  // lowered to 4,000: 1,000 + 4,000 fit the context window
  EXPECT_EQ(f.names(f.plan(big)), (Names{"s", "m"}));
  big.input_tokens = 13000;  // 13,000 + 4,000 do not
  EXPECT_EQ(f.plan(big).scores[0].excluded, Exclusion::context_window);
}

TEST(Planner, ExplorationSwapsTheLeaderOnlyAtItsRate) {
  Fixture f;
  f.add("fast", "small");
  f.add("slow", "big");
  f.config.policy.objective = Objective::latency;
  int explored = 0;
  for (std::uint64_t seed = 0; seed < 5000; ++seed) {
    Plan p = f.plan({1000, 0, 0}, {}, seed, 0.05);
    explored += p.explored;
    EXPECT_EQ(f.names(p)[0] == "slow", p.explored);
  }
  EXPECT_NEAR(explored / 5000.0, 0.05, 0.01);
}

TEST(Planner, OverridesReplaceTheObjectiveAndTightenLimits) {
  Fixture f;
  f.add("b", "big");
  f.add("s", "small");
  f.config.policy.objective = Objective::quality;
  f.config.policy.deadline_ms = 60000;
  Overrides o;
  o.objective = Objective::cost;
  o.deadline_ms = 120000;  // looser than the route's: the route's stands
  Plan p = f.plan({1000, 0, 0}, o);
  EXPECT_EQ(p.objective, Objective::cost);
  EXPECT_EQ(p.deadline_ms, 60000u);
  EXPECT_EQ(f.names(p), (Names{"s", "b"}));
}

TEST(Planner, MaxAttemptsTruncatesThePlan) {
  Fixture f;
  f.add("b", "big");
  f.add("s", "small");
  f.add("m", "mid");
  f.config.max_attempts = 2;
  EXPECT_EQ(f.names(f.plan()), (Names{"b", "s"}));
}

TEST(Decision, JsonCarriesCandidatesScoresExclusionsAndAttempts) {
  Fixture f;
  f.add("b", "big");
  f.add("s", "small");
  f.config.policy.objective = Objective::cost;
  Decision d;
  d.request_id = "req_1";
  d.route = "auto";
  d.key = "team";
  d.traits = {1000, 0, catalog::kVision};
  d.plan = f.plan(d.traits);
  d.table = &f.table;
  AttemptRecord a;
  a.candidate = 0;
  a.outcome = "http_503";
  a.status = 503;
  a.ms = 12.34;
  d.attempts.push_back(a);
  d.chosen = 0;
  d.status = 200;
  std::string json = decision_json(d, 10000);
  EXPECT_NE(json.find(R"("objective":"cost")"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("plan":["b"])"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("excluded":"capability","reason":"model small lacks vision")"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("outcome":"http_503","status":503,"ms":12.3)"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("needs":"vision")"), std::string::npos) << json;

  auto record = [](std::string id, std::string_view key) {
    auto r = std::make_unique<Decision>();
    r->request_id = std::move(id);
    r->key = key;
    return r;
  };
  DecisionRing ring(2);
  ring.add(record("r1", "k1"), nullptr);
  ring.add(record("r2", "k2"), nullptr);
  EXPECT_NE(ring.find("r1", "", 0).value_or("").find(R"("request_id":"r1")"), std::string::npos);
  EXPECT_FALSE(ring.find("r1", "k2", 0)) << "another key's record";
  ring.add(record("r3", "k1"), nullptr);
  EXPECT_FALSE(ring.find("r1", "", 0)) << "bounded: the oldest went";
  EXPECT_TRUE(ring.find("r3", "k1", 0));
  DecisionRing small(100, 1);  // a byte budget below one record keeps only the newest
  small.add(record("a", "k"), nullptr);
  small.add(record("b", "k"), nullptr);
  EXPECT_EQ(small.size(), 1u);
  EXPECT_TRUE(small.find("b", "", 0));
}

namespace {

/// A decision with everything a record carries set to something particular to `i`.
Decision full_decision(Fixture& f, int i) {
  Decision d;
  d.request_id = "req-" + std::string(static_cast<std::size_t>(i % 7) * 5, 'x') + std::to_string(i);
  d.route = "auto";
  d.key = i % 2 ? "team-a" : "team-b";
  d.unix_ms = 1700000000000 + i;
  d.traits = {1000 + i, 200, catalog::kTools};
  d.traits.tier = 1;
  d.traits.complexity = 0.25 + i % 3 * 0.125;
  d.traits.category = 2;
  d.traits.quality_floor = 0.5f;
  d.traits.tier_quality_count = 2;
  d.traits.tier_quality = {0.25f, 0.75f};
  Overrides o;
  o.deadline_ms = 30000;
  o.max_cost_usd = 0.5;
  d.plan = f.plan(d.traits, o);
  d.plan.explored = i % 3 == 0;
  d.plan.earliest_recovery_ms = i;
  d.table = &f.table;
  for (int k = 0; k < i % 4; ++k) {
    AttemptRecord a;
    a.candidate = static_cast<std::uint16_t>(k % f.table.candidates.size());
    a.outcome = k ? "http_" + std::to_string(500 + k) + ": " + std::string(static_cast<std::size_t>(i % 5), 'e') : "ok";
    a.status = k ? 500 + k : 200;
    a.ms = 10.5 * k + i;
    a.hedge = k == 2;
    a.retry = k == 1;
    a.backoff_ms = k == 1 ? 40 : 0;
    d.attempts.push_back(a);
  }
  d.chosen = i % 4 ? 0 : -1;
  d.estimated_cost_usd = 0.001 * (i % 10);
  if (i % 5) d.cost = core::Money::nanos(2000000 * (i % 10));
  d.status = i % 4 ? 200 : 503;
  d.hedged = i % 4 == 3;
  return d;
}

}  // namespace

TEST(Decision, TheRingKeepsExactlyTheLatestRecordsAndGivesThemBackAsWritten) {
  Fixture f;
  f.add("b", "big");
  f.add("s", "small");
  f.add("m", "mid");
  DecisionRing ring(50);
  std::vector<std::string> expected;
  for (int i = 0; i < 400; ++i) {
    auto d = std::make_unique<Decision>(full_decision(f, i));
    expected.push_back(decision_json(*d, 5000));
    ring.add(std::move(d), nullptr);
    ASSERT_LE(ring.size(), 50u);
    if (i % 37 == 0) {
      for (int j = 0; j <= i; ++j) {
        auto r = ring.find(full_decision(f, j).request_id, "", 5000);
        if (j > i - 50) {
          ASSERT_TRUE(r) << j << " of " << i;
          EXPECT_EQ(*r, expected[static_cast<std::size_t>(j)]) << j;
        } else {
          EXPECT_FALSE(r) << j << " of " << i << " should have been evicted";
        }
      }
    }
  }
}

TEST(Decision, TheRingAnswersWithTheLatestOfARepeatedId) {
  Fixture f;
  f.add("b", "big");
  DecisionRing ring(100);
  auto d = std::make_unique<Decision>(full_decision(f, 1));
  d->request_id = "same";
  d->status = 200;
  ring.add(std::move(d), nullptr);
  d = std::make_unique<Decision>(full_decision(f, 1));
  d->request_id = "same";
  d->status = 502;
  ring.add(std::move(d), nullptr);
  EXPECT_NE(ring.find("same", "", 0).value_or("").find(R"("status":502)"), std::string::npos);
}

TEST(Decision, TheRingHoldsWhatRecordsPointIntoUntilTheLastOfThemIsGone) {
  Fixture f;
  f.add("b", "big");
  auto first = std::make_shared<int>(1);
  auto second = std::make_shared<int>(2);
  DecisionRing ring(4);
  auto add = [&](int i, const std::shared_ptr<int>& keep) {
    ring.add(std::make_unique<Decision>(full_decision(f, i)), keep);
  };
  add(1, first);
  add(2, second);
  add(3, first);  // after a reload, old and new alternate
  EXPECT_GT(first.use_count(), 1);
  EXPECT_GT(second.use_count(), 1);
  add(4, second);
  add(5, second);  // evicts 1: `first` is still held by 3
  EXPECT_GT(first.use_count(), 1);
  add(6, second);  // evicts 2
  add(7, second);  // evicts 3: nothing kept points into `first`
  EXPECT_EQ(first.use_count(), 1);
  EXPECT_GT(second.use_count(), 1);
}

TEST(Execution, BackoffIsFullJitterCappedExponential) {
  routing::RetryPolicy c;
  c.attempts = 3;
  c.base_ms = 100;
  c.max_ms = 1000;
  EXPECT_EQ(backoff_ms(c, 0, 0.999999), 99);
  EXPECT_EQ(backoff_ms(c, 2, 0.5), 200);
  EXPECT_EQ(backoff_ms(c, 5, 0.5), 500) << "capped at max_ms";
  EXPECT_EQ(backoff_ms(c, 1, 0.0), 0);
  EXPECT_EQ(retry_wait_ms(c, 0, 0.5, -1, -1), 50);
  EXPECT_EQ(retry_wait_ms(c, 3, 0.5, -1, -1), -1) << "out of retries";
  EXPECT_EQ(retry_wait_ms(c, 0, 0.5, 300, -1), 300) << "retry-after wins";
  EXPECT_EQ(retry_wait_ms(c, 0, 0.5, 5000, -1), -1) << "a long retry-after is not worth waiting";
  EXPECT_EQ(retry_wait_ms(c, 0, 0.5, -1, 40), -1) << "the deadline comes first";
}

TEST(Execution, HedgeDelayAndBudget) {
  routing::HedgePolicy h;
  EXPECT_EQ(hedge_delay_ms(h, 300), -1) << "disabled";
  h.enabled = true;
  EXPECT_EQ(hedge_delay_ms(h, -1), -1) << "no observations yet";
  EXPECT_EQ(hedge_delay_ms(h, 312.4), 312);
  EXPECT_EQ(hedge_delay_ms(h, 10), 50) << "floor";
  h.delay_ms = 700;
  EXPECT_EQ(hedge_delay_ms(h, 312.4), 700) << "configured delay";
  HedgeBudget b;
  int hedges = 0;
  for (int i = 0; i < 1000; ++i) {
    b.on_request(0.1);
    hedges += b.try_spend();
  }
  EXPECT_EQ(hedges, 100);
  HedgeBudget quiet;
  for (int i = 0; i < 1000; ++i) quiet.on_request(0.1);
  int burst = 0;
  while (quiet.try_spend()) ++burst;
  EXPECT_EQ(burst, 5) << "savings are capped";
}

TEST(Decision, DecimalsAreWrittenWithoutExponentOrTrailingZeros) {
  auto text = [](double v) {
    std::string s;
    append_decimal(s, v);
    return s;
  };
  EXPECT_EQ(text(0), "0");
  EXPECT_EQ(text(2), "2");
  EXPECT_EQ(text(12.3), "12.3");
  EXPECT_EQ(text(0.000304), "0.000304");
  EXPECT_EQ(text(0.0000000004), "0") << "below a nano-dollar";
  EXPECT_EQ(text(0.0000000006), "0.000000001");
  EXPECT_EQ(text(1234.5678), "1234.5678");
  EXPECT_EQ(text(0.123456789), "0.123456789");
  EXPECT_EQ(text(7.00000001), "7.00000001");
  EXPECT_EQ(text(0.5), "0.5");
  EXPECT_EQ(text(99.99), "99.99");
  // Against the general formatting (nine fixed decimals, trailing zeros and point dropped).
  std::uint64_t state = 42;
  for (int i = 0; i < 20000; ++i) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    double v = static_cast<double>(state >> 11) / static_cast<double>(1ull << 53) *
               (i % 2 ? 10.0 : 0.01);
    char buf[64];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed, 9);
    std::string want(buf, end);
    while (want.back() == '0') want.pop_back();
    if (want.back() == '.') want.pop_back();
    ASSERT_EQ(text(v), want) << v;
  }
}

TEST(Planner, SaysWhenAContextWindowIsCloseEnoughToCountPrecisely) {
  Fixture f;
  f.add("s", "small");  // 16,000-token window
  f.add("b", "big");    // 128,000
  EXPECT_FALSE(f.plan({1000, 0, 0}).context_tight);
  Plan near = f.plan({13000, 1000, 0});  // 14,000 of 16,000: within 20%
  EXPECT_TRUE(near.context_tight);
  EXPECT_EQ(near.scores[0].excluded, Exclusion::none);
  Plan over = f.plan({17000, 0, 0});
  EXPECT_TRUE(over.context_tight);
  EXPECT_EQ(over.scores[0].excluded, Exclusion::context_window);
}

TEST(Planner, CategoryRulesAndPriorsFollowThePredictedCategory) {
  Fixture f;
  f.add("b", "big");
  f.add("s", "small");
  f.config.category_rules[static_cast<int>(catalog::Category::code)] = {"b"};
  RequestTraits code{100, 0, 0};
  code.category = static_cast<int>(catalog::Category::code);
  Plan p = f.plan(code);
  EXPECT_EQ(f.names(p), (Names{"b"}));
  EXPECT_EQ(p.scores[1].excluded, Exclusion::category);
  EXPECT_EQ(exclusion_reason(f.table.candidates[1], p.scores[1], code, p, 0),
            "the route sends code requests elsewhere");
  RequestTraits chat{100, 0, 0};
  chat.category = static_cast<int>(catalog::Category::chat);  // no rule: every candidate
  EXPECT_EQ(f.names(f.plan(chat)), (Names{"b", "s"}));
  // `category: auto`: the quality prior of the predicted category.
  f.config.category_rules = {};
  f.config.policy.category_auto = true;
  f.config.policy.objective = Objective::quality;
  f.models[0].quality[static_cast<int>(catalog::Category::math)] = 0.1f;  // big is bad at math here
  f.table.candidates[0].model = &f.models[0];
  RequestTraits math{100, 0, 0};
  math.category = static_cast<int>(catalog::Category::math);
  Plan mp = f.plan(math);
  EXPECT_EQ(mp.category, catalog::Category::math);
  EXPECT_EQ(f.names(mp), (Names{"s", "b"}));
}

TEST(Execution, CandidateSetRemembersEachCandidateAloneAtEverySize) {
  // One word up to 64 candidates, a vector beyond: each member set alone is the only one held.
  for (std::size_t n : {1u, 2u, 63u, 64u, 65u, 200u}) {
    for (std::size_t i = 0; i < n; ++i) {
      CandidateSet s(n);
      s.set(i);
      for (std::size_t j = 0; j < n; ++j) ASSERT_EQ(s.has(j), j == i) << n << " " << i << " " << j;
    }
    CandidateSet all(n);
    for (std::size_t i = 0; i < n; ++i) all.set(i);
    for (std::size_t i = 0; i < n; ++i) EXPECT_TRUE(all.has(i)) << n << " " << i;
  }
}

// Every loop adds its requests' records while admin requests read them. (Run under
// ThreadSanitizer in CI.)
TEST(Decision, TheRingTakesRecordsFromSeveralLoopsWhileBeingRead) {
  Fixture f;
  f.add("b", "big");
  DecisionRing ring(64);
  // The records are made first (the fixture's planner is not shared); the loops only add them.
  std::vector<std::unique_ptr<Decision>> made[2];
  for (int t = 0; t < 2; ++t)
    for (int i = 0; i < 500; ++i) made[t].push_back(std::make_unique<Decision>(full_decision(f, t * 1000 + i)));
  std::vector<std::thread> loops;
  for (int t = 0; t < 2; ++t)
    loops.emplace_back([&, t] {
      for (auto& d : made[t]) ring.add(std::move(d), nullptr);
    });
  std::thread reader([&] {
    for (int i = 0; i < 500; ++i) (void)ring.find("req-" + std::to_string(i), {}, 0);
  });
  for (auto& l : loops) l.join();
  reader.join();
  EXPECT_EQ(ring.size(), 64u);
}
