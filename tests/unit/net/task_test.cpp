#include "net/task.hpp"

#include <gtest/gtest.h>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/redirect_error.hpp>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

namespace asio = boost::asio;
using namespace switchyard::net;

namespace {

Task<int> twice(int v) { co_return v * 2; }

Task<int> sum_of_twice(int a, int b) {
  int x = co_await twice(a);
  int y = co_await twice(b);
  co_return x + y;
}

Task<std::string> fails() {
  throw std::runtime_error("boom");
  co_return "never";
}

Task<> ready() { co_return; }

/// Sets a flag when destroyed: shows that a frame holding it was destroyed.
struct Flag {
  bool* destroyed;
  ~Flag() { *destroyed = true; }
};

}  // namespace

TEST(Task, NestedTasksReturnValuesAndRethrowExceptions) {
  asio::io_context io;
  std::optional<int> got;
  std::string error;
  spawn(io, [&]() -> Task<> {
    got = co_await sum_of_twice(3, 4);
    try {
      co_await fails();
    } catch (const std::exception& e) {
      error = e.what();
    }
  });
  io.run();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, 14);
  EXPECT_EQ(error, "boom");
}

TEST(Task, AnExceptionLeavingTheRootReachesItsDoneCallback) {
  asio::io_context io;
  std::string error;
  spawn(io, fails(), [&](std::exception_ptr e) {
    try {
      if (e) std::rethrow_exception(e);
    } catch (const std::exception& x) {
      error = x.what();
    }
  });
  io.run();
  EXPECT_EQ(error, "boom");
}

// Tasks that finish without suspending hand control back by transfer, not by a nested call: a
// million of them in a loop would overflow the stack otherwise.
TEST(Task, AMillionTasksThatCompleteAtOnceDoNotGrowTheStack) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  // Symmetric transfer is a tail call; the sanitizers' instrumentation keeps GCC from making it,
  // so under them each transfer is a nested call. What this asserts holds in the real builds.
  GTEST_SKIP() << "needs the tail calls that sanitizer builds do not make";
#endif
  asio::io_context io;
  long count = 0;
  spawn(io, [&]() -> Task<> {
    for (int i = 0; i < 1000000; ++i) {
      co_await ready();
      ++count;
    }
  });
  io.run();
  EXPECT_EQ(count, 1000000);
}

TEST(Task, OperationsReturnTheirResultsInEachTokenForm) {
  asio::io_context io;
  boost::system::error_code tuple_ec, redirected = asio::error::eof;
  std::string thrown;
  bool plain_done = false;
  spawn(io, [&]() -> Task<> {
    Timer t(io, std::chrono::milliseconds(1));
    co_await t.async_wait(use_task);  // no error: returns
    plain_done = true;

    t.expires_after(std::chrono::milliseconds(1));
    auto [ec] = co_await t.async_wait(asio::as_tuple(use_task));
    tuple_ec = ec;

    t.expires_after(std::chrono::milliseconds(1));
    co_await t.async_wait(asio::redirect_error(use_task, redirected));

    // A cancelled wait: the error is thrown with the plain token.
    t.expires_after(std::chrono::hours(1));
    Timer canceller(io, std::chrono::milliseconds(1));
    canceller.async_wait([&](const boost::system::error_code&) { t.cancel(); });
    try {
      co_await t.async_wait(use_task);
    } catch (const boost::system::system_error& e) {
      thrown = e.code() == asio::error::operation_aborted ? "aborted" : e.code().message();
    }
  });
  io.run();
  EXPECT_TRUE(plain_done);
  EXPECT_FALSE(tuple_ec);
  EXPECT_FALSE(redirected);  // cleared by the successful wait
  EXPECT_EQ(thrown, "aborted");
}

TEST(Task, SpawnRunsAtOnceOnTheLoopThreadAndIsPostedFromAnother) {
  asio::io_context io;
  std::vector<std::string> order;
  spawn(io, [&]() -> Task<> {
    order.push_back("outer");
    spawn(io, [&]() -> Task<> {  // on the loop thread: runs before spawn returns
      order.push_back("inner");
      co_return;
    });
    order.push_back("after inner");
    co_return;
  });
  order.push_back("spawned from outside");  // not on the loop thread: nothing ran yet
  io.run();
  EXPECT_EQ(order, (std::vector<std::string>{"spawned from outside", "outer", "inner", "after inner"}));
}

// A loop destroyed with an operation pending destroys the chain that waits on it, from its root:
// every frame's locals are destroyed and nothing is resumed.
TEST(Task, ALoopDestroyedWithWorkPendingDestroysTheWaitingChain) {
  bool outer_destroyed = false, inner_destroyed = false, resumed = false;
  {
    asio::io_context io;
    spawn(io, [&]() -> Task<> {
      Flag outer{&outer_destroyed};
      auto inner = [&]() -> Task<> {
        Flag f{&inner_destroyed};
        Timer t(io, std::chrono::hours(1));
        co_await t.async_wait(use_task);
        resumed = true;
      };
      co_await inner();
      resumed = true;
    });
    io.run_for(std::chrono::milliseconds(5));
    EXPECT_FALSE(outer_destroyed);
  }
  EXPECT_TRUE(inner_destroyed);
  EXPECT_TRUE(outer_destroyed);
  EXPECT_FALSE(resumed);
}

// A spawn posted to a loop that is destroyed before it runs: the chain is destroyed unrun (its
// callable with what it captured), not leaked and not started.
TEST(Task, ASpawnThatNeverRanIsDestroyedWithItsLoop) {
  bool destroyed = false, ran = false;
  {
    asio::io_context io;
    auto flag = std::make_shared<Flag>(&destroyed);
    spawn(io, [flag, &ran]() -> Task<> {
      ran = true;
      co_return;
    });
    flag.reset();
    EXPECT_FALSE(destroyed);  // the spawn holds its copy
  }
  EXPECT_TRUE(destroyed);
  EXPECT_FALSE(ran);
}

TEST(Task, AStoredHandlerCalledLaterResumesTheWaitingCoroutine) {
  asio::io_context io;
  std::optional<asio::any_completion_handler<void()>> waiter;
  int stage = 0;
  spawn(io, [&]() -> Task<> {
    stage = 1;
    co_await asio::async_initiate<const UseTask&, void()>(
        [&](auto handler) { waiter.emplace(std::move(handler)); }, use_task);
    stage = 2;
  });
  io.run();
  EXPECT_EQ(stage, 1);
  ASSERT_TRUE(waiter.has_value());
  auto w = std::move(*waiter);
  waiter.reset();
  std::move(w)();
  EXPECT_EQ(stage, 2);
}

// The frame cache hands back the block last freed of the same size step, keeps at most 16 per
// step (the rest go back to the allocator), and leaves large blocks to the allocator.
TEST(Task, TheFrameCacheReusesFreedBlocksOfTheSameSizeStep) {
  detail::FrameCache cache{};
  void* a = cache.take(100);  // class 1: 65..128 bytes
  cache.give(a, 100);
  EXPECT_EQ(cache.take(120), a) << "same step, so the same block";
  void* b = cache.take(60);   // class 0: a new block
  EXPECT_NE(b, a);
  cache.give(b, 60);
  cache.give(a, 120);
  std::vector<void*> many;
  for (int i = 0; i < 20; ++i) many.push_back(cache.take(100));
  for (void* p : many) cache.give(p, 100);
  EXPECT_EQ(cache.count[1], detail::FrameCache::kKeep);
  void* big = cache.take(1 << 20);  // beyond the cache: straight from the allocator
  cache.give(big, 1 << 20);
  EXPECT_EQ(cache.count[1], detail::FrameCache::kKeep);
  // Leave nothing behind (the test's cache is not the thread's).
  for (auto& head : cache.head)
    while (head) {
      void* p = head;
      head = head->next;
      ::operator delete(p);
    }
}
