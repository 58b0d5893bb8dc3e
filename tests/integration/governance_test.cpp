// Governance through the real binary and the fake provider: budgets under concurrency, no
// reservation left behind by any failure, rate limits under a burst, the ledger across kill -9,
// and the admin API's authorisation.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <boost/json.hpp>
#include <mutex>
#include <set>
#include <thread>

#include "governance_client.hpp"
#include "harness.hpp"

using namespace std::chrono_literals;
using harness::Connection;
using harness::Fake;
using harness::Gateway;
using harness::Response;
namespace json = boost::json;

namespace {

const std::string kAdmin = "sk-admin-secret-governance";
const std::string kStatic = "sk-static-governance";

/// A route `solo` over one fake deployment whose model costs $1000 per 1M output tokens (a
/// tenth of a cent a token; prompts are free), so that reservations and costs are easy to read.
std::string config(int fake_port, const std::string& db, const std::string& extra = "") {
  return "server:\n  host: 127.0.0.1\n  port: 0\n  threads: 2\n  access_log: off\n"
         "upstream:\n  connect_timeout_ms: 1000\n  first_byte_timeout_ms: 700\n"
         "health:\n  circuit_breaking: false\n"
         "models:\n  - id: metered\n    vendor: test\n    hosts: [openai]\n"
         "    price: {input: 0, output: 1000}\n    context_window: 100000\n    max_output: 4000\n"
         "providers:\n  fake:\n    base_url: http://127.0.0.1:" +
         std::to_string(fake_port) +
         "/v1\n    api_key: sk-up\n"
         "deployments:\n  metered:\n    provider: fake\n    model: metered\n"
         "routes:\n  solo:\n    candidates: [metered]\n"
         "keys:\n  - name: static\n    sha256: " +
         harness::sha256_hex(kStatic) +
         "\n"
         "governance:\n  sqlite_path: " +
         db + "\n" + extra + "  admin_keys:\n    - name: ops\n      sha256: " + harness::sha256_hex(kAdmin) + "\n";
}

const harness::AdminClient admin(kAdmin);
using harness::usd_nanos;

std::map<std::string, std::string> as(const std::string& secret) { return harness::bearer(secret); }

std::string chat_body(int max_tokens, bool stream = false) {
  return R"({"model":"solo","messages":[{"role":"user","content":"count my money"}],"max_tokens":)" +
         std::to_string(max_tokens) + (stream ? R"(,"stream":true)" : "") + "}";
}

struct Made {
  std::string key_id, secret;
};

Made make_key(int port, const std::string& team = "") {
  if (!team.empty()) admin(port, "POST", "/admin/v1/teams", R"({"id":")" + team + R"("})", 201);
  json::value k = admin(port, "POST", "/admin/v1/keys",
                        R"({"name":"svc")" + (team.empty() ? std::string() : R"(,"team":")" + team + "\"") + "}", 201);
  return {std::string(k.at("id").as_string()), std::string(k.at("secret").as_string())};
}

std::string make_budget(int port, const std::string& scope, const std::string& subject, const std::string& usd) {
  json::value b = admin(port, "POST", "/admin/v1/budgets",
                        R"({"scope":")" + scope + R"(","subject":")" + subject + R"(","period":"day","limit_usd":")" +
                            usd + R"("})",
                        201);
  return std::string(b.at("id").as_string());
}

json::object budget_state(int port, const std::string& id) {
  return admin(port, "GET", "/admin/v1/budgets/" + id).as_object();
}

/// Waits (bounded) until every reservation on the budget has been settled.
std::string reserved_after_settling(int port, const std::string& id) {
  std::string reserved;
  for (int i = 0; i < 100; ++i) {
    reserved = std::string(budget_state(port, id).at("reserved_usd").as_string());
    if (reserved == "0") break;
    std::this_thread::sleep_for(20ms);
  }
  return reserved;
}

/// Waits (bounded) until every row appended to the ledger is in its store: rows are durable in
/// the spool at once and reach the store within its window.
void wait_ledger_committed(int port) { admin.wait_ledger_committed(port); }

std::vector<json::object> ledger(int port) {
  admin.wait_ledger_committed(port);
  return admin.ledger_rows(port);
}

std::int64_t nanos(const json::value& usd) { return usd_nanos(usd); }

TEST(Governance, TwoHundredConcurrentMaximumsNeverOverspendABudget) {
  // Every answer bills ~14 output tokens of the 16 allowed: reservations ($0.016) are close to
  // what is billed, so an admission that ignored in-flight requests would overspend at once.
  Fake fake(R"({"content":"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789","latency_ms":30})");
  Gateway gw(config(fake.port(), harness::temp_dir() + "/g.db"));
  Made key = make_key(gw.port(), "search");
  const std::string budget = make_budget(gw.port(), "team", "search", "0.2");

  std::atomic<int> ok{0}, refused{0}, other{0};
  std::mutex m;
  std::set<std::string> refusal_codes;
  std::string a_refusal;
  std::vector<std::thread> clients;
  for (int i = 0; i < 200; ++i)
    clients.emplace_back([&] {
      Response r = harness::http(gw.port(), "POST", "/v1/chat/completions", as(key.secret), chat_body(16));
      if (r.status == 200) {
        ++ok;
      } else if (r.status == 429) {
        ++refused;
        std::lock_guard lock(m);
        refusal_codes.insert(std::string(json::parse(r.body).at("error").at("code").as_string()));
        if (a_refusal.empty()) a_refusal = r.body + " x-should-retry=" + r.header("x-should-retry");
      } else {
        ++other;
      }
    });
  for (auto& t : clients) t.join();
  EXPECT_EQ(other, 0);
  EXPECT_GT(ok, 10);
  EXPECT_GT(refused, 0);
  EXPECT_EQ(refusal_codes, std::set<std::string>{"budget_exceeded"});
  EXPECT_NE(a_refusal.find(budget), std::string::npos) << "the refusal names the budget: " << a_refusal;
  EXPECT_NE(a_refusal.find("resets at"), std::string::npos) << a_refusal;
  EXPECT_NE(a_refusal.find("x-should-retry=false"), std::string::npos) << a_refusal;

  json::object state = budget_state(gw.port(), budget);
  EXPECT_EQ(state.at("reserved_usd").as_string(), "0");
  const std::int64_t spent = nanos(state.at("spent_usd"));
  EXPECT_LE(spent, 200'000'000) << "spend never exceeds the hard budget";
  // The spend is exactly what the ledger holds of the answers: nothing lost, nothing counted twice.
  std::int64_t ledger_cost = 0;
  int answered = 0, refusals = 0;
  for (const auto& row : ledger(gw.port())) {
    if (!row.at("cost_usd").is_null()) ledger_cost += nanos(row.at("cost_usd"));
    answered += row.at("status").as_int64() == 200;
    refusals += row.at("status").as_int64() == 429;
  }
  EXPECT_EQ(ledger_cost, spent);
  EXPECT_EQ(answered, ok.load());
  EXPECT_EQ(refusals, refused.load());
  EXPECT_EQ(admin(gw.port(), "GET", "/admin/v1/status").at("budget_overruns").as_int64(), 0);
}

TEST(Governance, NoReservationIsLeftBehindByAnyFailure) {
  Fake fake(R"({"content":"settled","latency_ms":5})");
  Gateway gw(config(fake.port(), harness::temp_dir() + "/g.db"));
  Made key = make_key(gw.port());
  const std::string budget = make_budget(gw.port(), "key", key.key_id, "10");
  auto post = [&](const std::string& body) {
    return harness::http(gw.port(), "POST", "/v1/chat/completions", as(key.secret), body);
  };
  fake.script(R"({"status":500})");
  EXPECT_EQ(post(chat_body(100)).status, 500);
  fake.script(R"({"reset":true})", 2);  // a reset pooled connection is retried once on a fresh one
  EXPECT_EQ(post(chat_body(100)).status, 502);
  fake.reset();  // the second reset, when the first was on a fresh connection
  fake.script(R"({"latency_ms":2000})");
  EXPECT_EQ(post(chat_body(100)).status, 504);
  // A client that leaves mid-stream.
  fake.script(R"({"chunks":20,"chunk_delay_ms":100,"content":"a long and slow answer that the client will not wait for"})");
  {
    Connection c(gw.port());
    c.send_raw(harness::request("POST", "/v1/chat/completions", as(key.secret), chat_body(100, true)));
    Response head = c.read_head();
    EXPECT_EQ(head.status, 200);
    EXPECT_FALSE(c.read_some(2s).empty());
    c.close();
  }
  // Refused by a rate limit (before any reservation), then one that succeeds.
  json::value lim = admin(gw.port(), "POST", "/admin/v1/limits",
                          R"({"scope":"key","subject":")" + key.key_id + R"(","rpm":2})", 201);
  int limited = 0;
  for (int i = 0; i < 4; ++i) limited += post(chat_body(100)).status == 429;
  EXPECT_EQ(limited, 2);
  EXPECT_EQ(reserved_after_settling(gw.port(), budget), "0");
  json::object state = budget_state(gw.port(), budget);
  std::int64_t ledger_cost = 0;
  std::set<std::int64_t> statuses;
  for (const auto& row : ledger(gw.port())) {
    if (!row.at("cost_usd").is_null()) ledger_cost += nanos(row.at("cost_usd"));
    statuses.insert(row.at("status").as_int64());
  }
  EXPECT_EQ(nanos(state.at("spent_usd")), ledger_cost);
  EXPECT_TRUE(statuses.count(500) && statuses.count(502) && statuses.count(504) && statuses.count(429))
      << "every failure is in the ledger";
}

TEST(Governance, ARateLimitHoldsUnderABurst) {
  Fake fake(R"({"content":"fast"})");
  Gateway gw(config(fake.port(), harness::temp_dir() + "/g.db"));
  Made key = make_key(gw.port());
  admin(gw.port(), "POST", "/admin/v1/limits", R"({"scope":"key","subject":")" + key.key_id + R"(","rpm":30})", 201);
  std::atomic<int> ok{0}, limited{0};
  std::mutex m;
  std::string a_refusal;
  const auto started = std::chrono::steady_clock::now();
  std::vector<std::thread> clients;
  for (int i = 0; i < 100; ++i)
    clients.emplace_back([&] {
      Response r = harness::http(gw.port(), "POST", "/v1/chat/completions", as(key.secret), chat_body(10));
      if (r.status == 200) ++ok;
      if (r.status == 429) {
        ++limited;
        std::lock_guard lock(m);
        if (a_refusal.empty())
          a_refusal = r.header("x-ratelimit-limit-requests") + "|" + r.header("x-ratelimit-remaining-requests") +
                      "|" + r.header("retry-after") + "|" + std::string(json::parse(r.body).at("error").at("code").as_string());
      }
    });
  for (auto& t : clients) t.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  // GCRA: a burst of 30, then one every 2 s; the tolerance is what refilled while the burst ran.
  EXPECT_GE(ok, 30);
  EXPECT_LE(ok, 30 + static_cast<int>(seconds / 2) + 1);
  EXPECT_EQ(ok + limited, 100);
  EXPECT_EQ(a_refusal.substr(0, 5), "30|0|") << a_refusal;
  EXPECT_NE(a_refusal.find("|rate_limit_exceeded"), std::string::npos) << a_refusal;
}

TEST(Governance, EveryResponseAClientSawCompleteIsInTheLedgerAfterKill9) {
  Fake fake(R"({"content":"durable","latency_ms":2})");
  const std::string db = harness::temp_dir() + "/g.db";
  const std::string yaml = config(fake.port(), db);
  std::set<std::string> completed;
  std::mutex m;
  {
    Gateway gw(yaml);
    std::atomic<bool> stop{false};
    std::vector<std::thread> clients;
    for (int t = 0; t < 8; ++t)
      clients.emplace_back([&, t] {
        for (int i = 0; !stop; ++i) {
          std::string id = "kill-" + std::to_string(t) + "-" + std::to_string(i);
          auto headers = as(kStatic);
          headers["x-request-id"] = id;
          Response r = harness::http(gw.port(), "POST", "/v1/chat/completions", headers, chat_body(10, i % 2 == 1));
          // Complete: the whole response arrived, to a stream's terminating chunk (what an SDK
          // waits for: a stream cut after its [DONE] event is an error to it).
          if (r.status == 200 && !r.closed) {
            std::lock_guard lock(m);
            completed.insert(id);
          }
        }
      });
    std::this_thread::sleep_for(1500ms);
    gw.process().signal(SIGKILL);
    stop = true;
    for (auto& th : clients) th.join();
  }
  ASSERT_GT(completed.size(), 50u);
  Gateway again(yaml);
  std::map<std::string, int> seen;
  for (const auto& row : ledger(again.port())) ++seen[std::string(row.at("request_id").as_string())];
  int missing = 0, twice = 0;
  for (const auto& id : completed) {
    missing += seen[id] == 0;
    twice += seen[id] > 1;
  }
  EXPECT_EQ(missing, 0) << "of " << completed.size() << " completed responses";
  EXPECT_EQ(twice, 0);
}

TEST(Governance, TheAdminApiTakesOnlyItsOwnCredential) {
  Fake fake(R"({"content":"hi"})");
  Gateway gw(config(fake.port(), harness::temp_dir() + "/g.db"));
  Made key = make_key(gw.port());
  Response r = harness::http(gw.port(), "GET", "/admin/v1/keys", as(key.secret));
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_NE(r.body.find("admin_only"), std::string::npos);
  r = harness::http(gw.port(), "GET", "/admin/v1/keys", as(kStatic));
  EXPECT_EQ(r.status, 403);
  r = harness::http(gw.port(), "GET", "/admin/v1/keys", {});
  EXPECT_EQ(r.status, 401);
  r = harness::http(gw.port(), "GET", "/admin/v1/keys", as("sk-wrong"));
  EXPECT_EQ(r.status, 401);
  // The admin credential is not a client key.
  r = harness::http(gw.port(), "POST", "/v1/chat/completions", as(kAdmin), chat_body(5));
  EXPECT_EQ(r.status, 401);
  r = harness::http(gw.port(), "POST", "/v1/messages", {{"x-api-key", kAdmin}, {"anthropic-version", "2023-06-01"}},
                    chat_body(5));
  EXPECT_EQ(r.status, 401);
  EXPECT_NE(r.body.find("\"authentication_error\""), std::string::npos) << "Anthropic's shape: " << r.body;
  // A key made through the API serves, then is disabled, rotated: every change audited.
  EXPECT_EQ(harness::http(gw.port(), "POST", "/v1/chat/completions", as(key.secret), chat_body(5)).status, 200);
  admin(gw.port(), "POST", "/admin/v1/keys/" + key.key_id + "/disable");
  r = harness::http(gw.port(), "POST", "/v1/chat/completions", as(key.secret), chat_body(5));
  EXPECT_EQ(r.status, 401);
  EXPECT_NE(r.body.find("disabled"), std::string::npos) << r.body;
  admin(gw.port(), "POST", "/admin/v1/keys/" + key.key_id + "/enable");
  json::value rotated = admin(gw.port(), "POST", "/admin/v1/keys/" + key.key_id + "/rotate");
  EXPECT_EQ(harness::http(gw.port(), "POST", "/v1/chat/completions", as(key.secret), chat_body(5)).status, 401);
  EXPECT_EQ(harness::http(gw.port(), "POST", "/v1/chat/completions",
                          as(std::string(rotated.at("secret").as_string())), chat_body(5))
                .status,
            200);
  std::vector<std::string> actions;
  const json::value audit = admin(gw.port(), "GET", "/admin/v1/audit");
  for (const auto& a : audit.at("data").as_array())
    actions.push_back(std::string(a.at("action").as_string()) + " " + std::string(a.at("object_type").as_string()));
  EXPECT_EQ(actions, (std::vector<std::string>{"create key", "disable key", "enable key", "rotate key"}));
  EXPECT_EQ(gw.log().find(std::string(rotated.at("secret").as_string())), std::string::npos) << "secrets are never logged";
}

}  // namespace

namespace {

TEST(Governance, TheAdminCommandLineDrivesTheApi) {
  Fake fake(R"({"content":"hi"})");
  Gateway gw(config(fake.port(), harness::temp_dir() + "/g.db"));
  const std::string url = "http://127.0.0.1:" + std::to_string(gw.port());
  auto run = [&](std::vector<std::string> args) {
    std::vector<std::string> argv{SWITCHYARD_BIN, "admin", "--url", url};
    argv.insert(argv.end(), args.begin(), args.end());
    harness::Process p(argv, {{"SWITCHYARD_ADMIN_KEY", kAdmin}});
    auto status = p.wait(10s);
    return std::make_pair(status.value_or(-1), p.output());
  };
  auto [rc, out] = run({"teams", "create", "--id", "search"});
  EXPECT_EQ(rc, 0) << out;
  std::tie(rc, out) = run({"--json", "keys", "create", "--name", "svc", "--team", "search", "--routes", "solo"});
  ASSERT_EQ(rc, 0) << out;
  json::value key = json::parse(out);
  EXPECT_EQ(key.at("team").as_string(), "search");
  EXPECT_EQ(key.at("routes"), json::array{"solo"});
  const std::string secret(key.at("secret").as_string());
  std::tie(rc, out) = run({"budgets", "create", "--scope", "team", "--subject", "search", "--limit", "5", "--alerts",
                           "50,80", "--period", "week"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("[50,80]"), std::string::npos) << out;
  EXPECT_EQ(harness::http(gw.port(), "POST", "/v1/chat/completions", as(secret), chat_body(5)).status, 200);
  wait_ledger_committed(gw.port());
  std::tie(rc, out) = run({"spend", "--group-by", "team", "--csv"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out.substr(0, 5), "team,");
  EXPECT_NE(out.find("\nsearch,,1,0,0,"), std::string::npos) << out;
  std::tie(rc, out) = run({"budgets", "create", "--scope", "team", "--subject", "nope", "--limit", "1"});
  EXPECT_EQ(rc, 1);
  EXPECT_NE(out.find("error 404 (team_not_found)"), std::string::npos) << out;
  harness::Process no_key({SWITCHYARD_BIN, "admin", "--url", url, "status"});
  EXPECT_EQ(no_key.wait(10s), 2);
}

}  // namespace

namespace {

TEST(Governance, ADeploymentsOwnQuotaSendsTrafficToItsSiblingsBeforeTheProviderRefuses) {
  Fake fake(R"({"content":"hi"})");
  const std::string yaml =
      "server:\n  host: 127.0.0.1\n  port: 0\n  threads: 1\n  access_log: off\n"
      "providers:\n  fake:\n    base_url: http://127.0.0.1:" + std::to_string(fake.port()) + "/v1\n    api_key: sk-up\n"
      "deployments:\n  primary:\n    provider: fake\n    model: m1\n    rpm: 2\n"
      "  secondary:\n    provider: fake\n    model: m2\n"
      "routes:\n  solo:\n    candidates: [primary, secondary]\n  alone:\n    candidates: [primary]\n"
      "keys:\n  - name: static\n    sha256: " + harness::sha256_hex(kStatic) + "\n";
  Gateway gw(yaml);
  std::vector<std::string> served;
  for (int i = 0; i < 4; ++i) {
    Response r = harness::http(gw.port(), "POST", "/v1/chat/completions", as(kStatic), chat_body(5));
    ASSERT_EQ(r.status, 200) << r.body;
    served.push_back(r.header("x-switchyard-deployment"));
  }
  EXPECT_EQ(served, (std::vector<std::string>{"primary", "primary", "secondary", "secondary"}));
  // Out of quota with no sibling: still tried (the provider may serve), never refused here.
  Response r = harness::http(gw.port(), "POST", "/v1/chat/completions", as(kStatic),
                             R"({"model":"alone","messages":[{"role":"user","content":"x"}],"max_tokens":5})");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("x-switchyard-deployment"), "primary");
}

}  // namespace

namespace {

TEST(Governance, ASoftLimitCrossedPostsItsWebhookOnce) {
  Fake fake(R"({"content":"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789"})");
  Gateway gw(config(fake.port(), harness::temp_dir() + "/g.db"));
  Made key = make_key(gw.port());
  // Each answer bills ~14 output tokens at $0.001: the 50 % alert of $0.02 comes with the first.
  admin(gw.port(), "POST", "/admin/v1/budgets",
        R"({"scope":"key","subject":")" + key.key_id + R"(","limit_usd":"0.02","alerts":[50],"hard":false,)"
        R"("webhook":"http://127.0.0.1:)" + std::to_string(fake.port()) + R"(/_fake/webhook"})",
        201);
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(harness::http(gw.port(), "POST", "/v1/chat/completions", as(key.secret), chat_body(16)).status, 200)
        << "a soft budget never refuses";
  std::vector<json::object> hooks;
  for (int i = 0; i < 100 && hooks.size() < 2; ++i) {
    hooks.clear();
    const json::value recorded = json::parse(fake.requests_json());
    for (const auto& r : recorded.as_array())
      if (r.at("path").as_string() == "/_fake/webhook")
        hooks.push_back(json::parse(std::string(r.at("body").as_string())).as_object());
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_EQ(hooks.size(), 2u) << "50 %, then 100 %, each once";
  EXPECT_EQ(hooks[0].at("type").as_string(), "budget_alert");
  EXPECT_EQ(hooks[0].at("percent").as_int64(), 50);
  EXPECT_EQ(hooks[0].at("budget").at("subject").as_string(), key.key_id);
  EXPECT_NE(std::string(hooks[0].at("text").as_string()).find("50% of $0.02"), std::string::npos);
  EXPECT_EQ(hooks[1].at("percent").as_int64(), 100);
  EXPECT_NE(gw.log().find("budget "), std::string::npos) << "alerts are logged too";
}

}  // namespace

namespace {

TEST(Governance, WithFsyncDurabilityAnswersWaitForTheSpoolsFlush) {
  Fake fake(R"({"content":"flushed"})");
  const std::string db = harness::temp_dir() + "/g.db";
  Gateway gw(config(fake.port(), db, "  durability: fsync\n"));
  for (int i = 0; i < 3; ++i) {
    auto headers = as(kStatic);
    headers["x-request-id"] = "fsync-" + std::to_string(i);
    Response r = harness::http(gw.port(), "POST", "/v1/chat/completions", headers, chat_body(5, i == 1));
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_FALSE(r.closed) << "the whole answer arrived";
    EXPECT_NE(r.body.find("flushed"), std::string::npos) << r.body;
  }
  json::value status = admin(gw.port(), "GET", "/admin/v1/status");
  EXPECT_EQ(status.at("ledger").at("durability").as_string(), "fsync");
  std::set<std::string> ids;
  for (const auto& row : ledger(gw.port())) ids.insert(std::string(row.at("request_id").as_string()));
  EXPECT_EQ(ids, (std::set<std::string>{"fsync-0", "fsync-1", "fsync-2"}));
}

}  // namespace

namespace {

TEST(Governance, DisablingATeamRefusesItsStaticKeysToo) {
  Fake fake(R"({"content":"hi"})");
  std::string yaml = config(fake.port(), harness::temp_dir() + "/g.db");
  const std::string static_key = "keys:\n  - name: static\n";
  ASSERT_NE(yaml.find(static_key), std::string::npos);
  yaml.replace(yaml.find(static_key), static_key.size(), static_key + "    team: ops\n");
  Gateway gw(yaml);
  admin(gw.port(), "POST", "/admin/v1/teams", R"({"id":"ops"})", 201);
  EXPECT_EQ(harness::http(gw.port(), "POST", "/v1/chat/completions", as(kStatic), chat_body(5)).status, 200);
  admin(gw.port(), "PATCH", "/admin/v1/teams/ops", R"({"disabled":true})");
  Response r = harness::http(gw.port(), "POST", "/v1/chat/completions", as(kStatic), chat_body(5));
  EXPECT_EQ(r.status, 401);
  EXPECT_NE(r.body.find("team has been disabled"), std::string::npos) << r.body;
  admin(gw.port(), "PATCH", "/admin/v1/teams/ops", R"({"disabled":false})");
  EXPECT_EQ(harness::http(gw.port(), "POST", "/v1/chat/completions", as(kStatic), chat_body(5)).status, 200);
}

}  // namespace

namespace {

TEST(Governance, WithAsyncDurabilityAKill9LosesOnlyTheLastWindow) {
  // async_window_ms 100: a response completed more than a second before the kill is in the
  // ledger (the window, one commit, and room for a slow machine); only the last moments may be
  // lost. A ledger that never committed, or lost older rows, fails this.
  Fake fake(R"({"content":"soon","latency_ms":2})");
  const std::string db = harness::temp_dir() + "/g.db";
  const std::string yaml = config(fake.port(), db, "  durability: async\n  async_window_ms: 100\n");
  std::vector<std::pair<std::string, std::chrono::steady_clock::time_point>> completed;
  std::mutex m;
  std::chrono::steady_clock::time_point killed;
  {
    Gateway gw(yaml);
    std::atomic<bool> stop{false};
    std::vector<std::thread> clients;
    for (int t = 0; t < 4; ++t)
      clients.emplace_back([&, t] {
        for (int i = 0; !stop; ++i) {
          std::string id = "async-" + std::to_string(t) + "-" + std::to_string(i);
          auto headers = as(kStatic);
          headers["x-request-id"] = id;
          Response r = harness::http(gw.port(), "POST", "/v1/chat/completions", headers, chat_body(10));
          if (r.status == 200 && !r.closed) {
            std::lock_guard lock(m);
            completed.emplace_back(id, std::chrono::steady_clock::now());
          }
        }
      });
    std::this_thread::sleep_for(2500ms);
    killed = std::chrono::steady_clock::now();
    gw.process().signal(SIGKILL);
    stop = true;
    for (auto& th : clients) th.join();
  }
  Gateway again(yaml);
  std::set<std::string> seen;
  for (const auto& row : ledger(again.port())) seen.insert(std::string(row.at("request_id").as_string()));
  int old = 0, old_missing = 0;
  for (const auto& [id, at] : completed) {
    if (killed - at < 1s) continue;
    ++old;
    old_missing += !seen.count(id);
  }
  ASSERT_GT(old, 50);
  EXPECT_EQ(old_missing, 0) << "of " << old << " responses completed over a second before the kill";
}

}  // namespace
