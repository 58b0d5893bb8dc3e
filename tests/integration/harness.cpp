#include "harness.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "governance/keys.hpp"
#include "net/http1.hpp"

namespace harness {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {
std::string& root_dir() {
  static std::string root;
  return root;
}
}  // namespace

std::string temp_dir() {
  if (root_dir().empty()) {
    char tmpl[] = "/tmp/switchyard-it-XXXXXX";
    root_dir() = mkdtemp(tmpl);
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(root_dir(), ec);
    });
  }
  static int counter = 0;
  std::string dir = root_dir() + "/" + std::to_string(++counter);
  fs::create_directories(dir);
  return dir;
}

Process::Process(std::vector<std::string> argv, std::map<std::string, std::string> env) {
  log_path_ = temp_dir() + "/output.log";
  pid_ = fork();
  if (pid_ == 0) {
    int fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
}

Process::~Process() {
  if (running()) {
    ::kill(pid_, SIGKILL);
    wait(5s);
  }
}

void Process::signal(int sig) { ::kill(pid_, sig); }

std::optional<int> Process::wait(std::chrono::milliseconds timeout) {
  if (status_) return status_;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int st = 0;
    pid_t r = waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      return status_;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(10ms);
  }
}

bool Process::running() { return !wait(0ms).has_value(); }

std::string Process::output() const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int wait_port_file(const std::string& path, Process& process) {
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in(path);
    int port = 0;
    if (in >> port && port > 0) return port;
    if (!process.running()) break;
    std::this_thread::sleep_for(10ms);
  }
  throw std::runtime_error("process did not start: " + process.output());
}

// ---- Connection ----------------------------------------------------------------------------------

Connection::Connection(int port, const std::string& from) {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  if (!from.empty()) {
    sockaddr_in local{};
    local.sin_family = AF_INET;
    ::inet_pton(AF_INET, from.c_str(), &local.sin_addr);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
      ::close(fd_);
      fd_ = -1;
      return;
    }
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd_);
    fd_ = -1;
    return;
  }
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

Connection::~Connection() { close(); }

void Connection::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool Connection::send_raw(const std::string& bytes) {
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

bool Connection::fill(std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) return false;
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
  char tmp[16384];
  ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
  if (n <= 0) return false;
  buf_.append(tmp, static_cast<std::size_t>(n));
  return true;
}

std::string Connection::read_some(std::chrono::milliseconds timeout) {
  if (buf_.empty()) fill(std::chrono::steady_clock::now() + timeout);
  std::string out;
  out.swap(buf_);
  return out;
}

bool Connection::wait_closed(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd_, POLLIN, 0};
    int r = ::poll(&p, 1, 20);
    if (r > 0) {
      char tmp[4096];
      ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
      if (n <= 0) return true;
      buf_.append(tmp, static_cast<std::size_t>(n));
    }
  }
  return false;
}

Response Connection::read_head(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  Response r;
  switchyard::net::http1::ResponseHead head;
  for (;;) {
    auto st = switchyard::net::http1::parse_response(buf_, 1 << 20, head);
    if (st == switchyard::net::http1::ParseStatus::complete) break;
    if (st != switchyard::net::http1::ParseStatus::incomplete || !fill(deadline)) {
      r.closed = true;
      return r;
    }
  }
  r.status = head.status;
  for (std::size_t i = 0; i < head.header_count; ++i) {
    std::string name(head.header(i).name);
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    r.headers[name] = std::string(head.header(i).value);
  }
  r.closed = !head.keep_alive();
  buf_.erase(0, head.head_size);
  return r;
}

Response Connection::read_response(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  Response r = read_head(timeout);
  if (r.status == 0) return r;
  if (r.header("transfer-encoding") == "chunked") {
    switchyard::net::http1::ChunkedDecoder decoder;
    for (;;) {
      std::size_t used = 0;
      auto st = decoder.feed(buf_, used, [&](std::string_view p) { r.body.append(p); });
      buf_.erase(0, used);
      if (st == switchyard::net::http1::ChunkedDecoder::Status::done) break;
      if (st == switchyard::net::http1::ChunkedDecoder::Status::error || !fill(deadline)) {
        r.closed = true;  // truncated
        break;
      }
    }
  } else if (!r.header("content-length").empty()) {
    std::size_t len = std::stoul(r.header("content-length"));
    while (buf_.size() < len && fill(deadline)) {
    }
    if (buf_.size() < len) r.closed = true;  // truncated
    r.body = buf_.substr(0, len);
    buf_.erase(0, std::min(len, buf_.size()));
  } else {
    while (fill(deadline)) {
    }
    r.body.swap(buf_);
    r.closed = true;
  }
  return r;
}

std::string request(const std::string& method, const std::string& path,
                    const std::map<std::string, std::string>& headers, const std::string& body) {
  std::string out = method + " " + path + " HTTP/1.1\r\nHost: test\r\n";
  bool has_length = false;
  for (const auto& [k, v] : headers) {
    out += k + ": " + v + "\r\n";
    if (k == "Content-Length" || k == "Transfer-Encoding") has_length = true;
  }
  if (!has_length && (!body.empty() || method == "POST"))
    out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  out += "\r\n" + body;
  return out;
}

Response http(int port, const std::string& method, const std::string& path,
              const std::map<std::string, std::string>& headers, const std::string& body) {
  Connection c(port);
  if (!c.ok()) return {};
  c.send_raw(request(method, path, headers, body));
  return c.read_response();
}

// ---- Fake and Gateway --------------------------------------------------------------------------

Fake::Fake(const std::string& default_behavior, int idle_timeout_ms) {
  std::string dir = temp_dir();
  process_ = std::make_unique<Process>(std::vector<std::string>{
      FAKE_PROVIDER_BIN, "--port", "0", "--port-file", dir + "/port", "--behavior", default_behavior,
      "--idle-timeout-ms", std::to_string(idle_timeout_ms)});
  port_ = wait_port_file(dir + "/port", *process_);
}

void Fake::script(const std::string& behavior, int times, const std::string& model, const std::string& contains) {
  std::string body = "{\"behavior\":" + behavior + ",\"times\":" + std::to_string(times);
  if (!model.empty()) body += ",\"model\":\"" + model + "\"";
  if (!contains.empty()) body += ",\"contains\":\"" + contains + "\"";
  body += "}";
  Response r = http(port_, "POST", "/_fake/script", {{"Content-Type", "application/json"}}, body);
  if (r.status != 200) throw std::runtime_error("fake script refused: " + r.body);
}

void Fake::reset() { http(port_, "DELETE", "/_fake/requests"); }
std::string Fake::requests_json() { return http(port_, "GET", "/_fake/requests").body; }
std::string Fake::stats_json() { return http(port_, "GET", "/_fake/stats").body; }

Gateway::Gateway(const std::string& config_yaml) {
  dir_ = temp_dir();
  std::ofstream(dir_ + "/config.yaml") << config_yaml;
  process_ = std::make_unique<Process>(std::vector<std::string>{
      SWITCHYARD_BIN, "serve", "--config", dir_ + "/config.yaml", "--port-file", dir_ + "/port"});
  port_ = wait_port_file(dir_ + "/port", *process_);
  std::ifstream in(dir_ + "/port");
  int first = 0;
  in >> first >> admin_port_;
}

long rss_kb(int pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return 0;
}

DescriptorSqueeze::DescriptorSqueeze(int pid, int free) : pid_(pid) {
  // Descriptors held across two looks a moment apart: one open only for an instant (the config
  // watcher reads its file once a second) would leave a free number behind once closed.
  auto open_now = [pid] {
    std::set<int> fds;
    for (const auto& entry : fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd"))
      fds.insert(std::stoi(entry.path().filename().string()));
    return fds;
  };
  std::set<int> first = open_now();
  std::this_thread::sleep_for(20ms);
  std::set<int> used;
  for (int fd : open_now())
    if (first.count(fd)) used.insert(fd);
  // The lowest unused numbers are handed out first: stop at the (free + 1)-th of them.
  int limit = 0;
  for (int unused = 0;; ++limit)
    if (!used.count(limit) && unused++ == free) break;
  rlimit old{};
  rlimit now{static_cast<rlim_t>(limit), 0};
  if (::prlimit(pid, RLIMIT_NOFILE, nullptr, &old) != 0) throw std::runtime_error("prlimit: read");
  now.rlim_max = old.rlim_max;
  if (::prlimit(pid, RLIMIT_NOFILE, &now, nullptr) != 0) throw std::runtime_error("prlimit: lower");
  old_soft_ = old.rlim_cur;
  old_hard_ = old.rlim_max;
}

DescriptorSqueeze::~DescriptorSqueeze() {
  rlimit old{static_cast<rlim_t>(old_soft_), static_cast<rlim_t>(old_hard_)};
  ::prlimit(pid_, RLIMIT_NOFILE, &old, nullptr);
}

std::string sha256_hex(const std::string& text) { return switchyard::governance::sha256_hex(text); }

std::vector<std::string> sse_data(const std::string& body) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while ((pos = body.find("data: ", pos)) != std::string::npos) {
    std::size_t end = body.find("\n\n", pos);
    out.push_back(body.substr(pos + 6, end - pos - 6));
    pos = end == std::string::npos ? body.size() : end + 2;
  }
  return out;
}

}  // namespace harness
