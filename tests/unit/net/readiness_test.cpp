#include "net/readiness.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include <chrono>
#include <optional>
#include <string>

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace switchyard::net;
using namespace std::chrono_literals;

namespace {

/// A connected pair on loopback: `server` is the side under test, `peer` writes to it.
struct Pair {
  asio::io_context io;
  Socket server{io};
  Socket peer{io};
  Pair() {
    asio::basic_socket_acceptor<tcp, Executor> acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    peer.connect(acceptor.local_endpoint());
    acceptor.accept(server);
  }
  void send(std::string_view s) { asio::write(peer, asio::buffer(s.data(), s.size())); }
};

/// One read on `p.server` as the data plane does it: started, checked for waiting in the
/// reactor, and its completion noting what it read.
struct Read {
  char buf[4096];
  bool waited = false;
  std::optional<std::size_t> n;
  boost::system::error_code ec;
  void start(Socket& s) {
    s.async_read_some(asio::buffer(buf), [this, &s](boost::system::error_code e, std::size_t got) {
      if (!e && waited) readiness::note_read(s, got, sizeof buf);
      ec = e;
      n = got;
    });
    waited = readiness::read_waits(s);
  }
  bool run(asio::io_context& io) {
    io.restart();
    io.run_for(2s);
    return n.has_value();
  }
};

}  // namespace

TEST(Readiness, ThisBuildReachesTheReactor) {
  // Debian 12's Boost 1.81 with epoll: the optimisation is on (elsewhere the tests below would
  // check the do-nothing version's promises only).
  EXPECT_TRUE(readiness::supported());
}

TEST(Readiness, AShortReadThatWaitedLetsTheNextReadWaitUntilEpollReportsData) {
  if (!readiness::supported()) GTEST_SKIP();
  Pair p;
  readiness::watch_peer_close(p.server);
  Read first;
  first.start(p.server);
  EXPECT_TRUE(first.waited);  // nothing there yet: the read waits in the reactor
  p.send("hello");
  ASSERT_TRUE(first.run(p.io));
  EXPECT_EQ(*first.n, 5u);
  EXPECT_FALSE(readiness::tries_at_once(p.server));  // the socket was emptied

  // Data arrives and is reported while no read is pending: the report turns trying back on, so
  // a read started afterwards takes the data at once instead of waiting for a report that came.
  p.send("world");
  auto guard = asio::make_work_guard(p.io);
  p.io.restart();
  p.io.poll();
  EXPECT_TRUE(readiness::tries_at_once(p.server));
  Read second;
  second.start(p.server);
  EXPECT_FALSE(second.waited);
  guard.reset();
  ASSERT_TRUE(second.run(p.io));
  EXPECT_EQ(std::string(second.buf, *second.n), "world");
}

TEST(Readiness, AWaitingReadAfterAnEmptyingReadStillCompletesWhenDataComes) {
  if (!readiness::supported()) GTEST_SKIP();
  Pair p;
  readiness::watch_peer_close(p.server);
  Read first;
  first.start(p.server);
  p.send("a");
  ASSERT_TRUE(first.run(p.io));
  ASSERT_FALSE(readiness::tries_at_once(p.server));
  Read second;
  second.start(p.server);
  EXPECT_TRUE(second.waited);  // queued without a `recv`
  p.send("bc");
  ASSERT_TRUE(second.run(p.io));
  EXPECT_EQ(std::string(second.buf, *second.n), "bc");
}

TEST(Readiness, DataThatCameWithThePeersEndDoesNotMarkTheSocketEmpty) {
  if (!readiness::supported()) GTEST_SKIP();
  Pair p;
  readiness::watch_peer_close(p.server);
  Read first;
  first.start(p.server);
  ASSERT_TRUE(first.waited);
  p.send("last words");
  p.peer.shutdown(tcp::socket::shutdown_send);  // data and end in one report
  ASSERT_TRUE(first.run(p.io));
  EXPECT_EQ(*first.n, 10u);
  EXPECT_TRUE(readiness::tries_at_once(p.server));
  // The end is read at once: epoll will not report it again.
  Read second;
  second.start(p.server);
  ASSERT_TRUE(second.run(p.io)) << "the read waits for an end that was already reported";
  EXPECT_EQ(second.ec, asio::error::eof);
}

TEST(Readiness, DataThatCameWithAResetDoesNotMarkTheSocketEmpty) {
  if (!readiness::supported()) GTEST_SKIP();
  Pair p;
  readiness::watch_peer_close(p.server);
  Read first;
  first.start(p.server);
  ASSERT_TRUE(first.waited);
  p.send("partial");
  p.peer.set_option(asio::socket_base::linger(true, 0));
  p.peer.close();  // a reset right behind the data
  ASSERT_TRUE(first.run(p.io));
  EXPECT_TRUE(readiness::tries_at_once(p.server));
  Read second;
  second.start(p.server);
  ASSERT_TRUE(second.run(p.io)) << "the read waits for a reset that was already reported";
  EXPECT_TRUE(second.ec);
}

TEST(Readiness, NothingIsMarkedWithoutThePeersEndWatched) {
  Pair p;  // no watch_peer_close
  Read first;
  first.start(p.server);
  p.send("hello");
  ASSERT_TRUE(first.run(p.io));
  EXPECT_TRUE(readiness::tries_at_once(p.server));
}

TEST(Readiness, AFullReadOrOneCompletedAtOnceMarksNothing) {
  if (!readiness::supported()) GTEST_SKIP();
  Pair p;
  readiness::watch_peer_close(p.server);
  // Completed at once (the data was there): its `recv` ran when the read started, and the loop
  // may have polled epoll before its completion, so it vouches for nothing.
  p.send("early");
  Read at_once;
  at_once.start(p.server);
  EXPECT_FALSE(at_once.waited);
  ASSERT_TRUE(at_once.run(p.io));
  EXPECT_TRUE(readiness::tries_at_once(p.server));
  // A read that filled its buffer may have left more behind.
  Read waits;
  waits.start(p.server);
  ASSERT_TRUE(waits.waited);
  std::string big(sizeof waits.buf, 'x');
  p.send(big);
  ASSERT_TRUE(waits.run(p.io));
  ASSERT_EQ(*waits.n, sizeof waits.buf);
  EXPECT_TRUE(readiness::tries_at_once(p.server));
}
