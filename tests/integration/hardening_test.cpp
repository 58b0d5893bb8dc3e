// Hardening against abusive clients and shutdowns, through the real binary: a drain cutting
// streams tells their clients, the operators' surfaces live on the admin listener, one address
// cannot take every connection slot, and request bodies share a memory budget.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/resource.h>

#include <boost/json.hpp>

#include <fstream>
#include <memory>
#include <set>
#include <thread>

#include "harness.hpp"

using namespace std::chrono_literals;
using harness::Connection;
using harness::Fake;
using harness::Gateway;
using harness::Response;
namespace json = boost::json;

namespace {

const std::string kKey = "sk-test-hardening-key";
const std::string kAdmin = "sk-test-hardening-admin";

/// Route `auto` over the fake provider, route `private` over a second deployment of it (the
/// client key may use only `auto`); `server_extra` and `tail` go into the server section and
/// after the keys.
std::string config(int fake_port, const std::string& server_extra = "", const std::string& tail = "") {
  return "server:\n  host: 127.0.0.1\n  port: 0\n  threads: 1\n  access_log: off\n" + server_extra +
         "providers:\n  fake:\n    base_url: http://127.0.0.1:" + std::to_string(fake_port) +
         "/v1\n    api_key: sk-up\n"
         "deployments:\n  open-dep:\n    provider: fake\n    model: m\n  private-dep:\n    provider: fake\n"
         "    model: p\n"
         "routes:\n  auto:\n    candidates: [open-dep]\n  private:\n    candidates: [private-dep]\n"
         "keys:\n  - name: client\n    sha256: " +
         harness::sha256_hex(kKey) + "\n    routes: [auto]\n" + tail;
}

std::map<std::string, std::string> auth(const std::string& key = kKey) {
  return {{"Authorization", "Bearer " + key}, {"Content-Type", "application/json"}};
}

std::string chat_body(bool stream) {
  return std::string(R"({"model":"auto","messages":[{"role":"user","content":"hi"}])") +
         (stream ? R"(,"stream":true)" : "") + "}";
}

/// Everything a connection receives until the peer closes it (or `within` passes).
std::string read_to_close(Connection& c, std::chrono::milliseconds within) {
  std::string all;
  const auto until = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < until) {
    std::string piece = c.read_some(200ms);
    if (piece.empty() && c.wait_closed(1ms)) {
      all += c.read_some(1ms);  // what wait_closed read before the end
      break;
    }
    all += piece;
  }
  return all;
}

std::set<std::string> health_deployments(const Response& r) {
  std::set<std::string> names;
  const json::value report = json::parse(r.body);  // named: a temporary would die before the loop
  for (const auto& d : report.at("deployments").as_array())
    names.insert(std::string(d.at("deployment").as_string()));
  return names;
}

/// Raises this process's open-files limit to its hard limit (the tests open thousands).
void raise_open_files() {
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
}

}  // namespace

TEST(Drain, AStreamStillOpenAtTheDeadlineEndsWithAnErrorEventInItsClientsDialect) {
  Fake fake;
  Gateway gw(config(fake.port(), "  drain_timeout_ms: 300\n"));
  // Two long streams (40 chunks 200 ms apart): one OpenAI client, one Anthropic client.
  fake.script(R"({"content":"a b c d e f g h i j k l m n o p q r s t u v w x y z","chunks":40,"chunk_delay_ms":200})", 2);
  Connection openai(gw.port()), anthropic(gw.port());
  openai.send_raw(harness::request("POST", "/v1/chat/completions", auth(), chat_body(true)));
  anthropic.send_raw(harness::request(
      "POST", "/v1/messages", {{"x-api-key", kKey}, {"anthropic-version", "2023-06-01"}, {"Content-Type", "application/json"}},
      R"({"model":"auto","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"hi"}]})"));
  ASSERT_EQ(openai.read_head().status, 200);
  ASSERT_EQ(anthropic.read_head().status, 200);
  std::this_thread::sleep_for(300ms);  // some events relayed

  gw.process().signal(SIGTERM);
  const std::string o = read_to_close(openai, 5s);
  const std::string a = read_to_close(anthropic, 5s);
  EXPECT_EQ(gw.process().wait(5s), 0) << gw.log();

  // OpenAI: a `data:` event with the error object, then the stream's last chunk (not a cut).
  EXPECT_NE(o.find(R"(data: {"error":{"message":"The gateway is shutting down)"), std::string::npos) << o;
  EXPECT_NE(o.find(R"("code":"switchyard_draining")"), std::string::npos) << o;
  EXPECT_EQ(o.find("[DONE]"), std::string::npos) << "the stream did not finish: " << o;
  ASSERT_GE(o.size(), 5u);
  EXPECT_EQ(o.substr(o.size() - 5), "0\r\n\r\n") << o;
  // Anthropic: its `error` event.
  EXPECT_NE(a.find("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\""), std::string::npos) << a;
  EXPECT_NE(a.find("The gateway is shutting down"), std::string::npos) << a;
  EXPECT_EQ(a.find("message_stop"), std::string::npos) << a;
  ASSERT_GE(a.size(), 5u);
  EXPECT_EQ(a.substr(a.size() - 5), "0\r\n\r\n") << a;
}

TEST(AdminListener, TheOperatorsSurfacesMoveThereAndClientKeysSeeOnlyTheirOwn) {
  Fake fake;
  const std::string db = harness::temp_dir() + "/gov.db";
  Gateway gw(config(fake.port(), "  admin:\n    host: 127.0.0.1\n    port: 0\n",
                    "governance:\n  sqlite_path: " + db + "\n  admin_keys:\n    - name: ops\n      sha256: " +
                        harness::sha256_hex(kAdmin) + "\n"));
  ASSERT_GT(gw.admin_port(), 0);
  ASSERT_NE(gw.admin_port(), gw.port());
  const std::map<std::string, std::string> admin_auth{{"Authorization", "Bearer " + kAdmin}};

  // Public listener: the client API, and reports limited to the key's own routes.
  Response answered = harness::http(gw.port(), "POST", "/v1/chat/completions", auth(), chat_body(false));
  EXPECT_EQ(answered.status, 200);
  const std::string request_id = answered.header("x-request-id");
  ASSERT_FALSE(request_id.empty());
  Response mine = harness::http(gw.port(), "GET", "/v1/switchyard/health", auth());
  ASSERT_EQ(mine.status, 200) << mine.body;
  EXPECT_EQ(health_deployments(mine), (std::set<std::string>{"open-dep"}));
  EXPECT_EQ(harness::http(gw.port(), "GET", "/v1/switchyard/health", {}).status, 401);
  // ... and no admin API at all, not even with the admin credential.
  Response admin_public = harness::http(gw.port(), "GET", "/admin/v1/teams", admin_auth);
  EXPECT_EQ(admin_public.status, 404) << admin_public.body;
  EXPECT_NE(admin_public.body.find("unknown_url"), std::string::npos) << admin_public.body;

  // Admin listener: the whole health view without a key; the admin API with its credential;
  // no client API.
  Response all = harness::http(gw.admin_port(), "GET", "/v1/switchyard/health", {});
  ASSERT_EQ(all.status, 200) << all.body;
  EXPECT_EQ(health_deployments(all), (std::set<std::string>{"open-dep", "private-dep"}));
  EXPECT_EQ(harness::http(gw.admin_port(), "GET", "/admin/v1/teams", admin_auth).status, 200);
  EXPECT_EQ(harness::http(gw.admin_port(), "GET", "/admin/v1/teams", {}).status, 401);
  EXPECT_EQ(harness::http(gw.admin_port(), "POST", "/v1/chat/completions", auth(), chat_body(false)).status, 404);
  Response decision = harness::http(gw.admin_port(), "GET", "/v1/switchyard/decisions?request_id=" + request_id, {});
  EXPECT_EQ(decision.status, 200) << decision.body;
  EXPECT_NE(decision.body.find("open-dep"), std::string::npos) << decision.body;
  EXPECT_EQ(harness::http(gw.admin_port(), "GET", "/healthz", {}).status, 200);
}

TEST(PerAddress, OneAddressOpeningThousandsOfSlowConnectionsCannotStarveTheOthers) {
  raise_open_files();
  Fake fake;
  // 600 connection slots in all; once half are taken, one address may hold 100 before it
  // authenticates.
  Gateway gw(config(fake.port(),
                    "  max_connections: 600\n  header_timeout_ms: 60000\n"
                    "  per_address:\n    unauthenticated_connections: 100\n"));
  // The abuser, from 127.0.0.2: 2,000 connections that send half a head and then nothing.
  std::vector<std::unique_ptr<Connection>> slow;
  for (int i = 0; i < 2000; ++i) {
    auto c = std::make_unique<Connection>(gw.port(), "127.0.0.2");
    ASSERT_TRUE(c->ok()) << i;
    c->send_raw("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n");
    slow.push_back(std::move(c));
  }
  // It got the first half of the slots (no pressure yet); past them, each was told at once (a
  // 503 naming the reason) and closed.
  std::this_thread::sleep_for(500ms);
  int refused = 0, held = 0;
  for (auto& c : slow) {
    const std::string got = c->read_some(5ms);
    if (got.find("too_many_connections_from_address") != std::string::npos && got.rfind("HTTP/1.1 503", 0) == 0)
      ++refused;
    else if (got.empty())
      ++held;
  }
  EXPECT_EQ(held, 300);
  EXPECT_EQ(refused, 1700);
  // Every other client is served meanwhile.
  for (int i = 0; i < 36; ++i) {
    Response r = harness::http(gw.port(), "POST", "/v1/chat/completions", auth(), chat_body(false));
    EXPECT_EQ(r.status, 200) << i << ": " << r.body;
  }
  // Authenticated connections from the same address are not held to its unauthenticated limit
  // (a proxy or NAT in front of many applications).
  std::vector<std::unique_ptr<Connection>> served;
  for (int i = 0; i < 150; ++i) {
    auto c = std::make_unique<Connection>(gw.port(), "127.0.0.3");
    ASSERT_TRUE(c->send_raw(harness::request("POST", "/v1/chat/completions", auth(), chat_body(false))));
    ASSERT_EQ(c->read_response().status, 200) << i;
    served.push_back(std::move(c));  // kept open: authenticated, they no longer count
  }
}

TEST(PerAddress, UnauthenticatedRequestsAreRateLimitedPerAddressAndSilentConnectionsGetOnlyTheHeadsAllowance) {
  Fake fake;
  Gateway gw(config(fake.port(),
                    "  header_timeout_ms: 300\n  idle_timeout_ms: 60000\n"
                    "  per_address:\n    unauthenticated_rps: 5\n"));
  // A new connection that never sends a byte is closed after the head's allowance, not after
  // a keep-alive connection's idle time.
  Connection silent(gw.port(), "127.0.0.4");
  EXPECT_TRUE(silent.wait_closed(3s));

  // Requests without a valid key from one address: a second's worth, then 429s.
  Connection guesser(gw.port(), "127.0.0.5");
  int unauthorized = 0, limited = 0;
  for (int i = 0; i < 20; ++i) {
    if (!guesser.send_raw(harness::request("POST", "/v1/chat/completions", auth("sk-wrong"), chat_body(false)))) break;
    Response r = guesser.read_response();
    if (r.status == 401) ++unauthorized;
    if (r.status == 429) {
      ++limited;
      EXPECT_NE(r.body.find("too_many_requests_from_address"), std::string::npos) << r.body;
      EXPECT_EQ(r.headers["retry-after"], "1");
      break;  // and the connection closes
    }
  }
  EXPECT_GE(unauthorized, 4);
  EXPECT_LE(unauthorized, 7);
  EXPECT_EQ(limited, 1);
  // Another address is not affected.
  EXPECT_EQ(harness::http(gw.port(), "POST", "/v1/chat/completions", auth(), chat_body(false)).status, 200);
}

TEST(BodyMemory, ManyLargeBodiesInFlightStayWithinTheBudgetAndTheRestAreRefused) {
  raise_open_files();
  Fake fake;
  // A 32 MiB budget for bodies; bodies of up to 4 MiB each.
  Gateway gw(config(fake.port(), "  max_body_bytes: 4194304\n  body_memory_mb: 32\n"));
  const int pid = gw.process().pid();
  ASSERT_EQ(harness::http(gw.port(), "POST", "/v1/chat/completions", auth(), chat_body(false)).status, 200);
  const long before_kb = harness::rss_kb(pid);

  // 200 clients each send a 4 MiB body but its last byte, and wait.
  const std::size_t length = 4u << 20;
  const std::string filler(length - 1, 'x');
  std::vector<std::unique_ptr<Connection>> clients;
  int refused = 0;
  for (int i = 0; i < 200; ++i) {
    auto c = std::make_unique<Connection>(gw.port());
    ASSERT_TRUE(c->ok());
    c->send_raw("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + kKey +
                "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(length) + "\r\n\r\n");
    c->send_raw(filler);  // a refused one's bytes are read and dropped by the gateway
    clients.push_back(std::move(c));
  }
  std::this_thread::sleep_for(300ms);
  const long peak_kb = harness::rss_kb(pid);
  for (auto& c : clients) {
    const std::string got = c->read_some(5ms);
    if (got.rfind("HTTP/1.1 503", 0) == 0 && got.find("body_memory_exhausted") != std::string::npos) ++refused;
  }
  EXPECT_EQ(refused, 200 - 8) << "32 MiB holds eight 4 MiB bodies";
  // Memory: the budget and the gateway's own, not 200 bodies (800 MiB). (Large buffers are mapped
  // outside any allocator, so this holds under AddressSanitizer too.)
  EXPECT_LT(peak_kb - before_kb, 32 * 1024 + 24 * 1024) << before_kb << " -> " << peak_kb;

  // The bodies end (their clients leave): memory comes back down, and new bodies fit again.
  clients.clear();
  std::this_thread::sleep_for(1500ms);
  const long after_kb = harness::rss_kb(pid);
  EXPECT_LT(after_kb - before_kb, 16 * 1024) << before_kb << " -> " << peak_kb << " -> " << after_kb;
  const std::string body = R"({"model":"auto","messages":[{"role":"user","content":")" + std::string(1u << 20, 'y') + "\"}]}";
  EXPECT_EQ(harness::http(gw.port(), "POST", "/v1/chat/completions", auth(), body).status, 200);
}

TEST(BodyMemory, AnUpstreamAnswerThatDoesNotFitTheBudgetIsRefusedNotBuffered) {
  Fake fake;
  Gateway gw(config(fake.port(), "  body_memory_mb: 1\n"));
  // A 3 MiB answer against a 1 MiB budget; then a small one.
  fake.script(R"({"content":")" + std::string(3u << 20, 'z') + R"("})");
  Response big = harness::http(gw.port(), "POST", "/v1/chat/completions", auth(), chat_body(false));
  EXPECT_EQ(big.status, 503) << big.body.substr(0, 300);
  EXPECT_NE(big.body.find("body_memory_exhausted"), std::string::npos) << big.body.substr(0, 300);
  EXPECT_EQ(harness::http(gw.port(), "POST", "/v1/chat/completions", auth(), chat_body(false)).status, 200)
      << "the budget was given back";
}
