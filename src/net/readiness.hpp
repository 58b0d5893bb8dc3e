#pragma once

// What a read that found the socket empty tells Asio's reactor.
//
// Asio tries every read at once: its `recv` runs when the read starts and only a read that finds
// nothing waits for epoll. On a keep-alive connection that is a wasted system call per exchange:
// the read for the client's next request starts while the client is still reading our answer,
// and the read of an upstream answer starts right after its request went out. nginx trusts a
// short read instead: a `recv` that returned less than it asked for took everything the socket
// had, and epoll (edge-triggered, as Asio registers sockets) reports every later arrival. These
// functions let a read's completion say so, so the next read waits for epoll without trying.
//
// Asio has the switch (its reactor clears it itself after an end of stream and sets it again on
// every readiness event) but no public way to set it; this reaches it for Boost 1.81's epoll
// reactor and does nothing on any other (see readiness.cpp).

#include <cstddef>

#include "net/task.hpp"

namespace switchyard::net::readiness {

/// Has epoll tell of the peer's end of the connection (EPOLLRDHUP: one `epoll_ctl` per
/// connection), without which no read is ever marked as having emptied the socket: data and the
/// peer's end can arrive in one report. Call once, after the socket is connected or accepted.
void watch_peer_close(Socket& s) noexcept;

/// Whether the read just started on `s` is waiting in the reactor (it was not completed at
/// once). Call right after starting it.
bool read_waits(Socket& s) noexcept;

/// After a read returned `n` of the `asked` bytes: when fewer, the next read on `s` waits for
/// epoll instead of trying at once. Valid only when the read waited in the reactor (`read_waits`
/// right after starting it) and no write on `s` waited in the reactor meanwhile — then its `recv`
/// ran in the very completion calling this, before anything returned to the event loop, so every
/// later arrival is reported (and the report makes the next read try at once again). Call it
/// there, first thing. Nothing is marked when the report that completed the read told of the
/// peer's end or an error (the next read must see them) or when `watch_peer_close` was not
/// called.
void note_read(Socket& s, std::size_t n, std::size_t asked) noexcept;

/// Whether a read started now on `s` would be tried at once (for tests).
bool tries_at_once(Socket& s) noexcept;

/// Whether this build reaches the reactor (Boost 1.81, epoll); elsewhere the functions above do
/// nothing and every read is tried at once, as Asio does by itself.
bool supported() noexcept;

}  // namespace switchyard::net::readiness
