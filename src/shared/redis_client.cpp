#include "shared/redis_client.hpp"

#include <hiredis/hiredis.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>

#include <charconv>
#include <deque>

namespace switchyard::shared {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

std::int64_t RedisReply::as_int(std::int64_t fallback) const {
  if (type == Type::integer) return integer;
  if (type == Type::string || type == Type::status) {
    std::int64_t v = 0;
    auto [p, ec] = std::from_chars(str.data(), str.data() + str.size(), v);
    if (ec == std::errc{} && p == str.data() + str.size()) return v;
  }
  return fallback;
}

void append_command(std::string& out, const std::vector<std::string>& argv) {
  out += '*';
  out += std::to_string(argv.size());
  out += "\r\n";
  for (const std::string& a : argv) {
    out += '$';
    out += std::to_string(a.size());
    out += "\r\n";
    out += a;
    out += "\r\n";
  }
}

namespace {

RedisReply convert(const redisReply* r) {
  RedisReply out;
  switch (r->type) {
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::integer;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::string;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::status;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = RedisReply::Type::error;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::array;
      out.elements.reserve(r->elements);
      for (std::size_t i = 0; i < r->elements; ++i) out.elements.push_back(convert(r->element[i]));
      break;
    default:
      out.type = RedisReply::Type::nil;
  }
  return out;
}

/// One command waiting for its reply: the waiting coroutine's handler, posted back to the loop
/// when the reply arrives or the connection fails. No timer of its own: one sweep per client
/// ends whatever waits past its deadline. (A timer per call cost two `timerfd_settime` calls a
/// command: measured with the bench's switchyard-shared system, 2026-12-07.)
struct Pending {
  using Handler = net::detail::OpAwaiter<bool>::Handler;
  std::optional<RedisReply> reply;
  std::optional<Handler> handler;
  Clock::time_point deadline{};
  bool done = false;
  bool internal = false;  ///< AUTH / SELECT sent by the client itself: an error breaks the connection

  /// The reply (or its absence) is known: the waiter resumes on the loop.
  void finish(asio::io_context& io) {
    done = true;
    if (!handler) return;
    asio::post(io, [h = std::move(*handler)]() mutable { h(true); });
    handler.reset();
  }
};

}  // namespace

struct RedisClient::State {
  State(asio::io_context& i, RedisEndpoint e)
      : io(i), endpoint(std::move(e)), reader(redisReaderCreate()), sweep(i.get_executor()) {}
  ~State() { redisReaderFree(reader); }

  asio::io_context& io;
  RedisEndpoint endpoint;
  redisReader* reader;
  std::unique_ptr<asio::ssl::context> tls_context;
  std::optional<net::Socket> plain;
  std::optional<asio::ssl::stream<net::Socket>> tls;
  enum class Link : std::uint8_t { down, connecting, up } link = Link::down;
  std::uint64_t generation = 0;  ///< a new connection's coroutines stop the old ones'
  Clock::time_point failed_at{};
  bool ever_failed = false;
  std::string last_error;
  std::string out;               ///< commands not yet written
  bool writing = false;
  std::deque<std::shared_ptr<Pending>> queue;  ///< sent (or about to be), in order
  net::Timer sweep;           ///< ends calls waiting past their deadline
  bool sweeping = false;

  /// Ends the connection: every command waiting is told there is no reply.
  void fail(std::string why) {
    ++generation;
    link = Link::down;
    failed_at = Clock::now();
    ever_failed = true;
    last_error = std::move(why);
    boost::system::error_code ignored;
    if (tls) tls->next_layer().close(ignored);
    if (plain) plain->close(ignored);
    tls.reset();
    plain.reset();
    out.clear();
    writing = false;
    redisReaderFree(reader);
    reader = redisReaderCreate();
    for (auto& p : queue) p->finish(io);
    queue.clear();
  }
};

namespace {

using StatePtr = std::shared_ptr<RedisClient::State>;

net::Task<> write_loop(StatePtr s, std::uint64_t gen) {
  std::string sending;
  while (s->generation == gen && !s->out.empty()) {
    sending.swap(s->out);
    s->out.clear();
    boost::system::error_code ec;
    if (s->tls) std::tie(ec, std::ignore) = co_await asio::async_write(*s->tls, asio::buffer(sending), net::nothrow);
    else std::tie(ec, std::ignore) = co_await asio::async_write(*s->plain, asio::buffer(sending), net::nothrow);
    if (s->generation != gen) co_return;
    if (ec) {
      s->fail("write: " + ec.message());
      co_return;
    }
    sending.clear();
  }
  if (s->generation == gen) s->writing = false;
}

void kick_writer(const StatePtr& s) {
  if (s->link != RedisClient::State::Link::up || s->writing || s->out.empty()) return;
  s->writing = true;
  // The write starts after the handlers the loop has ready now: the commands of every request
  // they run leave in one `sendmsg` (pipelined), and Redis is woken once for them all.
  asio::post(s->io, [s, gen = s->generation] { net::spawn(s->io, write_loop(s, gen)); });
}

net::Task<> read_loop(StatePtr s, std::uint64_t gen) {
  std::vector<char> buf(16 * 1024);
  while (s->generation == gen) {
    boost::system::error_code ec;
    std::size_t n = 0;
    if (s->tls) std::tie(ec, n) = co_await s->tls->async_read_some(asio::buffer(buf), net::nothrow);
    else std::tie(ec, n) = co_await s->plain->async_read_some(asio::buffer(buf), net::nothrow);
    if (s->generation != gen) co_return;
    if (ec) {
      s->fail("read: " + ec.message());
      co_return;
    }
    redisReaderFeed(s->reader, buf.data(), n);
    for (;;) {
      void* raw = nullptr;
      if (redisReaderGetReply(s->reader, &raw) != REDIS_OK) {
        s->fail("a reply Redis sent could not be parsed");
        co_return;
      }
      if (!raw) break;
      RedisReply reply = convert(static_cast<redisReply*>(raw));
      freeReplyObject(raw);
      if (s->queue.empty()) {
        s->fail("Redis sent a reply nobody asked for");
        co_return;
      }
      std::shared_ptr<Pending> p = std::move(s->queue.front());
      s->queue.pop_front();
      if (p->internal && reply.is_error()) {
        s->fail("Redis refused the connection's set-up: " + reply.str);
        co_return;
      }
      p->reply = std::move(reply);
      p->finish(s->io);
    }
  }
}

net::Task<> connect_loop(StatePtr s, std::uint64_t gen) {
  const RedisEndpoint& e = s->endpoint;
  net::Resolver resolver(s->io.get_executor());
  auto [rec, endpoints] = co_await resolver.async_resolve(e.host, std::to_string(e.port), net::nothrow);
  if (s->generation != gen) co_return;
  if (rec) {
    s->fail("cannot resolve " + e.host + ": " + rec.message());
    co_return;
  }
  auto connecting = std::make_shared<net::Socket>(s->io.get_executor());
  // A connect that hangs (packets dropped) ends with the connection's own deadline.
  net::Timer deadline(s->io.get_executor());
  deadline.expires_after(std::chrono::seconds(2));
  deadline.async_wait([connecting](const boost::system::error_code& ec) {
    if (!ec) {
      boost::system::error_code ignored;
      connecting->close(ignored);
    }
  });
  auto [cec, ep] = co_await asio::async_connect(*connecting, endpoints, net::nothrow);
  deadline.cancel();
  net::Socket& socket = *connecting;
  if (s->generation != gen) co_return;
  if (cec) {
    s->fail("cannot connect to " + e.host + ":" + std::to_string(e.port) + ": " + cec.message());
    co_return;
  }
  boost::system::error_code ignored;
  socket.set_option(asio::ip::tcp::no_delay(true), ignored);
  if (e.tls) {
    if (!s->tls_context) {
      s->tls_context = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
      s->tls_context->set_default_verify_paths();
      if (!e.ca_file.empty()) s->tls_context->load_verify_file(e.ca_file, ignored);
      s->tls_context->set_verify_mode(asio::ssl::verify_peer);
    }
    s->tls.emplace(std::move(socket), *s->tls_context);
    SSL_set_tlsext_host_name(s->tls->native_handle(), e.host.c_str());
    s->tls->set_verify_callback(asio::ssl::host_name_verification(e.host));
    auto [hec] = co_await s->tls->async_handshake(asio::ssl::stream_base::client, net::nothrow);
    if (s->generation != gen) co_return;
    if (hec) {
      s->fail("TLS with " + e.host + ": " + hec.message());
      co_return;
    }
  } else {
    s->plain.emplace(std::move(socket));
  }
  // AUTH and SELECT go first, ahead of what was queued while connecting.
  std::string setup;
  std::vector<std::shared_ptr<Pending>> internal;
  auto add = [&](std::vector<std::string> argv) {
    append_command(setup, argv);
    auto p = std::make_shared<Pending>();
    p->internal = true;
    p->deadline = Clock::now() + std::chrono::seconds(2);
    internal.push_back(std::move(p));
  };
  if (!e.password.empty()) {
    if (e.username.empty()) add({"AUTH", e.password});
    else add({"AUTH", e.username, e.password});
  }
  if (e.database != 0) add({"SELECT", std::to_string(e.database)});
  s->out.insert(0, setup);
  for (auto it = internal.rbegin(); it != internal.rend(); ++it) s->queue.push_front(*it);
  s->link = RedisClient::State::Link::up;
  net::spawn(s->io, read_loop(s, gen));
  kick_writer(s);
}

}  // namespace

RedisClient::RedisClient(asio::io_context& io, RedisEndpoint endpoint)
    : state_(std::make_shared<State>(io, std::move(endpoint))) {}

RedisClient::~RedisClient() {
  // Coroutines still running hold the state; closing the connection ends them.
  state_->fail("the client is closed");
}

const std::string& RedisClient::last_error() const { return state_->last_error; }

namespace {

/// Awaits a pending call's end (its reply, or the connection's failure).
auto wait_for(asio::io_context& io, const std::shared_ptr<Pending>& p) {
  return asio::async_initiate<const net::UseTask&, void(bool)>(
      [&io, p](Pending::Handler handler) {
        if (p->done) asio::post(io, [h = std::move(handler)]() mutable { h(true); });
        else p->handler.emplace(std::move(handler));
      },
      net::use_task);
}

/// While calls wait: wakes at the oldest one's deadline. One that is past it means Redis is too
/// slow — the connection is in an unknown state (a reply may still come, out of step with its
/// caller): it is closed, every call waiting on it fails, and the next call reconnects.
net::Task<> sweep_loop(StatePtr s) {
  while (!s->queue.empty()) {
    const Clock::time_point deadline = s->queue.front()->deadline;
    if (Clock::now() >= deadline) {
      s->fail("no reply within the timeout");
      break;
    }
    s->sweep.expires_at(deadline);
    co_await s->sweep.async_wait(net::nothrow);
  }
  s->sweeping = false;
}

}  // namespace

net::Task<std::optional<RedisReply>> RedisClient::call(std::vector<std::string> argv, std::chrono::milliseconds timeout) {
  StatePtr s = state_;
  if (s->link == State::Link::down) {
    // Unreachable a moment ago: fail at once rather than try a connection per request.
    if (s->ever_failed && Clock::now() - s->failed_at < retry_ms) co_return std::nullopt;
    s->link = State::Link::connecting;
    net::spawn(s->io, connect_loop(s, s->generation));
  }
  auto p = std::make_shared<Pending>();
  p->deadline = Clock::now() + timeout;
  append_command(s->out, argv);
  s->queue.push_back(p);
  kick_writer(s);
  if (!s->sweeping) {
    s->sweeping = true;
    net::spawn(s->io, sweep_loop(s));
  }
  co_await wait_for(s->io, p);
  co_return std::move(p->reply);
}

}  // namespace switchyard::shared
