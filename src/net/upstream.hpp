#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "net/buffer.hpp"
#include "net/deadline.hpp"
#include "net/http1.hpp"
#include "net/task.hpp"

namespace switchyard::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

struct UpstreamOptions {
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds first_byte_timeout{120000};
  std::chrono::milliseconds total_timeout{600000};
  std::chrono::milliseconds idle_timeout{30000};  ///< between body reads, once `bound_idle` is on
  std::size_t max_idle_per_host = 64;
  std::size_t max_connections_per_host = 10000;
  std::chrono::milliseconds idle_ttl{30000};
  std::chrono::milliseconds dns_ttl{60000};
  std::string ca_file;
  std::size_t max_head_bytes = 64 * 1024;
  std::size_t read_buffer_bytes = 4 * 1024;  ///< per open stream: memory at 10k streams
};

/// Where a request goes: scheme, host and port.
struct Origin {
  Origin() = default;
  Origin(std::string host, std::uint16_t port, bool tls);
  std::string host;
  std::uint16_t port = 80;
  bool tls = false;
  std::string key;  ///< "https://host:port", the pool key
};

/// Why an upstream exchange failed.
enum class UpstreamError {
  none,
  dns,               ///< the host name did not resolve
  connect,           ///< refused / unreachable
  tls,               ///< handshake or certificate verification failed
  reset,             ///< the connection broke (reset, EOF before a full response)
  bad_response,      ///< not HTTP/1.1, malformed framing, head too large
  connect_timeout,
  first_byte_timeout,
  idle_timeout,      ///< content had begun, then nothing came for the idle timeout
  total_timeout,
  pool_exhausted,    ///< max_connections_per_host reached on this loop
  local_resources,   ///< the gateway itself is out of descriptors, socket buffers or ports
  cancelled,         ///< the client went away
};

std::string_view to_string(UpstreamError error);

class UpstreamPool;

/// One open connection to an upstream, plain or TLS.
class UpstreamConnection {
 public:
  UpstreamConnection(asio::io_context& io, asio::ssl::context* tls_context);
  Socket& socket();
  /// The awaiter of one socket operation (`as_tuple(use_task)`): returned as is, so the caller
  /// awaits the operation itself, with no coroutine frame in between.
  using IoAwaitable = detail::OpAwaiter<std::tuple<boost::system::error_code, std::size_t>>;
  /// Writes `a` then `b`; the bytes must outlive the await.
  IoAwaitable write(std::string_view a, std::string_view b);
  /// Reads what is there, up to `size` bytes. On a plain connection, pass its result to
  /// `note_read` first thing after the await (see readiness.hpp).
  IoAwaitable read_some(char* data, std::size_t size);
  /// The last read returned `n` of `asked` bytes: when fewer, the socket is empty and the next
  /// read waits for epoll instead of trying a `recv` at once. Only right after that read's await
  /// resumed, and only with no write under way (the exchange writes, then reads).
  void note_read(std::size_t n, std::size_t asked) noexcept;
  void close();
  bool tls() const { return tls_.has_value(); }

 private:
  friend class UpstreamPool;
  friend class UpstreamExchange;
  std::optional<Socket> plain_;
  std::optional<asio::ssl::stream<Socket>> tls_;
  ByteBuffer buf_;
  http1::ResponseHead head_;
  Clock::time_point idle_since_{};
  void* host_ = nullptr;  ///< the pool's entry for its origin (stable: node-based map)
  bool closed_ = false;
  bool read_waits_ = false;  ///< the last read waited in the reactor (not completed at once)
};

/// Keep-alive connections per origin for one event loop (not thread-safe; one per loop), with a
/// DNS cache and the TLS client context.
class UpstreamPool {
 public:
  UpstreamPool(asio::io_context& io, DeadlineList& deadlines, UpstreamOptions options);
  ~UpstreamPool();

  const UpstreamOptions& options() const { return options_; }
  asio::io_context& io() { return io_; }
  DeadlineList& deadlines() { return deadlines_; }

  /// An idle pooled connection to `origin`, or nullptr.
  std::unique_ptr<UpstreamConnection> take_idle(const Origin& origin);
  /// Opens a fresh connection into `slot` (set before connecting, so that a deadline can close
  /// it); counts against the per-origin cap. On failure `slot` is empty.
  Task<UpstreamError> connect(const Origin& origin,
                              std::unique_ptr<UpstreamConnection>& slot,
                              std::string& detail);
  /// Returns a connection after a complete exchange; `reusable` false closes it.
  void release(std::unique_ptr<UpstreamConnection> connection, bool reusable);

  /// Closes every idle connection (drain, reload).
  void close_idle();

 private:
  struct HostPool {
    std::vector<std::unique_ptr<UpstreamConnection>> idle;
    std::size_t open = 0;
  };
  struct DnsEntry {
    std::vector<tcp::endpoint> endpoints;
    Clock::time_point expires;
  };
  Task<std::pair<UpstreamError, std::vector<tcp::endpoint>>> resolve(const Origin& origin);

  asio::io_context& io_;
  DeadlineList& deadlines_;
  UpstreamOptions options_;
  std::unique_ptr<asio::ssl::context> tls_context_;
  std::unordered_map<std::string, HostPool> hosts_;
  std::unordered_map<std::string, DnsEntry> dns_;
};

/// One HTTP/1.1 request/response on a pooled connection, with connect, first-byte and total
/// deadlines. A reused connection that turns out stale before any response byte is replaced
/// once by a fresh one. Destroying the exchange returns the connection to the pool when the
/// response was read completely.
class UpstreamExchange final : public Deadline {
 public:
  /// `origin` must outlive the exchange (it is a provider's, kept by the runtime the request
  /// pinned): referred to, not copied, on every request.
  UpstreamExchange(UpstreamPool& pool, const Origin& origin);
  ~UpstreamExchange() override;

  /// Sends `head` + `body` and reads the response head.
  Task<UpstreamError> start(std::string_view head, std::string_view body);

  /// The response head (valid after a successful `start`).
  const http1::ResponseHead& response() const { return *response_; }

  /// Appends decoded body bytes from the next read to `out`; sets `done` at the end of the body.
  Task<UpstreamError> read_some(std::string& out, bool& done);

  /// Reads the whole body (up to `limit` bytes) into `out`.
  Task<UpstreamError> read_all(std::string& out, std::size_t limit);

  /// Without waiting: appends the body bytes that came with the head to `out`. True when that
  /// settled the body (whole, or `e` set: an error or more than `limit` bytes); false when the
  /// rest must be read (`read_all` goes on from there). Saves a suspension on small answers.
  bool read_buffered(std::string& out, std::size_t limit, UpstreamError& e);

  /// Without waiting or copying: when the whole body (Content-Length framed, at most `limit`
  /// bytes) came with the head, sets `body` to it in the connection's buffer and ends the body.
  /// The view stays valid as long as this exchange (the connection goes back to the pool when
  /// the exchange ends). False, with nothing taken, otherwise.
  bool buffered_body(std::string_view& body, std::size_t limit);

  /// Tighter deadlines for this exchange than the pool's: the time to the response head, and an
  /// absolute end (a route's deadline). Call before `start`.
  void limit(std::optional<std::chrono::milliseconds> first_byte, std::optional<Clock::time_point> end) {
    first_byte_limit_ = first_byte;
    end_limit_ = end;
  }

  /// While streaming: the first body bytes must arrive by `at` (a time-to-first-token limit when
  /// the head came early); nullopt lifts it (only the total deadline remains). Its expiry is a
  /// `first_byte_timeout`.
  void first_body_by(std::optional<Clock::time_point> at);

  /// From now on, each body read must bring bytes within the pool's idle timeout (its expiry:
  /// `idle_timeout`). Turned on once content flows: before a stream's first content a model may
  /// think in silence for minutes, which only a time-to-first-content limit may bound.
  void bound_idle() {
    if (phase_ == Phase::body) phase_ = Phase::idle;
  }

  /// Aborts whatever is pending (client disconnect).
  void cancel();

  /// The system's words for the last failure ("Too many open files"), when there is one.
  const std::string& detail() const { return detail_; }

  /// Time from start() to the response head.
  std::chrono::microseconds time_to_head() const { return ttfb_; }

  void expire() override;

 private:
  enum class Phase { connect, wait_head, wait_first_body, body, idle };
  /// Appends body bytes (decoded when chunked) to `out`; marks the end of the body.
  UpstreamError consume(std::string_view bytes, std::string& out);
  /// Moves the body bytes read together with the head into `out`; false if there are none.
  bool take_early_body(std::string& out, UpstreamError& e);
  UpstreamError classify(const boost::system::error_code& ec) const;
  void arm(Phase phase);

  UpstreamPool& pool_;
  const Origin& origin_;
  std::unique_ptr<UpstreamConnection> conn_;
  /// Parsed into the connection, which outlives requests: keeps 2 KiB of header slots out of
  /// every request's coroutine frame (frames that large are never recycled by Asio).
  http1::ResponseHead* response_ = nullptr;
  http1::ChunkedDecoder chunked_;
  std::uint64_t body_remaining_ = 0;
  bool body_done_ = false;
  bool close_delimited_ = false;
  bool reusable_ = false;
  bool timed_out_ = false;
  bool cancelled_ = false;
  Phase phase_ = Phase::connect;
  Clock::time_point started_{};
  Clock::time_point total_deadline_{};
  std::chrono::microseconds ttfb_{0};
  std::optional<std::chrono::milliseconds> first_byte_limit_;
  std::optional<Clock::time_point> end_limit_;
  std::string detail_;
};

}  // namespace switchyard::net
