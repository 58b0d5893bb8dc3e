// Never worse than going direct (issue 23): a fault matrix over a three-deployment route with the
// default health and timeout settings, a client whose requests fail everywhere beside healthy
// ones, and latency routing on fresh gateways. Through the real binary and the fake provider.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <algorithm>
#include <atomic>
#include <mutex>
#include <random>
#include <thread>

#include "harness.hpp"

using namespace std::chrono_literals;
using harness::Fake;
using harness::Gateway;
using harness::Response;
namespace json = boost::json;

namespace {

const std::string kKey = "sk-faults-test";

/// Route `r` over deployments a, b, c (one fake each), everything else at its defaults but
/// the route's `route_extra` lines.
std::string config(const std::vector<int>& ports, const std::string& route_extra = "") {
  static const char* names[] = {"a", "b", "c", "d", "e"};
  std::string y = "server:\n  host: 127.0.0.1\n  port: 0\n  threads: 2\n  access_log: off\nproviders:\n";
  for (std::size_t i = 0; i < ports.size(); ++i)
    y += std::string("  p") + names[i] + ":\n    base_url: http://127.0.0.1:" + std::to_string(ports[i]) +
         "/v1\n    api_key: sk-up\n";
  y += "deployments:\n";
  for (std::size_t i = 0; i < ports.size(); ++i)
    y += std::string("  ") + names[i] + ":\n    provider: p" + names[i] + "\n    model: m-" + names[i] + "\n";
  y += "routes:\n  r:\n    candidates: [";
  for (std::size_t i = 0; i < ports.size(); ++i) y += std::string(i ? ", " : "") + names[i];
  y += "]\n" + route_extra;
  y += "keys:\n  - name: tester\n    sha256: " + harness::sha256_hex(kKey) + "\n";
  return y;
}

std::string request(const std::string& text, bool stream) {
  return R"({"model":"r","messages":[{"role":"user","content":")" + text + R"("}])" +
         (stream ? R"(,"stream":true)" : "") + "}";
}

/// One request on a fresh connection, waited for as long as an SDK would (a stalled deployment
/// is left after 10 s by default).
Response chat(int port, const std::string& body) {
  harness::Connection c(port);
  if (!c.ok()) return {};
  c.send_raw(harness::request("POST", "/v1/chat/completions",
                              {{"Authorization", "Bearer " + kKey}, {"Content-Type", "application/json"}}, body));
  return c.read_response(std::chrono::seconds(60));
}

/// What a client made of one answer.
enum class Seen { whole, error_event, error_status, broken };

/// A JSON answer: whole when its content is the fake's echo of `text`. A stream: whole when its
/// deltas spell the echo and it ends with [DONE]; an error event when it ends with a well-formed
/// `{"error": ...}` event instead; broken otherwise (a malformed event, a cut without a word).
Seen judge(const Response& r, bool stream, const std::string& text) {
  if (r.status != 200) return Seen::error_status;
  const std::string expected = "Hello from Switchyard's demo provider! You said: " + text;
  if (!stream) {
    boost::system::error_code ec;
    json::value v = json::parse(r.body, ec);
    if (ec) return Seen::broken;
    const json::value* content = v.find_pointer("/choices/0/message/content", ec);
    return content && content->is_string() && content->as_string() == expected ? Seen::whole : Seen::broken;
  }
  std::vector<std::string> events = harness::sse_data(r.body);
  std::string said;
  for (std::size_t i = 0; i < events.size(); ++i) {
    if (events[i] == "[DONE]") return i + 1 == events.size() && said == expected ? Seen::whole : Seen::broken;
    boost::system::error_code ec;
    json::value v = json::parse(events[i], ec);
    if (ec || !v.is_object()) return Seen::broken;
    if (v.as_object().contains("error"))
      return i + 1 == events.size() && v.at("error").is_object() ? Seen::error_event : Seen::broken;
    if (const json::value* c = v.find_pointer("/choices/0/delta/content", ec); c && c->is_string())
      said += c->as_string();
  }
  return Seen::broken;
}

struct Tally {
  int whole = 0, error_event = 0, error_status = 0, broken = 0;
  std::string example;  ///< a response that was not whole
};

/// `total` requests from `clients` concurrent clients, each on fresh connections.
Tally run(int port, bool stream, int total, int clients) {
  Tally t;
  std::mutex m;
  std::atomic<int> next{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c)
    threads.emplace_back([&] {
      for (int i = next++; i < total; i = next++) {
        const std::string text = "fault matrix " + std::to_string(i);
        Response r = chat(port, request(text, stream));
        Seen s = judge(r, stream, text);
        std::lock_guard lock(m);
        switch (s) {
          case Seen::whole: ++t.whole; break;
          case Seen::error_event: ++t.error_event; break;
          case Seen::error_status: ++t.error_status; break;
          case Seen::broken: ++t.broken; break;
        }
        if (s != Seen::whole && t.example.empty())
          t.example = std::to_string(r.status) + " " + r.body.substr(0, 600);
      }
    });
  for (auto& th : threads) th.join();
  return t;
}

struct Fault {
  const char* name;
  const char* behavior;  ///< of deployment a, the route's first choice, for every request
  bool json, stream;     ///< the modes it applies to
  /// Something reached the client before the fault (a stream's content): the client may see an
  /// error event, never a broken stream.
  bool after_content;
};

}  // namespace

// Deployment `a` (first in the route's order) has the fault on every request; `b` and `c` are
// healthy. 100 requests from 20 clients per fault and mode, defaults everywhere: where nothing
// had reached the client yet, no client sees an error; where content had, a client sees at worst
// a well-formed error event, and only until health takes `a` out.
TEST(FaultMatrix, AHealthyDeploymentServesEveryRequestTheFaultyOneCouldNot) {
  const Fault faults[] = {
      {"500", R"({"status":500})", true, true, false},
      {"503", R"({"status":503})", true, true, false},
      {"529", R"({"status":529})", true, true, false},
      {"429 + retry-after", R"({"status":429,"headers":{"retry-after":"1"}})", true, true, false},
      {"reset", R"({"reset":true})", true, true, false},
      {"30 s stall", R"({"latency_ms":30000})", true, true, false},
      {"stall after an empty first event", R"({"content_delay_ms":30000})", false, true, false},
      {"trickle", R"({"trickle_ms":40,"chunk_delay_ms":200})", true, true, false},
      {"body cut short", R"({"cut_body":true})", true, false, false},
      {"malformed JSON", R"({"malformed":true})", true, false, false},
      {"malformed SSE before content", R"({"malformed_after":0})", false, true, false},
      {"cut mid-stream", R"({"cut_after_chunks":2})", false, true, true},
      {"malformed SSE mid-stream", R"({"malformed_after":2})", false, true, true},
      {"error event mid-stream", R"({"error_after":2})", false, true, true},
      {"401", R"({"status":401})", true, true, false},
      {"403", R"({"status":403})", true, true, false},
      {"404", R"({"status":404})", true, true, false},
  };
  for (const Fault& f : faults) {
    for (bool stream : {false, true}) {
      if (stream ? !f.stream : !f.json) continue;
      SCOPED_TRACE(std::string(f.name) + (stream ? " (stream)" : " (JSON)"));
      Fake a, b, c;
      a.script(f.behavior, 1000000);
      Gateway gw(config({a.port(), b.port(), c.port()}));
      Tally t = run(gw.port(), stream, 100, 20);
      std::printf("fault %-34s %-6s whole %3d  error events %3d  error statuses %3d  broken %d\n", f.name,
                  stream ? "stream" : "JSON", t.whole, t.error_event, t.error_status, t.broken);
      EXPECT_EQ(t.broken, 0) << t.example;
      EXPECT_EQ(t.error_status, 0) << t.example;
      if (!f.after_content) {
        EXPECT_EQ(t.whole, 100) << t.example;
      } else {
        // Each client's first request may reach `a` before three failures open its circuit (20
        // in flight at once), after which only its probes do.
        EXPECT_LE(t.error_event, 25) << t.example;
        EXPECT_GE(t.whole, 75);
      }
    }
  }
}

// One request a second that fails on every deployment (both answer it 500) beside 30 healthy
// clients: it is the request's fault, no deployment is benched, no healthy request fails.
TEST(FaultMatrix, ARequestThatFailsEverywhereOnceASecondCostsHealthyClientsNothing) {
  Fake a, b;
  a.script(R"({"status":500})", 1000000, "", "POISON");
  b.script(R"({"status":500})", 1000000, "", "POISON");
  Gateway gw(config({a.port(), b.port()}));
  std::atomic<bool> stop{false};
  std::atomic<int> healthy{0}, healthy_errors{0}, poisoned{0};
  std::string example;
  std::mutex m;
  std::vector<std::thread> clients;
  for (int c = 0; c < 30; ++c)
    clients.emplace_back([&, c] {
      for (int i = 0; !stop; ++i) {
        const std::string text = "healthy " + std::to_string(c) + " " + std::to_string(i);
        Response r = chat(gw.port(), request(text, i % 2 == 1));
        ++healthy;
        if (judge(r, i % 2 == 1, text) != Seen::whole) {
          ++healthy_errors;
          std::lock_guard lock(m);
          if (example.empty()) example = std::to_string(r.status) + " " + r.body.substr(0, 400);
        }
        std::this_thread::sleep_for(20ms);
      }
    });
  for (int s = 0; s < 6; ++s) {
    Response r = chat(gw.port(), request("POISON", false));
    EXPECT_EQ(r.status, 500) << "the providers' own answer: " << r.body;
    ++poisoned;
    std::this_thread::sleep_for(1s);
  }
  stop = true;
  for (auto& t : clients) t.join();
  std::printf("healthy requests %d, failed %d; poisoned %d\n", healthy.load(), healthy_errors.load(), poisoned.load());
  EXPECT_GT(healthy.load(), 300);
  EXPECT_EQ(healthy_errors.load(), 0) << example;
}

// A latency route finds its fastest deployment within its first few requests whatever the list
// order, on each of 10 fresh gateways (the list shuffled each time): the unmeasured are measured
// before a prior or one measurement is trusted.
TEST(FaultMatrix, ALatencyRoutePicksItsFastestDeploymentOnEveryFreshStart) {
  Fake slow(R"({"latency_ms":300})"), mid(R"({"latency_ms":120})"), fast(R"({"latency_ms":10})");
  std::mt19937 rng(std::random_device{}());
  for (int start = 0; start < 10; ++start) {
    std::vector<std::pair<int, std::string>> fakes = {{slow.port(), "slow"}, {mid.port(), "mid"}, {fast.port(), "fast"}};
    std::shuffle(fakes.begin(), fakes.end(), rng);
    const char* names[] = {"a", "b", "c"};
    std::string fast_name;
    for (int i = 0; i < 3; ++i)
      if (fakes[i].second == "fast") fast_name = names[i];
    Gateway gw(config({fakes[0].first, fakes[1].first, fakes[2].first}, "    policy: {objective: latency}\n"));
    std::map<std::string, int> served;
    for (int i = 0; i < 20; ++i) {
      Response r = chat(gw.port(), request("which is fastest", false));
      ASSERT_EQ(r.status, 200) << r.body;
      if (i >= 5) ++served[r.header("x-switchyard-deployment")];
    }
    EXPECT_EQ(served[fast_name], 15) << "start " << start << ": order " << fakes[0].second << ", "
                                     << fakes[1].second << ", " << fakes[2].second;
  }
}

// A provider refusing the deployment's key is a configuration fault: failed over, the deployment
// out for the long cooldown (not the 5 s of a fault), said once in the log and on the health
// endpoint; when nothing else is left the client hears it was the provider's credential.
TEST(FaultMatrix, AProvidersRefusalOfTheDeploymentsKeyTakesItOutLoudlyAndForLong) {
  Fake a, b;
  a.script(R"({"status":401})", 1000000);
  Gateway gw(config({a.port(), b.port()}));
  for (int i = 0; i < 5; ++i) {
    Response r = chat(gw.port(), request("hello", false));
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.header("x-switchyard-deployment"), "b");
  }
  EXPECT_EQ(json::parse(a.stats_json()).at("requests").as_int64(), 1) << "out after the first refusal";
  Response health = harness::http(gw.port(), "GET", "/v1/switchyard/health", {{"Authorization", "Bearer " + kKey}});
  json::value v = json::parse(health.body);
  const json::value* entry = nullptr;
  for (const auto& d : v.at("deployments").as_array())
    if (d.at("deployment").as_string() == "a") entry = &d;
  ASSERT_TRUE(entry) << health.body;
  EXPECT_EQ(entry->at("state").as_string(), "open");
  EXPECT_GT(entry->at("recovers_in_ms").as_int64(), 290000);
  EXPECT_NE(std::string(entry->at("misconfigured").as_string()).find("API key (HTTP 401)"), std::string::npos);
  const std::string log = gw.log();
  const std::string loud = "deployment \"a\" is misconfigured";
  ASSERT_NE(log.find(loud), std::string::npos) << log;
  EXPECT_EQ(log.find(loud, log.find(loud) + 1), std::string::npos) << "said once";
  EXPECT_EQ(log.find("sk-up"), std::string::npos) << "never the provider's key";

  // Its only deployment refusing: the client gets a 502 that names the provider's credential.
  Fake lone;
  lone.script(R"({"status":401})", 1000000);
  Gateway one(config({lone.port()}));
  for (int i = 0; i < 2; ++i) {
    Response r = chat(one.port(), request("hello", false));
    EXPECT_EQ(r.status, 502) << r.body;
    EXPECT_NE(r.body.find("upstream_credentials_refused"), std::string::npos) << r.body;
  }
}
