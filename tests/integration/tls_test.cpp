// HTTPS upstreams: certificate and host-name verification, SNI, a custom CA, and DNS.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "harness.hpp"
#include "tls_server.hpp"

using harness::Gateway;
using harness::Response;
namespace json = boost::json;

namespace {

const std::string kKey = "sk-tls-test";
const std::string kAnswer =
    R"({"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"over tls"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}})";

std::string config(const std::string& base_url, const std::string& ca_file) {
  std::string y = "server:\n  port: 0\n  threads: 1\n  access_log: off\nupstream:\n  connect_timeout_ms: 2000\n";
  if (!ca_file.empty()) y += "  ca_file: " + ca_file + "\n";
  y += "providers:\n  tls:\n    base_url: " + base_url + "\n    api_key: sk-up\n"
       "deployments:\n  d:\n    provider: tls\n    model: m\n"
       "routes:\n  auto:\n    candidates: [d]\n"
       "keys:\n  - name: k\n    sha256: " + harness::sha256_hex(kKey) + "\n";
  return y;
}

Response chat(int port) {
  return harness::http(port, "POST", "/v1/chat/completions",
                       {{"Authorization", "Bearer " + kKey}},
                       R"({"model":"auto","messages":[{"role":"user","content":"hi"}]})");
}

}  // namespace

TEST(Tls, VerifiesTheUpstreamAgainstAConfiguredCa) {
  std::string dir = harness::temp_dir();
  harness::TestCert cert = harness::make_cert(dir, "localhost");
  harness::TlsServer server(cert, kAnswer);
  std::string url = "https://localhost:" + std::to_string(server.port()) + "/v1";

  // Trusted through upstream.ca_file, name resolved through DNS ("localhost"): it works.
  Gateway trusted(config(url, cert.cert_path));
  Response r = chat(trusted.port());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body).at("choices").at(0).at("message").at("content").as_string(), "over tls");

  // The system trust store does not know this CA: refused, as a 502 in OpenAI's shape.
  Gateway untrusted(config(url, ""));
  r = chat(untrusted.port());
  EXPECT_EQ(r.status, 502);
  EXPECT_EQ(json::parse(r.body).at("error").at("code").as_string(), "tls_failed");
}

TEST(Tls, RefusesACertificateForAnotherName) {
  std::string dir = harness::temp_dir();
  harness::TestCert other = harness::make_cert(dir, "other.example");
  harness::TlsServer server(other, kAnswer);
  // Trusted CA, wrong name: host-name verification must fail.
  Gateway gw(config("https://localhost:" + std::to_string(server.port()) + "/v1", other.cert_path));
  Response r = chat(gw.port());
  EXPECT_EQ(r.status, 502);
  EXPECT_EQ(json::parse(r.body).at("error").at("code").as_string(), "tls_failed");
}
