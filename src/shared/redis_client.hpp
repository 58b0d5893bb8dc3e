#pragma once

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "net/task.hpp"

/// A Redis client for one event loop: commands are pipelined on one connection and awaited by
/// the coroutines that sent them, so the loop never blocks on Redis (RESP2 over TCP or TLS;
/// hiredis's reader parses the replies). Not thread-safe: one per loop.
namespace switchyard::shared {

struct RedisReply {
  enum class Type : std::uint8_t { nil, integer, string, status, error, array } type = Type::nil;
  std::int64_t integer = 0;
  std::string str;  ///< string, status, error
  std::vector<RedisReply> elements;

  bool is_error() const { return type == Type::error; }
  /// An integer, or a string holding one (what scripts return); `fallback` otherwise.
  std::int64_t as_int(std::int64_t fallback = 0) const;
};

struct RedisEndpoint {
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;
  std::string username, password;  ///< AUTH when a password is set
  int database = 0;                ///< SELECT when not 0
  bool tls = false;
  std::string ca_file;  ///< TLS: verified against the system's CAs, and this file when set
};

class RedisClient {
 public:
  RedisClient(boost::asio::io_context& io, RedisEndpoint endpoint);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  /// Sends one command and awaits its reply. nullopt when Redis did not answer within
  /// `timeout`: unreachable (a connection is tried at most every `retry_ms` meanwhile — calls in
  /// between fail at once), the connection broke, or it was too slow. A Redis error (a script's
  /// failure) is a reply of type error.
  net::Task<std::optional<RedisReply>> call(std::vector<std::string> argv, std::chrono::milliseconds timeout);

  /// Why the last connection failed (for the log), empty when none did.
  const std::string& last_error() const;

  /// Tests: the wait between connection attempts while Redis is unreachable.
  static constexpr std::chrono::milliseconds retry_ms{250};

  struct State;

 private:
  std::shared_ptr<State> state_;
};

/// RESP: the command as Redis reads it.
void append_command(std::string& out, const std::vector<std::string>& argv);

}  // namespace switchyard::shared
