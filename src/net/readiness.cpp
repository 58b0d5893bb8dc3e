#include "net/readiness.hpp"

#include <boost/asio/detail/config.hpp>
#include <boost/version.hpp>

// Only the reactor this was read against: Boost 1.81's epoll reactor (Debian 12). Another Boost
// gets the do-nothing version below until someone checks the members used here against it.
#if BOOST_VERSION == 108100 && defined(BOOST_ASIO_HAS_EPOLL) && !defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT)
#define SWITCHYARD_READINESS 1
#include <boost/asio/detail/epoll_reactor.hpp>
#include <boost/asio/detail/io_object_impl.hpp>
#include <boost/asio/detail/reactive_socket_service.hpp>
#include <sys/epoll.h>

#include <cstdint>
#endif

namespace switchyard::net::readiness {

#ifdef SWITCHYARD_READINESS
namespace {

namespace ad = boost::asio::detail;
using Reactor = ad::epoll_reactor;
using State = Reactor::descriptor_state;
using SocketBase = boost::asio::basic_socket<boost::asio::ip::tcp, Executor>;
using SocketImpl = ad::io_object_impl<ad::reactive_socket_service<boost::asio::ip::tcp>, Executor>;

// Pointers to the members Asio keeps private (the socket's implementation; a descriptor's flags,
// operation queues, registered events and reactor; the reactor's epoll descriptor; an operation's
// last events): an explicit instantiation may name them (the standard exempts its template
// arguments from access checks) and hands each pointer out through a friend function.
template <class Tag, typename Tag::type Member>
struct Grant {
  friend typename Tag::type member(Tag) { return Member; }
};
struct ImplOf {
  using type = SocketImpl SocketBase::*;
  friend type member(ImplOf);
};
struct TryAtOnce {
  using type = bool (State::*)[Reactor::max_ops];
  friend type member(TryAtOnce);
};
struct Queues {
  using type = ad::op_queue<ad::reactor_op> (State::*)[Reactor::max_ops];
  friend type member(Queues);
};
struct Registered {
  using type = std::uint32_t State::*;
  friend type member(Registered);
};
struct ReactorOf {
  using type = Reactor* State::*;
  friend type member(ReactorOf);
};
struct EpollFd {
  using type = int Reactor::*;
  friend type member(EpollFd);
};
struct Events {
  using type = unsigned int ad::scheduler_operation::*;
  friend type member(Events);
};
template struct Grant<ImplOf, &SocketBase::impl_>;
template struct Grant<TryAtOnce, &State::try_speculative_>;
template struct Grant<Queues, &State::op_queue_>;
template struct Grant<Registered, &State::registered_events_>;
template struct Grant<ReactorOf, &State::reactor_>;
template struct Grant<EpollFd, &Reactor::epoll_fd_>;
template struct Grant<Events, &ad::scheduler_operation::task_result_>;

State* state(Socket& s) noexcept { return (s.*member(ImplOf{})).get_implementation().reactor_data_; }

/// The events of the readiness report being handled (set when epoll reported the socket, kept
/// until the next report). The state is an operation of the scheduler's queue through a private
/// base, which only an explicit conversion reaches.
unsigned int report(State* st) noexcept {
  auto* op = (ad::scheduler_operation*)st;  // NOLINT: a private base
  return op->*member(Events{});
}

}  // namespace

void watch_peer_close(Socket& s) noexcept {
  State* st = state(s);
  if (!st) return;
  std::uint32_t& registered = st->*member(Registered{});
  if (registered == 0 || (registered & EPOLLRDHUP)) return;
  epoll_event ev{};
  ev.events = registered | EPOLLRDHUP;
  ev.data.ptr = st;
  // Asio keeps `registered` and re-arms with it (adding EPOLLOUT), so the flag stays.
  if (::epoll_ctl((st->*member(ReactorOf{}))->*member(EpollFd{}), EPOLL_CTL_MOD, s.native_handle(), &ev) == 0)
    registered = ev.events;
}

bool read_waits(Socket& s) noexcept {
  State* st = state(s);
  return st && !(st->*member(Queues{}))[Reactor::read_op].empty();
}

void note_read(Socket& s, std::size_t n, std::size_t asked) noexcept {
  if (n == 0 || n >= asked) return;
  State* st = state(s);
  if (!st) return;
  // Only while epoll tells of the peer's end: otherwise an end (or a reset) that came with the
  // data, reported once with it, would not be reported again, and the next read would wait for
  // nothing. The report this completion runs in must not mention one.
  if (!(st->*member(Registered{}) & EPOLLRDHUP)) return;
  if (report(st) & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) return;
  // The reactor sets the flag again on the next report for this socket (it is only ever
  // touched on the socket's own event loop, as here).
  (st->*member(TryAtOnce{}))[Reactor::read_op] = false;
}

bool tries_at_once(Socket& s) noexcept {
  State* st = state(s);
  return !st || (st->*member(TryAtOnce{}))[Reactor::read_op];
}

bool supported() noexcept { return true; }

#else

void watch_peer_close(Socket&) noexcept {}
bool read_waits(Socket&) noexcept { return false; }
void note_read(Socket&, std::size_t, std::size_t) noexcept {}
bool tries_at_once(Socket&) noexcept { return true; }
bool supported() noexcept { return false; }

#endif

}  // namespace switchyard::net::readiness
