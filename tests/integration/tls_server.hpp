#pragma once

#include <atomic>
#include <string>
#include <thread>

namespace harness {

/// A self-signed certificate (its own CA) for `name`, written to dir/name.{crt,key}.
struct TestCert {
  std::string cert_path;
  std::string key_path;
};
TestCert make_cert(const std::string& dir, const std::string& name);

/// A minimal HTTPS upstream on 127.0.0.1 (OpenSSL, one connection at a time): reads one request
/// per connection and answers `body` as JSON with `Connection: close`.
class TlsServer {
 public:
  TlsServer(const TestCert& cert, std::string body);
  ~TlsServer();
  int port() const { return port_; }
  int handshakes_ok() const { return ok_.load(); }

 private:
  void run();
  std::string body_;
  void* ctx_ = nullptr;  // SSL_CTX*
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> ok_{0};
  std::thread thread_;
};

}  // namespace harness
