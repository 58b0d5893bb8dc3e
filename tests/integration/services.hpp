#pragma once

#include <memory>
#include <string>
#include <vector>

#include "harness.hpp"

/// Throwaway PostgreSQL and Redis servers for the multi-node tests: each in a temporary
/// directory, on a free loopback port, stopped (and restartable) by the test. PostgreSQL runs
/// as the `postgres` system user when the tests run as root (it refuses root).
namespace harness {

class Postgres {
 public:
  /// initdb and start; throws std::runtime_error with the server's output when it cannot.
  Postgres();
  ~Postgres();
  Postgres(const Postgres&) = delete;
  Postgres& operator=(const Postgres&) = delete;

  int port() const { return port_; }
  /// A fresh, empty database; its libpq connection string.
  std::string new_database();
  /// Stops the server (fast shutdown: clients are disconnected) / starts it again, same data.
  void stop();
  void start();

 private:
  std::string run_as_owner(const std::string& command);
  std::string dir_, bin_;
  int port_ = 0;
  int databases_ = 0;
  bool running_ = false;
};

class Redis {
 public:
  /// Starts redis-server without persistence; throws when it cannot.
  Redis();
  /// With TLS only (this certificate and key; clients not asked for one) and a password.
  Redis(const std::string& cert, const std::string& key, const std::string& password);
  ~Redis();
  int port() const { return port_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }
  /// Kills the server (its data is gone: nothing is persisted) / starts a new one on the same port.
  void stop();
  void start();
  /// One command through redis-cli; its output.
  std::string cli(const std::string& args);

 private:
  std::string dir_;
  int port_ = 0;
  std::vector<std::string> server_args_, cli_args_;
  std::unique_ptr<Process> process_;
};

/// A free loopback TCP port (bound then released).
int free_port();

}  // namespace harness
