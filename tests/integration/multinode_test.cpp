// Many nodes on shared engines (docs/scaling.md): PostgreSQL as the store of several gateway
// processes, and Redis for the counters they share. Real servers, started by the test in
// throwaway directories (tests/integration/services.*), and real gateway processes.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <boost/json.hpp>
#include <mutex>
#include <set>
#include <thread>

#include "governance/ledger.hpp"
#include "harness.hpp"
#include "services.hpp"
#include "store/postgres_store.hpp"

using namespace std::chrono_literals;
using harness::Fake;
using harness::Gateway;
using harness::Response;
namespace json = boost::json;
namespace gov = switchyard::governance;
namespace store = switchyard::store;
using switchyard::core::Money;

namespace {

const std::string kAdmin = "sk-admin-secret-multinode";

/// One PostgreSQL for the whole file (a server start is a second or two); a database per test.
harness::Postgres& postgres() {
  static harness::Postgres pg;
  return pg;
}

gov::AuditEntry audit(const std::string& type, const std::string& id) {
  return {0, gov::unix_now_ms(), "test", "create", type, id, "null", "{}"};
}

/// A ledger row as the gateway makes them: its id starts with its time (12 hex digits of ms).
gov::LedgerRow row(const std::string& tag, std::int64_t ms, std::int64_t cost_nanos, const std::string& budget = "") {
  gov::LedgerRow r;
  char id[64];
  std::snprintf(id, sizeof id, "%012llx%s", static_cast<unsigned long long>(ms), tag.c_str());
  r.id = id;
  r.request_id = "req-" + tag;
  r.unix_ms = ms;
  r.key_id = "key_a";
  r.key_name = "a";
  r.team = "search";
  r.user = "ann";
  r.route = "auto";
  r.model = "m";
  r.deployment = "d";
  r.provider = "fake";
  r.dialect = "openai";
  r.status = 200;
  r.usage.known = true;
  r.usage.input = 10;
  r.usage.output = 5;
  r.cost = Money::nanos(cost_nanos);
  r.reference_cost = Money::nanos(cost_nanos * 3);
  r.latency_ms = 12.5;
  r.attempts = 1;
  if (!budget.empty()) r.charges.push_back({budget, 0});
  return r;
}

TEST(PostgresStore, NodesMigratingAtOnceApplyTheSchemaOnce) {
  const std::string db = postgres().new_database();
  std::atomic<int> ok{0};
  std::mutex m;
  std::string failure;
  std::vector<std::thread> nodes;
  for (int i = 0; i < 4; ++i)
    nodes.emplace_back([&] {
      try {
        store::PostgresStore s({db});
        ++ok;
      } catch (const std::exception& e) {
        std::lock_guard lock(m);
        failure = e.what();
      }
    });
  for (auto& t : nodes) t.join();
  EXPECT_EQ(ok, 4) << failure;
  store::PostgresStore s({db});
  s.put_team({"search", "Search", "{}", false, 1}, audit("team", "search"));
  ASSERT_EQ(s.teams().size(), 1u);
  EXPECT_EQ(s.teams()[0].name, "Search");
}

TEST(PostgresStore, DefinitionsAuditAndTheirAnnouncementReachAnotherNode) {
  const std::string db = postgres().new_database();
  store::PostgresStore a({db}), b({db});
  std::atomic<int> changes{0};
  b.watch([&] { ++changes; });
  // The first call is the read made when the watch starts listening.
  for (int i = 0; i < 200 && changes == 0; ++i) std::this_thread::sleep_for(10ms);
  const int before = changes;
  gov::Key k;
  k.id = "key_1";
  k.name = "svc";
  k.team = "search";
  k.sha256 = std::string(64, 'a');
  k.prefix = "sk-sy-aa";
  k.routes = {"auto", "tiered"};
  k.models = {"gpt-4o-mini"};
  k.policy = "cost";
  k.overrides = 3;
  k.expires_ms = 123;
  k.metadata_json = R"({"owner":"ann"})";
  a.put_key(k, audit("key", k.id));
  for (int i = 0; i < 500 && changes == before; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_GT(changes, before) << "a change on node a is announced to node b";
  b.stop_watching();
  std::vector<gov::Key> keys = b.keys();
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(keys[0].routes, (std::vector<std::string>{"auto", "tiered"}));
  EXPECT_EQ(keys[0].models, std::vector<std::string>{"gpt-4o-mini"});
  EXPECT_EQ(keys[0].policy, "cost");
  EXPECT_EQ(keys[0].overrides, 3);
  EXPECT_EQ(keys[0].expires_ms, 123);
  EXPECT_EQ(keys[0].metadata_json, R"({"owner":"ann"})");
  k.disabled = true;
  a.put_key(k, audit("key", k.id));
  EXPECT_TRUE(b.keys()[0].disabled);

  gov::Budget bud;
  bud.id = "bud_1";
  bud.scope = gov::Scope::team;
  bud.subject = "search";
  bud.period = gov::Period::week;
  bud.timezone = "+05:30";
  bud.utc_offset_minutes = 330;
  bud.limit = Money::nanos(5'000'000'000);
  bud.alert_percents = {50, 90};
  bud.hard = false;
  a.put_budget(bud, audit("budget", bud.id));
  ASSERT_EQ(b.budgets().size(), 1u);
  EXPECT_EQ(b.budgets()[0].alert_percents, (std::vector<int>{50, 90}));
  EXPECT_EQ(b.budgets()[0].utc_offset_minutes, 330);
  EXPECT_FALSE(b.budgets()[0].hard);
  a.delete_budget(bud.id, audit("budget", bud.id));
  EXPECT_TRUE(b.budgets().empty());
  gov::Limit lim{"lim_1", gov::Scope::user, "ann", 60, 1000, 2, 7};
  a.put_limit(lim, audit("limit", lim.id));
  ASSERT_EQ(b.limits().size(), 1u);
  EXPECT_EQ(b.limits()[0].tpm, 1000);
  EXPECT_EQ(b.audit(0, 100).size(), 5u) << "every change is audited in its own transaction";
}

TEST(PostgresStore, LedgerBatchesFromTwoNodesLandOnceWithTheirRollups) {
  const std::string db = postgres().new_database();
  store::PostgresStore a({db}), b({db});
  const std::int64_t day = 20'000LL * 86'400'000;
  std::vector<gov::LedgerRow> first, second;
  for (int i = 0; i < 700; ++i) first.push_back(row("r" + std::to_string(i), day + i, 1000, "bud_x"));
  // The second batch repeats 200 of the first (a spool replayed) and adds 300.
  for (int i = 500; i < 1000; ++i) second.push_back(row("r" + std::to_string(i), day + i, 1000, "bud_x"));
  std::thread ta([&] { a.write_ledger(first); });
  std::thread tb([&] { b.write_ledger(second); });
  ta.join();
  tb.join();
  a.write_ledger(first);  // a whole replay: nothing counted twice
  EXPECT_EQ(a.ledger_count(), 1000);
  EXPECT_EQ(b.budget_spent("bud_x", 0), Money::nanos(1'000'000));
  gov::SpendQuery q;
  q.group_by = "team";
  auto rows = b.spend(q);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].group, "search");
  EXPECT_EQ(rows[0].requests, 1000);
  EXPECT_EQ(rows[0].usage.input, 10'000);
  EXPECT_EQ(rows[0].cost, Money::nanos(1'000'000));
  EXPECT_EQ(rows[0].reference_cost, Money::nanos(3'000'000));
  q.group_by = "day";
  ASSERT_EQ(b.spend(q).size(), 1u);
  EXPECT_EQ(b.spend(q)[0].group, "20000");
  auto page = b.ledger_rows(day + 10, day + 20, 100, true);
  ASSERT_EQ(page.size(), 10u);
  EXPECT_EQ(page[0].unix_ms, day + 19) << "newest first";
  EXPECT_EQ(page[0].user, "ann");
  EXPECT_EQ(page[0].latency_ms, 12.5);
  ASSERT_TRUE(page[0].cost.has_value());
  EXPECT_EQ(*page[0].cost, Money::nanos(1000));
}

TEST(PostgresStore, TheLedgerKeepsItsRowsWhilePostgresIsDownAndWritesThemOnceWhenItIsBack) {
  const std::string db = postgres().new_database();
  auto s = std::make_unique<store::PostgresStore>(store::PostgresOptions{db});
  gov::LedgerOptions o;
  o.spool_dir = harness::temp_dir() + "/spool";
  o.store_window_ms = 5;
  std::vector<std::string> errors;
  std::mutex m;
  {
    gov::Ledger ledger(*s, o, [&](const std::string& e) {
      std::lock_guard lock(m);
      errors.push_back(e);
    });
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(ledger.append(row("a" + std::to_string(i), 1000 + i, 7)));
    for (int i = 0; i < 300 && ledger.stats().committed < 100; ++i) std::this_thread::sleep_for(10ms);
    postgres().stop();
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(ledger.append(row("b" + std::to_string(i), 2000 + i, 7)));
    for (int i = 0; i < 300 && ledger.stats().failures == 0; ++i) std::this_thread::sleep_for(10ms);
    EXPECT_GT(ledger.stats().failures, 0u);
    postgres().start();
    for (int i = 0; i < 1000 && ledger.stats().committed < 200; ++i) std::this_thread::sleep_for(10ms);
    EXPECT_EQ(ledger.stats().committed, 200u);
  }
  EXPECT_EQ(s->ledger_count(), 200) << "every row once";
  {
    std::lock_guard lock(m);
    ASSERT_FALSE(errors.empty());
    EXPECT_EQ(errors[0].find("password"), std::string::npos);
  }
}

// --- gateways on one PostgreSQL ---

std::string node_config(int fake_port, const std::string& conninfo, const std::string& extra = "") {
  return "server:\n  host: 127.0.0.1\n  port: 0\n  threads: 2\n  access_log: off\n"
         "health:\n  circuit_breaking: false\n"
         "models:\n  - id: metered\n    vendor: test\n    hosts: [openai]\n"
         "    price: {input: 0, output: 1000}\n    context_window: 100000\n    max_output: 4000\n"
         "providers:\n  fake:\n    base_url: http://127.0.0.1:" +
         std::to_string(fake_port) +
         "/v1\n    api_key: sk-up\n"
         "deployments:\n  metered:\n    provider: fake\n    model: metered\n"
         "routes:\n  solo:\n    candidates: [metered]\n"
         "governance:\n  store: postgres\n  postgres:\n    url: \"" +
         conninfo + "\"\n  spool_dir: " + harness::temp_dir() + "/spool\n" + extra +
         "  admin_keys:\n    - name: ops\n      sha256: " + harness::sha256_hex(kAdmin) + "\n";
}

json::value admin(int port, const std::string& method, const std::string& path, const std::string& body = "",
                  int expect = 200) {
  Response r = harness::http(port, method, path,
                             {{"Authorization", "Bearer " + kAdmin}, {"Content-Type", "application/json"}}, body);
  EXPECT_EQ(r.status, expect) << method << " " << path << ": " << r.body;
  return r.body.empty() ? json::value() : json::parse(r.body);
}

std::map<std::string, std::string> as(const std::string& secret) {
  return {{"Authorization", "Bearer " + secret}, {"Content-Type", "application/json"}};
}

std::string chat_body(int max_tokens) {
  return R"({"model":"solo","messages":[{"role":"user","content":"count my money"}],"max_tokens":)" +
         std::to_string(max_tokens) + "}";
}

TEST(MultiNode, AKeyMadeOrDisabledOnOneNodeTakesEffectOnTheOthers) {
  Fake fake(R"({"content":"hello"})");
  const std::string db = postgres().new_database();
  Gateway a(node_config(fake.port(), db)), c(node_config(fake.port(), db));
  json::value k = admin(a.port(), "POST", "/admin/v1/keys", R"({"name":"svc"})", 201);
  const std::string id(k.at("id").as_string()), secret(k.at("secret").as_string());
  auto status_on_c = [&] {
    return harness::http(c.port(), "POST", "/v1/chat/completions", as(secret), chat_body(5)).status;
  };
  // Made on a, served by c once the notification arrived (LISTEN/NOTIFY: milliseconds).
  int status = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 500 && (status = status_on_c()) != 200; ++i) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(status, 200);
  const double made_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  admin(a.port(), "POST", "/admin/v1/keys/" + id + "/disable", "{}");
  t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 500 && (status = status_on_c()) == 200; ++i) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(status, 401) << "a key disabled on node a is refused on node c";
  const double disabled_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  // Printed for docs/scaling.md; the bound asserted is the loop's (2.5 s), not a timing.
  std::printf("[ propagation ] key made: served on another node after %.1f ms; disabled: refused after %.1f ms\n",
              made_ms, disabled_ms);
  // Both nodes report from the one ledger.
  json::value spend_a = admin(a.port(), "GET", "/admin/v1/audit");
  EXPECT_EQ(spend_a.at("data").as_array().size(), 2u);
}

}  // namespace
