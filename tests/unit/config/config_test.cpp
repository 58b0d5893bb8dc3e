#include "config/config.hpp"
#include "config/env_expand.hpp"
#include "routing/complexity/model.hpp"
#include "routing/tiers.hpp"
#include "server/config_load.hpp"

#include <gtest/gtest.h>

#include <cmath>

using namespace switchyard::config;

namespace {

const char* kHash = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";

std::string valid_yaml() {
  return std::string(R"(
server:
  port: 9000
  threads: 2
  max_body_bytes: 1048576
providers:
  openai:
    type: openai
    base_url: https://api.openai.com/v1/
    api_key: ${OPENAI_API_KEY}
  local:
    base_url: http://127.0.0.1:8081
deployments:
  gpt:
    provider: openai
    model: gpt-4.1-mini
  fake:
    provider: local
    model: fake-model
routes:
  auto:
    candidates: [gpt, fake]
keys:
  - name: team
    sha256: )") + kHash + R"(
    routes: [auto]
)";
}

bool has_problem(const LoadResult& r, const std::string& path, const std::string& fragment) {
  for (const auto& p : r.problems)
    if (p.path == path && p.message.find(fragment) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST(Config, LoadsAValidFile) {
  LoadResult r = load_config_text(valid_yaml(), {{"OPENAI_API_KEY", "sk-real"}});
  ASSERT_TRUE(r.ok()) << format_problems(r.problems);
  const Config& c = r.config;
  EXPECT_EQ(c.server.port, 9000);
  EXPECT_EQ(c.server.threads, 2);
  EXPECT_EQ(c.server.max_body_bytes, 1048576u);
  EXPECT_EQ(c.server.max_header_bytes, 16u * 1024);  // default kept
  ASSERT_EQ(c.providers.size(), 2u);
  EXPECT_EQ(c.providers[0].api_key, "sk-real");
  EXPECT_EQ(c.providers[0].base_url.host, "api.openai.com");
  EXPECT_EQ(c.providers[0].base_url.port, 443);
  EXPECT_EQ(c.providers[0].base_url.path, "/v1");
  EXPECT_TRUE(c.providers[0].base_url.tls());
  EXPECT_EQ(c.providers[1].base_url.port, 8081);
  EXPECT_EQ(c.providers[1].base_url.path, "");
  ASSERT_EQ(c.routes.size(), 1u);
  EXPECT_EQ(c.routes[0].candidates, (std::vector<std::string>{"gpt", "fake"}));
  ASSERT_EQ(c.keys.size(), 1u);
  EXPECT_EQ(c.keys[0].routes, std::vector<std::string>{"auto"});
}

TEST(Config, ReportsEveryProblemWithItsPath) {
  std::string yaml = R"(
server:
  port: 70000
  colour: blue
providers:
  p:
    base_url: ftp://x
    type: smoke-signals
deployments:
  d:
    provider: nope
routes:
  auto:
    candidates: [d, x]
keys:
  - name: k
    sha256: abc
    routes: [missing]
extra: 1
)";
  LoadResult r = load_config_text(yaml, {});
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(has_problem(r, "server.port", "between 0 and 65535"));
  EXPECT_TRUE(has_problem(r, "server.colour", "unknown key"));
  EXPECT_TRUE(has_problem(r, "providers.p.base_url", "http:// or https://"));
  EXPECT_TRUE(has_problem(r, "providers.p.type", "unknown provider type \"smoke-signals\""));
  EXPECT_TRUE(has_problem(r, "deployments.d.provider", "unknown provider \"nope\""));
  EXPECT_TRUE(has_problem(r, "deployments.d.model", "is required"));
  EXPECT_TRUE(has_problem(r, "routes.auto.candidates[1]", "unknown deployment \"x\""));
  EXPECT_TRUE(has_problem(r, "keys[0].sha256", "64 hexadecimal"));
  EXPECT_TRUE(has_problem(r, "keys[0].routes[0]", "unknown route \"missing\""));
  EXPECT_TRUE(has_problem(r, "extra", "unknown key"));
  EXPECT_EQ(r.problems.size(), 10u) << format_problems(r.problems);
}

TEST(Config, UnsetSecretIsAnErrorUnlessTheProviderIsOptional) {
  LoadResult r = load_config_text(valid_yaml(), {});
  EXPECT_TRUE(has_problem(r, "providers.openai.api_key", "OPENAI_API_KEY is not set"));

  std::string optional = valid_yaml();
  optional.replace(optional.find("    api_key: ${OPENAI_API_KEY}"), 0, "    optional: true\n");
  r = load_config_text(optional, {});
  ASSERT_TRUE(r.ok()) << format_problems(r.problems);
  EXPECT_FALSE(r.config.providers[0].enabled);
  EXPECT_FALSE(r.config.deployments[0].enabled);  // its deployment follows
  EXPECT_TRUE(r.config.deployments[1].enabled);
}

TEST(Config, APlaceholderProviderKeyIsAWarningThatDoesNotEchoIt) {
  for (const std::string placeholder : {"YOUR_OPENAI_API_KEY", "sk-...", "<api key>", "changeme"}) {
    LoadResult r = load_config_text(valid_yaml(), {{"OPENAI_API_KEY", placeholder}});
    ASSERT_TRUE(r.ok()) << format_problems(r.problems);
    bool warned = false;
    for (const auto& w : r.warnings)
      if (w.path == "providers.openai.api_key") {
        warned = true;
        EXPECT_EQ(w.message.find(placeholder), std::string::npos) << "the key is not echoed";
      }
    EXPECT_TRUE(warned) << placeholder;
  }
  LoadResult real = load_config_text(valid_yaml(), {{"OPENAI_API_KEY", "sk-proj-Ab3dE5fG7hJ9kL1mN3pQ5rS7"}});
  for (const auto& w : real.warnings) EXPECT_NE(w.path, "providers.openai.api_key");
}

TEST(Config, ReportsDuplicatesAndEmptyValues) {
  std::string yaml = valid_yaml();
  yaml.replace(yaml.find("routes:"), 0, "  gpt:\n    provider: local\n    model: other\n");
  yaml += "  - name: copy\n    sha256: " + std::string(kHash) + "\n";
  yaml.replace(yaml.find("  port: 9000"), 12, "  port:\n  host: example.com");
  LoadResult r = load_config_text(yaml, {{"OPENAI_API_KEY", "k"}});
  EXPECT_TRUE(has_problem(r, "deployments.gpt", "duplicate deployment"));
  EXPECT_TRUE(has_problem(r, "keys[1].sha256", "already listed"));
  EXPECT_TRUE(has_problem(r, "server.port", "must not be empty"));
  EXPECT_TRUE(has_problem(r, "server.host", "must be an IP address"));
  EXPECT_EQ(r.problems.size(), 4u) << format_problems(r.problems);
}

TEST(Config, ReportsYamlSyntaxErrorsWithLine) {
  LoadResult r = load_config_text("server:\n  port: [1,\n", {});
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_EQ(r.problems[0].path, "(yaml)");
  EXPECT_NE(r.problems[0].message.find("line"), std::string::npos);
}

TEST(Config, RequiresRoutesAndKeys) {
  LoadResult r = load_config_text("server: {port: 1}\n", {});
  EXPECT_TRUE(has_problem(r, "deployments", "at least one"));
  EXPECT_TRUE(has_problem(r, "routes", "at least one"));
  EXPECT_TRUE(has_problem(r, "keys", "at least one"));
}

TEST(Config, ParsesUrls) {
  Url u;
  std::string why;
  ASSERT_TRUE(parse_url("http://[::1]:9000/base/", u, why));
  EXPECT_EQ(u.host, "::1");
  EXPECT_EQ(u.port, 9000);
  EXPECT_EQ(u.path, "/base");
  EXPECT_FALSE(parse_url("https://user:pw@host/", u, why));
  EXPECT_FALSE(parse_url("http://host:0", u, why));
  EXPECT_FALSE(parse_url("http://host/v1?x=1", u, why));
  EXPECT_FALSE(parse_url("http://:80", u, why));
}

TEST(Config, SharedStoreAndRedisAreReadWithSecretsFromTheEnvironment) {
  LoadResult r = load_config_text(valid_yaml() + R"(governance:
  store: postgres
  postgres:
    url: "postgresql://gw:${PGPASS}@db.internal/switchyard?sslmode=verify-full"
    refresh_ms: 5000
  redis:
    url: rediss://ops:${REDIS_PASS}@cache.internal:6380/2
    key_prefix: "sy:"
    lease_ms: 120000
    on_unavailable: {team: fail_closed, route: fail_open}
  spool_dir: /var/lib/switchyard/spool
  spool_max_mb: 256
)",
                                  {{"OPENAI_API_KEY", "sk-real"}, {"PGPASS", "pg-secret"}, {"REDIS_PASS", "r-secret"}});
  ASSERT_TRUE(r.ok()) << format_problems(r.problems);
  const GovernanceConfig& g = r.config.governance;
  EXPECT_EQ(g.store, "postgres");
  EXPECT_EQ(g.postgres.url, "postgresql://gw:pg-secret@db.internal/switchyard?sslmode=verify-full");
  EXPECT_EQ(g.postgres.refresh_ms, 5000u);
  ASSERT_TRUE(g.redis.enabled);
  EXPECT_TRUE(g.redis.tls);
  EXPECT_EQ(g.redis.host, "cache.internal");
  EXPECT_EQ(g.redis.port, 6380);
  EXPECT_EQ(g.redis.username, "ops");
  EXPECT_EQ(g.redis.password, "r-secret");
  EXPECT_EQ(g.redis.database, 2);
  EXPECT_EQ(g.redis.key_prefix, "sy:");
  EXPECT_EQ(g.redis.lease_ms, 120000u);
  EXPECT_EQ(g.redis.on_unavailable[1], Unavailable::fail_closed);  // team
  EXPECT_EQ(g.redis.on_unavailable[0], Unavailable::fail_open);    // key: the default
  EXPECT_EQ(g.spool_dir, "/var/lib/switchyard/spool");
  EXPECT_EQ(g.spool_max_mb, 256u);
}

TEST(Config, SharedCountersNeedTheSharedStore) {
  LoadResult r = load_config_text(valid_yaml() + R"(governance:
  redis:
    host: 127.0.0.1
    on_unavailable: maybe
)",
                                  {{"OPENAI_API_KEY", "sk-real"}});
  EXPECT_TRUE(has_problem(r, "governance.redis", "needs store: postgres"));
  EXPECT_TRUE(has_problem(r, "governance.redis.on_unavailable", "fail_open or fail_closed"));
  LoadResult p = load_config_text(valid_yaml() + "governance:\n  store: postgres\n", {{"OPENAI_API_KEY", "sk-real"}});
  EXPECT_TRUE(has_problem(p, "governance.postgres.url", "is required"));
  LoadResult u = load_config_text(
      valid_yaml() + "governance:\n  store: postgres\n  postgres: {url: x}\n  redis: {url: \"http://h:1\"}\n",
      {{"OPENAI_API_KEY", "sk-real"}});
  EXPECT_TRUE(has_problem(u, "governance.redis.url", "redis://"));
}

TEST(EnvExpand, ExpandsReferencesAndDefaults) {
  std::map<std::string, std::string> env{{"A", "1"}, {"EMPTY", ""}};
  EXPECT_EQ(expand_env("x${A}y", env).value, "x1y");
  EXPECT_EQ(expand_env("${B:-dflt}", env).value, "dflt");
  EXPECT_EQ(expand_env("${EMPTY:-dflt}", env).value, "dflt");
  EXPECT_EQ(expand_env("$$A $5", env).value, "$A $5");
  auto e = expand_env("${B}${C}", env);
  EXPECT_EQ(e.unset, (std::vector<std::string>{"B", "C"}));
  EXPECT_FALSE(expand_env("${A", env).error.empty());
  EXPECT_FALSE(expand_env("${A-B}", env).error.empty());
}

TEST(ConfigRouting, PolicyStrategyRetryHedgeAndHealthAreRead) {
  std::string yaml = valid_yaml();
  yaml.replace(yaml.find("    candidates: [gpt, fake]"), std::string("    candidates: [gpt, fake]").size(), R"(    candidates: [gpt, fake]
    strategy: least-latency
    max_attempts: 2
    policy:
      objective: balanced
      weights: {quality: 2, cost: 1, latency: 0.5}
      category: code
      max_cost_usd: 0.05
      providers: [openai]
      regions: [eu]
      deadline_ms: 3000
      ttft_ms: 800
    retry: {attempts: 2, base_ms: 50, max_ms: 400}
    hedge: {delay_ms: 250, max_share: 0.05})");
  yaml += R"(
health:
  consecutive_failures: 5
  cooldown_ms: 2000
  exploration: 0.05
)";
  auto r = load_config_text(yaml, {{"OPENAI_API_KEY", "sk-x"}});
  ASSERT_TRUE(r.ok()) << format_problems(r.problems);
  const RouteConfig& route = r.config.routes[0];
  EXPECT_EQ(route.strategy, switchyard::routing::Strategy::least_latency);
  EXPECT_EQ(route.max_attempts, 2u);
  EXPECT_EQ(route.policy.objective, switchyard::routing::Objective::balanced);
  EXPECT_DOUBLE_EQ(route.policy.weight_quality, 2);
  EXPECT_DOUBLE_EQ(route.policy.weight_latency, 0.5);
  EXPECT_EQ(route.policy.category, switchyard::catalog::Category::code);
  EXPECT_DOUBLE_EQ(route.policy.max_cost_usd, 0.05);
  EXPECT_EQ(route.policy.providers, std::vector<std::string>{"openai"});
  EXPECT_EQ(route.policy.deadline_ms, 3000u);
  EXPECT_EQ(route.policy.ttft_ms, 800u);
  EXPECT_EQ(route.retry.attempts, 2);
  EXPECT_EQ(route.retry.max_ms, 400u);
  EXPECT_TRUE(route.hedge.enabled);
  EXPECT_EQ(route.hedge.delay_ms, 250u);
  EXPECT_DOUBLE_EQ(route.hedge.max_share, 0.05);
  EXPECT_EQ(r.config.health.consecutive_failures, 5);
  EXPECT_EQ(r.config.health.cooldown_ms, 2000u);
  EXPECT_DOUBLE_EQ(r.config.health.exploration, 0.05);
}

TEST(ConfigRouting, BadRoutingValuesAreReportedWithTheirPaths) {
  std::string yaml = valid_yaml();
  yaml.replace(yaml.find("    candidates: [gpt, fake]"), std::string("    candidates: [gpt, fake]").size(), R"(    candidates: [gpt, fake]
    strategy: fastest
    policy:
      objective: cheapest
      category: poetry
      providers: [nobody]
      max_cost_usd: lots
    hedge: {max_share: 2})");
  auto r = load_config_text(yaml, {{"OPENAI_API_KEY", "sk-x"}});
  std::string text = format_problems(r.problems);
  EXPECT_NE(text.find("routes.auto.strategy: unknown strategy \"fastest\""), std::string::npos) << text;
  EXPECT_NE(text.find("routes.auto.policy.objective: unknown objective \"cheapest\""), std::string::npos) << text;
  EXPECT_NE(text.find("routes.auto.policy.category: unknown category \"poetry\""), std::string::npos) << text;
  EXPECT_NE(text.find("routes.auto.policy.providers[0]: unknown provider"), std::string::npos) << text;
  EXPECT_NE(text.find("routes.auto.policy.max_cost_usd: must be a number"), std::string::npos) << text;
  EXPECT_NE(text.find("routes.auto.hedge.max_share: must be between 0 and 1"), std::string::npos) << text;
}

TEST(ConfigRouting, ComplexityTiersAreCheckedWithTheirPaths) {
  std::string yaml = valid_yaml();
  yaml.replace(yaml.find("    candidates: [gpt, fake]"), std::string("    candidates: [gpt, fake]").size(), R"(    candidates: [gpt, fake]
    complexity:
      model: no-such-model.bin
      tiers: [[gpt], [nobody]]
      shares: [0.5, 0.6])");
  auto r = switchyard::server::load_config_text(yaml, {{"OPENAI_API_KEY", "sk-x"}}, "/tmp");
  std::string text = format_problems(r.problems);
  EXPECT_NE(text.find("routes.auto.complexity.model: cannot read /tmp/no-such-model.bin"), std::string::npos) << text;
  EXPECT_NE(text.find("routes.auto.complexity.tiers[1][0]: \"nobody\" is not among the route's candidates"),
            std::string::npos) << text;
  EXPECT_NE(text.find("routes.auto.complexity.shares: must add up to 1"), std::string::npos) << text;
  yaml.replace(yaml.find("      tiers: [[gpt], [nobody]]"), std::string("      tiers: [[gpt], [nobody]]").size(), "      tiers: [[gpt]]");
  r = switchyard::server::load_config_text(yaml, {{"OPENAI_API_KEY", "sk-x"}}, "/tmp");
  EXPECT_NE(format_problems(r.problems).find("routes.auto.complexity.tiers: needs two or more tiers"), std::string::npos);
}

TEST(ConfigRouting, ComplexityQualityFloorPicksTheWeakestTierThatReachesIt) {
  // A model whose heads predict fixed qualities: small 0.7, mid 0.85, big 0.95 (bias only).
  namespace cx = switchyard::routing::complexity;
  cx::Model m;
  m.spec.hash_bits = 8;
  m.strong = "big";
  m.weak = "small";
  m.calibration.assign(101, 0.0f);
  for (auto [name, p] : {std::pair{"small", 0.7}, {"mid", 0.85}, {"big", 0.95}}) {
    cx::Head h;
    h.model = name;
    h.weights.assign(cx::dimensions(m.spec), 0.0f);
    h.bias = static_cast<float>(std::log(p / (1 - p)));
    m.heads.push_back(std::move(h));
  }
  std::string path = ::testing::TempDir() + "/floor.bin";
  std::string error;
  ASSERT_TRUE(cx::save(m, path, error)) << error;

  auto with = [&](const std::string& complexity) {
    std::string yaml = valid_yaml();
    yaml.replace(yaml.find("    candidates: [gpt, fake]"), std::string("    candidates: [gpt, fake]").size(),
                 "    candidates: [gpt, fake]\n    complexity:\n      model: " + path + "\n" + complexity);
    return switchyard::server::load_config_text(yaml, {{"OPENAI_API_KEY", "sk-x"}}, "/tmp");
  };
  auto r = with("      tiers: [[fake], [gpt]]\n      quality_floor: 0.8\n");
  ASSERT_TRUE(r.ok()) << format_problems(r.problems);
  const switchyard::routing::TierPolicy& cc = *r.config.routes.at(0).complexity;
  EXPECT_EQ(cc.heads, (std::vector<std::string>{"small", "big"})) << "two tiers: the model's own pair";
  cx::Sparse none;
  auto tier = [&](const switchyard::routing::TierPolicy& c) {
    switchyard::routing::RequestTraits t;
    return switchyard::routing::choose_tier(c, none, t);
  };
  switchyard::routing::RequestTraits traits;
  EXPECT_EQ(switchyard::routing::choose_tier(cc, none, traits), 1) << "small predicts 0.7 < 0.8: the strong tier";
  ASSERT_EQ(traits.tier_quality_count, 2);
  EXPECT_NEAR(traits.tier_quality[0], 0.7, 1e-6);
  EXPECT_NEAR(traits.tier_quality[1], 0.95, 1e-6);
  EXPECT_FLOAT_EQ(traits.quality_floor, 0.8f);
  switchyard::routing::RequestTraits scored;
  switchyard::routing::score_and_tier(cc, none, scored);
  EXPECT_EQ(scored.tier, 1);
  EXPECT_NEAR(scored.complexity, 0.95 - 0.7, 1e-6) << "the score is the pair's gain, from the tiers' predictions";

  r = with("      tiers: [[fake], [gpt]]\n      quality_floor: 0.6\n");
  ASSERT_TRUE(r.ok()) << format_problems(r.problems);
  EXPECT_EQ(tier(*r.config.routes.at(0).complexity), 0) << "0.7 >= 0.6";
  r = with("      tiers: [[fake], [gpt]]\n      quality_floor: 0.99\n");
  ASSERT_TRUE(r.ok()) << format_problems(r.problems);
  EXPECT_EQ(tier(*r.config.routes.at(0).complexity), 1) << "none reaches it";
  r = with("      tiers: [[fake], [gpt], [gpt]]\n      quality_floor: 0.8\n      heads: [small, mid, big]\n");
  ASSERT_TRUE(r.ok()) << format_problems(r.problems);
  EXPECT_EQ(tier(*r.config.routes.at(0).complexity), 1) << "mid: 0.85";

  // Problems, each with its path.
  std::string text = format_problems(with("      tiers: [[fake], [gpt]]\n      quality_floor: 0.8\n      strong_share: 0.3\n").problems);
  EXPECT_NE(text.find("routes.auto.complexity.quality_floor: use either quality_floor or shares/strong_share"),
            std::string::npos) << text;
  text = format_problems(with("      tiers: [[fake], [gpt], [gpt]]\n      quality_floor: 0.8\n").problems);
  EXPECT_NE(text.find("routes.auto.complexity.heads: is required with quality_floor and more than two tiers"),
            std::string::npos) << text;
  text = format_problems(with("      tiers: [[fake], [gpt]]\n      quality_floor: 0.8\n      heads: [small, huge]\n").problems);
  EXPECT_NE(text.find("routes.auto.complexity.heads[1]: the model has no head \"huge\" (it has: small, mid, big)"),
            std::string::npos) << text;
  text = format_problems(with("      tiers: [[fake], [gpt]]\n      heads: [small, big]\n").problems);
  EXPECT_NE(text.find("routes.auto.complexity.heads: is used with quality_floor only"), std::string::npos) << text;
  text = format_problems(with("      tiers: [[fake], [gpt]]\n      quality_floor: 1.5\n").problems);
  EXPECT_NE(text.find("routes.auto.complexity.quality_floor: must be between 0 and 1"), std::string::npos) << text;
}

TEST(Config, ReadsTheAdminListenerAndTheLimitsOnClients) {
  std::string y = valid_yaml();
  y.replace(y.find("  max_body_bytes: 1048576\n"), 0,
            "  body_memory_mb: 512\n  per_address:\n    unauthenticated_connections: 50\n    unauthenticated_rps: 20\n"
            "  admin:\n    host: localhost\n    port: 9091\n");
  LoadResult r = load_config_text(y, {{"OPENAI_API_KEY", "sk-real"}});
  ASSERT_TRUE(r.ok()) << format_problems(r.problems);
  EXPECT_EQ(r.config.server.body_memory_mb, 512u);
  EXPECT_EQ(r.config.server.per_address_connections, 50u);
  EXPECT_EQ(r.config.server.per_address_rps, 20u);
  EXPECT_TRUE(r.config.server.admin.enabled);
  EXPECT_EQ(r.config.server.admin.host, "127.0.0.1");
  EXPECT_EQ(r.config.server.admin.port, 9091);

  LoadResult defaults = load_config_text(valid_yaml(), {{"OPENAI_API_KEY", "sk-real"}});
  EXPECT_FALSE(defaults.config.server.admin.enabled) << "no admin listener unless configured";
  EXPECT_EQ(defaults.config.server.per_address_connections, 256u);

  std::string bad = valid_yaml();
  bad.replace(bad.find("  max_body_bytes: 1048576\n"), 0,
              "  admin:\n    host: example.com\n    port: 9000\n  per_address:\n    connections: 5\n");
  LoadResult b = load_config_text(bad, {{"OPENAI_API_KEY", "sk-real"}});
  EXPECT_TRUE(has_problem(b, "server.admin.host", "must be an IP address")) << format_problems(b.problems);
  EXPECT_TRUE(has_problem(b, "server.per_address.connections", "")) << format_problems(b.problems);
}
