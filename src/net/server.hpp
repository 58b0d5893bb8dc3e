#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/error.hpp"
#include "net/task.hpp"
#include "net/deadline.hpp"
#include "net/http1.hpp"
#include "net/client_limits.hpp"

namespace switchyard::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

struct ServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;  ///< 0 = any free port (read it back with `Server::port()`)
  int threads = 1;
  std::size_t max_connections = 10000;
  std::size_t max_header_bytes = 16 * 1024;
  std::size_t max_body_bytes = 4 * 1024 * 1024;
  std::chrono::milliseconds header_timeout{10000};
  std::chrono::milliseconds body_timeout{30000};
  std::chrono::milliseconds idle_timeout{60000};
  std::chrono::milliseconds write_timeout{30000};
  std::chrono::milliseconds drain_timeout{10000};
  /// Per client address, before authentication (see AddressTable).
  AddressTable::Limits per_address;
  /// Request bodies buffered by every connection together (see MemoryBudget); 0 = no budget.
  std::size_t body_memory_bytes = 0;
  /// A second listener for operators (accepted by loop 0): its requests carry `admin_listener`.
  std::string admin_host = "127.0.0.1";
  std::uint16_t admin_port = 0;
  bool admin_listener = false;
};

struct HeaderField {
  std::string_view name;
  std::string_view value;
};

/// A client request as a handler sees it. Views stay valid until the handler returns.
struct Request {
  const http1::RequestHead* head = nullptr;
  std::string_view body;
  Clock::time_point received;
  bool admin_listener = false;  ///< came through the admin listener

  std::string_view method() const { return head->method; }
  std::string_view target() const { return head->target; }
  /// The target without its query string.
  std::string_view path() const { return target().substr(0, target().find('?')); }
  std::string_view header(std::string_view name) const { return head->find(name); }
  std::string_view header(http1::Known name) const { return head->find(name); }
};

class Session;
class Loop;

/// Writes the response to a request: either whole (`send`) or as a chunked stream. All calls run
/// on the connection's event loop. Writes return false once the client is gone.
class ResponseWriter {
 public:
  explicit ResponseWriter(Session& session) : session_(session) {}

  Task<bool> send(int status, std::string_view content_type, std::string_view body,
                  std::span<const HeaderField> headers = {});
  /// Starts a chunked stream. The head is held back and leaves with the first chunk (one write
  /// instead of two) unless `flush()` is called.
  Task<bool> start_stream(int status, std::string_view content_type,
                          std::span<const HeaderField> headers = {});
  /// One chunk of a stream; `last` ends the stream in the same write.
  Task<bool> write_chunk(std::string_view data, bool last = false);
  Task<bool> end_stream();
  /// Sends a stream's held-back head now instead of with the first chunk.
  Task<bool> flush();

  /// Drops the connection at once, with a TCP reset (fault injection, unrecoverable errors).
  void abort();

  /// True once a status line went out: the request can no longer fail over.
  bool started() const;
  /// Close the connection after this response.
  void close_after();
  /// The request carried a valid credential: the connection no longer counts against its
  /// address's unauthenticated limits (ServerOptions::per_address).
  void authenticated();

  /// Told when the client of the request leaves while the handler waits on something else.
  class DisconnectWatcher {
   public:
    /// Runs once, on the loop, when the client closes or resets the connection.
    virtual void on_client_gone() = 0;

   protected:
    ~DisconnectWatcher() = default;
  };
  /// Starts watching the client connection: `watcher` is told (once) when the client leaves,
  /// until `forget_disconnect` or the handler's return. The watcher must outlive the watch: the
  /// object that starts it stops it in its destructor.
  void watch_disconnect(DisconnectWatcher& watcher);
  /// Stops the watch (before the watcher dies).
  void forget_disconnect();
  bool client_gone() const;


 private:
  Session& session_;
};

/// The application behind a server. One instance per event loop (created by the factory on the
/// loop's thread), so handlers may keep per-loop state (upstream pools) without locks.
class Handler {
 public:
  virtual ~Handler() = default;
  virtual Task<> handle(Request request, ResponseWriter& writer) = 0;
  /// The error body for a request the server refused before the handler saw it (limits, framing),
  /// in the dialect of the path (`target` may be empty).
  virtual std::string render_error(std::string_view target, const core::ApiError& error);
  /// Called when the server refused a request before the handler saw it (`head` may be null).
  virtual void on_refused(const http1::RequestHead* /*head*/, const core::ApiError& /*error*/,
                          Clock::time_point /*received*/) {}
  /// The last event of a stream cut by the drain's deadline or a second signal (an SSE error event
  /// in the dialect of `target`, code `switchyard_draining`), so its client knows to retry.
  virtual std::string stream_cut_event(std::string_view target);
  /// Called once when draining begins.
  virtual void on_drain() {}
  /// Whether work of the handler's own, outside any request, still runs (a drained loop stops
  /// once it is done, or at the drain's deadline).
  virtual bool busy() const { return false; }
};

using HandlerFactory = std::function<std::unique_ptr<Handler>(Loop&)>;

/// What every loop of a server shares: the connection count and the limits across connections.
struct ServerShared {
  explicit ServerShared(const ServerOptions& options)
      : addresses(options.per_address), bodies(options.body_memory_bytes) {}
  std::atomic<std::size_t> connections{0};
  AddressTable addresses;
  MemoryBudget bodies;
};

/// One single-threaded event loop with its own listener (SO_REUSEPORT), sessions and deadlines.
class Loop {
 public:
  Loop(std::size_t index, const ServerOptions& options, ServerShared& shared);
  ~Loop();

  asio::io_context& io() { return io_; }
  std::size_t index() const { return index_; }
  DeadlineList& deadlines() { return deadlines_; }
  const ServerOptions& options() const { return options_; }
  bool draining() const { return draining_; }
  Handler& handler() { return *handler_; }
  /// The budget for buffered bodies that every loop of the server shares.
  MemoryBudget& body_budget() { return shared_.bodies; }

  /// Cached `Date` header value, refreshed by the sweep.
  std::string_view http_date() const { return date_; }
  /// The start of a 200 response's head: status line, Server and Date fields (CRLF-ended).
  std::string_view ok_head() const { return ok_head_; }

 private:
  friend class Server;
  friend class Session;

  void listen(Acceptor& acceptor, const tcp::endpoint& endpoint, bool reuse_port);
  /// Accepts on `acceptor` (the public listener, or the admin listener of loop 0).
  Task<> accept_loop(Acceptor& acceptor, bool admin);
  /// Answers a connection that will not be served (503) and closes it.
  Task<> refuse_connection(std::unique_ptr<Session> session, core::ApiError error);
  /// Refuses a connection taken with the spare descriptor, then takes the spare back.
  Task<> refuse_out_of_descriptors(Socket socket);
  /// Opens the spare descriptor unless it is held (fails quietly while descriptors are short).
  void hold_spare();
  /// A warning, at most one a second (a shortage fails every accept).
  void log_accept_failure(const boost::system::error_code& ec);
  Task<> sweep_loop();
  void begin_drain();
  /// The drain's deadline or a second signal: streams under way end with the handler's cut
  /// event, every connection closes, the loop stops.
  void cut_off();
  void refresh_date();

  std::size_t index_;
  const ServerOptions& options_;
  ServerShared& shared_;
  // One thread runs this context and only it touches its sockets: no per-descriptor locks.
  // Posting from other threads (drain) stays safe: the scheduler keeps its lock.
  /// An io_context whose pending operations (and so every suspended coroutine) can be destroyed
  /// while the handler and sessions they refer to still live: after a drain deadline cut work
  /// off, destroying them later, with the handler gone, would touch freed memory.
  class Context : public asio::io_context {
   public:
    using asio::io_context::io_context;
    void abandon_pending() { shutdown(); }
  };
  Context io_{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  Acceptor acceptor_{io_};
  Acceptor admin_acceptor_{io_};  ///< loop 0 only, when an admin listener is configured
  std::unique_ptr<Handler> handler_;
  DeadlineList deadlines_;
  std::vector<Session*> sessions_;
  bool draining_ = false;
  std::string date_;
  std::string ok_head_;  ///< see ok_head(); renewed with the date
  /// A descriptor held in reserve (on /dev/null): when accepting fails for lack of descriptors,
  /// it is closed so that the waiting connection can be taken and told so, instead of waiting
  /// in the backlog until some descriptor frees.
  int spare_fd_ = -1;
  Clock::time_point accept_failure_logged_{};
  std::chrono::milliseconds sweep_interval_{100};
};

/// A multi-loop HTTP/1.1 server: `threads` loops, each accepting on its own SO_REUSEPORT socket.
class Server {
 public:
  Server(ServerOptions options, HandlerFactory factory);
  ~Server();

  /// Binds every loop's listener; returns false (with a reason) when the address is unusable.
  bool bind(std::string& error);
  std::uint16_t port() const { return port_; }
  /// The admin listener's port (0 without one).
  std::uint16_t admin_port() const { return admin_port_; }
  const ServerShared& shared() const { return shared_; }

  /// Runs the loops until drained or stopped. Blocks; uses the calling thread as loop 0.
  void run();

  /// Stop accepting, finish in-flight requests, exit once idle or at the drain deadline.
  /// Thread-safe.
  void drain();
  /// Stops immediately. Thread-safe.
  void stop();

  bool draining() const { return draining_.load(); }

 private:
  ServerOptions options_;
  HandlerFactory factory_;
  ServerShared shared_{options_};
  std::vector<std::unique_ptr<Loop>> loops_;
  std::uint16_t port_ = 0;
  std::uint16_t admin_port_ = 0;
  std::atomic<bool> draining_{false};
};

}  // namespace switchyard::net
