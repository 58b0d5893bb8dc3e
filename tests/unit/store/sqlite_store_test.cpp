// The embedded store, the ledger's writer over it, and the admin API over a governor.
#include "store/sqlite_store.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <filesystem>
#include <thread>

#include "governance/admin_api.hpp"
#include "governance/governor.hpp"
#include "governance/keys.hpp"

namespace {

using namespace switchyard;
using namespace switchyard::governance;
using core::Money;
namespace json = boost::json;

std::string temp_db() {
  static int n = 0;
  std::string dir = std::filesystem::temp_directory_path() / ("switchyard-store-test-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::string path = dir + "/db" + std::to_string(++n) + ".sqlite";
  std::filesystem::remove(path);
  return path;
}

LedgerRow row(std::string id, std::int64_t unix_ms, const char* cost, std::string key = "key_a") {
  LedgerRow r;
  r.id = std::move(id);
  r.request_id = "req_" + r.id;
  r.unix_ms = unix_ms;
  r.key_id = std::move(key);
  r.key_name = "svc";
  r.team = "search";
  r.route = "auto";
  r.model = "gpt-4.1-mini";
  r.deployment = "mini";
  r.status = 200;
  r.usage.known = true;
  r.usage.input = 100;
  r.usage.output = 20;
  r.usage.cache_read = 40;
  r.cost = *Money::parse(cost);
  r.reference_cost = *Money::parse("0.01");
  return r;
}

constexpr std::int64_t kDay = 86'400'000;
constexpr std::int64_t kDec7 = 1'796'601'600'000;  // 2026-12-07T00:00:00Z

TEST(SqliteStore, LedgerRowsAreWrittenOnceWithTheirRollupsAndBudgetSpend) {
  store::SqliteStore s({temp_db()});
  LedgerRow a = row("a", kDec7 + 1000, "0.001");
  a.charges = {{"bud_1", kDec7}};
  LedgerRow b = row("b", kDec7 + 2000, "0.002", "key_b");
  b.charges = {{"bud_1", kDec7}};
  LedgerRow c = row("c", kDec7 + kDay + 5, "0.004");
  s.write_ledger({a, b, c});
  s.write_ledger({a, c});  // a replay: nothing counts twice
  EXPECT_EQ(s.ledger_count(), 3);
  EXPECT_EQ(s.budget_spent("bud_1", kDec7), *Money::parse("0.003"));

  SpendQuery by_key;
  by_key.from_ms = kDec7;
  auto keys = s.spend(by_key);
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0].group, "key_a") << "dearest first";
  EXPECT_EQ(keys[0].requests, 2);
  EXPECT_EQ(keys[0].cost, *Money::parse("0.005"));
  EXPECT_EQ(keys[0].reference_cost, *Money::parse("0.02"));
  EXPECT_EQ(keys[0].usage.input, 200);
  EXPECT_EQ(keys[0].usage.cache_read, 80);
  SpendQuery by_day = by_key;
  by_day.group_by = "day";
  by_day.to_ms = kDec7 + kDay;  // the 7th only
  auto days = s.spend(by_day);
  ASSERT_EQ(days.size(), 1u);
  EXPECT_EQ(days[0].requests, 2);
  EXPECT_EQ(days[0].cost, *Money::parse("0.003"));

  auto rows = s.ledger_rows(0, 0, 10);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].id, "a");
  auto newest = s.ledger_rows(0, 0, 1, true);
  ASSERT_EQ(newest.size(), 1u);
  EXPECT_EQ(newest[0].id, "c");
  EXPECT_EQ(rows[0].cost, *Money::parse("0.001"));
  EXPECT_EQ(rows[0].usage.cache_read, 40);
  EXPECT_EQ(rows[2].id, "c");
}

TEST(SqliteStore, DefinitionsAndTheirAuditSurviveReopening) {
  std::string path = temp_db();
  {
    store::SqliteStore s({path});
    Team t{"search", "Search", "{}", false, 1};
    AuditEntry a;
    a.actor = "ops";
    a.action = "create";
    a.object_type = "team";
    a.object_id = "search";
    a.before_json = "null";
    a.after_json = "{}";
    s.put_team(t, a);
    Key k;
    k.id = "key_1";
    k.name = "svc";
    k.team = "search";
    k.sha256 = std::string(64, 'a');
    k.routes = {"auto"};
    k.models = {"gpt-4.1-mini"};
    s.put_key(k, a);
    Budget b;
    b.id = "bud_1";
    b.scope = Scope::team;
    b.subject = "search";
    b.period = Period::week;
    b.timezone = "+05:30";
    b.utc_offset_minutes = 330;
    b.limit = *Money::parse("12.5");
    b.alert_percents = {50, 80};
    s.put_budget(b, a);
    s.write_ledger({row("x", kDec7, "0.5")});
  }
  store::SqliteStore s({path});
  ASSERT_EQ(s.teams().size(), 1u);
  auto keys = s.keys();
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(keys[0].routes, std::vector<std::string>{"auto"});
  EXPECT_EQ(keys[0].models, std::vector<std::string>{"gpt-4.1-mini"});
  auto budgets = s.budgets();
  ASSERT_EQ(budgets.size(), 1u);
  EXPECT_EQ(budgets[0].limit, *Money::parse("12.5"));
  EXPECT_EQ(budgets[0].utc_offset_minutes, 330);
  EXPECT_EQ(budgets[0].alert_percents, (std::vector<int>{50, 80}));
  EXPECT_EQ(s.audit(0, 10).size(), 3u);
  EXPECT_EQ(s.ledger_count(), 1);
}

/// A store whose ledger writes fail until told otherwise.
class FlakyStore : public store::SqliteStore {
 public:
  using SqliteStore::SqliteStore;
  std::atomic<bool> failing{true};
  std::atomic<int> attempts{0};
  void write_ledger(const std::vector<LedgerRow>& rows) override {
    ++attempts;
    if (failing) throw StoreError("disk full");
    SqliteStore::write_ledger(rows);
  }
};

TEST(Ledger, KeepsRowsThroughAFailingStoreAndCommitsThemInOrder) {
  FlakyStore s({temp_db()});
  std::vector<std::string> errors;
  std::mutex m;
  std::atomic<int> committed{0};
  {
    LedgerOptions async;
    async.durability = LedgerOptions::Durability::async;
    async.async_window_ms = 1;
    Ledger ledger(s, async, [&](const std::string& e) {
      std::lock_guard lock(m);
      errors.push_back(e);
    });
    for (int i = 0; i < 5; ++i)
      ledger.append(row("r" + std::to_string(i), kDec7 + i, "0.001"), [&](bool ok) { committed += ok; });
    while (s.attempts < 2) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    EXPECT_EQ(committed, 0) << "nothing is acknowledged while the store fails";
    s.failing = false;
    ledger.stop();
  }
  EXPECT_EQ(committed, 5);
  EXPECT_EQ(s.ledger_count(), 5);
  std::lock_guard lock(m);
  ASSERT_FALSE(errors.empty());
  EXPECT_NE(errors[0].find("disk full"), std::string::npos);
}

TEST(Ledger, StoppingWithTheStoreStillFailingTellsEveryWaiter) {
  FlakyStore s({temp_db()});
  std::atomic<int> told{0}, committed{0};
  LedgerOptions async;
  async.durability = LedgerOptions::Durability::async;
  Ledger ledger(s, async);
  for (int i = 0; i < 3; ++i)
    ledger.append(row("r" + std::to_string(i), kDec7, "0.001"), [&](bool ok) {
      ++told;
      committed += ok;
    });
  ledger.stop(50);
  EXPECT_EQ(told, 3);
  EXPECT_EQ(committed, 0);
}

std::string temp_spool() {
  std::string dir = temp_db() + ".spool";
  std::filesystem::remove_all(dir);
  return dir;
}

TEST(Ledger, ASpooledRowIsDurableAtOnceAndReplayedAfterACrash) {
  const std::string db = temp_db(), spool = temp_spool();
  LedgerOptions sync;
  sync.spool_dir = spool;
  {
    FlakyStore s({db});  // the store never takes the rows before the "crash"
    Ledger ledger(s, sync);
    std::atomic<int> durable{0};
    for (int i = 0; i < 5; ++i) {
      LedgerRow r = row("s" + std::to_string(i), kDec7 + i, "0.001");
      r.charges = {{"bud_1", kDec7}};
      r.user = "tab\there\nand newline";  // escaped in the spool
      EXPECT_TRUE(ledger.append(r, [&](bool ok) { durable += ok; }));
    }
    EXPECT_EQ(durable, 5) << "sync: durable when append returns";
    ledger.abandon();  // as if killed: nothing reached the store
    EXPECT_EQ(s.ledger_count(), 0);
  }
  {
    store::SqliteStore s({db});
    Ledger ledger(s, sync);  // replays the spool
    EXPECT_EQ(ledger.stats().replayed, 5u);
    EXPECT_EQ(s.ledger_count(), 5);
    EXPECT_EQ(s.budget_spent("bud_1", kDec7), *Money::parse("0.005"));
    auto rows = s.ledger_rows(0, 0, 10);
    ASSERT_EQ(rows.size(), 5u);
    EXPECT_EQ(rows[0].user, "tab\there\nand newline");
    ledger.append(row("s5", kDec7 + 9, "0.001"));
    ledger.stop();
    EXPECT_EQ(s.ledger_count(), 6);
  }
  EXPECT_TRUE(std::filesystem::is_empty(spool)) << "a clean stop leaves nothing to replay";
}

TEST(Ledger, RowsBeyondItsMemoryBoundWaitInTheSpoolAndReachTheStoreAtTheNextStart) {
  const std::string db = temp_db(), spool = temp_spool();
  LedgerOptions sync;
  sync.spool_dir = spool;
  sync.max_queued = 2;
  sync.store_window_ms = 60'000;  // nothing reaches the store before stop()
  {
    store::SqliteStore s({db});
    Ledger ledger(s, sync);
    for (int i = 0; i < 5; ++i) EXPECT_TRUE(ledger.append(row("b" + std::to_string(i), kDec7 + i, "0.001")));
    auto stats = ledger.stats();
    EXPECT_EQ(stats.depth, 2u) << "memory holds at most max_queued rows";
    EXPECT_EQ(stats.spool_only, 3u);
    ledger.stop();
    EXPECT_EQ(s.ledger_count(), 2);
  }
  EXPECT_FALSE(std::filesystem::is_empty(spool)) << "the spool is kept for the rows only it holds";
  store::SqliteStore s({db});
  Ledger ledger(s, sync);
  EXPECT_EQ(ledger.stats().replayed, 5u);
  EXPECT_EQ(s.ledger_count(), 5) << "every row once: the two already there were not counted again";
}

TEST(Ledger, RowsSpooledOnlyReachTheStoreOnceItCatchesUpWithoutARestart) {
  FlakyStore s({temp_db()});
  LedgerOptions o;
  o.spool_dir = temp_spool();
  o.max_queued = 3;
  o.store_window_ms = 1;
  Ledger ledger(s, o);
  for (int i = 0; i < 20; ++i) EXPECT_TRUE(ledger.append(row("c" + std::to_string(i), kDec7 + i, "0.001")));
  EXPECT_EQ(ledger.stats().spool_only, 17u);
  s.failing = false;  // the store is back: the queued rows, then the spooled ones
  for (int i = 0; i < 500 && s.ledger_count() < 20; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(s.ledger_count(), 20);
  EXPECT_GE(ledger.stats().catch_ups, 1u);
  // And the spool is not kept for them any more: new rows flow as usual, their segments go.
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(ledger.append(row("d" + std::to_string(i), kDec7 + 100 + i, "0.001")));
  for (int i = 0; i < 500 && s.ledger_count() < 23; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(s.ledger_count(), 23);
}

TEST(Ledger, AFullSpoolStopsAcceptingUntilTheStoreHasCaughtUp) {
  FlakyStore s({temp_db()});
  LedgerOptions o;
  o.spool_dir = temp_spool();
  o.store_window_ms = 1;
  o.max_spool_bytes = 4096;
  std::vector<std::string> errors;
  std::mutex m;
  Ledger ledger(s, o, [&](const std::string& e) {
    std::lock_guard lock(m);
    errors.push_back(e);
  });
  int appended = 0;
  while (ledger.accepting() && appended < 1000) {
    ASSERT_TRUE(ledger.append(row("f" + std::to_string(appended), kDec7 + appended, "0.001")));
    ++appended;
  }
  EXPECT_FALSE(ledger.accepting()) << "the spool's size is bounded";
  EXPECT_LT(appended, 100);
  EXPECT_GE(ledger.stats().spool_total_bytes, 4096u);
  s.failing = false;
  for (int i = 0; i < 500 && !ledger.accepting(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_TRUE(ledger.accepting()) << "room again once the store has every row";
  EXPECT_EQ(s.ledger_count(), appended);
  std::lock_guard lock(m);
  EXPECT_TRUE(std::any_of(errors.begin(), errors.end(), [](const std::string& e) { return e.find("spool is full") != std::string::npos; }));
}

TEST(Ledger, FsyncTellsEachAppendOnceTheSpoolIsFlushed) {
  store::SqliteStore s({temp_db()});
  LedgerOptions fsync;
  fsync.durability = LedgerOptions::Durability::fsync;
  fsync.spool_dir = temp_spool();
  Ledger ledger(s, fsync);
  std::atomic<int> flushed{0};
  for (int i = 0; i < 4; ++i)
    EXPECT_TRUE(ledger.append(row("f" + std::to_string(i), kDec7 + i, "0.001"), [&](bool ok) { flushed += ok; }));
  for (int i = 0; i < 500 && flushed < 4; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  EXPECT_EQ(flushed, 4) << "every append told, on the ledger's thread, after its flush";
  ledger.stop();
  EXPECT_EQ(s.ledger_count(), 4);
}

TEST(Ledger, ASpoolLineCarriesEveryField) {
  LedgerRow r = row("x\ty", kDec7, "0.25");
  r.user = "a\tb\nc";
  r.error = "upstream_500";
  r.error_kind = "api_error";
  r.usage.cache_creation = 7;
  r.usage.cache_creation_1h = 3;
  r.usage.reasoning = 11;
  r.unpriced = false;
  r.reserved = *Money::parse("1.5");
  r.reference_cost.reset();
  r.latency_ms = 12.345;
  r.ttft_ms = -1;
  r.attempts = 2;
  r.tier = 1;
  r.cancelled = true;
  r.stream = true;
  r.charges = {{"bud_a", 1}, {"bud_b@x", 2}};
  std::string line;
  Ledger::encode(r, line);
  EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1);
  LedgerRow back;
  ASSERT_TRUE(Ledger::decode(line, back));
  EXPECT_EQ(back.id, r.id);
  EXPECT_EQ(back.user, r.user);
  EXPECT_EQ(back.cost, r.cost);
  EXPECT_EQ(back.reserved, r.reserved);
  EXPECT_FALSE(back.reference_cost);
  EXPECT_EQ(back.usage.cache_creation_1h, 3);
  EXPECT_EQ(back.usage.reasoning, 11);
  EXPECT_DOUBLE_EQ(back.latency_ms, 12.345);
  EXPECT_TRUE(back.cancelled && back.stream);
  ASSERT_EQ(back.charges.size(), 2u);
  EXPECT_EQ(back.charges[1].budget_id, "bud_b@x");
  EXPECT_EQ(back.charges[1].period_start_ms, 2);
  EXPECT_FALSE(Ledger::decode(line.substr(0, line.size() / 2), back)) << "a torn line is not a row";
}

TEST(Ledger, GroupCommitPutsConcurrentRowsInFewTransactions) {
  store::SqliteStore s({temp_db()});
  LedgerOptions async;
  async.durability = LedgerOptions::Durability::async;
  async.async_window_ms = 5;
  Ledger ledger(s, async);
  std::atomic<int> done{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i)
        ledger.append(row(std::to_string(t) + "-" + std::to_string(i), kDec7 + i, "0.000001"),
                      [&](bool ok) { done += ok; });
    });
  for (auto& th : threads) th.join();
  ledger.stop();
  EXPECT_EQ(done, 2000);
  EXPECT_EQ(s.ledger_count(), 2000);
  auto stats = ledger.stats();
  EXPECT_EQ(stats.committed, 2000u);
  EXPECT_LT(stats.batches, 2000u) << "rows queued during a commit share the next one";
}

// ---- the admin API over a governor

struct Admin : ::testing::Test {
  static LedgerOptions async() {
    LedgerOptions o;
    o.durability = LedgerOptions::Durability::async;
    return o;
  }
  Admin() : governor(std::make_unique<store::SqliteStore>(store::SqliteOptions{temp_db()}), async()) {
    ctx.routes = {"auto", "cheap"};
    ctx.deployments = {"mini"};
    static_key.name = "static";
    ctx.static_keys = {&static_key};
  }
  json::value call(const std::string& method, const std::string& path, const std::string& body = "",
                   int expect = 200) {
    AdminRequest r;
    r.method = method;
    auto q = path.find('?');
    r.path = std::string_view(path).substr(0, q);
    if (q != std::string::npos) r.query = std::string_view(path).substr(q + 1);
    r.body = body;
    r.actor = "ops";
    last = handle_admin(governor, ctx, r);
    EXPECT_EQ(last.status, expect) << method << " " << path << " " << body << " -> " << last.body;
    return last.content_type == "application/json" ? json::parse(last.body) : json::value();
  }
  std::string code(const json::value& v) { return std::string(v.at("error").at("code").as_string()); }
  Governor governor;
  AdminContext ctx;
  config::KeyConfig static_key;
  AdminResponse last;
};

TEST_F(Admin, ATeamAKeyABudgetAndALimitAreMadeFoundAndAudited) {
  call("POST", "/admin/v1/teams", R"({"id":"search","name":"Search","metadata":{"cost_center":"42"}})", 201);
  json::value key = call("POST", "/admin/v1/keys", R"({"name":"svc","team":"search","routes":["auto"]})", 201);
  const std::string secret(key.at("secret").as_string());
  const std::string id(key.at("id").as_string());
  EXPECT_EQ(secret.substr(0, 6), "sk-sy-");
  EXPECT_EQ(key.at("prefix").as_string(), secret.substr(0, 10));
  // Only the hash is kept: the key is found by its secret, never listed with it.
  const config::KeyConfig* found = governor.directory()->find_hash(sha256_hex(secret));
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(found->id, id);
  EXPECT_EQ(found->team, "search");
  EXPECT_EQ(call("GET", "/admin/v1/keys/" + id).as_object().count("secret"), 0u);

  json::value budget = call("POST", "/admin/v1/budgets",
                            R"({"scope":"team","subject":"search","period":"month","limit_usd":"100.50","alerts":[80,50]})",
                            201);
  EXPECT_EQ(budget.at("limit_usd").as_string(), "100.5");
  EXPECT_EQ(budget.at("spent_usd").as_string(), "0");
  EXPECT_EQ(budget.at("alerts").as_array().size(), 2u);
  call("POST", "/admin/v1/limits", R"({"scope":"key","subject":")" + id + R"(","rpm":60,"tpm":100000})", 201);
  call("POST", "/admin/v1/budgets", R"({"scope":"key","subject":"static","limit_usd":5})", 201);
  json::value some = call("POST", "/admin/v1/keys", R"({"name":"narrow","overrides":["policy","max_cost_usd"]})", 201);
  EXPECT_EQ(some.at("overrides"), (json::array{"policy", "max_cost_usd"}));
  EXPECT_EQ(governor.directory()->find_hash(sha256_hex(std::string(some.at("secret").as_string())))->overrides,
            config::kOverridePolicy | config::kOverrideMaxCost);

  // Rotation: a new secret for the same key; the old one is found no more.
  json::value rotated = call("POST", "/admin/v1/keys/" + id + "/rotate");
  EXPECT_NE(rotated.at("secret").as_string(), secret);
  EXPECT_EQ(governor.directory()->find_hash(sha256_hex(secret)), nullptr);
  call("POST", "/admin/v1/keys/" + id + "/disable");
  EXPECT_TRUE(governor.directory()->find_hash(sha256_hex(std::string(rotated.at("secret").as_string())))->disabled);

  json::array audit = call("GET", "/admin/v1/audit").at("data").as_array();
  ASSERT_EQ(audit.size(), 8u);
  EXPECT_EQ(audit[0].at("actor").as_string(), "ops");
  EXPECT_EQ(audit[0].at("object_type").as_string(), "team");
  EXPECT_TRUE(audit[0].at("before").is_null());
  EXPECT_EQ(audit[6].at("action").as_string(), "rotate");
  EXPECT_NE(audit[6].at("before").at("prefix"), audit[6].at("after").at("prefix"));
  EXPECT_EQ(audit[7].at("after").at("disabled").as_bool(), true);
  EXPECT_EQ(audit[7].at("before").at("disabled").as_bool(), false);
  for (const auto& a : audit) EXPECT_EQ(json::serialize(a).find(secret), std::string::npos) << "no secret in the audit";
}

TEST_F(Admin, BadInputIsRefusedClearlyAndWritesNothing) {
  call("POST", "/admin/v1/teams", R"({"id":"search"})", 201);
  EXPECT_EQ(code(call("POST", "/admin/v1/teams", R"({"id":"search")", 400)), "invalid_json");
  EXPECT_EQ(code(call("POST", "/admin/v1/teams", R"([1])", 400)), "invalid_json");
  EXPECT_EQ(code(call("POST", "/admin/v1/teams", R"({"id":"search"})", 409)), "team_exists");
  EXPECT_EQ(code(call("POST", "/admin/v1/teams", R"({"id":"a b"})", 400)), "invalid_value");
  EXPECT_EQ(code(call("POST", "/admin/v1/keys", R"({"name":"x","tem":"search"})", 400)), "unknown_field");
  EXPECT_EQ(last.body.find("'tem'") != std::string::npos, true);
  EXPECT_EQ(code(call("POST", "/admin/v1/keys", R"({"name":"x","team":"nope"})", 404)), "team_not_found");
  EXPECT_EQ(code(call("POST", "/admin/v1/keys", R"({"name":"x","routes":["nope"]})", 404)), "route_not_found");
  EXPECT_EQ(code(call("POST", "/admin/v1/keys", R"({"name":"x","policy":"fastest"})", 400)), "invalid_value");
  EXPECT_EQ(code(call("POST", "/admin/v1/keys", R"({"name":"x","expires_at":"tomorrow"})", 400)), "invalid_value");
  EXPECT_EQ(code(call("POST", "/admin/v1/keys", R"({"name":"x","overrides":["speed"]})", 400)), "invalid_value");
  EXPECT_EQ(code(call("POST", "/admin/v1/budgets", R"({"scope":"team","subject":"nope","limit_usd":"1"})", 404)),
            "team_not_found");
  EXPECT_EQ(code(call("POST", "/admin/v1/budgets", R"({"scope":"team","subject":"search","limit_usd":"-1"})", 400)),
            "invalid_value");
  EXPECT_EQ(code(call("POST", "/admin/v1/budgets", R"({"scope":"team","subject":"search","limit_usd":"1e30"})", 400)),
            "invalid_value");
  EXPECT_EQ(code(call("POST", "/admin/v1/budgets", R"({"scope":"team","subject":"search","limit_usd":1e30})", 400)),
            "invalid_value");
  EXPECT_EQ(code(call("POST", "/admin/v1/budgets",
                      R"({"scope":"team","subject":"search","limit_usd":"1","period":"year"})", 400)),
            "invalid_value");
  EXPECT_EQ(code(call("POST", "/admin/v1/budgets",
                      R"({"scope":"team","subject":"search","limit_usd":"1","timezone":"Mars/Olympus"})", 400)),
            "invalid_value");
  EXPECT_EQ(code(call("POST", "/admin/v1/budgets", R"({"scope":"planet","subject":"x","limit_usd":"1"})", 400)),
            "invalid_value");
  EXPECT_EQ(code(call("POST", "/admin/v1/budgets", R"({"scope":"team","subject":"search"})", 400)), "missing_field");
  EXPECT_EQ(code(call("POST", "/admin/v1/limits", R"({"scope":"key","subject":"static","rpm":-5})", 400)),
            "invalid_value");
  EXPECT_EQ(code(call("POST", "/admin/v1/limits", R"({"scope":"key","subject":"static"})", 400)), "missing_field");
  EXPECT_EQ(code(call("POST", "/admin/v1/limits", R"({"scope":"route","subject":"nope","rpm":5})", 404)),
            "route_not_found");
  EXPECT_EQ(code(call("GET", "/admin/v1/keys/key_nope", "", 404)), "key_not_found");
  EXPECT_EQ(code(call("DELETE", "/admin/v1/teams/search", "", 405)), "method_not_allowed");
  EXPECT_EQ(code(call("GET", "/admin/v1/nothing", "", 404)), "unknown_url");
  EXPECT_EQ(code(call("GET", "/admin/v1/spend?group_by=planet", "", 400)), "invalid_value");
  // Nothing half-written: only the first team and its audit entry exist.
  EXPECT_EQ(governor.store().keys().size(), 0u);
  EXPECT_EQ(governor.store().budgets().size(), 0u);
  EXPECT_EQ(governor.store().limits().size(), 0u);
  EXPECT_EQ(governor.store().audit(0, 100).size(), 1u);
}

TEST_F(Admin, SpendReportsGroupTotalAndExportCsv) {
  governor.store().write_ledger({row("a", kDec7 + 10, "0.001"), row("b", kDec7 + 20, "0.002", "key_b"),
                                 row("c", kDec7 + kDay, "0.004")});
  json::value report = call("GET", "/admin/v1/spend?group_by=key&from=2026-12-07&to=2026-12-09");
  json::array data = report.at("data").as_array();
  ASSERT_EQ(data.size(), 2u);
  EXPECT_EQ(data[0].at("key").as_string(), "key_a");
  EXPECT_EQ(data[0].at("cost_usd").as_string(), "0.005");
  EXPECT_EQ(data[0].at("savings_usd").as_string(), "0.015");
  EXPECT_EQ(report.at("total").at("requests").as_int64(), 3);
  EXPECT_EQ(report.at("total").at("cost_usd").as_string(), "0.007");
  json::array days = call("GET", "/admin/v1/spend?group_by=day&from=2026-12-07").at("data").as_array();
  ASSERT_EQ(days.size(), 2u);
  EXPECT_EQ(days[0].at("day").as_string(), "2026-12-07");
  EXPECT_EQ(days[1].at("day").as_string(), "2026-12-08");
  call("GET", "/admin/v1/spend?group_by=team&from=2026-12-07&format=csv");
  EXPECT_EQ(last.content_type, "text/csv; charset=utf-8");
  EXPECT_EQ(last.body,
            "team,name,requests,errors,unpriced,input_tokens,output_tokens,cache_read_tokens,cache_write_tokens,"
            "reasoning_tokens,cost_usd,reference_cost_usd,savings_usd\n"
            "search,,3,0,0,300,60,120,0,0,0.007,0.03,0.023\n");
}

TEST(AdminTime, Rfc3339BothWays) {
  EXPECT_EQ(rfc3339(kDec7 + 123), "2026-12-07T00:00:00.123Z");
  EXPECT_EQ(parse_time("2026-12-07"), kDec7);
  EXPECT_EQ(parse_time("2026-12-07T05:30:00+05:30"), kDec7);
  EXPECT_EQ(parse_time("2026-12-07T00:00:01.5Z"), kDec7 + 1500);
  EXPECT_EQ(parse_time("1796601600000"), kDec7);
  EXPECT_FALSE(parse_time("2026-02-30"));
  EXPECT_FALSE(parse_time("yesterday"));
}

}  // namespace
