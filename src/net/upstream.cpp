#include "net/upstream.hpp"

#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include <openssl/ssl.h>

#include <array>

#include "net/readiness.hpp"
#include "net/send_now.hpp"
#include "net/shortage.hpp"

namespace switchyard::net {

namespace {
}

Origin::Origin(std::string h, std::uint16_t p, bool t)
    : host(std::move(h)), port(p), tls(t),
      key((t ? "https://" : "http://") + host + ":" + std::to_string(p)) {}

std::string_view to_string(UpstreamError error) {
  switch (error) {
    case UpstreamError::none: return "none";
    case UpstreamError::dns: return "dns_failed";
    case UpstreamError::connect: return "connect_failed";
    case UpstreamError::tls: return "tls_failed";
    case UpstreamError::reset: return "connection_reset";
    case UpstreamError::bad_response: return "bad_response";
    case UpstreamError::connect_timeout: return "connect_timeout";
    case UpstreamError::first_byte_timeout: return "first_byte_timeout";
    case UpstreamError::idle_timeout: return "idle_timeout";
    case UpstreamError::total_timeout: return "total_timeout";
    case UpstreamError::pool_exhausted: return "pool_exhausted";
    case UpstreamError::local_resources: return "local_resources_exhausted";
    case UpstreamError::cancelled: return "cancelled";
  }
  return "unknown";
}

// ---- UpstreamConnection --------------------------------------------------------------------------

UpstreamConnection::UpstreamConnection(asio::io_context& io, asio::ssl::context* tls_context) {
  if (tls_context) tls_.emplace(io, *tls_context);
  else plain_.emplace(io);
}

Socket& UpstreamConnection::socket() { return tls_ ? tls_->next_layer() : *plain_; }

// Not coroutines: they start the socket operation and return its awaiter, so the caller awaits
// the operation itself, with no coroutine frame in between.
UpstreamConnection::IoAwaitable UpstreamConnection::write(std::string_view a, std::string_view b) {
  std::array<asio::const_buffer, 2> bufs{asio::buffer(a.data(), a.size()),
                                         asio::buffer(b.data(), b.size())};
  if (tls_) return asio::async_write(*tls_, bufs, nothrow);
  // One non-blocking send, and the awaiter is ready at once. The read of the answer that follows
  // does not try a `recv` before the answer can have come as long as the last read on this
  // connection found it empty (readiness.hpp). Only what the send did not take waits for the
  // socket (the result then counts those bytes alone).
  boost::system::error_code ec;
  if (send_now(*plain_, bufs, ec)) return asio::async_write(*plain_, bufs, nothrow);
  std::size_t sent = ec ? 0 : a.size() + b.size();
  return IoAwaitable([&](IoAwaitable::Handler handler) { handler(std::tuple{ec, sent}); });
}

UpstreamConnection::IoAwaitable UpstreamConnection::read_some(char* data, std::size_t size) {
  if (tls_) return tls_->async_read_some(asio::buffer(data, size), nothrow);
  // Started inside an initiation of our own, to see at once whether it waits in the reactor.
  return asio::async_initiate<decltype(nothrow), void(boost::system::error_code, std::size_t)>(
      [this](auto handler, asio::mutable_buffer target) {
        plain_->async_read_some(target, std::move(handler));
        read_waits_ = readiness::read_waits(*plain_);
      },
      nothrow, asio::buffer(data, size));
}

void UpstreamConnection::note_read(std::size_t n, std::size_t asked) noexcept {
  // A TLS stream reads the socket in records of its own sizes: not judged.
  if (plain_ && read_waits_) readiness::note_read(*plain_, n, asked);
}

void UpstreamConnection::close() {
  if (closed_) return;
  closed_ = true;
  boost::system::error_code ec;
  socket().shutdown(Socket::shutdown_both, ec);
  socket().close(ec);
}

// ---- UpstreamPool ---------------------------------------------------------------------------------

UpstreamPool::UpstreamPool(asio::io_context& io, DeadlineList& deadlines, UpstreamOptions options)
    : io_(io), deadlines_(deadlines), options_(std::move(options)) {}

UpstreamPool::~UpstreamPool() { close_idle(); }

std::unique_ptr<UpstreamConnection> UpstreamPool::take_idle(const Origin& origin) {
  auto it = hosts_.find(origin.key);
  if (it == hosts_.end()) return nullptr;
  auto& idle = it->second.idle;
  Clock::time_point now = Clock::now();
  while (!idle.empty()) {
    std::unique_ptr<UpstreamConnection> c = std::move(idle.back());
    idle.pop_back();
    if (now - c->idle_since_ < options_.idle_ttl) return c;
    c->close();
    --it->second.open;
  }
  return nullptr;
}

Task<std::pair<UpstreamError, std::vector<tcp::endpoint>>> UpstreamPool::resolve(
    const Origin& origin) {
  boost::system::error_code ec;
  auto address = asio::ip::make_address(origin.host, ec);
  if (!ec) co_return std::pair{UpstreamError::none, std::vector{tcp::endpoint(address, origin.port)}};

  std::string key = origin.host + ":" + std::to_string(origin.port);
  Clock::time_point now = Clock::now();
  if (auto it = dns_.find(key); it != dns_.end() && it->second.expires > now)
    co_return std::pair{UpstreamError::none, it->second.endpoints};

  Resolver resolver(io_);
  auto [rec, results] =
      co_await resolver.async_resolve(origin.host, std::to_string(origin.port), nothrow);
  if (rec && is_local_shortage(rec))  // no socket for the query: not the name's fault
    co_return std::pair{UpstreamError::local_resources, std::vector<tcp::endpoint>{}};
  if (rec || results.empty()) co_return std::pair{UpstreamError::dns, std::vector<tcp::endpoint>{}};
  std::vector<tcp::endpoint> endpoints;
  for (const auto& r : results) endpoints.push_back(r.endpoint());
  dns_[key] = DnsEntry{endpoints, Clock::now() + options_.dns_ttl};
  co_return std::pair{UpstreamError::none, std::move(endpoints)};
}

Task<UpstreamError> UpstreamPool::connect(const Origin& origin,
                                          std::unique_ptr<UpstreamConnection>& slot,
                                          std::string& detail) {
  HostPool& host = hosts_[origin.key];
  if (host.open >= options_.max_connections_per_host) co_return UpstreamError::pool_exhausted;

  auto [rerr, endpoints] = co_await resolve(origin);
  if (rerr != UpstreamError::none) co_return rerr;

  if (origin.tls && !tls_context_) {
    tls_context_ = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
    tls_context_->set_default_verify_paths();
    if (!options_.ca_file.empty()) {
      boost::system::error_code ec;
      tls_context_->load_verify_file(options_.ca_file, ec);
      if (ec) spdlog::error("cannot load upstream.ca_file {}: {}", options_.ca_file, ec.message());
    }
    tls_context_->set_verify_mode(asio::ssl::verify_peer);
  }
  slot = std::make_unique<UpstreamConnection>(io_, origin.tls ? tls_context_.get() : nullptr);
  slot->host_ = &host;
  ++host.open;  // from here on, release() uncounts it

  auto fail = [&](UpstreamError e) {
    release(std::move(slot), false);
    return e;
  };

  // Each address in turn. The socket is opened here, not inside the connect (which reports a
  // failed open as a cancellation): running out of descriptors or ports is this process's
  // trouble, not the upstream's, and must be told apart.
  boost::system::error_code cec = asio::error::host_not_found;
  for (const tcp::endpoint& ep : endpoints) {
    Socket& socket = slot->socket();
    boost::system::error_code ignored;
    socket.close(ignored);
    socket.open(ep.protocol(), cec);
    if (cec) break;
    std::tie(cec) = co_await socket.async_connect(ep, nothrow);
    if (!cec || cec == asio::error::operation_aborted) break;  // connected, or cancelled / timed out
  }
  if (cec) {
    detail = cec.message();
    if (is_local_shortage(cec)) co_return fail(UpstreamError::local_resources);
    co_return fail(UpstreamError::connect);
  }
  boost::system::error_code ec;
  slot->socket().set_option(tcp::no_delay(true), ec);
  // A plain connection's writes start with a send that must not block (see write()).
  if (!slot->tls_) {
    slot->socket().non_blocking(true, ec);
    readiness::watch_peer_close(slot->socket());  // see note_read
  }

  if (slot->tls_) {
    if (!SSL_set_tlsext_host_name(slot->tls_->native_handle(), origin.host.c_str()))
      co_return fail(UpstreamError::tls);
    slot->tls_->set_verify_callback(asio::ssl::host_name_verification(origin.host));
    auto [hec] = co_await slot->tls_->async_handshake(asio::ssl::stream_base::client, nothrow);
    if (hec) {
      detail = hec.message();
      co_return fail(UpstreamError::tls);
    }
  }
  slot->buf_.reserve(options_.read_buffer_bytes);
  co_return UpstreamError::none;
}

void UpstreamPool::release(std::unique_ptr<UpstreamConnection> connection, bool reusable) {
  if (!connection) return;
  HostPool& host = *static_cast<HostPool*>(connection->host_);
  if (reusable && !connection->closed_ && host.idle.size() < options_.max_idle_per_host) {
    connection->idle_since_ = Clock::now();
    connection->buf_.clear();
    host.idle.push_back(std::move(connection));
    return;
  }
  connection->close();
  if (host.open > 0) --host.open;
}

void UpstreamPool::close_idle() {
  for (auto& [k, h] : hosts_) {
    for (auto& c : h.idle) {
      c->close();
      --h.open;
    }
    h.idle.clear();
  }
}

// ---- UpstreamExchange ---------------------------------------------------------------------------

UpstreamExchange::UpstreamExchange(UpstreamPool& pool, const Origin& origin)
    : pool_(pool), origin_(origin) {
  pool_.deadlines().add(*this);
}

UpstreamExchange::~UpstreamExchange() {
  pool_.deadlines().remove(*this);
  if (conn_) pool_.release(std::move(conn_), reusable_ && body_done_ && !cancelled_ && !timed_out_);
}

void UpstreamExchange::arm(Phase phase) {
  phase_ = phase;
  Clock::time_point at = total_deadline_;
  if (phase == Phase::connect) at = std::min(at, Clock::now() + pool_.options().connect_timeout);
  else if (phase == Phase::wait_head)
    at = std::min(at, Clock::now() + first_byte_limit_.value_or(pool_.options().first_byte_timeout));
  set(at);
}

void UpstreamExchange::first_body_by(std::optional<Clock::time_point> at) {
  if (at) {
    phase_ = Phase::wait_first_body;
    set(std::min(*at, total_deadline_));
  } else if (phase_ == Phase::wait_first_body) {
    phase_ = Phase::body;
    set(total_deadline_);
  }
}

void UpstreamExchange::expire() {
  timed_out_ = true;
  if (conn_) conn_->close();
}

void UpstreamExchange::cancel() {
  cancelled_ = true;
  if (conn_) conn_->close();
}

UpstreamError UpstreamExchange::classify(const boost::system::error_code&) const {
  if (cancelled_) return UpstreamError::cancelled;
  if (timed_out_) {
    if (Clock::now() >= total_deadline_) return UpstreamError::total_timeout;
    switch (phase_) {
      case Phase::connect: return UpstreamError::connect_timeout;
      case Phase::wait_head:
      case Phase::wait_first_body: return UpstreamError::first_byte_timeout;
      case Phase::body: return UpstreamError::total_timeout;
      case Phase::idle: return UpstreamError::idle_timeout;
    }
  }
  return UpstreamError::reset;
}

Task<UpstreamError> UpstreamExchange::start(std::string_view head, std::string_view body) {
  started_ = Clock::now();
  total_deadline_ = started_ + pool_.options().total_timeout;
  if (end_limit_) total_deadline_ = std::min(total_deadline_, *end_limit_);
  UpstreamError e = UpstreamError::none;
  // At most two rounds: a pooled connection that the upstream had closed before it read our
  // request (nothing was processed) is replaced once by a fresh one. One coroutine for both
  // rounds: every nested frame is an allocation and a resume on each request.
  for (int round = 0; round < 2; ++round) {
    bool stale = false;
    e = UpstreamError::none;
    {
      if (conn_) pool_.release(std::move(conn_), false);
      bool reused = false;
      if (round == 0) {
        conn_ = pool_.take_idle(origin_);
        reused = conn_ != nullptr;
      }
      if (!conn_) {
        arm(Phase::connect);
        UpstreamError err = co_await pool_.connect(origin_, conn_, detail_);
        if (cancelled_ || timed_out_) {
          if (conn_) pool_.release(std::move(conn_), false);
          if (cancelled_) e = UpstreamError::cancelled;
          else e = Clock::now() >= total_deadline_ ? UpstreamError::total_timeout
                                                   : UpstreamError::connect_timeout;
          goto attempt_done;
        }
        if (err != UpstreamError::none) {
          e = err;
          goto attempt_done;
        }
      }
      arm(Phase::wait_head);
      if (auto [ec, n] = co_await conn_->write(head, body); ec) {
        if (reused) stale = true;
        e = classify(ec);
        goto attempt_done;
      }
      ByteBuffer& buf = conn_->buf_;
      buf.clear();
      for (;;) {
        buf.reserve_free(std::min<std::size_t>(4096, pool_.options().max_head_bytes));
        std::size_t asked = buf.free();
        auto [ec, n] = co_await conn_->read_some(buf.tail(), asked);
        if (ec) {
          if (reused && buf.size() == 0 && !timed_out_ && !cancelled_) stale = true;
          e = classify(ec);
          goto attempt_done;
        }
        conn_->note_read(n, asked);
        buf.commit(n);
        response_ = &conn_->head_;
        auto st = http1::parse_response(buf.view(), pool_.options().max_head_bytes, *response_);
        if (st == http1::ParseStatus::incomplete) continue;
        if (st != http1::ParseStatus::complete) {
          e = UpstreamError::bad_response;
          goto attempt_done;
        }
        if (response_->status >= 100 && response_->status < 200) {  // 100 Continue and friends
          buf.consume(response_->head_size);
          continue;
        }
        break;
      }
      ttfb_ = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started_);
      arm(Phase::body);
      reusable_ = response_->keep_alive();
      body_done_ = false;
      chunked_.reset();
      close_delimited_ = false;
      if (response_->status == 204 || response_->status == 304) {
        body_done_ = true;
      } else if (response_->chunked) {
      } else if (response_->content_length) {
        body_remaining_ = *response_->content_length;
        body_done_ = body_remaining_ == 0;
      } else {
        close_delimited_ = true;
        reusable_ = false;
      }
    }
  attempt_done:
    if (!stale || cancelled_ || timed_out_) break;
  }
  clear();
  co_return e;
}

UpstreamError UpstreamExchange::consume(std::string_view bytes, std::string& out) {
  if (response_->chunked) {
    std::size_t used = 0;
    auto st = chunked_.feed(bytes, used, [&](std::string_view piece) { out.append(piece); });
    if (st == http1::ChunkedDecoder::Status::error) return UpstreamError::bad_response;
    if (st == http1::ChunkedDecoder::Status::done) body_done_ = true;
  } else if (close_delimited_) {
    out.append(bytes);
  } else {
    std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(body_remaining_, bytes.size()));
    out.append(bytes.substr(0, take));
    body_remaining_ -= take;
    if (body_remaining_ == 0) body_done_ = true;
  }
  return UpstreamError::none;
}

bool UpstreamExchange::take_early_body(std::string& out, UpstreamError& e) {
  e = UpstreamError::none;
  if (body_done_ || !conn_) return false;
  ByteBuffer& buf = conn_->buf_;
  const std::size_t head_size = response_->head_size;
  if (buf.size() <= head_size) return false;
  std::string_view early = buf.view().substr(head_size);
  buf.truncate(head_size);
  e = consume(early, out);
  return true;
}

bool UpstreamExchange::read_buffered(std::string& out, std::size_t limit, UpstreamError& e) {
  e = UpstreamError::none;
  if (body_done_) return true;
  if (!take_early_body(out, e)) return false;
  if (e == UpstreamError::none && out.size() > limit) e = UpstreamError::bad_response;
  return e != UpstreamError::none || body_done_;
}

bool UpstreamExchange::buffered_body(std::string_view& body, std::size_t limit) {
  if (body_done_ || !conn_ || response_->chunked || close_delimited_ || body_remaining_ > limit)
    return false;
  const ByteBuffer& buf = conn_->buf_;
  const std::size_t head_size = response_->head_size;
  if (buf.size() < head_size || buf.size() - head_size < body_remaining_) return false;
  body = buf.view().substr(head_size, static_cast<std::size_t>(body_remaining_));
  body_remaining_ = 0;
  body_done_ = true;
  return true;
}

Task<UpstreamError> UpstreamExchange::read_some(std::string& out, bool& done) {
  done = body_done_;
  if (body_done_) co_return UpstreamError::none;
  if (!conn_) co_return UpstreamError::reset;
  // Body bytes that arrived with the head come first.
  UpstreamError early = UpstreamError::none;
  if (take_early_body(out, early)) {
    done = body_done_;
    co_return early;
  }
  // Keep the head (its views are in use) and read after it, into what the buffer already has
  // (it only grows when nearly full: every open stream holds one).
  ByteBuffer& buf = conn_->buf_;
  // A store, not a timer (net/deadline.hpp): the next bytes are due within the idle timeout.
  if (phase_ == Phase::idle) set(std::min(Clock::now() + pool_.options().idle_timeout, total_deadline_));
  buf.truncate(response_->head_size);
  if (buf.free() < 1024) buf.reserve_free(pool_.options().read_buffer_bytes);
  std::size_t asked = buf.free();
  auto [ec, n] = co_await conn_->read_some(buf.tail(), asked);
  if (!ec) conn_->note_read(n, asked);
  if (ec) {
    if (close_delimited_ && (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) &&
        !timed_out_ && !cancelled_) {
      body_done_ = true;
      done = true;
      co_return UpstreamError::none;
    }
    co_return classify(ec);
  }
  UpstreamError e = consume(std::string_view(buf.tail(), n), out);
  done = body_done_;
  co_return e;
}

Task<UpstreamError> UpstreamExchange::read_all(std::string& out, std::size_t limit) {
  bool done = false;
  while (!done) {
    UpstreamError e = co_await read_some(out, done);
    if (e != UpstreamError::none) co_return e;
    if (out.size() > limit) co_return UpstreamError::bad_response;
  }
  co_return UpstreamError::none;
}

}  // namespace switchyard::net
