// The pipeline's pure steps: the outcome table, authentication, admission, and the access line
// formatted from an accounting record.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>
#include <unistd.h>

#include "dialects/translate.hpp"
#include "governance/governor.hpp"
#include "server/config_load.hpp"
#include "store/sqlite_store.hpp"
#include "server/pipeline/admission.hpp"
#include "server/pipeline/authenticate.hpp"
#include "server/pipeline/outcome.hpp"
#include "server/runtime.hpp"
#include "telemetry/access_log.hpp"

namespace {

using namespace switchyard;
using core::ErrorKind;
using health::Outcome;
using net::UpstreamError;
using server::Origin;

TEST(OutcomeTable, TransportFailuresAndStatusesDecideKindOriginFailoverAndHealth) {
  struct Row {
    server::Verdict v;
    ErrorKind kind;
    Origin origin;
    bool fail_over;
    std::optional<Outcome> health;
  };
  const Row rows[] = {
      {server::verdict(UpstreamError::connect), ErrorKind::upstream_connect, Origin::upstream, true, Outcome::connect_error},
      {server::verdict(UpstreamError::reset), ErrorKind::upstream_connect, Origin::upstream, true, Outcome::connect_error},
      {server::verdict(UpstreamError::bad_response), ErrorKind::upstream_connect, Origin::upstream, true, Outcome::server_error},
      {server::verdict(UpstreamError::first_byte_timeout), ErrorKind::upstream_timeout, Origin::upstream, true, Outcome::timeout},
      {server::verdict(UpstreamError::idle_timeout), ErrorKind::upstream_timeout, Origin::upstream, true, Outcome::timeout},
      {server::verdict(UpstreamError::local_resources), ErrorKind::unavailable, Origin::local, true, std::nullopt},
      {server::verdict(UpstreamError::pool_exhausted), ErrorKind::unavailable, Origin::local, true, std::nullopt},
      {server::verdict(UpstreamError::cancelled), ErrorKind::internal, Origin::local, false, std::nullopt},
      {server::verdict(302), ErrorKind::upstream_connect, Origin::upstream, true, Outcome::misconfigured},
      {server::verdict(429), ErrorKind::upstream_status, Origin::upstream, true, Outcome::rate_limited},
      {server::verdict(503), ErrorKind::upstream_status, Origin::upstream, true, Outcome::server_error},
      {server::verdict(400), ErrorKind::upstream_status, Origin::upstream, false, Outcome::success},
      {server::verdict(401), ErrorKind::upstream_connect, Origin::upstream, true, Outcome::misconfigured},
      {server::verdict(403), ErrorKind::upstream_connect, Origin::upstream, true, Outcome::misconfigured},
      {server::verdict(404), ErrorKind::upstream_connect, Origin::upstream, true, Outcome::misconfigured},
      {server::verdict(422), ErrorKind::upstream_status, Origin::upstream, false, Outcome::success},
      {server::verdict(200), ErrorKind::internal, Origin::upstream, false, Outcome::success},
  };
  for (std::size_t i = 0; i < std::size(rows); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(rows[i].v.kind, rows[i].kind);
    EXPECT_EQ(rows[i].v.origin, rows[i].origin);
    EXPECT_EQ(rows[i].v.fail_over, rows[i].fail_over);
    EXPECT_EQ(rows[i].v.health, rows[i].health);
  }
  core::ApiError e = server::transport_error(UpstreamError::local_resources, "d1");
  EXPECT_EQ(e.status, 503);
  EXPECT_EQ(e.code, "local_resources_exhausted");
  EXPECT_NE(e.message.find("\"d1\""), std::string::npos);
  EXPECT_EQ(server::transport_error(UpstreamError::first_byte_timeout, "d1").code, "first_byte_timeout");
  EXPECT_EQ(server::transport_error(UpstreamError::pool_exhausted, "d1").code, "upstream_pool_exhausted");
}

const char* kConfig = R"(
providers:
  p: {type: openai, base_url: "http://127.0.0.1:9/v1", api_key: sk-provider}
  off: {type: anthropic, base_url: "http://127.0.0.1:9/v1", api_key: "${SWITCHYARD_TEST_UNSET_KEY}", optional: true}
deployments:
  d: {provider: p, model: gpt-4o-mini}
  gone: {provider: off, model: claude-sonnet-4-5}
routes:
  auto: {candidates: [d]}
  other: {candidates: [d]}
  dark: {candidates: [gone]}
keys:
  - {name: limited, sha256: 2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae, routes: [auto, dark], overrides: false}
  - {name: open, sha256: fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9}
)";  // keys "foo" and "bar"

server::Runtime runtime() {
  config::LoadResult loaded = server::load_config_text(kConfig, {});
  EXPECT_TRUE(loaded.ok()) << config::format_problems(loaded.problems);
  return server::Runtime(std::move(loaded.config), nullptr);
}

TEST(Authenticate, BearerTokensAndAnthropicsHeaderFindTheirKey) {
  server::Runtime rt = runtime();
  server::Authenticator auth;
  std::shared_ptr<const governance::KeyDirectory> pin;
  using dialects::Dialect;
  EXPECT_EQ(auth.find({"Bearer foo", ""}, Dialect::openai, rt, nullptr, pin)->name, "limited");
  EXPECT_EQ(auth.find({"bearer   bar", ""}, Dialect::openai, rt, nullptr, pin)->name, "open");
  EXPECT_EQ(auth.find({"", "foo"}, Dialect::anthropic, rt, nullptr, pin)->name, "limited");
  EXPECT_EQ(auth.find({"", "foo"}, Dialect::openai, rt, nullptr, pin), nullptr) << "x-api-key is Anthropic's header";
  EXPECT_EQ(auth.find({"Basic foo", ""}, Dialect::openai, rt, nullptr, pin), nullptr);
  EXPECT_EQ(auth.find({"Bearer nope", ""}, Dialect::openai, rt, nullptr, pin), nullptr);
  EXPECT_EQ(auth.find({"Bearer foo", ""}, Dialect::openai, rt, nullptr, pin)->name, "limited") << "from the cache";

  EXPECT_EQ(server::Authenticator::refusal({"", ""}, Dialect::openai).code, "missing_api_key");
  EXPECT_EQ(server::Authenticator::refusal({"Bearer x", ""}, Dialect::openai).code, "invalid_api_key");
  EXPECT_EQ(server::Authenticator::refusal({"", ""}, Dialect::anthropic).message, "x-api-key header is required");
  EXPECT_EQ(server::Authenticator::refusal({"", "x"}, Dialect::anthropic).message, "invalid x-api-key");
  EXPECT_EQ(server::Authenticator::refusal({"", ""}, Dialect::openai).status, 401);
}

TEST(Admission, RoutesArePermittedPerKeyAndNeedAnEnabledDeployment) {
  server::Runtime rt = runtime();
  const config::KeyConfig* limited = rt.keys().find("foo");
  ASSERT_NE(limited, nullptr);
  core::ApiError refused;
  EXPECT_NE(server::resolve_route(rt, "auto", limited, refused), nullptr);
  EXPECT_EQ(server::resolve_route(rt, "nope", limited, refused), nullptr);
  EXPECT_EQ(refused.status, 404);
  EXPECT_EQ(refused.code, "model_not_found");
  // It says what this key may ask for (its routes: auto and dark; not `other`).
  EXPECT_NE(refused.message.find("The models (routes) this key may use: auto, dark."), std::string::npos)
      << refused.message;
  EXPECT_EQ(server::resolve_route(rt, "other", limited, refused), nullptr);
  EXPECT_EQ(refused.status, 403);
  EXPECT_EQ(server::resolve_route(rt, "dark", limited, refused), nullptr);
  EXPECT_EQ(refused.status, 503);
  EXPECT_EQ(refused.code, "no_deployment");
  EXPECT_NE(server::resolve_route(rt, "other", nullptr, refused), nullptr) << "explain: no key to check";
}

TEST(Admission, OverridesAreValidatedAndPermittedPerKey) {
  server::Runtime rt = runtime();
  const config::KeyConfig* limited = rt.keys().find("foo");
  const config::KeyConfig* open = rt.keys().find("bar");
  routing::Overrides o;
  EXPECT_FALSE(server::read_overrides({}, limited, o)) << "no overrides: nothing to permit";
  auto e = server::read_overrides({.deadline_ms = "100"}, limited, o);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, "override_not_allowed");
  EXPECT_EQ(e->param, "x-switchyard-deadline-ms");

  EXPECT_FALSE(server::read_overrides({"cost", "2500", "0.01"}, open, o));
  EXPECT_EQ(o.objective, routing::Objective::cost);
  EXPECT_EQ(o.deadline_ms, 2500u);
  EXPECT_DOUBLE_EQ(o.max_cost_usd, 0.01);

  for (server::OverrideHeaders bad : {server::OverrideHeaders{"cheapest", "", ""}, server::OverrideHeaders{"", "0", ""},
                                      server::OverrideHeaders{"", "1e3", ""}, server::OverrideHeaders{"", "", "-1"},
                                      server::OverrideHeaders{"", "", "lots"}}) {
    routing::Overrides x;
    auto refused = server::read_overrides(bad, open, x);
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->code, "invalid_header");
    EXPECT_EQ(refused->status, 400);
  }

  // A key may be allowed some overrides only.
  config::KeyConfig policy_only;
  policy_only.overrides = config::kOverridePolicy;
  routing::Overrides p;
  EXPECT_FALSE(server::read_overrides({"quality", "", ""}, &policy_only, p));
  EXPECT_EQ(p.objective, routing::Objective::quality);
  auto refused = server::read_overrides({"quality", "", "0.5"}, &policy_only, p);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->param, "x-switchyard-max-cost-usd");
}

TEST(Admission, AStaticKeyListsTheOverridesItMaySend) {
  const std::string yaml = std::string(R"(
providers:
  p: {base_url: "http://127.0.0.1:1/v1"}
deployments:
  d: {provider: p, model: m}
routes:
  auto: {candidates: [d]}
keys:
  - {name: a, sha256: 2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae, overrides: [policy, deadline_ms]}
  - {name: b, sha256: fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9, overrides: [speed]}
)");
  config::LoadResult loaded = server::load_config_text(yaml, {});
  ASSERT_EQ(loaded.problems.size(), 1u) << config::format_problems(loaded.problems);
  EXPECT_EQ(loaded.problems[0].path, "keys[1].overrides[0]");
  EXPECT_EQ(loaded.config.keys[0].overrides, config::kOverridePolicy | config::kOverrideDeadline);
}

TEST(AccessLine, IsTheAccountingRecordWithoutKeysOrContent) {
  core::AccountingRecord r;
  r.request_id = "req_1";
  r.method = "POST";
  r.path = "/v1/messages";
  r.key = "team-a";
  r.route = "auto";
  r.model = "claude-sonnet-4-5";
  r.deployment = "anthropic-1";
  r.provider = "anthropic";
  r.status = 200;
  r.usage.known = true;
  r.usage.input = 12050;
  r.usage.output = 400;
  r.usage.cache_read = 10000;
  r.usage.cache_creation = 2000;
  r.usage.cache_creation_1h = 500;
  r.cost = core::Money::nanos(17'775'000);
  r.attempts = {{"openai-1", "http_503", 503, 12, false}, {"anthropic-1", "ok", 200, 40, false},
                {"x", "skipped: open", 0, 0, false}};
  r.tier = 1;
  r.error = "upstream_529";
  r.error_kind = core::ErrorKind::upstream_status;
  std::string line = telemetry::format_access_line(r, 1000);
  for (const char* field : {R"("prompt_tokens":12050)", R"("completion_tokens":400)", R"("total_tokens":12450)",
                            R"("cached_tokens":10000)", R"("cache_write_tokens":2000)", R"("cache_write_1h_tokens":500)",
                            R"("cost_usd":0.017775)", R"("attempts":2)", R"("tried":"openai-1:http_503,anthropic-1:ok,x:skipped")",
                            R"("provider":"anthropic")", R"("tier":1)", R"("key":"team-a")",
                            R"("error":"upstream_529")", R"("error_kind":"upstream_status")"})
    EXPECT_NE(line.find(field), std::string::npos) << field << " in " << line;
  EXPECT_EQ(line.find("unpriced"), std::string::npos);
  r.cost.reset();
  r.unpriced = true;
  line = telemetry::format_access_line(r, 1000);
  EXPECT_EQ(line.find("cost_usd"), std::string::npos) << "unpriced is not $0";
  EXPECT_NE(line.find(R"("unpriced":true)"), std::string::npos);
}

}  // namespace

namespace {

/// A governor over a store in a temporary file, with async ledger (nothing to spool here).
std::unique_ptr<governance::Governor> temp_governor() {
  static int n = 0;
  std::string path = std::filesystem::temp_directory_path() /
                     ("switchyard-pipeline-test-" + std::to_string(getpid()) + "-" + std::to_string(++n) + ".db");
  std::filesystem::remove(path);
  governance::LedgerOptions o;
  o.durability = governance::LedgerOptions::Durability::async;
  return std::make_unique<governance::Governor>(std::make_unique<store::SqliteStore>(store::SqliteOptions{path}), o);
}

TEST(GovernanceRefusals, ARateLimitIsA429InTheClientsDialectWithItsSdksHeaders) {
  auto g = temp_governor();
  governance::AuditEntry audit;
  governance::Limit l;
  l.id = "lim_1";
  l.scope = governance::Scope::key;
  l.subject = "svc";
  l.rpm = 1;
  g->store().put_limit(l, audit);
  g->reload();
  config::KeyConfig key;
  key.name = "svc";
  governance::Subjects s = server::subjects_of(key, "", "auto");
  for (auto dialect : {dialects::Dialect::openai, dialects::Dialect::anthropic}) {
    governance::Admission first, second;
    server::RefusalHeaders headers;
    std::string retry_after;
    const std::int64_t now = dialect == dialects::Dialect::openai ? 1'000'000 : 2'000'000;
    ASSERT_FALSE(server::check_limits(*g, s, 10, now, dialect, first, headers, retry_after));
    auto refused = server::check_limits(*g, s, 10, now, dialect, second, headers, retry_after);
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->status, 429);
    EXPECT_EQ(refused->code, "rate_limit_exceeded");
    EXPECT_EQ(retry_after, "60");
    std::map<std::string, std::string> h(headers.begin(), headers.end());
    const std::string body = dialects::error_body(dialect, *refused, "req_1");
    if (dialect == dialects::Dialect::openai) {
      EXPECT_EQ(h["x-ratelimit-limit-requests"], "1");
      EXPECT_EQ(h["x-ratelimit-remaining-requests"], "0");
      EXPECT_EQ(h["x-ratelimit-reset-requests"], "1m0s");
      EXPECT_NE(body.find(R"("type":"rate_limit_error")"), std::string::npos) << body;
      EXPECT_NE(body.find(R"("code":"rate_limit_exceeded")"), std::string::npos) << body;
    } else {
      EXPECT_EQ(h["anthropic-ratelimit-requests-limit"], "1");
      EXPECT_EQ(h["anthropic-ratelimit-requests-remaining"], "0");
      EXPECT_EQ(h.count("x-ratelimit-limit-requests"), 0u);
      EXPECT_EQ(body.substr(0, 15), R"({"type":"error")") << body;
      EXPECT_NE(body.find(R"("type":"rate_limit_error")"), std::string::npos) << body;
    }
    EXPECT_EQ(h["retry-after-ms"], "60000");
    std::vector<governance::BudgetCharge> charges;
    g->settle(first, std::nullopt, 0, now, charges);
  }
}

TEST(GovernanceRefusals, ABudgetRefusalNamesItsBudgetAndIsNotToBeRetried) {
  auto g = temp_governor();
  governance::AuditEntry audit;
  governance::Budget b;
  b.id = "bud_1";
  b.scope = governance::Scope::team;
  b.subject = "search";
  b.period = governance::Period::day;
  b.limit = *core::Money::parse("1");
  g->store().put_budget(b, audit);
  g->reload();
  config::KeyConfig key;
  key.name = "svc";
  key.team = "search";
  governance::Admission held;
  server::RefusalHeaders headers;
  auto refused = server::reserve_budgets(*g, server::subjects_of(key, "", "auto"), *core::Money::parse("1.5"),
                                         governance::unix_now_ms(), held, headers);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 429);
  EXPECT_EQ(refused->code, "budget_exceeded");
  EXPECT_NE(refused->message.find("team 'search' (budget bud_1, day): limit $1, spent $0"), std::string::npos)
      << refused->message;
  EXPECT_NE(refused->message.find("may cost up to $1.5"), std::string::npos);
  EXPECT_NE(refused->message.find("It resets at "), std::string::npos);
  ASSERT_EQ(headers.size(), 1u);
  EXPECT_EQ(headers[0], (std::pair<std::string, std::string>{"x-should-retry", "false"}));
  EXPECT_FALSE(held.hold.active()) << "nothing reserved";
  const std::string body = dialects::error_body(dialects::Dialect::anthropic, *refused, "req_1");
  EXPECT_NE(body.find(R"("type":"rate_limit_error")"), std::string::npos) << body;
}

}  // namespace
