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

/// A pair whose server side is watched for the peer's end, as the data plane's sockets are.
class ReadinessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!readiness::supported()) GTEST_SKIP() << "not Boost 1.81's epoll reactor";
    readiness::watch_peer_close(p.server);
  }
  /// Starts `r` while nothing is there (so it waits in the reactor), lets the peer `act`, and
  /// runs the loop until `r` completes.
  template <class Act>
  bool read_after(Read& r, Act act) {
    r.start(p.server);
    EXPECT_TRUE(r.waited);  // nothing there yet: the read waits in the reactor
    act();
    return r.run(p.io);
  }
  /// The next read on the server side, started and run to completion.
  bool read_next(Read& r) {
    r.start(p.server);
    return r.run(p.io);
  }
  Pair p;
};

}  // namespace

TEST(Readiness, ThisBuildReachesTheReactor) {
  // Debian 12's Boost 1.81 with epoll: the optimisation is on (elsewhere the tests below check
  // nothing but the do-nothing version's promises).
  EXPECT_TRUE(readiness::supported());
}

TEST_F(ReadinessTest, AShortReadThatWaitedLetsTheNextReadWaitUntilEpollReportsData) {
  Read first;
  ASSERT_TRUE(read_after(first, [&] { p.send("hello"); }));
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

TEST_F(ReadinessTest, AWaitingReadAfterAnEmptyingReadStillCompletesWhenDataComes) {
  Read first, second;
  ASSERT_TRUE(read_after(first, [&] { p.send("a"); }));
  ASSERT_FALSE(readiness::tries_at_once(p.server));
  ASSERT_TRUE(read_after(second, [&] { p.send("bc"); }));  // queued without a `recv`
  EXPECT_EQ(std::string(second.buf, *second.n), "bc");
}

TEST_F(ReadinessTest, DataThatCameWithThePeersEndDoesNotMarkTheSocketEmpty) {
  Read first, second;
  ASSERT_TRUE(read_after(first, [&] {
    p.send("last words");
    p.peer.shutdown(tcp::socket::shutdown_send);  // data and end in one report
  }));
  EXPECT_EQ(*first.n, 10u);
  EXPECT_TRUE(readiness::tries_at_once(p.server));
  // The end is read at once: epoll will not report it again.
  ASSERT_TRUE(read_next(second)) << "the read waits for an end that was already reported";
  EXPECT_EQ(second.ec, asio::error::eof);
}

TEST_F(ReadinessTest, DataThatCameWithAResetDoesNotMarkTheSocketEmpty) {
  Read first, second;
  ASSERT_TRUE(read_after(first, [&] {
    p.send("partial");
    p.peer.set_option(asio::socket_base::linger(true, 0));
    p.peer.close();  // a reset right behind the data
  }));
  EXPECT_TRUE(readiness::tries_at_once(p.server));
  ASSERT_TRUE(read_next(second)) << "the read waits for a reset that was already reported";
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

TEST_F(ReadinessTest, AFullReadOrOneCompletedAtOnceMarksNothing) {
  // Completed at once (the data was there): its `recv` ran when the read started, and the loop
  // may have polled epoll before its completion, so it vouches for nothing.
  p.send("early");
  Read at_once;
  at_once.start(p.server);
  EXPECT_FALSE(at_once.waited);
  ASSERT_TRUE(at_once.run(p.io));
  EXPECT_TRUE(readiness::tries_at_once(p.server));
  // A read that filled its buffer may have left more behind.
  Read full;
  std::string big(sizeof full.buf, 'x');
  ASSERT_TRUE(read_after(full, [&] { p.send(big); }));
  ASSERT_EQ(*full.n, sizeof full.buf);
  EXPECT_TRUE(readiness::tries_at_once(p.server));
}
