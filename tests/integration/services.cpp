#include "services.hpp"

#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <filesystem>
#include <stdexcept>
#include <thread>

namespace harness {

namespace {

/// Runs a shell command; its output (stdout and stderr), and whether it succeeded.
std::pair<bool, std::string> shell(const std::string& command) {
  std::string out;
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (!p) return {false, "popen failed"};
  std::array<char, 4096> buf;
  while (std::size_t n = std::fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  const int status = ::pclose(p);
  return {status == 0, out};
}

std::string find_pg_bin() {
  // Debian keeps the server's programs out of PATH, per major version.
  for (const char* v : {"17", "16", "15", "14", "13"}) {
    std::string dir = std::string("/usr/lib/postgresql/") + v + "/bin";
    if (std::filesystem::exists(dir + "/initdb")) return dir;
  }
  throw std::runtime_error("PostgreSQL's server programs are not installed (apt-get install postgresql)");
}

}  // namespace

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

Postgres::Postgres() : bin_(find_pg_bin()), port_(free_port()) {
  // Its own folder under /tmp (reachable by the server's user; removed by the destructor).
  char tmpl[] = "/tmp/switchyard-pg-XXXXXX";
  if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  if (::geteuid() == 0) {
    passwd* pw = ::getpwnam("postgres");
    if (!pw) throw std::runtime_error("running as root, and there is no postgres user to run PostgreSQL as");
    if (::chown(dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0) throw std::runtime_error("chown " + dir_ + " failed");
  }
  auto [ok, out] = shell(run_as_owner(bin_ + "/initdb -D " + dir_ + "/data -U postgres -A trust -E UTF8 --no-sync"));
  if (!ok) throw std::runtime_error("initdb failed: " + out);
  start();
}

Postgres::~Postgres() {
  if (running_) stop();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::string Postgres::run_as_owner(const std::string& command) {
  return ::geteuid() == 0 ? "runuser -u postgres -- " + command : command;
}

void Postgres::start() {
  const std::string options = "-p " + std::to_string(port_) + " -k " + dir_ +
                              " -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
                              " -c full_page_writes=off -c max_connections=200";
  auto [ok, out] = shell(run_as_owner(bin_ + "/pg_ctl -D " + dir_ + "/data -l " + dir_ + "/log -w -t 60 -o '" +
                                      options + "' start"));
  if (!ok) {
    auto [_, log] = shell("cat " + dir_ + "/log");
    throw std::runtime_error("PostgreSQL did not start: " + out + log);
  }
  running_ = true;
}

void Postgres::stop() {
  shell(run_as_owner(bin_ + "/pg_ctl -D " + dir_ + "/data -m fast -w -t 60 stop"));
  running_ = false;
}

std::string Postgres::new_database() {
  const std::string name = "t" + std::to_string(++databases_);
  auto [ok, out] = shell("psql -h 127.0.0.1 -p " + std::to_string(port_) + " -U postgres -d postgres -q -c 'CREATE DATABASE " +
                         name + "'");
  if (!ok) throw std::runtime_error("CREATE DATABASE failed: " + out);
  return "host=127.0.0.1 port=" + std::to_string(port_) + " user=postgres dbname=" + name + " connect_timeout=2";
}

Redis::Redis() : dir_(temp_dir()), port_(free_port()) {
  server_args_ = {"--port", std::to_string(port_)};
  start();
}

Redis::Redis(const std::string& cert, const std::string& key, const std::string& password)
    : dir_(temp_dir()), port_(free_port()) {
  server_args_ = {"--port", "0", "--tls-port", std::to_string(port_), "--tls-cert-file", cert, "--tls-key-file", key,
                  "--tls-ca-cert-file", cert, "--tls-auth-clients", "no", "--requirepass", password};
  cli_args_ = {"--tls", "--cacert", cert, "-a", password, "--no-auth-warning"};
  start();
}

Redis::~Redis() { stop(); }

void Redis::start() {
  // The harness execs by path: redis-server is found on PATH here.
  std::string bin = "redis-server";
  if (const char* path = std::getenv("PATH"))
    for (std::string_view rest = path; !rest.empty();) {
      auto colon = rest.find(':');
      std::string dir(rest.substr(0, colon));
      rest = colon == std::string_view::npos ? std::string_view{} : rest.substr(colon + 1);
      if (std::filesystem::exists(dir + "/redis-server")) {
        bin = dir + "/redis-server";
        break;
      }
    }
  std::vector<std::string> argv{bin, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                "--dir", dir_, "--protected-mode", "no"};
  argv.insert(argv.end(), server_args_.begin(), server_args_.end());
  process_ = std::make_unique<Process>(argv);
  for (int i = 0; i < 200; ++i) {
    if (cli("PING").find("PONG") != std::string::npos) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  throw std::runtime_error("redis-server did not start: " + process_->output());
}

void Redis::stop() {
  if (!process_) return;
  process_->signal(9);
  process_->wait(std::chrono::seconds(10));
  process_.reset();
}

std::string Redis::cli(const std::string& args) {
  std::string flags;
  for (const auto& a : cli_args_) flags += " '" + a + "'";
  return shell("redis-cli -h 127.0.0.1 -p " + std::to_string(port_) + flags + " " + args).second;
}

}  // namespace harness
