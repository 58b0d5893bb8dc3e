#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/basic_resolver.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/system/system_error.hpp>

#include <chrono>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

/// The coroutines of the data plane and the I/O-object types they use, bound to the event loop's
/// own executor.
///
/// `Task<T>` is this project's coroutine type, not `asio::awaitable`. Asio's awaitable runs every
/// coroutine on a "thread" object that pumps a stack of frames, wraps every completion handler
/// in a type that resumes that pump, and starts every asynchronous operation through a coroutine
/// frame of its own. Here an operation's awaiter lives in the awaiting coroutine's frame, its
/// handler is one pointer (and the chain it belongs to), and completion resumes the coroutine
/// directly; a coroutine awaiting another transfers control to it and back (symmetric transfer,
/// no loop, no stack growth). Asio's executor is used as is: one `io_context` per event loop,
/// run by one thread.
///
/// Rules:
/// - A `Task` starts when it is awaited (lazily) or spawned with `spawn`.
/// - An operation started with `use_task` (or `as_tuple(use_task)`, `redirect_error(use_task,
///   ec)`) starts when the call is evaluated; await it in the same expression.
/// - Completion with an error code throws `boost::system::system_error` from the await, unless
///   the token is `as_tuple(use_task)` (the code is returned) or `redirect_error`.
/// - When an event loop shuts down with operations pending (their handlers destroyed without
///   being called), every coroutine of the chain that waited on them is destroyed, from its
///   root: destructors run, nothing is resumed.
namespace switchyard::net {

using Executor = boost::asio::io_context::executor_type;

template <class T = void>
class Task;

namespace detail {

/// One spawned coroutine and everything it awaits: the unit that is destroyed when a pending
/// operation is abandoned. Reference-counted by the root and by every pending handler, so a
/// handler destroyed after its chain ended finds out instead of touching freed frames.
struct Chain {
  std::coroutine_handle<> root;
  std::uint32_t refs = 1;  ///< the root's own
  bool ended = false;      ///< the root returned, or the chain was torn down

  void retain() noexcept { ++refs; }
  void release() noexcept {
    if (--refs == 0) delete this;
  }
  /// Destroys the chain from its root (once), as a loop shutting down requires.
  void abandon() noexcept {
    if (ended) return;
    ended = true;
    root.destroy();
  }
};

/// The chain whose coroutine runs now on this thread (null outside any).
inline thread_local Chain* current_chain = nullptr;

/// Sets the running chain for a scope (a resume), restoring the previous one after.
class ChainScope {
 public:
  explicit ChainScope(Chain* c) noexcept : saved_(current_chain) { current_chain = c; }
  ~ChainScope() { current_chain = saved_; }
  ChainScope(const ChainScope&) = delete;
  ChainScope& operator=(const ChainScope&) = delete;

 private:
  Chain* saved_;
};

/// Recently freed coroutine frames of this thread, by size (64-byte steps up to 4 KiB), a few
/// of each: a request creates and ends the same handful of frames, and taking one back from a
/// list is a load and a store where the allocator's path is a few dozen instructions in code of
/// its own. Trivially destructible (no thread-exit guard on every access); what it keeps at
/// thread exit is left to the process's end (at most 16 frames per size).
struct FrameCache {
  static constexpr std::size_t kStep = 64;
  static constexpr std::size_t kClasses = 64;
  static constexpr std::uint8_t kKeep = 16;
  struct Block {
    Block* next;
  };
  Block* head[kClasses];
  std::uint8_t count[kClasses];

  static std::size_t class_of(std::size_t n) noexcept { return (n - 1) / kStep; }
  void* take(std::size_t n) {
    const std::size_t c = class_of(n);
    if (c >= kClasses) return ::operator new(n);
    if (Block* b = head[c]) {
      head[c] = b->next;
      --count[c];
      return b;
    }
    return ::operator new((c + 1) * kStep);
  }
  void give(void* p, std::size_t n) noexcept {
    const std::size_t c = class_of(n);
    if (c >= kClasses || count[c] == kKeep) {
      ::operator delete(p);
      return;
    }
    auto* b = static_cast<Block*>(p);
    b->next = head[c];
    head[c] = b;
    ++count[c];
  }
};
inline thread_local FrameCache frame_cache{};

/// The allocator of an operation started with `use_task`: Asio allocates the operation object
/// (socket op, timer wait, composed write) through the handler's associated allocator, so
/// those come from the same cache as the frames.
template <class T>
struct CacheAllocator {
  using value_type = T;
  CacheAllocator() noexcept = default;
  template <class U>
  CacheAllocator(const CacheAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) { return static_cast<T*>(frame_cache.take(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) noexcept { frame_cache.give(p, n * sizeof(T)); }
  template <class U>
  bool operator==(const CacheAllocator<U>&) const noexcept {
    return true;
  }
};

/// What every promise of the data plane's coroutines shares.
struct PromiseBase {
  std::coroutine_handle<> continuation;  ///< the coroutine awaiting this one
  std::exception_ptr error;

  static void* operator new(std::size_t n) { return frame_cache.take(n); }
  static void operator delete(void* p, std::size_t n) noexcept { frame_cache.give(p, n); }
};

/// Resumes the awaiting coroutine when a task ends: a transfer, not a nested call.
struct FinalAwaiter {
  bool await_ready() const noexcept { return false; }
  template <class P>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) const noexcept {
    std::coroutine_handle<> next = h.promise().continuation;
    return next ? next : std::noop_coroutine();
  }
  void await_resume() const noexcept {}
};

template <class T>
struct TaskPromise : PromiseBase {
  std::optional<T> value;
  Task<T> get_return_object() noexcept;
  std::suspend_always initial_suspend() const noexcept { return {}; }
  FinalAwaiter final_suspend() const noexcept { return {}; }
  void return_value(T v) { value.emplace(std::move(v)); }
  void unhandled_exception() noexcept { error = std::current_exception(); }
  T take() {
    if (error) std::rethrow_exception(error);
    return std::move(*value);
  }
};

template <>
struct TaskPromise<void> : PromiseBase {
  Task<void> get_return_object() noexcept;
  std::suspend_always initial_suspend() const noexcept { return {}; }
  FinalAwaiter final_suspend() const noexcept { return {}; }
  void return_void() const noexcept {}
  void unhandled_exception() noexcept { error = std::current_exception(); }
  void take() {
    if (error) std::rethrow_exception(error);
  }
};

/// The awaiter of one asynchronous operation, in the awaiting coroutine's frame. The operation
/// is started by the constructor (with a handler pointing here); its results are kept until the
/// await resumes. Neither copied nor moved: it is built where the await expression puts it.
template <class... Args>
class OpAwaiter {
 public:
  class Handler {
   public:
    using allocator_type = CacheAllocator<void>;
    allocator_type get_allocator() const noexcept { return {}; }

    explicit Handler(OpAwaiter* op) noexcept : op_(op), chain_(current_chain) {
      if (chain_) chain_->retain();
    }
    Handler(Handler&& other) noexcept
        : op_(std::exchange(other.op_, nullptr)), chain_(std::exchange(other.chain_, nullptr)) {}
    Handler& operator=(Handler&&) = delete;
    ~Handler() {
      if (!chain_) return;
      // Destroyed without being called: the loop is shutting down with this operation pending.
      if (op_) chain_->abandon();
      chain_->release();
    }

    template <class... Values>
    void operator()(Values&&... values) {
      OpAwaiter* op = std::exchange(op_, nullptr);
      Chain* chain = std::exchange(chain_, nullptr);
      if (chain && chain->ended) {  // its coroutines were destroyed
        chain->release();
        return;
      }
      op->result_.emplace(std::forward<Values>(values)...);
      if (!op->waiting_) {  // completed before the await: it will not suspend
        if (chain) chain->release();
        return;
      }
      ChainScope scope(chain);
      if (chain) chain->release();  // a live chain is still held by its root
      op->waiting_.resume();
    }

   private:
    OpAwaiter* op_;
    Chain* chain_;
  };

  template <class Initiation, class... InitArgs>
  explicit OpAwaiter(Initiation&& initiation, InitArgs&&... args) {
    std::forward<Initiation>(initiation)(Handler(this), std::forward<InitArgs>(args)...);
  }
  OpAwaiter(const OpAwaiter&) = delete;
  OpAwaiter& operator=(const OpAwaiter&) = delete;

  /// Asio never completes an operation inside its initiating call, but a result already here
  /// would simply not suspend.
  bool await_ready() const noexcept { return result_.has_value(); }
  void await_suspend(std::coroutine_handle<> h) noexcept { waiting_ = h; }
  auto await_resume() { return unpack(std::move(*result_)); }

 private:
  template <class... Vs>
  static auto values(std::tuple<Vs...>&& t) {
    if constexpr (sizeof...(Vs) == 0) return;
    else if constexpr (sizeof...(Vs) == 1) return std::get<0>(std::move(t));
    else return std::move(t);
  }
  template <class First, class... Rest>
  static std::tuple<Rest...> drop_first(std::tuple<First, Rest...>&& t) {
    return std::apply([](First&&, Rest&&... rest) { return std::tuple<Rest...>(std::move(rest)...); },
                      std::move(t));
  }
  static auto unpack(std::tuple<Args...>&& t) {
    if constexpr (sizeof...(Args) == 0) {
      return;
    } else {
      using First = std::tuple_element_t<0, std::tuple<Args...>>;
      if constexpr (std::is_same_v<First, boost::system::error_code>) {
        if (std::get<0>(t)) throw boost::system::system_error(std::get<0>(t));
        return values(drop_first(std::move(t)));
      } else if constexpr (std::is_same_v<First, std::exception_ptr>) {
        if (std::get<0>(t)) std::rethrow_exception(std::get<0>(t));
        return values(drop_first(std::move(t)));
      } else {
        return values(std::move(t));
      }
    }
  }

  std::optional<std::tuple<Args...>> result_;
  std::coroutine_handle<> waiting_;
};

/// The coroutine at the bottom of a spawned chain.
struct Root {
  struct promise_type {
    Chain* chain = new Chain;
    promise_type() { chain->root = std::coroutine_handle<promise_type>::from_promise(*this); }
    ~promise_type() {
      chain->ended = true;
      chain->release();
    }
    Root get_return_object() noexcept { return Root{chain}; }
    std::suspend_always initial_suspend() const noexcept { return {}; }
    std::suspend_never final_suspend() const noexcept { return {}; }
    void return_void() noexcept { chain->ended = true; }
    void unhandled_exception() noexcept { std::terminate(); }  // spawn catches everything
  };
  Chain* chain;
};

}  // namespace detail

/// A coroutine of the data plane (lazy: starts when awaited). Awaiting it gives its value or
/// rethrows its exception.
template <class T>
class [[nodiscard]] Task {
 public:
  using promise_type = detail::TaskPromise<T>;
  using Handle = std::coroutine_handle<promise_type>;

  Task() = default;
  explicit Task(Handle h) noexcept : h_(h) {}
  Task(Task&& other) noexcept : h_(std::exchange(other.h_, nullptr)) {}
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      if (h_) h_.destroy();
      h_ = std::exchange(other.h_, nullptr);
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() {
    if (h_) h_.destroy();
  }

  struct Awaiter {
    Handle h;
    bool await_ready() const noexcept { return false; }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<> caller) noexcept {
      h.promise().continuation = caller;
      return h;
    }
    T await_resume() { return h.promise().take(); }
  };
  Awaiter operator co_await() const noexcept { return Awaiter{h_}; }

 private:
  Handle h_;
};

namespace detail {
template <class T>
Task<T> TaskPromise<T>::get_return_object() noexcept {
  return Task<T>(std::coroutine_handle<TaskPromise<T>>::from_promise(*this));
}
inline Task<void> TaskPromise<void>::get_return_object() noexcept {
  return Task<void>(std::coroutine_handle<TaskPromise<void>>::from_promise(*this));
}

template <class F, class Done>
Root spawn_root(F make, Done done) {
  std::exception_ptr error;
  try {
    co_await make();
  } catch (...) {
    error = std::current_exception();
  }
  done(error);
}

struct Ignore {
  void operator()(std::exception_ptr) const noexcept {}
};

/// Starts a spawned chain: at once when on the loop's own thread, else posted to it. A chain
/// that never starts (the loop shut down first) is destroyed unrun.
inline void start(boost::asio::io_context& io, Root root) {
  Chain* chain = root.chain;
  if (io.get_executor().running_in_this_thread()) {
    ChainScope scope(chain);
    chain->root.resume();
    return;
  }
  struct Start {
    Chain* chain;
    explicit Start(Chain* c) noexcept : chain(c) { chain->retain(); }
    Start(Start&& o) noexcept : chain(std::exchange(o.chain, nullptr)) {}
    ~Start() {
      if (!chain) return;
      chain->abandon();
      chain->release();
    }
    void operator()() {
      Chain* c = std::exchange(chain, nullptr);
      if (!c->ended) {
        ChainScope scope(c);
        c->root.resume();
      }
      c->release();
    }
  };
  boost::asio::post(io, Start(chain));
}
}  // namespace detail

/// Runs `make()` (a callable returning a `Task`, kept alive until the task ends) as a new chain
/// on `io`: at once when called from the loop's own thread, else posted to it. `done` gets the
/// exception the task ended with (null when none).
template <class F, class Done = detail::Ignore>
void spawn(boost::asio::io_context& io, F make, Done done = {}) {
  detail::start(io, detail::spawn_root(std::move(make), std::move(done)));
}

/// Runs `task` as a new chain on `io` (see above); whatever it refers to must outlive it.
template <class T, class Done = detail::Ignore>
void spawn(boost::asio::io_context& io, Task<T> task, Done done = {}) {
  spawn(io, [t = std::move(task)]() mutable { return std::move(t); }, std::move(done));
}

/// The completion token that makes an asynchronous operation awaitable in a `Task`.
struct UseTask {};
inline constexpr UseTask use_task{};
/// The same, with the error code returned (first in a tuple) instead of thrown: what the data
/// plane uses, since it handles errors as codes.
inline constexpr auto nothrow = boost::asio::as_tuple(use_task);

using Socket = boost::asio::basic_stream_socket<boost::asio::ip::tcp, Executor>;
using Acceptor = boost::asio::basic_socket_acceptor<boost::asio::ip::tcp, Executor>;
using Resolver = boost::asio::ip::basic_resolver<boost::asio::ip::tcp, Executor>;
using Timer = boost::asio::basic_waitable_timer<std::chrono::steady_clock,
                                                boost::asio::wait_traits<std::chrono::steady_clock>,
                                                Executor>;

}  // namespace switchyard::net

template <class R, class... Args>
class boost::asio::async_result<switchyard::net::UseTask, R(Args...)> {
 public:
  using return_type = switchyard::net::detail::OpAwaiter<std::decay_t<Args>...>;

  template <class Initiation, class Token, class... InitArgs>
  static return_type initiate(Initiation&& initiation, Token&&, InitArgs&&... args) {
    return return_type(std::forward<Initiation>(initiation), std::forward<InitArgs>(args)...);
  }
};
