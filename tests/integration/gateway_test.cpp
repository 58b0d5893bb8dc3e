// The real gateway binary against the scripted fake provider.
#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <fstream>
#include <thread>

#include "harness.hpp"

using namespace std::chrono_literals;
using harness::Connection;
using harness::Fake;
using harness::Gateway;
using harness::Response;
namespace json = boost::json;

namespace {

const std::string kKey = "sk-test-client-key";
const std::string kUpstreamKey = "sk-upstream-secret-123";

struct Upstream {
  std::string name;
  int port;
  std::string model;
};

/// A config with one provider + deployment per upstream and route `auto` over them in order.
std::string config(const std::vector<Upstream>& upstreams, const std::string& server_extra = "",
                   const std::string& upstream_extra = "") {
  std::string y = "server:\n  host: 127.0.0.1\n  port: 0\n  threads: 1\n  access_log: stdout\n" +
                  server_extra + "upstream:\n  connect_timeout_ms: 1000\n" + upstream_extra +
                  // These tests are about failover mechanics, request by request: no deployment
                  // is benched by the circuit breaker between them (routing_test covers that).
                  "health:\n  circuit_breaking: false\n" + "providers:\n";
  for (const auto& u : upstreams)
    y += "  " + u.name + ":\n    base_url: http://127.0.0.1:" + std::to_string(u.port) +
         "/v1\n    api_key: " + kUpstreamKey + "\n";
  y += "deployments:\n";
  for (const auto& u : upstreams)
    y += "  " + u.name + "-dep:\n    provider: " + u.name + "\n    model: " + u.model + "\n";
  y += "routes:\n  auto:\n    candidates: [";
  for (std::size_t i = 0; i < upstreams.size(); ++i) y += (i ? ", " : "") + upstreams[i].name + "-dep";
  y += "]\n  other:\n    candidates: [" + upstreams[0].name + "-dep]\n";
  y += "keys:\n  - name: tester\n    sha256: " + harness::sha256_hex(kKey) + "\n    routes: [auto]\n";
  return y;
}

std::map<std::string, std::string> auth() {
  return {{"Authorization", "Bearer " + kKey}, {"Content-Type", "application/json"}};
}

std::string chat_body(const std::string& content, bool stream = false, const std::string& extra = "") {
  return R"({"model":"auto","messages":[{"role":"user","content":")" + content + R"("}])" +
         (stream ? R"(,"stream":true)" : "") + extra + "}";
}

Response chat(int port, const std::string& body) {
  return harness::http(port, "POST", "/v1/chat/completions", auth(), body);
}

json::object error_of(const Response& r) {
  json::value v = json::parse(r.body);
  return v.at("error").as_object();
}

/// A port with nothing listening.
int closed_port() {
  Connection probe(1);
  return 1;  // port 1 on loopback: connection refused
}

std::string content_of(const Response& r) {
  return std::string(json::parse(r.body).at("choices").at(0).at("message").at("content").as_string());
}

std::string streamed_content(const Response& r) {
  std::string text;
  for (const auto& d : harness::sse_data(r.body)) {
    if (d == "[DONE]") continue;
    json::value v = json::parse(d);
    if (v.as_object().contains("error")) continue;
    for (const auto& c : v.at("choices").as_array())
      if (auto* t = c.at("delta").as_object().if_contains("content"); t && t->is_string())
        text += t->as_string();
  }
  return text;
}

class GatewayTest : public ::testing::Test {
 protected:
  Fake fake_;
};

/// An upstream that answers every request with scripted pieces of raw bytes, `pause` apart, then
/// closes (no Content-Length: the end of the connection ends the body).
class RawUpstream {
 public:
  RawUpstream(std::vector<std::string> pieces, std::chrono::milliseconds pause)
      : pieces_(std::move(pieces)), pause_(pause) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(listener_, 16) != 0 ||
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
      throw std::runtime_error("RawUpstream: cannot listen");
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~RawUpstream() {
    ::shutdown(listener_, SHUT_RDWR);
    ::close(listener_);
    thread_.join();
  }
  int port() const { return port_; }

 private:
  void serve() {
    for (;;) {
      int c = ::accept(listener_, nullptr, nullptr);
      if (c < 0) return;
      // The request: its head, then as many body bytes as its Content-Length says.
      std::string in;
      char buf[4096];
      std::size_t need = std::string::npos;
      while (need == std::string::npos || in.size() < need) {
        ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        in.append(buf, static_cast<std::size_t>(n));
        std::size_t end = in.find("\r\n\r\n");
        if (need == std::string::npos && end != std::string::npos) {
          std::size_t at = in.find("Content-Length: ");
          need = end + 4 + (at < end ? std::stoul(in.substr(at + 16)) : 0);
        }
      }
      for (std::size_t i = 0; i < pieces_.size(); ++i) {
        if (i) std::this_thread::sleep_for(pause_);
        ::send(c, pieces_[i].data(), pieces_[i].size(), MSG_NOSIGNAL);
      }
      ::close(c);
    }
  }
  std::vector<std::string> pieces_;
  std::chrono::milliseconds pause_;
  int listener_ = -1;
  int port_ = 0;
  std::thread thread_;
};

const std::string kRawAnswer =
    R"({"id":"chatcmpl-raw","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,)"
    R"("message":{"role":"assistant","content":"until the end"},"finish_reason":"stop"}],)"
    R"("usage":{"prompt_tokens":3,"completion_tokens":3,"total_tokens":6}})";

}  // namespace

TEST_F(GatewayTest, AnswersAChatCompletionThroughTheFastPath) {
  Gateway gw(config({{"a", fake_.port(), "upstream-model-a"}}));
  Response r = harness::http(gw.port(), "POST", "/v1/chat/completions",
                             {{"Authorization", "Bearer " + kKey}, {"X-Request-Id", "trace-123"}},
                             chat_body("hello gateway", false, R"(,"temperature":0.5,"seed":7)"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(content_of(r), "Hello from Switchyard's demo provider! You said: hello gateway");
  EXPECT_EQ(r.header("x-request-id"), "trace-123");
  EXPECT_EQ(r.header("x-switchyard-route"), "auto");
  EXPECT_EQ(r.header("x-switchyard-deployment"), "a-dep");
  EXPECT_EQ(r.header("x-switchyard-attempts"), "1");

  // Upstream saw the client's body with only the model replaced, and the provider's key.
  json::array seen = json::parse(fake_.requests_json()).as_array();
  ASSERT_EQ(seen.size(), 1u);
  const json::object& req = seen[0].as_object();
  EXPECT_EQ(req.at("path").as_string(), "/v1/chat/completions");
  EXPECT_EQ(req.at("body").as_string(),
            R"({"model":"upstream-model-a","messages":[{"role":"user","content":"hello gateway"}],"temperature":0.5,"seed":7})");
  EXPECT_EQ(req.at("headers").at("Authorization").as_string(), "Bearer " + kUpstreamKey);
  EXPECT_EQ(req.at("headers").at("X-Request-Id").as_string(), "trace-123");

  // One access-log line with the routing facts and the usage, and no secrets.
  std::this_thread::sleep_for(300ms);  // the log is flushed every 100 ms
  std::string log = gw.log();
  auto line_start = log.find("{\"ts\":");
  ASSERT_NE(line_start, std::string::npos) << log;
  json::object line = json::parse(log.substr(line_start, log.find('\n', line_start) - line_start)).as_object();
  EXPECT_EQ(line.at("request_id").as_string(), "trace-123");
  EXPECT_EQ(line.at("route").as_string(), "auto");
  EXPECT_EQ(line.at("deployment").as_string(), "a-dep");
  EXPECT_EQ(line.at("model").as_string(), "upstream-model-a");
  EXPECT_EQ(line.at("status").as_int64(), 200);
  EXPECT_EQ(line.at("attempts").as_int64(), 1);
  EXPECT_GT(line.at("total_tokens").as_int64(), 0);
  EXPECT_EQ(line.at("key").as_string(), "tester");
  EXPECT_EQ(log.find(kKey), std::string::npos);
  EXPECT_EQ(log.find(kUpstreamKey), std::string::npos);
  EXPECT_EQ(log.find("hello gateway"), std::string::npos);  // no bodies
}

TEST_F(GatewayTest, AnswerLargerThanTheSocketTakesAtOnceArrivesWhole) {
  // A response is first sent without waiting; what the socket does not take then is written
  // when the client reads. 8 MB to a client that reads only after a pause: the first send
  // fills the socket, the rest must follow in order.
  std::string text;
  text.reserve(8 << 20);
  for (int i = 0; text.size() < (8u << 20); ++i) text += "word" + std::to_string(i) + " ";
  fake_.script(R"({"content":")" + text + R"("})");
  Gateway gw(config({{"a", fake_.port(), "m"}}));
  Connection c(gw.port());
  ASSERT_TRUE(c.ok());
  c.send_raw(harness::request("POST", "/v1/chat/completions", auth(), chat_body("big")));
  std::this_thread::sleep_for(300ms);
  // While this client reads nothing, the one event loop still serves others: what the first
  // send left over waits for the socket asynchronously, not in a blocking write.
  Response other = chat(gw.port(), chat_body("meanwhile"));
  ASSERT_EQ(other.status, 200) << other.body;
  EXPECT_EQ(content_of(other), "Hello from Switchyard's demo provider! You said: meanwhile");
  Response r = c.read_response(std::chrono::seconds(30));
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(content_of(r), text);
  // The connection still serves the next request.
  c.send_raw(harness::request("POST", "/v1/chat/completions", auth(), chat_body("small")));
  Response next = c.read_response();
  ASSERT_EQ(next.status, 200) << next.body;
  EXPECT_EQ(content_of(next), "Hello from Switchyard's demo provider! You said: small");
}

TEST_F(GatewayTest, RelaysAStreamEventByEvent) {
  Gateway gw(config({{"a", fake_.port(), "m"}}));
  fake_.script(R"({"content":"one two three four five six","chunks":6})");
  Response r = chat(gw.port(), chat_body("x", true));
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-type"), "text/event-stream");
  EXPECT_EQ(r.header("transfer-encoding"), "chunked");
  EXPECT_EQ(streamed_content(r), "one two three four five six");
  auto events = harness::sse_data(r.body);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back(), "[DONE]");
  // The gateway asked upstream for usage; the client did not, so it gets no usage-only chunk.
  for (const auto& e : events) EXPECT_EQ(e.find("\"choices\":[]"), std::string::npos) << e;
  json::value sent = json::parse(json::parse(fake_.requests_json()).at(0).at("body").as_string());
  EXPECT_TRUE(sent.at("stream_options").at("include_usage").as_bool());

  // A client that asks for usage gets it in the last chunk before [DONE].
  r = chat(gw.port(), chat_body("x", true, R"(,"stream_options":{"include_usage":true})"));
  events = harness::sse_data(r.body);
  ASSERT_GE(events.size(), 2u);
  json::value usage_chunk = json::parse(events[events.size() - 2]);
  EXPECT_TRUE(usage_chunk.at("choices").as_array().empty());
  EXPECT_GT(usage_chunk.at("usage").at("total_tokens").as_int64(), 0);
}

TEST_F(GatewayTest, FailsOverOnErrorsTimeoutsAndResets) {
  Fake second;
  Gateway gw(config({{"a", fake_.port(), "m"}, {"b", second.port(), "m"}}, "",
                    "  first_byte_timeout_ms: 300\n"));
  for (const std::string behavior : {R"({"status":503})", R"({"status":429,"headers":{"retry-after":"1"}})",
                                     R"({"reset":true})", R"({"latency_ms":1500})", R"({"malformed":true})"}) {
    // A reset on a pooled connection is first taken for a stale keep-alive connection and
    // retried once on a fresh one; only a second reset is the deployment's failure.
    fake_.script(behavior, behavior.find("reset") != std::string::npos ? 2 : 1);
    Response r = chat(gw.port(), chat_body("failover"));
    ASSERT_EQ(r.status, 200) << behavior << ": " << r.body;
    EXPECT_EQ(r.header("x-switchyard-deployment"), "b-dep") << behavior;
    EXPECT_EQ(r.header("x-switchyard-attempts"), "2") << behavior;
    EXPECT_EQ(content_of(r), "Hello from Switchyard's demo provider! You said: failover");
  }
  // A redirect is a misconfigured upstream, not an answer.
  fake_.script(R"({"status":301,"headers":{"location":"http://elsewhere/"}})");
  Response redirected = chat(gw.port(), chat_body("failover"));
  EXPECT_EQ(redirected.status, 200);
  EXPECT_EQ(redirected.header("x-switchyard-attempts"), "2");
  // A connection refused fails over too.
  Gateway refused(config({{"dead", closed_port(), "m"}, {"b", second.port(), "m"}}));
  Response r = chat(refused.port(), chat_body("x"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("x-switchyard-attempts"), "2");
}

TEST(Upstream, RetriesOnceWhenAPooledConnectionWentStale) {
  // This fake closes keep-alive connections idle for 100 ms, as upstreams do after a while.
  Fake fake("{}", 100);
  Gateway gw(config({{"a", fake.port(), "m"}}));
  ASSERT_EQ(chat(gw.port(), chat_body("one")).status, 200);
  std::this_thread::sleep_for(400ms);
  Response r = chat(gw.port(), chat_body("two"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("x-switchyard-attempts"), "1");
  EXPECT_EQ(content_of(r), "Hello from Switchyard's demo provider! You said: two");
  EXPECT_EQ(json::parse(fake.stats_json()).at("requests").as_int64(), 2);
}

TEST_F(GatewayTest, DoesNotRetryClientErrorsAndPassesThemOn) {
  Fake second;
  Gateway gw(config({{"a", fake_.port(), "m"}, {"b", second.port(), "m"}}));
  fake_.script(R"({"status":400,"error_body":"{\"error\":{\"message\":\"bad tool schema\",\"type\":\"invalid_request_error\",\"param\":\"tools\",\"code\":null}}"})");
  Response r = chat(gw.port(), chat_body("x"));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.header("x-switchyard-attempts"), "1");
  EXPECT_EQ(error_of(r).at("message").as_string(), "bad tool schema");
  EXPECT_EQ(json::parse(second.stats_json()).at("requests").as_int64(), 0);
}

TEST_F(GatewayTest, AProvidersRefusalOfItsOwnKeyOrModelFailsOverAndIsNeverTheClients401) {
  Fake second;
  Gateway gw(config({{"a", fake_.port(), "m"}, {"b", second.port(), "m"}}));
  // A revoked provider key on the first deployment: the second serves.
  fake_.script(R"({"status":401,"error_body":"{\"error\":{\"message\":\"Incorrect API key provided: sk-ups***123\",\"type\":\"invalid_request_error\",\"code\":\"invalid_api_key\"}}"})");
  Response r = chat(gw.port(), chat_body("x"));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("x-switchyard-deployment"), "b-dep");
  EXPECT_EQ(r.header("x-switchyard-attempts"), "2");

  // Only one deployment, its key refused: a 502 naming the provider's credential, not a 401.
  Gateway solo(config({{"a", fake_.port(), "m"}}));
  fake_.script(R"({"status":401,"error_body":"{\"error\":{\"message\":\"Incorrect API key provided: sk-ups***123\",\"type\":\"invalid_request_error\",\"code\":\"invalid_api_key\"}}"})");
  r = chat(solo.port(), chat_body("x"));
  EXPECT_EQ(r.status, 502) << r.body;
  EXPECT_EQ(error_of(r).at("code").as_string(), "upstream_credentials_refused");
  EXPECT_NE(r.body.find("check providers.a.api_key"), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find("sk-ups"), std::string::npos) << "the provider's (masked) key is not shown";
  fake_.script(R"({"status":404})");
  r = chat(solo.port(), chat_body("x"));
  EXPECT_EQ(r.status, 502) << r.body;
  EXPECT_EQ(error_of(r).at("code").as_string(), "upstream_model_not_found");
  EXPECT_NE(r.body.find("check deployments.a-dep.model"), std::string::npos) << r.body;
  // Anthropic's clients get it in Anthropic's shape.
  fake_.script(R"({"status":403})");
  r = harness::http(solo.port(), "POST", "/v1/messages",
                    {{"x-api-key", kKey}, {"anthropic-version", "2023-06-01"}, {"Content-Type", "application/json"}},
                    R"({"model":"auto","max_tokens":5,"messages":[{"role":"user","content":"x"}]})");
  EXPECT_EQ(r.status, 502) << r.body;
  EXPECT_NE(r.body.find(R"("type":"error")"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("access to the model"), std::string::npos) << r.body;
  EXPECT_EQ(r.header("request-id"), r.header("x-request-id")) << "Anthropic's SDKs read request-id";
  EXPECT_FALSE(r.header("request-id").empty());
}

TEST_F(GatewayTest, ReportsTheLastFailureWhenEveryCandidateFails) {
  Gateway gw(config({{"a", fake_.port(), "m"}}, "", "  first_byte_timeout_ms: 200\n"));
  fake_.script(R"({"status":429,"headers":{"retry-after":"7","x-ratelimit-remaining-requests":"0","x-internal":"no"}})");
  Response r = chat(gw.port(), chat_body("x"));
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(error_of(r).at("type").as_string(), "rate_limit_error");
  // The upstream's rate-limit headers reach the client (SDKs honour retry-after); others do not.
  EXPECT_EQ(r.header("retry-after"), "7");
  EXPECT_EQ(r.header("x-ratelimit-remaining-requests"), "0");
  EXPECT_EQ(r.header("x-internal"), "");

  fake_.script(R"({"headers":{"x-ratelimit-limit-tokens":"1000"}})");
  r = chat(gw.port(), chat_body("x"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("x-ratelimit-limit-tokens"), "1000");

  fake_.script(R"({"latency_ms":1000})");
  r = chat(gw.port(), chat_body("x"));
  EXPECT_EQ(r.status, 504);
  EXPECT_EQ(error_of(r).at("code").as_string(), "first_byte_timeout");

  Gateway dead(config({{"dead", closed_port(), "m"}}));
  r = chat(dead.port(), chat_body("x"));
  EXPECT_EQ(r.status, 502);
  EXPECT_EQ(error_of(r).at("code").as_string(), "connect_failed");
  EXPECT_NE(std::string(error_of(r).at("message").as_string()).find("dead-dep"), std::string::npos);
}

TEST_F(GatewayTest, StreamCutBeforeTheFirstEventFailsOverAfterwardsEndsWithAnError) {
  Fake second;
  Gateway gw(config({{"a", fake_.port(), "m"}, {"b", second.port(), "m"}}));
  // Cut before anything reached the client (the role chunk is not yet flushed when
  // cut_after_chunks is 0 and the reset races it): the gateway may only fail over if no byte
  // was sent, so use a reset before the head instead.
  fake_.script(R"({"reset":true})");
  Response r = chat(gw.port(), chat_body("x", true));
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.header("x-switchyard-deployment"), "b-dep");
  EXPECT_EQ(streamed_content(r), "Hello from Switchyard's demo provider! You said: x");

  // Cut mid-way: the client gets what was relayed, then an error event, then a clean end.
  fake_.script(R"({"content":"a b c d e f","chunks":6,"cut_after_chunks":3,"chunk_delay_ms":20})");
  r = chat(gw.port(), chat_body("x", true));
  ASSERT_EQ(r.status, 200);
  EXPECT_FALSE(r.closed);  // chunked body terminated properly
  auto events = harness::sse_data(r.body);
  ASSERT_FALSE(events.empty());
  json::value last = json::parse(events.back());
  EXPECT_EQ(last.at("error").at("type").as_string(), "upstream_error");
  EXPECT_EQ(streamed_content(r), "a b c");
}

TEST_F(GatewayTest, ClientDisconnectCancelsTheUpstreamStream) {
  Gateway gw(config({{"a", fake_.port(), "m"}}));
  fake_.script(R"({"chunks":50,"chunk_delay_ms":50})");
  {
    Connection c(gw.port());
    c.send_raw(harness::request("POST", "/v1/chat/completions", auth(), chat_body("x", true)));
    Response head = c.read_head();
    ASSERT_EQ(head.status, 200);
    EXPECT_FALSE(c.read_some(2s).empty());
  }  // the client goes away mid-stream
  bool aborted = false;
  for (int i = 0; i < 100 && !aborted; ++i) {
    std::this_thread::sleep_for(30ms);
    aborted = json::parse(fake_.stats_json()).at("aborted_streams").as_int64() == 1;
  }
  EXPECT_TRUE(aborted) << fake_.stats_json();

  // The same while the upstream has not answered yet.
  fake_.reset();
  fake_.script(R"({"latency_ms":400})");
  {
    Connection c(gw.port());
    c.send_raw(harness::request("POST", "/v1/chat/completions", auth(), chat_body("x", true)));
    std::this_thread::sleep_for(100ms);
  }
  std::this_thread::sleep_for(600ms);
  std::string log = gw.log();
  EXPECT_NE(log.find("\"status\":499"), std::string::npos) << log;
}

TEST_F(GatewayTest, RefusesBadInputInTheClientsErrorShape) {
  Gateway gw(config({{"a", fake_.port(), "m"}},
                    "  max_body_bytes: 2048\n  max_header_bytes: 1024\n  max_json_depth: 8\n"));
  struct Case {
    std::string name;
    Response response;
    int status;
    std::string code;
  };
  std::string deep = R"({"model":"auto","messages":[{"role":"user","content":"x"}],"x":)" +
                     std::string(10, '[') + std::string(10, ']') + "}";
  std::vector<Case> cases{
      {"no key", harness::http(gw.port(), "POST", "/v1/chat/completions", {}, chat_body("x")), 401, "missing_api_key"},
      {"wrong key", harness::http(gw.port(), "POST", "/v1/chat/completions", {{"Authorization", "Bearer nope"}}, chat_body("x")), 401, "invalid_api_key"},
      {"invalid json", chat(gw.port(), "{\"model\":"), 400, "invalid_json"},
      {"too deep", chat(gw.port(), deep), 400, "invalid_json"},
      {"bad utf8", chat(gw.port(), chat_body("\xc3\x28")), 400, "invalid_json"},
      {"missing messages", chat(gw.port(), R"({"model":"auto"})"), 400, "missing_required_parameter"},
      {"wrong type", chat(gw.port(), chat_body("x", false, R"(,"n":"two")")), 400, "invalid_type"},
      {"unknown model", chat(gw.port(), R"({"model":"gpt-9","messages":[{"role":"user","content":"x"}]})"), 404, "model_not_found"},
      {"route not allowed", chat(gw.port(), R"({"model":"other","messages":[{"role":"user","content":"x"}]})"), 403, "model_not_allowed"},
      {"unknown path", harness::http(gw.port(), "GET", "/v1/nothing", auth()), 404, "unknown_url"},
      {"wrong method", harness::http(gw.port(), "GET", "/v1/chat/completions", auth()), 405, ""},
      {"body too large", chat(gw.port(), chat_body(std::string(3000, 'a'))), 413, ""},
      {"header too large", harness::http(gw.port(), "GET", "/healthz", {{"X-Big", std::string(2000, 'h')}}), 431, ""},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(c.response.status, c.status) << c.name << ": " << c.response.body;
    json::object e = error_of(c.response);
    EXPECT_TRUE(e.contains("message") && e.contains("type") && e.contains("param") && e.contains("code")) << c.name;
    EXPECT_FALSE(e.at("message").as_string().empty()) << c.name;
    if (!c.code.empty()) {
      EXPECT_EQ(e.at("code").as_string(), c.code) << c.name;
    }
  }
  Response wrong_method = harness::http(gw.port(), "DELETE", "/v1/models", auth());
  EXPECT_EQ(wrong_method.status, 405);
  EXPECT_EQ(wrong_method.header("allow"), "GET");
  // Malformed HTTP gets a 400 and the connection is closed.
  Connection raw(gw.port());
  raw.send_raw("POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n");
  Response r = raw.read_response();
  EXPECT_EQ(r.status, 400);
  EXPECT_TRUE(raw.wait_closed(2s));
  // On Anthropic's path the same refusals come in Anthropic's shape, those the server makes
  // before a handler runs (413, 431, malformed framing) included.
  std::vector<Case> anthropic{
      {"no key", harness::http(gw.port(), "POST", "/v1/messages", {}, "{}"), 401, "authentication_error"},
      {"body too large",
       harness::http(gw.port(), "POST", "/v1/messages", {{"x-api-key", kKey}}, std::string(3000, 'a')), 413,
       "request_too_large"},
      {"header too large",
       harness::http(gw.port(), "POST", "/v1/messages", {{"X-Big", std::string(2000, 'h')}}, "{}"), 431,
       "invalid_request_error"},
  };
  for (const auto& c : anthropic) {
    EXPECT_EQ(c.response.status, c.status) << c.name << ": " << c.response.body;
    json::value v = json::parse(c.response.body);
    EXPECT_EQ(v.at("type").as_string(), "error") << c.name << ": " << c.response.body;
    EXPECT_EQ(v.at("error").at("type").as_string(), c.code) << c.name << ": " << c.response.body;
    EXPECT_FALSE(v.at("error").at("message").as_string().empty()) << c.name;
  }
  Connection raw_anthropic(gw.port());
  raw_anthropic.send_raw("POST /v1/messages HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n");
  Response bad_framing = raw_anthropic.read_response();
  EXPECT_EQ(bad_framing.status, 400);
  EXPECT_EQ(json::parse(bad_framing.body).at("type").as_string(), "error") << bad_framing.body;
  // Nothing of this reached the upstream.
  EXPECT_EQ(json::parse(fake_.stats_json()).at("requests").as_int64(), 0);
  // Requests refused before routing are in the access log too.
  std::this_thread::sleep_for(300ms);
  std::string log = gw.log();
  EXPECT_NE(log.find(R"("status":431,"stream":false,"attempts":0)"), std::string::npos) << log;
  EXPECT_NE(log.find(R"("error":"body_too_large")"), std::string::npos) << log;
}

TEST_F(GatewayTest, TimesOutSlowClientsAndCapsConnections) {
  Gateway gw(config({{"a", fake_.port(), "m"}},
                    "  header_timeout_ms: 300\n  idle_timeout_ms: 500\n  body_timeout_ms: 300\n  max_connections: 3\n"));
  Connection slow_head(gw.port());
  slow_head.send_raw("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n");
  EXPECT_TRUE(slow_head.wait_closed(3s));

  Connection slow_body(gw.port());
  slow_body.send_raw("POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"mo");
  EXPECT_TRUE(slow_body.wait_closed(3s));

  Connection idle(gw.port());
  EXPECT_TRUE(idle.wait_closed(3s));

  Connection c1(gw.port()), c2(gw.port()), c3(gw.port());
  std::this_thread::sleep_for(100ms);
  Connection c4(gw.port());
  c4.send_raw(harness::request("GET", "/healthz", {}, ""));
  Response over = c4.read_response();
  EXPECT_EQ(over.status, 503);
  EXPECT_EQ(error_of(over).at("type").as_string(), "service_unavailable");
}

TEST_F(GatewayTest, AClientSendingAWholeBodyOverTheLimitStillReadsThe413) {
  // Many clients (Python's http.client, httpx) send all of a request before reading. The
  // gateway refuses at the head; the megabytes still coming are read and dropped until the
  // client is done, so its send completes and it reads the answer instead of a broken pipe.
  Gateway gw(config({{"a", fake_.port(), "m"}}, "  max_body_bytes: 65536\n"));
  const std::string body = chat_body(std::string(8 << 20, 'a'));
  for (bool chunked : {false, true}) {
    Connection c(gw.port());
    std::string head = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + kKey +
                       "\r\nContent-Type: application/json\r\n";
    std::string request;
    if (chunked) {
      request = head + "Transfer-Encoding: chunked\r\n\r\n";
      for (std::size_t at = 0; at < body.size(); at += 1 << 20) {
        std::string piece = body.substr(at, 1 << 20);
        char size[16];
        std::snprintf(size, sizeof size, "%zx\r\n", piece.size());
        request += size + piece + "\r\n";
      }
      request += "0\r\n\r\n";
    } else {
      request = head + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    }
    EXPECT_TRUE(c.send_raw(request)) << (chunked ? "chunked" : "content-length") << ": the send broke";
    Response r = c.read_response();
    EXPECT_EQ(r.status, 413) << r.body;
    EXPECT_EQ(error_of(r).at("code").as_string(), "body_too_large");
    EXPECT_TRUE(c.wait_closed(3s));
  }
  EXPECT_EQ(json::parse(fake_.stats_json()).at("requests").as_int64(), 0);
}

TEST_F(GatewayTest, ANewClientIsToldWhenTheGatewayIsOutOfDescriptors) {
#ifdef SWITCHYARD_SANITIZED
  // UBSan checks a pointer's target with a pipe (sanitizer_common's IsAccessibleMemoryRange):
  // with no descriptor free it finds none and reports a false "invalid vptr" in the gateway.
  GTEST_SKIP() << "runs out of descriptors on purpose; the sanitizer runtime needs one";
#endif
  Gateway gw(config({{"a", fake_.port(), "m"}}));
  {
    // Not one descriptor left: the next connection cannot be accepted the usual way.
    harness::DescriptorSqueeze squeeze(gw.process().pid(), 0);
    // Twice: the descriptor kept in reserve for this is taken back after each refusal.
    for (int i = 0; i < 2; ++i) {
      Connection c(gw.port());
      c.send_raw(harness::request("POST", "/v1/chat/completions", auth(), chat_body("x")));
      Response r = c.read_response(5s);
      ASSERT_EQ(r.status, 503) << "connection " << i << ": " << r.body;
      EXPECT_EQ(error_of(r).at("code").as_string(), "local_resources_exhausted");
      EXPECT_EQ(error_of(r).at("type").as_string(), "service_unavailable");
      EXPECT_TRUE(c.wait_closed(2s));
    }
  }
  // Descriptors back: served as before, and nothing reached the upstream meanwhile.
  EXPECT_EQ(json::parse(fake_.stats_json()).at("requests").as_int64(), 0);
  Response r = chat(gw.port(), chat_body("y"));
  EXPECT_EQ(r.status, 200) << r.body << gw.log();
  EXPECT_NE(gw.log().find("raise the open files limit"), std::string::npos) << gw.log();
}

TEST_F(GatewayTest, AnAnswerEndedByTheUpstreamClosingIsRelayedWhole) {
  // Its head first, then (later) the body with the end of the connection right behind it: the
  // read that takes the head empties the socket, and the body's read must still see the end
  // that came in the same report as the body's bytes (else it waits for the total timeout).
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n";
  for (auto pieces : {std::vector<std::string>{head, kRawAnswer},
                      std::vector<std::string>{head + kRawAnswer.substr(0, 40), kRawAnswer.substr(40)},
                      std::vector<std::string>{head + kRawAnswer}}) {
    RawUpstream up(pieces, 100ms);
    Gateway gw(config({{"raw", up.port(), "m"}}, "", "  total_timeout_ms: 60000\n"));
    Response r = chat(gw.port(), chat_body("x"));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(content_of(r), "until the end");
    // And again on a new connection to the upstream (this one closed after its answer).
    r = chat(gw.port(), chat_body("y"));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(content_of(r), "until the end");
  }
}

TEST_F(GatewayTest, AnAnswerWithoutContentTypeGoesOutAsJson) {
  // The upstream names no type: the client is told application/json (and gets the body whole).
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(kRawAnswer.size()) + "\r\n\r\n";
  RawUpstream up({head + kRawAnswer}, 0ms);
  Gateway gw(config({{"raw", up.port(), "m"}}));
  Response r = chat(gw.port(), chat_body("x"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("content-type"), "application/json");
  EXPECT_EQ(content_of(r), "until the end");
}

TEST_F(GatewayTest, KeepAlivePipeliningAndChunkedRequests) {
  Gateway gw(config({{"a", fake_.port(), "m"}}));
  Connection c(gw.port());
  // Two pipelined requests in one write, then a chunked one on the same connection.
  c.send_raw(harness::request("POST", "/v1/chat/completions", auth(), chat_body("first")) +
             harness::request("POST", "/v1/chat/completions", auth(), chat_body("second")));
  Response a = c.read_response();
  Response b = c.read_response();
  EXPECT_EQ(content_of(a), "Hello from Switchyard's demo provider! You said: first");
  EXPECT_EQ(content_of(b), "Hello from Switchyard's demo provider! You said: second");
  std::string body = chat_body("third");
  auto headers = auth();
  headers["Transfer-Encoding"] = "chunked";
  char size[16];
  std::snprintf(size, sizeof size, "%zx", body.size() - 10);
  c.send_raw(harness::request("POST", "/v1/chat/completions", headers,
                              std::string(size) + "\r\n" + body.substr(0, body.size() - 10) + "\r\n" +
                                  "a\r\n" + body.substr(body.size() - 10) + "\r\n0\r\n\r\n"));
  Response t = c.read_response();
  ASSERT_EQ(t.status, 200) << t.body;
  EXPECT_EQ(content_of(t), "Hello from Switchyard's demo provider! You said: third");
  // Every response came back on this one client connection, which stays open.
  EXPECT_FALSE(t.closed);
}

TEST_F(GatewayTest, RefusesChunkedBodiesTooLargeOrMalformedAndOtherTransferEncodings) {
  Gateway gw(config({{"a", fake_.port(), "m"}}, "  max_body_bytes: 2048\n"));
  auto chunked = [&](const std::string& chunks) {
    auto headers = auth();
    headers["Transfer-Encoding"] = "chunked";
    return harness::request("POST", "/v1/chat/completions", headers, "") + chunks;
  };
  struct Case {
    std::string name;
    std::string raw;
    int status;
    std::string code;
  };
  // 3 × 1,000 bytes: each chunk fits, their sum does not.
  std::string big = "3e8\r\n" + std::string(1000, 'a') + "\r\n";
  const Case cases[] = {
      {"chunked body too large", chunked(big + big + big + "0\r\n\r\n"), 413, "body_too_large"},
      {"malformed chunk size", chunked("zz\r\nabc\r\n0\r\n\r\n"), 400, "invalid_http"},
      {"other transfer encoding",
       "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + kKey + "\r\n"
       "Transfer-Encoding: gzip\r\n\r\n",
       501, "unsupported_transfer_encoding"},
  };
  for (const auto& c : cases) {
    Connection conn(gw.port());
    conn.send_raw(c.raw);
    Response r = conn.read_response();
    EXPECT_EQ(r.status, c.status) << c.name << ": " << r.body;
    json::object e = error_of(r);
    EXPECT_EQ(e.at("code").as_string(), c.code) << c.name;
    EXPECT_TRUE(conn.wait_closed(2s)) << c.name;  // a refused request ends its connection
  }
  EXPECT_EQ(json::parse(fake_.stats_json()).at("requests").as_int64(), 0);
}

TEST_F(GatewayTest, ModelsHealthAndReadiness) {
  Gateway gw(config({{"a", fake_.port(), "m"}}));
  Response models = harness::http(gw.port(), "GET", "/v1/models", auth());
  ASSERT_EQ(models.status, 200);
  json::value v = json::parse(models.body);
  EXPECT_EQ(v.at("object").as_string(), "list");
  ASSERT_EQ(v.at("data").as_array().size(), 1u);  // "other" is not allowed for this key
  EXPECT_EQ(v.at("data").at(0).at("id").as_string(), "auto");
  EXPECT_EQ(harness::http(gw.port(), "GET", "/healthz").status, 200);
  EXPECT_EQ(harness::http(gw.port(), "GET", "/readyz").body, R"({"status":"ready"})");
}

TEST_F(GatewayTest, DrainsGracefullyOnSigterm) {
  Gateway gw(config({{"a", fake_.port(), "m"}}, "  drain_timeout_ms: 5000\n"));
  fake_.script(R"({"content":"a b c d e f g h","chunks":8,"chunk_delay_ms":100})");
  Connection streaming(gw.port());
  streaming.send_raw(harness::request("POST", "/v1/chat/completions", auth(), chat_body("x", true)));
  Response head = streaming.read_head();
  ASSERT_EQ(head.status, 200);
  Connection idle(gw.port());
  idle.send_raw(harness::request("GET", "/healthz", {}, ""));
  ASSERT_EQ(idle.read_response().status, 200);

  gw.process().signal(SIGTERM);
  EXPECT_TRUE(idle.wait_closed(2s));  // idle keep-alive connections are closed at once
  // The in-flight stream runs to its end.
  std::string rest;
  for (int i = 0; i < 100; ++i) {
    std::string piece = streaming.read_some(500ms);
    if (piece.empty()) break;
    rest += piece;
    if (rest.find("0\r\n\r\n") != std::string::npos) break;
  }
  EXPECT_NE(rest.find("[DONE]"), std::string::npos) << rest;
  EXPECT_EQ(gw.process().wait(5s), 0);
  // New connections are refused once it is gone.
  EXPECT_FALSE(Connection(gw.port()).ok());
}

TEST_F(GatewayTest, ADrainDeadlineCutsOffWorkAndStillExitsCleanly) {
  // A request still waiting on its upstream when the drain deadline passes is cut off; the
  // coroutines left suspended are torn down while the handler they use still exists.
  Gateway gw(config({{"a", fake_.port(), "m"}}, "  drain_timeout_ms: 200\n"));
  fake_.script(R"({"latency_ms":3000})");
  Connection waiting(gw.port());
  waiting.send_raw(harness::request("POST", "/v1/chat/completions", auth(), chat_body("x")));
  std::this_thread::sleep_for(200ms);
  gw.process().signal(SIGTERM);
  EXPECT_EQ(gw.process().wait(3s), 0) << gw.log();
  EXPECT_TRUE(waiting.wait_closed(1s));
}

TEST(Cli, CheckReportsEveryProblemAndVersionPrints) {
  std::string dir = harness::temp_dir();
  std::ofstream(dir + "/bad.yaml") << "server:\n  port: nope\nroutes:\n  auto:\n    candidates: [x]\nkeys: []\n";
  harness::Process check({SWITCHYARD_BIN, "check", "--config", dir + "/bad.yaml"});
  EXPECT_EQ(check.wait(10s), 1);
  std::string out = check.output();
  EXPECT_NE(out.find("server.port: must be an integer"), std::string::npos) << out;
  EXPECT_NE(out.find("routes.auto.candidates[0]: unknown deployment \"x\""), std::string::npos) << out;
  EXPECT_NE(out.find("keys: at least one key"), std::string::npos) << out;

  harness::Process version({SWITCHYARD_BIN, "--version"});
  EXPECT_EQ(version.wait(10s), 0);
  EXPECT_EQ(version.output().rfind("switchyard ", 0), 0u);

  harness::Process serve_bad({SWITCHYARD_BIN, "serve", "--config", dir + "/bad.yaml"});
  EXPECT_EQ(serve_bad.wait(10s), 1);
}

namespace {

TEST(GatewayStart, ASecondGatewayOnATakenPortRefusesToStartInsteadOfSharingIt) {
  Fake up;
  Gateway first(config({{"a", up.port(), "m"}}));
  std::string yaml = config({{"a", up.port(), "m"}});
  const std::string any_port = "port: 0\n";
  ASSERT_NE(yaml.find(any_port), std::string::npos);
  yaml.replace(yaml.find(any_port), any_port.size(), "port: " + std::to_string(first.port()) + "\n");
  const std::string dir = harness::temp_dir();
  std::ofstream(dir + "/taken.yaml") << yaml;
  harness::Process second({SWITCHYARD_BIN, "serve", "--config", dir + "/taken.yaml"});
  EXPECT_EQ(second.wait(10s), 1);
  EXPECT_NE(second.output().find("the port is already in use by another process"), std::string::npos)
      << second.output();
  EXPECT_EQ(chat(first.port(), chat_body("still mine")).status, 200) << "the first one keeps its port";
}

}  // namespace

TEST(HealthReport, ShowsAClientKeyOnlyItsOwnRoutesDeployments) {
  // Route `auto` over a and b; route `private` over c only, which the client key may not use.
  Fake a, b, c;
  std::string y = config({{"a", a.port(), "m"}, {"b", b.port(), "m"}});
  y.replace(y.find("deployments:\n"), 0,
            "  c:\n    base_url: http://127.0.0.1:" + std::to_string(c.port()) + "/v1\n    api_key: sk-up\n");
  y.replace(y.find("routes:\n"), 0, "  c-dep:\n    provider: c\n    model: m\n");
  y.replace(y.find("  other:\n    candidates: [a-dep]\n"), std::string("  other:\n    candidates: [a-dep]\n").size(),
            "  private:\n    candidates: [c-dep]\n");
  const std::string admin_key = "sk-test-admin-client";
  y += "  - name: operator\n    admin: true\n    sha256: " + harness::sha256_hex(admin_key) + "\n";
  Gateway gw(y);
  auto deployments = [&](const std::string& key) {
    Response r = harness::http(gw.port(), "GET", "/v1/switchyard/health", {{"Authorization", "Bearer " + key}});
    EXPECT_EQ(r.status, 200) << r.body;
    std::set<std::string> names;
    const json::value report = json::parse(r.body);
    for (const auto& d : report.at("deployments").as_array()) names.insert(std::string(d.at("deployment").as_string()));
    return names;
  };
  EXPECT_EQ(deployments(kKey), (std::set<std::string>{"a-dep", "b-dep"})) << "nothing of a route it may not use";
  EXPECT_EQ(deployments(admin_key), (std::set<std::string>{"a-dep", "b-dep", "c-dep"}));
  EXPECT_EQ(harness::http(gw.port(), "GET", "/v1/switchyard/health", {}).status, 401);
}

TEST(AccessLogBackpressure, AStdoutNobodyReadsNeitherGrowsMemoryNorBlocksShutdown) {
  // The access log on stdout, a pipe that is never read (a stalled log shipper, `serve | less`).
  const std::string dir = harness::temp_dir();
  std::ofstream(dir + "/config.yaml")
      << "server:\n  host: 127.0.0.1\n  port: 0\n  threads: 1\n  access_log: stdout\n  drain_timeout_ms: 1000\n"
         "providers:\n  p:\n    base_url: http://127.0.0.1:9/v1\n    api_key: sk-up\n"
         "deployments:\n  d:\n    provider: p\n    model: m\n"
         "routes:\n  auto:\n    candidates: [d]\n"
         "keys:\n  - name: k\n    sha256: "
      << harness::sha256_hex(kKey) << "\n";
  int out[2];
  ASSERT_EQ(::pipe(out), 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], 1);
    const int err = ::open((dir + "/stderr.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(err, 2);
    ::close(out[0]);
    ::execl(SWITCHYARD_BIN, SWITCHYARD_BIN, "serve", "--config", (dir + "/config.yaml").c_str(), "--port-file",
            (dir + "/port").c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(out[1]);  // out[0] stays open and is never read
  int port = 0;
  for (int i = 0; i < 200 && port == 0; ++i) {
    std::ifstream f(dir + "/port");
    if (!(f >> port)) std::this_thread::sleep_for(25ms);
  }
  ASSERT_GT(port, 0);
  // Far more lines than the pipe holds (64 KiB: a few hundred): the writer blocks at once.
  {
    Connection c(port);
    const std::string request = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    for (int i = 0; i < 30000; ++i) {
      ASSERT_TRUE(c.send_raw(request));
      ASSERT_EQ(c.read_response().status, 200) << "request " << i;
    }
  }
#ifndef SWITCHYARD_SANITIZED  // AddressSanitizer's quarantine keeps freed memory resident
  EXPECT_LT(harness::rss_kb(pid), 96 * 1024) << "the log's buffer is bounded (8 MiB); lines beyond it are dropped";
#endif
  // SIGTERM: drained (nothing in flight) and gone within the drain deadline and the log's own
  // stop wait (2 s), though its writer is still blocked.
  ::kill(pid, SIGTERM);
  int status = 0;
  bool exited = false;
  for (int i = 0; i < 100 && !exited; ++i) {
    exited = ::waitpid(pid, &status, WNOHANG) == pid;
    if (!exited) std::this_thread::sleep_for(50ms);
  }
  if (!exited) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  ::close(out[0]);
  EXPECT_TRUE(exited) << "the gateway did not exit within 5 s of SIGTERM with its stdout blocked";
}
