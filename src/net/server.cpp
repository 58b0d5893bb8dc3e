#include "net/server.hpp"

#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <netinet/tcp.h>
#include <cerrno>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <charconv>
#include <cstring>
#include <ctime>
#include <optional>

#include "net/buffer.hpp"
#include "net/readiness.hpp"
#include "net/send_now.hpp"
#include "net/shortage.hpp"

namespace switchyard::net {

using namespace std::string_view_literals;

namespace {

constexpr std::size_t kInitialBuffer = 4096;
// Lingering close after a refusal (Session::linger): how long without data, and in all.
constexpr std::chrono::milliseconds kLingerQuiet{2000};
constexpr std::chrono::milliseconds kLingerTotal{10000};
/// What follows the status line of every response head, up to the date.
constexpr std::string_view kServerAndDate = "\r\nServer: switchyard\r\nDate: ";

std::string_view reason_phrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return status < 400 ? "OK" : "Error";
  }
}

void append_number(std::string& out, std::uint64_t n) {
  char buf[24];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, p);
}

/// A chunk's size line ("1a2\r\n") written into `buf`.
std::string_view chunk_size_line(std::size_t n, char (&buf)[24]) {
  auto [p, ec] = std::to_chars(buf, buf + 20, n, 16);
  *p++ = '\r';
  *p++ = '\n';
  return {buf, static_cast<std::size_t>(p - buf)};
}

void tune_client_socket(Socket& socket) {
  boost::system::error_code ec;
  socket.set_option(tcp::no_delay(true), ec);
  // Synchronous sends (tried before an asynchronous write) must return at once when the
  // socket is full, not wait.
  socket.non_blocking(true, ec);
  // Reads that empty the socket let the next one wait for epoll (see readiness.hpp).
  readiness::watch_peer_close(socket);
}

/// Reads and drops what a (non-blocking) socket holds, up to 64 KiB. A connection refused
/// straight after its accept has usually sent its request while it waited in the backlog;
/// closing over unread bytes would reset the connection, and the client could lose the answer
/// it was just sent.
void drop_received(Socket& socket) {
  char sink[4096];
  boost::system::error_code ec;
  for (int i = 0; i < 16 && !ec; ++i) socket.read_some(asio::buffer(sink), ec);
}

}  // namespace

/// One client connection: reads requests, enforces limits and timeouts, hands each request to
/// the loop's handler and writes its response.
class Session final : public Deadline {
 public:
  /// `unauthenticated`: the connection is counted in the address table until it authenticates.
  Session(Loop& loop, Socket socket, const AddressTable::Address& address = {}, bool unauthenticated = false,
          bool admin = false)
      : loop_(loop), socket_(std::move(socket)), buf_(kInitialBuffer), body_hold_(loop.shared_.bodies),
        address_(address), unauthenticated_(unauthenticated), admin_(admin) {
    loop_.deadlines_.add(*this);
    slot_ = loop_.sessions_.size();
    loop_.sessions_.push_back(this);
  }

  ~Session() override {
    loop_.deadlines_.remove(*this);
    auto& v = loop_.sessions_;
    v[slot_] = v.back();
    v[slot_]->slot_ = slot_;
    v.pop_back();
    loop_.shared_.connections.fetch_sub(1, std::memory_order_relaxed);
    authenticate();
    release_body();
  }

  /// The handler vouched for the connection: it leaves its address's unauthenticated count.
  void authenticate() {
    if (!unauthenticated_) return;
    unauthenticated_ = false;
    loop_.shared_.addresses.release(address_);
  }

  /// Gives the body's bytes back to the memory budget (and a large decoded body's buffer to the
  /// system).
  void release_body() {
    if (!body_hold_.holds()) return;
    body_hold_.release();
    body_.release();
  }

  /// The drain's deadline or a second signal: a stream under way, between two chunks, ends
  /// with the handler's cut event and the last chunk (best effort, without waiting); then the
  /// connection closes. A stream whose write is under way is only closed: a chunk cannot be
  /// put in the middle of another.
  void cut() {
    if (closed_) return;
    if (streaming_ && !write_waiting_ && current_target_) {
      std::string event = loop_.handler().stream_cut_event(*current_target_);
      if (!event.empty()) {
        char size_line[24];
        const std::string_view size = chunk_size_line(event.size(), size_line);
        std::string_view head;
        if (head_pending_) head = out_;
        std::array<asio::const_buffer, 4> bufs{
            asio::buffer(head.data(), head.size()), asio::buffer(size.data(), size.size()),
            asio::buffer(event.data(), event.size()), asio::buffer("\r\n0\r\n\r\n", 7)};
        boost::system::error_code wec;
        send_now(socket_, bufs, wec);
      }
    }
    close();
  }

  Task<> run();

  void expire() override {
    timed_out_ = true;
    close();
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ec;
    socket_.shutdown(Socket::shutdown_both, ec);
    socket_.close(ec);
  }

  /// Closes an idle keep-alive connection right away (drain); a busy one closes after its
  /// response.
  void drain() {
    if (idle_ || lingering_) close();
    else close_after_ = true;
  }

  Task<bool> write_buffers(std::string_view a, std::string_view b = {},
                           std::string_view c = {}, std::string_view d = {}) {
    if (closed_) co_return false;
    std::array<asio::const_buffer, 4> bufs{
        asio::buffer(a.data(), a.size()), asio::buffer(b.data(), b.size()),
        asio::buffer(c.data(), c.size()), asio::buffer(d.data(), d.size())};
    // One non-blocking send; only what it did not take waits for the socket.
    boost::system::error_code ec;
    if (send_now(socket_, bufs, ec)) {
      set(Clock::now() + loop_.options().write_timeout);
      write_waiting_ = true;
      ahead_trusted_ = false;  // see start_read_ahead
      auto [wec, n] = co_await asio::async_write(socket_, bufs, nothrow);
      write_waiting_ = false;
      clear();
      ec = wec;
    }
    if (ec) {
      gone_ = true;
      close();
      co_return false;
    }
    co_return true;
  }

  void begin_head(int status, std::string_view content_type) {
    status_ = status;
    if (status == 200) {
      out_.assign(loop_.ok_head());  // status line, Server and Date in one copy
    } else {
      out_.clear();
      out_ += "HTTP/1.1 "sv;
      append_number(out_, static_cast<std::uint64_t>(status));
      out_ += ' ';
      out_ += reason_phrase(status);
      out_ += kServerAndDate;
      out_ += loop_.http_date();
      out_ += "\r\n"sv;
    }
    if (!content_type.empty()) {
      out_ += "Content-Type: "sv;
      out_ += content_type;
      out_ += "\r\n"sv;
    }
  }

  /// The fields, sized first and then copied: one growth check for all of them instead of
  /// four appends per field.
  void add_headers(std::span<const HeaderField> headers) {
    std::size_t size = 0;
    for (const auto& h : headers) size += h.name.size() + h.value.size() + 4;
    std::size_t at = out_.size();
    out_.resize(at + size);
    char* p = out_.data() + at;
    for (const auto& h : headers) {
      std::memcpy(p, h.name.data(), h.name.size());
      p += h.name.size();
      *p++ = ':';
      *p++ = ' ';
      std::memcpy(p, h.value.data(), h.value.size());
      p += h.value.size();
      *p++ = '\r';
      *p++ = '\n';
    }
  }

  void end_head() {
    if (close_after_ || loop_.draining()) {
      close_after_ = true;
      out_ += "Connection: close\r\n"sv;
    }
    out_ += "\r\n"sv;
  }

  /// Not a coroutine: the head is written now and the write's own task returned, so a
  /// response costs one coroutine frame, not two. The caller awaits it at once.
  Task<bool> send(int status, std::string_view content_type, std::string_view body,
                  std::span<const HeaderField> headers) {
    begin_head(status, content_type);
    add_headers(headers);
    out_ += "Content-Length: "sv;
    append_number(out_, body.size());
    out_ += "\r\n"sv;
    end_head();
    started_ = true;
    return write_buffers(out_, body);
  }

  /// The head of a stream is held back and leaves with the first chunk: one write, not two.
  Task<bool> start_stream(int status, std::string_view content_type,
                          std::span<const HeaderField> headers) {
    begin_head(status, content_type);
    add_headers(headers);
    out_ += "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n"sv;
    end_head();
    started_ = true;
    streaming_ = true;
    head_pending_ = true;
    co_return !closed_;
  }

  /// Writes one chunk; `last` also ends the stream (in the same write).
  Task<bool> write_chunk(std::string_view data, bool last) {
    if (data.empty() && !last) co_return !closed_;
    char size_line[24];
    std::string_view size;
    if (!data.empty()) size = chunk_size_line(data.size(), size_line);
    std::string_view tail = data.empty() ? std::string_view("0\r\n\r\n")
                            : last       ? std::string_view("\r\n0\r\n\r\n")
                                         : std::string_view("\r\n");
    std::string_view head;
    if (head_pending_) {
      head = out_;
      head_pending_ = false;
    }
    if (last) streaming_ = false;
    co_return co_await write_buffers(head, size, data, tail);
  }

  /// Arms the disconnect watch for the current request: a read of what comes after the request
  /// (the read the session would start for the next request anyway, started early). End of
  /// stream or an error there means the client left; data is a pipelined request, kept for
  /// later. The read is never cancelled: the session waits for it as its next read, so the
  /// watch costs no system call of its own.
  void watch_disconnect(ResponseWriter::DisconnectWatcher& watcher) {
    if (closed_) return;
    on_gone_ = &watcher;
    watch_armed_ = true;
    // Bytes after the current request already buffered: a pipelined request is waiting, and the
    // client cannot be watched this way (a read would wait for yet another request).
    if (buf_.size() > request_end_) return;
    if (!ahead_pending_ && !ahead_eof_ && stash_.empty()) start_read_ahead();
  }

  void start_read_ahead() {
    ahead_pending_ = true;
    // Into the free tail of the session buffer when there is room (the current request's bytes
    // stay where they are; the data is committed after the handler), else a small side buffer.
    ahead_in_buf_ = buf_.free() >= 1024;
    if (!ahead_in_buf_ && !ahead_buf_) ahead_buf_ = std::make_unique<char[]>(kAheadBytes);
    auto target = ahead_in_buf_ ? asio::buffer(buf_.tail(), buf_.free())
                                : asio::buffer(ahead_buf_.get(), kAheadBytes);
    // The operation object from the loop's block cache, as every awaited operation's is.
    socket_.async_read_some(
        target, asio::bind_allocator(detail::CacheAllocator<void>{}, [this, asked = target.size()](
                                                                         const boost::system::error_code& ec,
                                                                         std::size_t n) {
          // First thing: a short read that waited for epoll emptied the socket, so the next read
          // waits for epoll too instead of a `recv` that would find nothing (see readiness.hpp).
          if (!ec && ahead_trusted_) readiness::note_read(socket_, n, asked);
          ahead_pending_ = false;
          if (ec || n == 0) {
            ahead_eof_ = true;
            if (ec != asio::error::operation_aborted && watch_armed_) {
              gone_ = true;
              watch_armed_ = false;
              if (on_gone_) {
                auto* watcher = on_gone_;
                on_gone_ = nullptr;
                watcher->on_client_gone();
              }
            }
          } else if (ahead_in_buf_) {
            ahead_bytes_ = n;
          } else {
            stash_.append(ahead_buf_.get(), n);
          }
          // The session may be waiting for this read: resume it here, as the last thing (it may
          // end and free this session), instead of through a timer and a second handler.
          if (ahead_waiter_) {
            auto waiter = std::move(*ahead_waiter_);
            ahead_waiter_.reset();
            std::move(waiter)();
          }
        }));
    // Its completion may vouch for an empty socket only when this read waits in the reactor and
    // no write waits beside it (a write completed in the same readiness report runs first and
    // the read's completion is queued behind it: the loop may poll epoll in between).
    ahead_trusted_ = !write_waiting_ && readiness::read_waits(socket_);
  }

  /// The request is over: notifications stop (the read itself stays pending).
  void end_watch() {
    watch_armed_ = false;
    on_gone_ = nullptr;
  }

  /// Waits for the read started by the watch (the next request's first bytes, or the end): the
  /// read's completion resumes the awaiting coroutine directly. Not a coroutine itself: the
  /// caller awaits the operation (ready at once when no read is pending).
  detail::OpAwaiter<> await_read_ahead() {
    return asio::async_initiate<const UseTask&, void()>(
        [this](detail::OpAwaiter<>::Handler handler) {
          if (ahead_pending_) ahead_waiter_.emplace(std::move(handler));
          else handler();
        },
        use_task);
  }

  // The refusals, each sent from a coroutine of its own: the error object is a temporary of the
  // `co_await` that sends it, and a coroutine's frame keeps room for those for as long as it
  // lives — in Session::run, as long as the connection. Out of line, they also keep the request
  // path's code small (docs/architecture.md, "What a request costs").
  Task<bool> refuse_head(http1::ParseStatus status) {
    core::ApiError e;
    if (status == http1::ParseStatus::headers_too_large) {
      e = core::ApiError::make(core::ErrorKind::headers_too_large,
                               "Request header fields too large (limit " +
                                   std::to_string(loop_.options().max_header_bytes) + " bytes).",
                               {}, "headers_too_large");
    } else if (status == http1::ParseStatus::not_implemented) {
      e = core::ApiError::make(core::ErrorKind::invalid_request,
                               "Unsupported Transfer-Encoding; only chunked is accepted.", {},
                               "unsupported_transfer_encoding");
      e.status = 501;
    } else {
      e = core::ApiError::make(core::ErrorKind::invalid_request, "Malformed HTTP request.", {},
                               "invalid_http");
    }
    co_return co_await refuse(nullptr, e);
  }
  Task<bool> refuse_body_too_large(const http1::RequestHead& head) {
    co_return co_await refuse(
        &head, core::ApiError::make(core::ErrorKind::payload_too_large,
                                    "Request body too large (limit " +
                                        std::to_string(loop_.options().max_body_bytes) + " bytes).",
                                    {}, "body_too_large"));
  }
  Task<bool> refuse_body_memory(const http1::RequestHead& head) {
    auto e = core::ApiError::make(core::ErrorKind::unavailable,
                                  "The gateway is holding as many request bodies as its memory budget allows "
                                  "(server.body_memory_mb); retry shortly.",
                                  {}, "body_memory_exhausted");
    co_return co_await refuse(&head, e);
  }
  Task<bool> refuse_address_rate(const http1::RequestHead& head) {
    auto e = core::ApiError::make(core::ErrorKind::rate_limited,
                                  "Too many refused requests from this address before one authenticated; retry shortly.", {},
                                  "too_many_requests_from_address");
    e.status = 429;
    co_return co_await send_error(&head, e);
  }
  Task<bool> refuse_no_response(const http1::RequestHead& head) {
    co_return co_await send_error(
        &head, core::ApiError::make(core::ErrorKind::internal, "The handler produced no response."));
  }

  /// A chunked request body, decoded into body_ (the head stays in place at the front of buf_:
  /// the handler reads its views). `consumed` becomes the end of the request in buf_. False
  /// when the session must end (refused or the connection gone).
  Task<bool> read_chunked_body(http1::RequestHead& head, std::size_t& consumed) {
    const ServerOptions& opt = loop_.options();
    body_.clear();
    http1::ChunkedDecoder decoder;
    std::size_t pos = head.head_size;
    bool too_large = false;
    bool no_memory = false;
    for (;;) {
      std::size_t used = 0;
      auto st = decoder.feed(buf_.view().substr(pos), used, [&](std::string_view piece) {
        if (body_.size() + piece.size() > opt.max_body_bytes) too_large = true;
        else if (!body_hold_.grow(std::min(opt.max_body_bytes, (body_.size() + piece.size()) * 2))) no_memory = true;
        else body_.append(piece);
      });
      pos += used;
      if (too_large) {
        co_await refuse_body_too_large(head);
        co_return false;
      }
      if (no_memory) {
        co_await refuse_body_memory(head);
        co_return false;
      }
      if (st == http1::ChunkedDecoder::Status::error) {
        co_await refuse(&head, core::ApiError::make(core::ErrorKind::invalid_request,
                                                    "Malformed chunked request body.", {}, "invalid_http"));
        co_return false;
      }
      if (st == http1::ChunkedDecoder::Status::done) break;
      // Keep the head in place; drop decoded chunk bytes.
      if (pos > head.head_size) {
        std::size_t keep = buf_.size() - pos;
        std::memmove(buf_.data() + head.head_size, buf_.data() + pos, keep);
        buf_.truncate(head.head_size + keep);
        pos = head.head_size;
      }
      if (buf_.free() < 1024) {
        buf_.reserve(buf_.capacity() * 2);
        http1::parse_request(buf_.view(), opt.max_header_bytes, head);
      }
      auto [ec, n] = co_await socket_.async_read_some(asio::buffer(buf_.tail(), buf_.free()), nothrow);
      if (ec) co_return false;
      buf_.commit(n);
    }
    consumed = pos;
    co_return true;
  }

  /// A refusal of a request not read whole: the answer, then a lingering close.
  Task<bool> refuse(const http1::RequestHead* head, const core::ApiError& error) {
    const bool sent = co_await send_error(head, error);
    if (sent) co_await linger();
    co_return sent;
  }

  /// After a refusal the rest of the request may still be coming (a body over the limit, what
  /// follows a bad head). Closing over unread bytes resets the connection, and a client that
  /// sends its whole request before it reads (Python's http.client, httpx) then fails on a
  /// broken pipe instead of reading the answer. So, as nginx's lingering close does: our side
  /// ends (the client sees the answer, then the end), what still comes is read and dropped, and
  /// the connection closes when the client closes its side, after kLingerQuiet without data, or
  /// after kLingerTotal in all (or at once when the server drains).
  Task<> linger() {
    boost::system::error_code ec;
    socket_.shutdown(Socket::shutdown_send, ec);
    if (closed_ || ec) co_return;
    lingering_ = true;
    const Clock::time_point until = Clock::now() + kLingerTotal;
    for (;;) {
      set(std::min(Clock::now() + kLingerQuiet, until));  // the sweep closes the socket then
      buf_.clear();
      auto [rec, n] = co_await socket_.async_read_some(asio::buffer(buf_.tail(), buf_.free()), nothrow);
      if (rec) co_return;  // the client's end, a reset, or a deadline
    }
  }

  std::string_view target_in_buffer() const {
    std::string_view bytes = buf_.view();
    std::string_view line = bytes.substr(0, std::min(bytes.find('\n'), std::min<std::size_t>(bytes.size(), 8192)));
    std::size_t from = line.find(' ');
    std::size_t to = from == std::string_view::npos ? from : line.find(' ', from + 1);
    if (to == std::string_view::npos) return {};
    return line.substr(from + 1, to - from - 1);
  }

  Task<bool> send_error(const http1::RequestHead* head, const core::ApiError& error) {
    close_after_ = true;
    loop_.handler().on_refused(head, error, Clock::now());
    // Without a parsed head (too large, malformed), the request line's target when the buffer
    // starts with one: only to pick the dialect of the answer.
    std::string_view target = head ? head->target : target_in_buffer();
    std::string body = loop_.handler().render_error(target, error);
    // A refusal for want of room (connections, memory, an address's rate) passes soon.
    static constexpr HeaderField kRetry[] = {{"Retry-After", "1"}};
    std::span<const HeaderField> headers;
    if (error.status == 503 || error.status == 429) headers = kRetry;
    co_return co_await send(error.status, "application/json", body, headers);
  }

  Loop& loop_;
  Socket socket_;
  std::optional<detail::OpAwaiter<>::Handler> ahead_waiter_;  ///< see await_read_ahead
  ByteBuffer buf_;
  MemoryBudget::Hold body_hold_;   ///< the current request body's share of the memory budget
  std::string out_;
  ByteBuffer body_;                   ///< a chunked request's body, decoded
  std::string stash_;                 ///< bytes the read-ahead received (a pipelined request)
  /// Side buffer of the read-ahead when the session buffer is nearly full (rare: allocated
  /// then, not carried by every connection).
  static constexpr std::size_t kAheadBytes = 512;
  std::unique_ptr<char[]> ahead_buf_;
  ResponseWriter::DisconnectWatcher* on_gone_ = nullptr;
  std::size_t slot_ = 0;
  bool idle_ = true;
  bool close_after_ = false;
  bool lingering_ = false;  ///< see linger()
  bool started_ = false;
  bool streaming_ = false;
  bool timed_out_ = false;
  bool closed_ = false;
  bool head_pending_ = false;
  bool watch_armed_ = false;
  bool ahead_pending_ = false;
  bool ahead_eof_ = false;
  bool ahead_in_buf_ = false;
  bool ahead_trusted_ = false;     ///< the read-ahead may mark the socket empty (start_read_ahead)
  bool write_waiting_ = false;     ///< an asynchronous write is under way
  std::size_t ahead_bytes_ = 0;    ///< read into buf_'s tail, committed after the handler
  std::size_t request_end_ = 0;    ///< end of the current request in buf_
  bool gone_ = false;
  AddressTable::Address address_;  ///< the client's address (per-address limits)
  bool unauthenticated_ = false;   ///< counted in the address table (see authenticate)
  bool admin_ = false;             ///< accepted on the admin listener
  bool served_ = false;            ///< a request was handled on this connection
  int status_ = 0;                 ///< the status of the last response sent
  const std::string_view* current_target_ = nullptr;  ///< the request being handled (cut())
};

Task<> Session::run() {
  const ServerOptions& opt = loop_.options();
  http1::RequestHead head;
  while (!closed_) {
    // Read a request head.
    idle_ = buf_.size() == 0;
    // A new connection gets only the head's allowance to send its first request, not a
    // keep-alive connection's idle time (many silent connections would hold slots a minute).
    set(Clock::now() + (idle_ && served_ ? opt.idle_timeout : opt.header_timeout));
    http1::ParseStatus status = http1::ParseStatus::incomplete;
    for (;;) {
      if (buf_.size() > 0) {
        status = http1::parse_request(buf_.view(), opt.max_header_bytes, head);
        if (status != http1::ParseStatus::incomplete) break;
        if (idle_) {
          idle_ = false;
          if (served_) set(Clock::now() + opt.header_timeout);
        }
      }
      if (idle_ && loop_.draining()) co_return;
      if (buf_.free() < 1024) buf_.reserve(buf_.capacity() * 2);
      auto [ec, n] = co_await socket_.async_read_some(asio::buffer(buf_.tail(), buf_.free()), nothrow);
      if (ec) co_return;  // closed, reset, or timed out (the deadline closed the socket)
      buf_.commit(n);
    }
    idle_ = false;
    const Clock::time_point received = Clock::now();
    if (status != http1::ParseStatus::complete) {
      co_await refuse_head(status);
      co_return;
    }

    // Read the body.
    std::string_view body;
    std::size_t consumed = head.head_size;
    set(received + opt.body_timeout);
    if (head.content_length && *head.content_length > opt.max_body_bytes) {
      co_await refuse_body_too_large(head);
      co_return;
    }
    if (unauthenticated_ && loop_.shared_.addresses.over_rate(address_, received)) {
      co_await refuse_address_rate(head);
      co_return;
    }
    if (head.content_length && !body_hold_.grow(static_cast<std::size_t>(*head.content_length))) {
      co_await refuse_body_memory(head);
      co_return;
    }
    bool need_more_body =
        (head.content_length && buf_.size() < head.head_size + *head.content_length) ||
        (head.chunked && true);
    if (head.expect_continue && need_more_body) {
      if (!co_await write_buffers("HTTP/1.1 100 Continue\r\n\r\n")) co_return;
      set(Clock::now() + opt.body_timeout);
    }
    if (head.content_length) {
      std::size_t total = head.head_size + static_cast<std::size_t>(*head.content_length);
      if (buf_.capacity() < total) {
        // Growing moves the data: re-parse so the head's views point into the new storage.
        buf_.reserve(total);
        http1::parse_request(buf_.view(), opt.max_header_bytes, head);
      }
      while (buf_.size() < total) {
        auto [ec, n] = co_await socket_.async_read_some(asio::buffer(buf_.tail(), buf_.free()), nothrow);
        if (ec) co_return;
        buf_.commit(n);
      }
      body = std::string_view(buf_.data() + head.head_size, *head.content_length);
      consumed = total;
    } else if (head.chunked) {
      if (!co_await read_chunked_body(head, consumed)) co_return;
      body = body_.view();
    }
    clear();

    // Handle.
    started_ = false;
    status_ = 0;
    streaming_ = false;
    if (!head.keep_alive()) close_after_ = true;
    request_end_ = consumed;
    {
      ResponseWriter writer(*this);
      Request request{&head, body, received, admin_};
      current_target_ = &head.target;
      co_await loop_.handler().handle(request, writer);
      current_target_ = nullptr;
      served_ = true;
      if (unauthenticated_ && status_ >= 400) loop_.shared_.addresses.charge_refusal(address_, received);
      end_watch();
      if (!started_ && !closed_) {
        co_await refuse_no_response(head);
      } else if (streaming_ && !closed_) {
        // A stream the handler did not finish cannot be completed correctly: close it so the
        // client sees a truncated response rather than a hang.
        close();
      }
    }
    release_body();
    if (closed_ || close_after_ || loop_.draining()) co_return;
    if (ahead_pending_) {
      // The read-ahead is this connection's wait for its next request.
      idle_ = buf_.size() == consumed;
      set(Clock::now() + (idle_ ? opt.idle_timeout : opt.header_timeout));
      co_await await_read_ahead();
    }
    if (ahead_bytes_ > 0) {
      buf_.commit(ahead_bytes_);
      ahead_bytes_ = 0;
    }
    buf_.consume(consumed);
    if (!stash_.empty()) {
      buf_.append(stash_);
      stash_.clear();
    }
    if (ahead_eof_ && buf_.size() == 0) co_return;
    buf_.shrink(kInitialBuffer, 64 * 1024);
  }
}

// ---- ResponseWriter -------------------------------------------------------------------------

Task<bool> ResponseWriter::send(int status, std::string_view content_type,
                                std::string_view body,
                                std::span<const HeaderField> headers) {
  return session_.send(status, content_type, body, headers);
}

Task<bool> ResponseWriter::start_stream(int status, std::string_view content_type,
                                        std::span<const HeaderField> headers) {
  return session_.start_stream(status, content_type, headers);
}

Task<bool> ResponseWriter::write_chunk(std::string_view data, bool last) {
  return session_.write_chunk(data, last);
}

Task<bool> ResponseWriter::end_stream() { return session_.write_chunk({}, true); }

Task<bool> ResponseWriter::flush() {
  if (!session_.head_pending_) co_return !session_.closed_;
  session_.head_pending_ = false;
  co_return co_await session_.write_buffers(session_.out_);
}

bool ResponseWriter::started() const { return session_.started_; }
void ResponseWriter::close_after() { session_.close_after_ = true; }
void ResponseWriter::authenticated() { session_.authenticate(); }
void ResponseWriter::watch_disconnect(DisconnectWatcher& watcher) { session_.watch_disconnect(watcher); }
void ResponseWriter::abort() {
  boost::system::error_code ec;
  session_.socket_.set_option(asio::socket_base::linger(true, 0), ec);
  session_.close_after_ = true;
  session_.closed_ = true;
  session_.socket_.close(ec);
}
void ResponseWriter::forget_disconnect() { session_.on_gone_ = nullptr; }
bool ResponseWriter::client_gone() const { return session_.gone_ || session_.closed_; }

std::string Handler::render_error(std::string_view, const core::ApiError& error) {
  return core::openai_error_body(error);
}

std::string Handler::stream_cut_event(std::string_view) {
  auto e = core::ApiError::make(core::ErrorKind::unavailable,
                                "The gateway is shutting down; the stream was cut. Retry the request.", {},
                                "switchyard_draining");
  return "data: " + core::openai_error_body(e) + "\n\n";
}

// ---- Loop -------------------------------------------------------------------------------------

Loop::Loop(std::size_t index, const ServerOptions& options, ServerShared& shared)
    : index_(index), options_(options), shared_(shared) {
  auto smallest = std::min({options.header_timeout, options.body_timeout, options.idle_timeout,
                            options.write_timeout});
  sweep_interval_ = std::clamp(smallest / 4, std::chrono::milliseconds(10),
                               std::chrono::milliseconds(250));
  refresh_date();
  hold_spare();
}

Loop::~Loop() {
  if (spare_fd_ >= 0) ::close(spare_fd_);
}

void Loop::refresh_date() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[64];
  std::size_t n = std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  date_.assign(buf, n);
  ok_head_ = "HTTP/1.1 200 OK";
  ok_head_ += kServerAndDate;
  ok_head_ += date_;
  ok_head_ += "\r\n"sv;
}

void Loop::listen(Acceptor& acceptor, const tcp::endpoint& endpoint, bool reuse_port) {
  acceptor.open(endpoint.protocol());
  acceptor.set_option(tcp::acceptor::reuse_address(true));
  if (reuse_port) {
    int one = 1;
    ::setsockopt(acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  }
  acceptor.bind(endpoint);
  acceptor.listen(4096);
}

namespace {

AddressTable::Address address_of(const tcp::endpoint& peer) {
  const auto a = peer.address();
  return a.is_v6() ? a.to_v6().to_bytes() : asio::ip::make_address_v6(asio::ip::v4_mapped, a.to_v4()).to_bytes();
}

}  // namespace

Task<> Loop::accept_loop(Acceptor& listener, bool admin) {
  tcp::endpoint peer;
  for (;;) {
    auto [ec, socket] = co_await listener.async_accept(peer, nothrow);
    if (ec && is_out_of_descriptors(ec) && spare_fd_ >= 0) {
      // The spare makes room for the next connection. (Linux reports the shortage before it
      // looks for a connection, so the accept may then still wait for one.)
      const boost::system::error_code shortage = ec;
      ::close(spare_fd_);
      spare_fd_ = -1;
      std::tie(ec, socket) = co_await listener.async_accept(peer, nothrow);
      hold_spare();
      if (!ec && spare_fd_ < 0) {  // still short: this connection is told so (a 503)
        log_accept_failure(shortage);
        spawn(io_, refuse_out_of_descriptors(std::move(socket)));
        continue;
      }
      // Else descriptors came back meanwhile: served as usual.
    }
    if (ec) {
      if (ec == asio::error::operation_aborted || !listener.is_open()) co_return;
      // Back off briefly instead of spinning.
      log_accept_failure(ec);
      Timer pause(io_, std::chrono::milliseconds(50));
      co_await pause.async_wait(nothrow);
      continue;
    }
    tune_client_socket(socket);
    std::size_t open = shared_.connections.fetch_add(1, std::memory_order_relaxed) + 1;
    const AddressTable::Address address = address_of(peer);
    // Each address's unauthenticated connections are capped once half the slots are taken.
    const bool counted =
        open <= options_.max_connections && shared_.addresses.open(address, open > options_.max_connections / 2);
    auto session = std::make_unique<Session>(*this, std::move(socket), address, counted, admin);
    if (open > options_.max_connections) {
      spawn(io_, refuse_connection(std::move(session),
                                   core::ApiError::make(core::ErrorKind::unavailable,
                                                        "Too many connections; try again later.", {},
                                                        "too_many_connections")));
      continue;
    }
    if (!counted) {
      spawn(io_, refuse_connection(std::move(session),
                                   core::ApiError::make(core::ErrorKind::unavailable,
                                                        "Too many unauthenticated connections from this address; "
                                                        "try again later.",
                                                        {}, "too_many_connections_from_address")));
      continue;
    }
    Session* s = session.release();
    spawn(
        io_,
        [s]() -> Task<> {
          std::unique_ptr<Session> owner(s);
          co_await s->run();
          s->close();
          co_await s->await_read_ahead();
        },
        [](std::exception_ptr e) {
          if (!e) return;
          try {
            std::rethrow_exception(e);
          } catch (const std::exception& ex) {
            spdlog::error("session failed: {}", ex.what());
          }
        });
  }
}

void Loop::log_accept_failure(const boost::system::error_code& ec) {
  const auto now = Clock::now();
  if (now - accept_failure_logged_ < std::chrono::seconds(1)) return;  // not once per client
  accept_failure_logged_ = now;
  spdlog::warn("accept failed: {}{}", ec.message(),
               is_out_of_descriptors(ec) ? " (raise the open files limit: ulimit -n, LimitNOFILE)" : "");
}

Task<> Loop::refuse_connection(std::unique_ptr<Session> session, core::ApiError error) {
  co_await session->send_error(nullptr, error);
  drop_received(session->socket_);
  session->close();
}

Task<> Loop::refuse_out_of_descriptors(Socket socket) {
  tune_client_socket(socket);
  shared_.connections.fetch_add(1, std::memory_order_relaxed);  // the session's end takes it back
  co_await refuse_connection(std::make_unique<Session>(*this, std::move(socket)),
                             core::ApiError::make(core::ErrorKind::unavailable,
                                                  "The gateway is out of file descriptors; try again later.",
                                                  {}, "local_resources_exhausted"));
  hold_spare();  // its descriptor is free again: the spare takes it back for the next time
}

void Loop::hold_spare() {
  if (spare_fd_ < 0) spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
}

Task<> Loop::sweep_loop() {
  Timer timer(io_);
  int ticks = 0;
  for (;;) {
    timer.expires_after(sweep_interval_);
    auto [ec] = co_await timer.async_wait(nothrow);
    if (ec) co_return;
    Clock::time_point now = Clock::now();
    deadlines_.sweep(now);
    if (++ticks * sweep_interval_ >= std::chrono::seconds(1)) {
      ticks = 0;
      refresh_date();
    }

    if (draining_ && sessions_.empty() && !(handler_ && handler_->busy())) {
      io_.stop();
      co_return;
    }
  }
}

void Loop::begin_drain() {
  if (draining_) return;
  draining_ = true;
  boost::system::error_code ec;
  acceptor_.close(ec);
  admin_acceptor_.close(ec);
  handler_->on_drain();
  // Copy: closing may not remove entries synchronously, but be safe against reentrancy.
  std::vector<Session*> sessions = sessions_;
  for (Session* s : sessions) s->drain();
}

void Loop::cut_off() {
  std::vector<Session*> sessions = sessions_;
  for (Session* s : sessions) s->cut();
  io_.stop();
}

// ---- Server -----------------------------------------------------------------------------------

Server::Server(ServerOptions options, HandlerFactory factory)
    : options_(std::move(options)), factory_(std::move(factory)) {
  if (options_.threads < 1) options_.threads = 1;
}

Server::~Server() = default;

bool Server::bind(std::string& error) {
  try {
    boost::system::error_code ec;
    auto address = asio::ip::make_address(options_.host, ec);
    if (ec) {
      error = "invalid listen address \"" + options_.host + "\"";
      return false;
    }
    tcp::endpoint endpoint(address, options_.port);
    if (options_.port != 0) {
      // The loops listen with SO_REUSEPORT, which would let a second gateway on the same port
      // (the same user's) share it and silently split its traffic. A socket without it cannot
      // be bound where anything listens: a plain bind first says whether the port is taken.
      int probe = ::socket(address.is_v6() ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      int one = 1;
      ::setsockopt(probe, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);  // TIME_WAIT is no owner
      const bool taken = probe >= 0 && ::bind(probe, endpoint.data(), static_cast<socklen_t>(endpoint.size())) != 0 &&
                         errno == EADDRINUSE;
      if (probe >= 0) ::close(probe);
      if (taken) {
        error = "cannot listen on " + options_.host + ":" + std::to_string(options_.port) +
                ": the port is already in use by another process (another Switchyard would share it and split its "
                "traffic; stop it, or choose another port)";
        return false;
      }
    }
    for (int i = 0; i < options_.threads; ++i) {
      auto loop = std::make_unique<Loop>(static_cast<std::size_t>(i), options_, shared_);
      loop->listen(loop->acceptor_, endpoint, true);
      if (i == 0) {
        port_ = loop->acceptor_.local_endpoint().port();
        endpoint.port(port_);  // the other loops share the port picked for loop 0
      }
      loops_.push_back(std::move(loop));
    }
  } catch (const boost::system::system_error& e) {
    error = "cannot listen on " + options_.host + ":" + std::to_string(options_.port) + ": " +
            e.code().message();
    loops_.clear();
    return false;
  }
  if (options_.admin_listener) {
    // The operators' listener: loop 0 alone accepts on it (its traffic is light), without
    // SO_REUSEPORT (nothing else may share it).
    try {
      boost::system::error_code ec;
      auto address = asio::ip::make_address(options_.admin_host, ec);
      if (ec) {
        error = "invalid admin listen address \"" + options_.admin_host + "\"";
        loops_.clear();
        return false;
      }
      Loop& loop = *loops_[0];
      loop.listen(loop.admin_acceptor_, tcp::endpoint(address, options_.admin_port), false);
      admin_port_ = loop.admin_acceptor_.local_endpoint().port();
    } catch (const boost::system::system_error& e) {
      error = "cannot listen on " + options_.admin_host + ":" + std::to_string(options_.admin_port) +
              " (server.admin): " + e.code().message();
      loops_.clear();
      return false;
    }
  }
  return true;
}

void Server::run() {
  std::vector<std::thread> threads;
  auto run_loop = [this](Loop& loop) {
    loop.handler_ = factory_(loop);
    spawn(loop.io_, [&loop] { return loop.accept_loop(loop.acceptor_, false); });
    if (loop.admin_acceptor_.is_open()) spawn(loop.io_, [&loop] { return loop.accept_loop(loop.admin_acceptor_, true); });
    spawn(loop.io_, [&loop] { return loop.sweep_loop(); });
    if (draining_) loop.begin_drain();
    loop.io_.run();
    // Work still pending here was cut off (the drain deadline, a second signal): its coroutines
    // are destroyed now, while the handler they use is alive.
    loop.io_.abandon_pending();
    loop.handler_.reset();
  };
  for (std::size_t i = 1; i < loops_.size(); ++i)
    threads.emplace_back([&, i] { run_loop(*loops_[i]); });
  run_loop(*loops_[0]);
  for (auto& t : threads) t.join();
}

void Server::drain() {
  if (draining_.exchange(true)) return;
  for (auto& loop : loops_) {
    Loop* l = loop.get();
    auto deadline = options_.drain_timeout;
    asio::post(l->io_, [l, deadline] {
      if (l->handler_) l->begin_drain();
      // The deadline: whatever is still running then is cut off.
      auto timer = std::make_shared<Timer>(l->io_, deadline);
      timer->async_wait([l, timer](const boost::system::error_code&) { l->cut_off(); });
    });
  }
}

void Server::stop() {
  for (auto& loop : loops_) {
    Loop* l = loop.get();
    asio::post(l->io_, [l] { l->cut_off(); });
  }
}

}  // namespace switchyard::net
