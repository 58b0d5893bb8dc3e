// Many nodes on shared engines (docs/scaling.md): PostgreSQL as the store of several gateway
// processes, and Redis for the counters they share. Real servers, started by the test in
// throwaway directories (tests/integration/services.*), and real gateway processes.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <fstream>
#include <boost/json.hpp>
#include <mutex>
#include <set>
#include <thread>

#include "governance/ledger.hpp"
#include "governance_client.hpp"
#include "harness.hpp"
#include "services.hpp"
#include "tls_server.hpp"
#include "store/postgres_store.hpp"

using namespace std::chrono_literals;
using harness::Connection;
using harness::Fake;
using harness::Gateway;
using harness::Response;
namespace json = boost::json;
namespace gov = switchyard::governance;
namespace store = switchyard::store;
using switchyard::core::Money;

namespace {

const std::string kAdmin = "sk-admin-secret-multinode";
/// A static client key with admin rights: it reads the node's whole health report.
const std::string kOps = "sk-ops-client-multinode";

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
  auto spends = b.budget_spends({0, 123});
  ASSERT_EQ(spends.size(), 1u) << "every budget of those periods, in one query";
  EXPECT_EQ(spends[0].budget_id, "bud_x");
  EXPECT_EQ(spends[0].spent, Money::nanos(1'000'000));
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
         "keys:\n  - name: ops-client\n    admin: true\n    sha256: " +
         harness::sha256_hex(kOps) +
         "\n"
         "governance:\n  store: postgres\n  postgres:\n    url: \"" +
         conninfo + "\"\n  spool_dir: " + harness::temp_dir() + "/spool\n" + extra +
         "  admin_keys:\n    - name: ops\n      sha256: " + harness::sha256_hex(kAdmin) + "\n";
}

const harness::AdminClient admin(kAdmin);

std::map<std::string, std::string> as(const std::string& secret) { return harness::bearer(secret); }

std::string chat_body(int max_tokens) {
  return R"({"model":"solo","messages":[{"role":"user","content":"count my money"}],"max_tokens":)" +
         std::to_string(max_tokens) + "}";
}

TEST(MultiNode, AdminMigrateAppliesTheSchemaBeforeAnyNodeStarts) {
  const std::string db = postgres().new_database();
  const std::string path = harness::temp_dir() + "/switchyard.yaml";
  std::ofstream(path) << node_config(1, db);
  harness::Process p({SWITCHYARD_BIN, "admin", "migrate", "--config", path});
  EXPECT_EQ(p.wait(30s), 0) << p.output();
  EXPECT_NE(p.output().find("schema at version 1"), std::string::npos) << p.output();
  EXPECT_EQ(p.output().find("password"), std::string::npos);
  // Again: nothing to do, same answer.
  harness::Process again({SWITCHYARD_BIN, "admin", "migrate", "--config", path});
  EXPECT_EQ(again.wait(30s), 0) << again.output();
}

TEST(MultiNode, AFullSpoolRefusesBeforeAnythingGoesUpstreamAndRecovers) {
  // PostgreSQL down for long: rows wait in the spool, bounded at 1 MiB here. Past it a request is
  // refused with 503 ledger_unavailable and the provider never sees it; once PostgreSQL is back
  // and has the rows, requests are served again.
  Fake fake(R"({"content":"kept"})");
  const std::string db = postgres().new_database();
  Gateway gw(node_config(fake.port(), db, "  spool_max_mb: 1\n"));
  json::value k = admin(gw.port(), "POST", "/admin/v1/keys", R"({"name":"svc"})", 201);
  const std::string secret(k.at("secret").as_string());
  postgres().stop();
  int served = 0;
  Response refused;
  {
    Connection c(gw.port());
    const std::string request = harness::request("POST", "/v1/chat/completions", as(secret), chat_body(5));
    for (int i = 0; i < 20000; ++i) {
      ASSERT_TRUE(c.send_raw(request));
      Response r = c.read_response();
      if (r.status != 200) {
        refused = r;
        break;
      }
      ++served;
    }
  }
  const std::int64_t upstream_before = json::parse(fake.stats_json()).at("requests").as_int64();
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_NE(refused.body.find("ledger_unavailable"), std::string::npos) << refused.body;
  EXPECT_GT(served, 500) << "a megabyte of spool holds well over a thousand rows";
  EXPECT_EQ(harness::http(gw.port(), "POST", "/v1/chat/completions", as(secret), chat_body(5)).status, 503);
  EXPECT_EQ(json::parse(fake.stats_json()).at("requests").as_int64(), upstream_before)
      << "nothing refused went upstream";
  postgres().start();
  int status = 0;
  for (int i = 0; i < 300 && status != 200; ++i) {
    status = harness::http(gw.port(), "POST", "/v1/chat/completions", as(secret), chat_body(5)).status;
    if (status != 200) std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(status, 200) << "served again once the store has the spooled rows";
  admin.wait_ledger_committed(gw.port());
  EXPECT_GE(static_cast<int>(admin.ledger_rows(gw.port()).size()), served) << "every answered request is in the ledger";
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

// --- budgets and limits shared through Redis ---

harness::Redis& redis() {
  static harness::Redis r;
  return r;
}

std::string redis_extra(const std::string& more = "") {
  return "  redis:\n    url: " + redis().url() + "\n    key_prefix: \"" + harness::sha256_hex(std::to_string(std::rand())).substr(0, 8) +
         ":\"\n    lease_ms: 3000\n    timeout_ms: 200\n" + more;
}

/// Three gateway processes on one PostgreSQL and one Redis (the same key prefix).
struct Fleet {
  Fleet(int fake_port, const std::string& more = "") : db(postgres().new_database()), extra(redis_extra(more)) {
    for (int i = 0; i < 3; ++i) {
      spools.push_back(harness::temp_dir() + "/spool");
      nodes.push_back(std::make_unique<Gateway>(yaml(fake_port, i)));
    }
  }
  std::string yaml(int fake_port, int i) const {
    std::string y = node_config(fake_port, db, extra);
    // Each node its own spool.
    auto at = y.find("  spool_dir: ");
    auto end = y.find('\n', at);
    return y.replace(at, end - at, "  spool_dir: " + spools[static_cast<std::size_t>(i)]);
  }
  int port(std::size_t i) const { return nodes[i]->port(); }
  std::string db, extra;
  std::vector<std::string> spools;
  std::vector<std::unique_ptr<Gateway>> nodes;
};

void wait_ledger_committed(int port) { admin.wait_ledger_committed(port); }
std::int64_t nanos(const json::value& usd) { return harness::usd_nanos(usd); }
std::vector<json::object> ledger_rows(int port) { return admin.ledger_rows(port); }

struct Made {
  std::string id, secret;
};
Made make_key(int port, const std::string& team) {
  admin(port, "POST", "/admin/v1/teams", R"({"id":")" + team + R"("})", 201);
  json::value k = admin(port, "POST", "/admin/v1/keys", R"({"name":"svc","team":")" + team + R"("})", 201);
  return {std::string(k.at("id").as_string()), std::string(k.at("secret").as_string())};
}

/// Until every node can serve the key (the key was made on one; the others hear of it).
void wait_key_everywhere(const Fleet& f, const std::string& secret) {
  for (std::size_t n = 0; n < f.nodes.size(); ++n)
    for (int i = 0; i < 400; ++i) {
      Response r = harness::http(f.port(n), "GET", "/v1/models", as(secret));
      if (r.status == 200) break;
      std::this_thread::sleep_for(5ms);
    }
}

json::object health(int port) {
  Response r = harness::http(port, "GET", "/v1/switchyard/health", as(kOps));
  EXPECT_EQ(r.status, 200) << r.body;
  return json::parse(r.body).at("shared_counters").as_object();
}

TEST(SharedCounters, ThreeNodesNeverOverspendOneBudget) {
  Fake fake(R"({"content":"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789","latency_ms":30})");
  Fleet f(fake.port());
  Made key = make_key(f.port(0), "search");
  json::value b = admin(f.port(1), "POST", "/admin/v1/budgets",
                        R"({"scope":"team","subject":"search","period":"day","limit_usd":"0.5"})", 201);
  const std::string budget(b.at("id").as_string());
  wait_key_everywhere(f, key.secret);
  std::this_thread::sleep_for(200ms);  // the budget, too
  std::atomic<int> ok{0}, refused{0}, other{0};
  std::mutex m;
  std::string other_body;
  std::vector<std::thread> clients;
  for (int i = 0; i < 300; ++i)
    clients.emplace_back([&, i] {
      Response r = harness::http(f.port(static_cast<std::size_t>(i % 3)), "POST", "/v1/chat/completions",
                                 as(key.secret), chat_body(16));
      if (r.status == 200) ++ok;
      else if (r.status == 429 && r.body.find("budget_exceeded") != std::string::npos) ++refused;
      else {
        ++other;
        std::lock_guard lock(m);
        other_body = std::to_string(r.status) + " " + r.body;
      }
    });
  for (auto& t : clients) t.join();
  EXPECT_EQ(other, 0) << other_body;
  EXPECT_GT(ok, 10);
  EXPECT_GT(refused, 0);
  for (std::size_t n = 0; n < 3; ++n) wait_ledger_committed(f.port(n));
  std::int64_t ledger_cost = 0;
  int answered = 0;
  for (const auto& row : ledger_rows(f.port(2))) {
    if (!row.at("cost_usd").is_null()) ledger_cost += nanos(row.at("cost_usd"));
    answered += row.at("status").as_int64() == 200;
  }
  EXPECT_EQ(answered, ok.load()) << "every answer of every node is in the one ledger";
  EXPECT_LE(ledger_cost, 500'000'000) << "three nodes together never spend more than the budget";
  // The shared counter agrees with the ledger, and nothing stays reserved once settled.
  json::object state;
  for (int i = 0; i < 100; ++i) {
    state = admin(f.port(0), "GET", "/admin/v1/budgets/" + budget).as_object();
    if (state.at("reserved_usd").as_string() == "0") break;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(state.at("reserved_usd").as_string(), "0");
  EXPECT_EQ(nanos(state.at("spent_usd")), ledger_cost);
  // Every node that served in the last 10 s is counted (as the next admission on node 0 hears
  // from Redis; a key of its own, with a limit, so that it is admitted).
  Made second = make_key(f.port(0), "other");
  admin(f.port(0), "POST", "/admin/v1/limits", R"({"scope":"key","subject":")" + second.id + R"(","rpm":1000})", 201);
  EXPECT_EQ(harness::http(f.port(0), "POST", "/v1/chat/completions", as(second.secret), chat_body(5)).status, 200);
  EXPECT_EQ(health(f.port(0)).at("nodes").as_int64(), 3) << "every node is counted as serving";
}

TEST(SharedCounters, OneRateLimitHoldsAcrossTheFleetNotPerNode) {
  Fake fake(R"({"content":"fast"})");
  Fleet f(fake.port());
  Made key = make_key(f.port(0), "burst");
  admin(f.port(0), "POST", "/admin/v1/limits", R"({"scope":"key","subject":")" + key.id + R"(","rpm":30})", 201);
  wait_key_everywhere(f, key.secret);
  std::this_thread::sleep_for(200ms);
  std::atomic<int> ok{0}, limited{0};
  const auto started = std::chrono::steady_clock::now();
  std::vector<std::thread> clients;
  for (int i = 0; i < 150; ++i)
    clients.emplace_back([&, i] {
      Response r = harness::http(f.port(static_cast<std::size_t>(i % 3)), "POST", "/v1/chat/completions",
                                 as(key.secret), chat_body(10));
      ok += r.status == 200;
      limited += r.status == 429;
    });
  for (auto& t : clients) t.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  // GCRA: a burst of 30, then one every 2 s — for the fleet (per node it would be 90).
  EXPECT_GE(ok, 30);
  EXPECT_LE(ok, 30 + static_cast<int>(seconds / 2) + 1);
  EXPECT_EQ(ok + limited, 150);
}

TEST(SharedCounters, ADeadNodesReservationsExpireAndItsSpoolIsReplayedOnce) {
  Fake fake(R"({"content":"slow answer","latency_ms":20})");
  Fleet f(fake.port());
  Made key = make_key(f.port(0), "crash");
  json::value b = admin(f.port(0), "POST", "/admin/v1/budgets",
                        R"({"scope":"key","subject":")" + key.id + R"(","period":"day","limit_usd":"100"})", 201);
  const std::string budget(b.at("id").as_string());
  wait_key_everywhere(f, key.secret);
  std::this_thread::sleep_for(200ms);
  // Node 1 takes fast requests (their answers seen complete), then slow ones it dies holding.
  std::set<std::string> completed;
  std::mutex m;
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c)
    clients.emplace_back([&] {
      while (!stop) {
        Response r = harness::http(f.port(1), "POST", "/v1/chat/completions", as(key.secret), chat_body(100));
        if (r.status == 200) {
          std::lock_guard lock(m);
          completed.insert(r.header("x-request-id"));
        }
      }
    });
  std::this_thread::sleep_for(400ms);
  fake.script(R"({"content":"never answered","latency_ms":5000})", 8);
  std::vector<std::thread> stuck;
  for (int c = 0; c < 4; ++c)
    stuck.emplace_back([&] { harness::http(f.port(1), "POST", "/v1/chat/completions", as(key.secret), chat_body(100)); });
  std::this_thread::sleep_for(300ms);
  json::object held = admin(f.port(0), "GET", "/admin/v1/budgets/" + budget).as_object();
  EXPECT_GT(nanos(held.at("reserved_usd")), 0) << "node 1's requests in flight hold reservations";
  f.nodes[1]->process().signal(SIGKILL);
  stop = true;
  for (auto& t : clients) t.join();
  for (auto& t : stuck) t.join();
  // Its leases end (3 s); the next admission anywhere gives them back.
  std::this_thread::sleep_for(3200ms);
  fake.reset();
  EXPECT_EQ(harness::http(f.port(2), "POST", "/v1/chat/completions", as(key.secret), chat_body(100)).status, 200);
  for (int i = 0; i < 100; ++i) {
    held = admin(f.port(0), "GET", "/admin/v1/budgets/" + budget).as_object();
    if (held.at("reserved_usd").as_string() == "0") break;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(held.at("reserved_usd").as_string(), "0") << "a dead node's reservations expire with their lease";
  // Restarted on its spool: every answer it gave is in the ledger, once.
  f.nodes[1] = std::make_unique<Gateway>(f.yaml(fake.port(), 1));
  wait_ledger_committed(f.port(1));
  wait_ledger_committed(f.port(2));
  std::map<std::string, int> seen;
  for (const auto& row : ledger_rows(f.port(0))) ++seen[std::string(row.at("request_id").as_string())];
  ASSERT_GT(completed.size(), 5u);
  for (const auto& id : completed) EXPECT_EQ(seen[id], 1) << id;
}

TEST(SharedCounters, RedisDownFailOpenKeepsServingWithinSharesAndIsReconciledFromTheLedger) {
  Fake fake(R"({"content":"0123456789abcdefghij","latency_ms":5})");
  Fleet f(fake.port());
  Made key = make_key(f.port(0), "open");
  json::value b = admin(f.port(0), "POST", "/admin/v1/budgets",
                        R"({"scope":"team","subject":"open","period":"day","limit_usd":"0.6"})", 201);
  const std::string budget(b.at("id").as_string());
  wait_key_everywhere(f, key.secret);
  std::this_thread::sleep_for(200ms);
  auto post = [&](std::size_t n) {
    return harness::http(f.port(n), "POST", "/v1/chat/completions", as(key.secret), chat_body(16)).status;
  };
  // Spend a third of it through Redis, from every node.
  int ok = 0;
  for (int i = 0; i < 12; ++i) ok += post(static_cast<std::size_t>(i % 3)) == 200;
  EXPECT_EQ(ok, 12);
  redis().stop();
  // Without Redis each node admits within its share of what was left: together, never more
  // than the budget.
  int open_ok = 0, open_refused = 0;
  for (int i = 0; i < 180; ++i) {
    int s = post(static_cast<std::size_t>(i % 3));
    open_ok += s == 200;
    open_refused += s == 429;
  }
  EXPECT_GT(open_ok, 0);
  EXPECT_GT(open_refused, 0) << "each node stops at its share";
  json::object h = health(f.port(0));
  EXPECT_EQ(h.at("redis").as_string(), "unreachable");
  EXPECT_GE(h.at("unavailable_events").as_int64(), 1);
  EXPECT_GT(h.at("fail_open_admissions").as_int64(), 0);
  for (std::size_t n = 0; n < 3; ++n) wait_ledger_committed(f.port(n));
  std::int64_t ledger_cost = 0;
  for (const auto& row : ledger_rows(f.port(0)))
    if (!row.at("cost_usd").is_null()) ledger_cost += nanos(row.at("cost_usd"));
  EXPECT_LE(ledger_cost, 600'000'000) << "shares of what was left never add up to more than the budget";
  // Redis back, empty: its counter is made again from the ledger, not guessed.
  redis().start();
  std::this_thread::sleep_for(1500ms);  // the seeds' refresh (1 s)
  post(0);
  for (std::size_t n = 0; n < 3; ++n) wait_ledger_committed(f.port(n));
  std::int64_t total = 0;
  for (const auto& row : ledger_rows(f.port(0)))
    if (!row.at("cost_usd").is_null()) total += nanos(row.at("cost_usd"));
  json::object state;
  for (int i = 0; i < 100; ++i) {
    state = admin(f.port(1), "GET", "/admin/v1/budgets/" + budget).as_object();
    if (state.at("reserved_usd").as_string() == "0") break;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(nanos(state.at("spent_usd")), total) << "the counter equals the ledger";
  EXPECT_EQ(health(f.port(0)).at("redis").as_string(), "up");
}

TEST(SharedCounters, RedisDownFailClosedRefusesWithBudgetUnverifiable) {
  Fake fake(R"({"content":"fine"})");
  Fleet f(fake.port(), "    on_unavailable: {team: fail_closed}\n");
  Made key = make_key(f.port(0), "strict");
  admin(f.port(0), "POST", "/admin/v1/budgets", R"({"scope":"team","subject":"strict","period":"day","limit_usd":"5"})",
        201);
  wait_key_everywhere(f, key.secret);
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(harness::http(f.port(0), "POST", "/v1/chat/completions", as(key.secret), chat_body(5)).status, 200);
  redis().stop();
  Response r = harness::http(f.port(1), "POST", "/v1/chat/completions", as(key.secret), chat_body(5));
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.body.find("budget_unverifiable"), std::string::npos) << r.body;
  EXPECT_GE(health(f.port(1)).at("fail_closed_refusals").as_int64(), 1);
  redis().start();
  int status = 0;
  for (int i = 0; i < 100 && status != 200; ++i) {
    status = harness::http(f.port(1), "POST", "/v1/chat/completions", as(key.secret), chat_body(5)).status;
    if (status != 200) std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(status, 200) << "served again once Redis is back";
}

TEST(SharedCounters, PostgresDownMidLoadLosesAndDuplicatesNothing) {
  Fake fake(R"({"content":"kept","latency_ms":2})");
  Fleet f(fake.port());
  Made key = make_key(f.port(0), "pgdown");
  wait_key_everywhere(f, key.secret);
  std::set<std::string> completed;
  std::mutex m;
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  for (int c = 0; c < 3; ++c)
    clients.emplace_back([&, c] {
      while (!stop) {
        Response r = harness::http(f.port(static_cast<std::size_t>(c)), "POST", "/v1/chat/completions",
                                   as(key.secret), chat_body(5));
        if (r.status == 200) {
          std::lock_guard lock(m);
          completed.insert(r.header("x-request-id"));
        }
      }
    });
  std::this_thread::sleep_for(300ms);
  postgres().stop();
  std::this_thread::sleep_for(700ms);
  postgres().start();
  std::this_thread::sleep_for(300ms);
  stop = true;
  for (auto& t : clients) t.join();
  for (std::size_t n = 0; n < 3; ++n) wait_ledger_committed(f.port(n));
  std::map<std::string, int> seen;
  for (const auto& row : ledger_rows(f.port(0))) ++seen[std::string(row.at("request_id").as_string())];
  ASSERT_GT(completed.size(), 20u);
  int missing = 0, twice = 0;
  for (const auto& id : completed) {
    missing += seen[id] == 0;
    twice += seen[id] > 1;
  }
  EXPECT_EQ(missing, 0);
  EXPECT_EQ(twice, 0);
}

TEST(SharedCounters, RedisUnreachableButNotLostIsToldWhatWasSpentMeanwhileOnce) {
  Fake fake(R"({"content":"0123456789abcdefghij","latency_ms":5})");
  Fleet f(fake.port());
  Made key = make_key(f.port(0), "pause");
  json::value b = admin(f.port(0), "POST", "/admin/v1/budgets",
                        R"({"scope":"team","subject":"pause","period":"day","limit_usd":"50"})", 201);
  const std::string budget(b.at("id").as_string());
  wait_key_everywhere(f, key.secret);
  std::this_thread::sleep_for(200ms);
  auto post = [&](std::size_t n) {
    return harness::http(f.port(n), "POST", "/v1/chat/completions", as(key.secret), chat_body(16)).status;
  };
  for (int i = 0; i < 6; ++i) EXPECT_EQ(post(static_cast<std::size_t>(i % 3)), 200);
  // Redis stops answering for 2 s (its data kept): the nodes time out, serve on their shares,
  // and tell Redis what they spent once it answers again.
  redis().cli("CLIENT PAUSE 2000 ALL");
  int open_ok = 0;
  for (int i = 0; i < 9; ++i) open_ok += post(static_cast<std::size_t>(i % 3)) == 200;
  EXPECT_EQ(open_ok, 9);
  EXPECT_GT(health(f.port(0)).at("fail_open_admissions").as_int64() +
                health(f.port(1)).at("fail_open_admissions").as_int64() +
                health(f.port(2)).at("fail_open_admissions").as_int64(),
            0);
  std::this_thread::sleep_for(2500ms);  // the pause ends; a settlement that was retried lands
  for (int i = 0; i < 6; ++i) EXPECT_EQ(post(static_cast<std::size_t>(i % 3)), 200);
  for (std::size_t n = 0; n < 3; ++n) wait_ledger_committed(f.port(n));
  std::int64_t total = 0;
  for (const auto& row : ledger_rows(f.port(0)))
    if (!row.at("cost_usd").is_null()) total += nanos(row.at("cost_usd"));
  json::object state;
  for (int i = 0; i < 200; ++i) {
    state = admin(f.port(1), "GET", "/admin/v1/budgets/" + budget).as_object();
    if (nanos(state.at("spent_usd")) == total) break;
    std::this_thread::sleep_for(25ms);
  }
  EXPECT_EQ(nanos(state.at("spent_usd")), total) << "the counter has every cost once";
}

TEST(SharedCounters, RedisOverTlsWithAPasswordAndTheCertificateVerified) {
  const std::string dir = harness::temp_dir();
  harness::TestCert cert = harness::make_cert(dir, "localhost");
  harness::Redis tls_redis(cert.cert_path, cert.key_path, "s3cret-redis");
  Fake fake(R"({"content":"0123456789abcdefghij0123456789"})");
  const std::string db = postgres().new_database();
  auto node = [&](const std::string& ca) {
    std::string y = node_config(fake.port(), db,
                                "  redis:\n    url: rediss://:s3cret-redis@localhost:" + std::to_string(tls_redis.port()) +
                                    "\n    timeout_ms: 500\n    on_unavailable: fail_closed\n");
    return y.replace(y.find("health:"), 0, "upstream:\n  ca_file: " + ca + "\n");
  };
  Gateway gw(node(cert.cert_path));
  Made key = make_key(gw.port(), "tls");
  admin(gw.port(), "POST", "/admin/v1/budgets",
        R"({"scope":"key","subject":")" + key.id + R"(","period":"day","limit_usd":"0.018"})", 201);
  // The budget holds one maximum-cost request (16 tokens at $0.001; it costs 4), not two:
  // counted in Redis over TLS.
  EXPECT_EQ(harness::http(gw.port(), "POST", "/v1/chat/completions", as(key.secret), chat_body(16)).status, 200);
  Response second = harness::http(gw.port(), "POST", "/v1/chat/completions", as(key.secret), chat_body(16));
  EXPECT_EQ(second.status, 429) << second.body;
  EXPECT_NE(second.body.find("budget_exceeded"), std::string::npos) << second.body;
  json::object h = health(gw.port());
  EXPECT_EQ(h.at("redis").as_string(), "up");
  EXPECT_EQ(h.at("unavailable_calls").as_int64(), 0);
  EXPECT_NE(tls_redis.cli("--scan --pattern 'switchyard:budget:*'").find("switchyard:budget:"), std::string::npos)
      << "the counter is in the TLS Redis";
  // A node that does not trust Redis's certificate does not talk to it (fail_closed: 503).
  harness::TestCert other = harness::make_cert(dir, "other.example");
  Gateway untrusting(node(other.cert_path));
  Response r;
  for (int i = 0; i < 100; ++i) {
    r = harness::http(untrusting.port(), "POST", "/v1/chat/completions", as(key.secret), chat_body(1));
    if (r.status != 401) break;  // the key, made on the first node, arrives by notification
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_NE(r.body.find("budget_unverifiable"), std::string::npos) << r.body;
  EXPECT_EQ(untrusting.log().find("s3cret-redis"), std::string::npos) << "the password is never logged";
  EXPECT_EQ(gw.log().find("s3cret-redis"), std::string::npos);
}

}  // namespace
