#include "tls_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <stdexcept>

namespace harness {

TestCert make_cert(const std::string& dir, const std::string& name) {
  TestCert c{dir + "/" + name + ".crt", dir + "/" + name + ".key"};
  std::string cmd = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2"
                    " -subj /CN=" + name + " -addext subjectAltName=DNS:" + name +
                    " -addext basicConstraints=critical,CA:TRUE"
                    " -keyout " + c.key_path + " -out " + c.cert_path + " >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0) throw std::runtime_error("openssl req failed");
  return c;
}

TlsServer::TlsServer(const TestCert& cert, std::string body) : body_(std::move(body)) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (SSL_CTX_use_certificate_file(ctx, cert.cert_path.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, cert.key_path.c_str(), SSL_FILETYPE_PEM) != 1)
    throw std::runtime_error("cannot load test certificate");
  ctx_ = ctx;
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::listen(listen_fd_, 16);
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { run(); });
}

TlsServer::~TlsServer() {
  stop_ = true;
  thread_.join();
  ::close(listen_fd_);
  SSL_CTX_free(static_cast<SSL_CTX*>(ctx_));
}

void TlsServer::run() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    int fd = ::accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) continue;
    timeval tv{2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    SSL* ssl = SSL_new(static_cast<SSL_CTX*>(ctx_));
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) == 1) {
      ++ok_;
      std::string in;
      char buf[4096];
      std::size_t need = std::string::npos;
      while (in.size() < need) {
        int n = SSL_read(ssl, buf, sizeof buf);
        if (n <= 0) break;
        in.append(buf, static_cast<std::size_t>(n));
        auto end = in.find("\r\n\r\n");
        if (end != std::string::npos && need == std::string::npos) {
          auto cl = in.find("Content-Length: ");
          need = end + 4 + (cl != std::string::npos ? std::stoul(in.substr(cl + 16)) : 0);
        }
      }
      std::string out = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                        std::to_string(body_.size()) + "\r\nConnection: close\r\n\r\n" + body_;
      SSL_write(ssl, out.data(), static_cast<int>(out.size()));
      SSL_shutdown(ssl);
    }
    SSL_free(ssl);
    ::close(fd);
  }
}

}  // namespace harness
