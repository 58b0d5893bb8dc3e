#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <map>
#include <optional>
#include <string>
#include <vector>

/// Integration-test harness: real processes (the gateway, the fake provider) on port 0, and a
/// small blocking HTTP/1.1 client over POSIX sockets that can also send raw bytes.
namespace harness {

/// A child process with its output captured to a file.
class Process {
 public:
  Process(std::vector<std::string> argv, std::map<std::string, std::string> env = {});
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  int pid() const { return pid_; }
  void signal(int sig);
  /// Waits for exit; returns the exit status, or nullopt on timeout.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  bool running();
  std::string output() const;  ///< stdout + stderr so far

 private:
  int pid_ = -1;
  std::string log_path_;
  std::optional<int> status_;
};

/// A unique temporary directory, removed at exit of the test binary.
std::string temp_dir();

/// Waits for a port file to appear and returns the port.
int wait_port_file(const std::string& path, Process& process);

struct Response {
  int status = 0;
  std::map<std::string, std::string> headers;  ///< lowercase names
  std::string body;                           ///< de-chunked
  bool closed = false;                        ///< the server closed the connection after it (or cut it short)
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

/// A client connection.
class Connection {
 public:
  /// `from`: the local address to connect from (another loopback address, 127.0.0.2, is
  /// another client to the gateway); empty: any.
  explicit Connection(int port, const std::string& from = "");
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  bool ok() const { return fd_ >= 0; }
  /// Sends all of `bytes` (blocking); false when the connection broke first.
  bool send_raw(const std::string& bytes);
  /// Reads one response (head + whole body). Status 0 when the connection closed first.
  Response read_response(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  /// Reads the response head only; the body is then read with `read_some`.
  Response read_head(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  /// Raw bytes received next (empty on EOF or timeout).
  std::string read_some(std::chrono::milliseconds timeout);
  /// True if the peer closed the connection within the timeout.
  bool wait_closed(std::chrono::milliseconds timeout);
  void close();

 private:
  bool fill(std::chrono::steady_clock::time_point deadline);
  int fd_ = -1;
  std::string buf_;
};

std::string request(const std::string& method, const std::string& path,
                    const std::map<std::string, std::string>& headers, const std::string& body);

/// One request on a fresh connection.
Response http(int port, const std::string& method, const std::string& path,
              const std::map<std::string, std::string>& headers = {}, const std::string& body = "");

/// The fake provider, started on a free port.
class Fake {
 public:
  explicit Fake(const std::string& default_behavior = "{}", int idle_timeout_ms = 60000);
  int port() const { return port_; }
  /// The next `times` requests (of `model`, and whose body holds `contains`, when given) get
  /// `behavior`.
  void script(const std::string& behavior, int times = 1, const std::string& model = "",
              const std::string& contains = "");
  void reset();
  std::string requests_json();
  std::string stats_json();
  Process& process() { return *process_; }

 private:
  std::unique_ptr<Process> process_;
  int port_ = 0;
};

/// The gateway, started on a free port with the given config (server.port is forced to 0).
class Gateway {
 public:
  explicit Gateway(const std::string& config_yaml);
  int port() const { return port_; }
  /// The admin listener's port (server.admin), 0 without one.
  int admin_port() const { return admin_port_; }
  Process& process() { return *process_; }
  std::string log() const { return process_->output(); }

 private:
  std::string dir_;
  std::unique_ptr<Process> process_;
  int port_ = 0;
  int admin_port_ = 0;
};

/// Lowers a process's open files limit (soft) so that exactly `free` more descriptors fit: the
/// new limit leaves that many unused numbers below it. Restores the old limit when it ends.
class DescriptorSqueeze {
 public:
  DescriptorSqueeze(int pid, int free);
  ~DescriptorSqueeze();
  DescriptorSqueeze(const DescriptorSqueeze&) = delete;
  DescriptorSqueeze& operator=(const DescriptorSqueeze&) = delete;

 private:
  int pid_;
  std::uint64_t old_soft_ = 0, old_hard_ = 0;
};

std::string sha256_hex(const std::string& text);

/// A process's resident memory (VmRSS), KiB; 0 when it cannot be read.
long rss_kb(int pid);

/// Parses SSE `data:` payloads out of a body.
std::vector<std::string> sse_data(const std::string& body);

}  // namespace harness
