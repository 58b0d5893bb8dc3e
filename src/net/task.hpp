#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/basic_resolver.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>

/// The coroutine and I/O-object types of the data plane, bound to the event loop's own executor.
/// Asio's defaults use `any_io_executor`, a type-erased executor: every handler dispatch,
/// work count and coroutine resume then goes through an indirect call and a check of what it
/// holds. Every loop here is one `io_context` run by one thread, so the concrete type is known.
namespace switchyard::net {

using Executor = boost::asio::io_context::executor_type;

/// A coroutine of the data plane.
template <class T = void>
using Task = boost::asio::awaitable<T, Executor>;

/// The completion token that makes an asynchronous operation awaitable in a `Task`.
inline constexpr boost::asio::use_awaitable_t<Executor> use_task{};

using Socket = boost::asio::basic_stream_socket<boost::asio::ip::tcp, Executor>;
using Acceptor = boost::asio::basic_socket_acceptor<boost::asio::ip::tcp, Executor>;
using Resolver = boost::asio::ip::basic_resolver<boost::asio::ip::tcp, Executor>;
using Timer = boost::asio::basic_waitable_timer<std::chrono::steady_clock,
                                                boost::asio::wait_traits<std::chrono::steady_clock>,
                                                Executor>;

}  // namespace switchyard::net
