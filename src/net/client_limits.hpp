#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <unordered_map>

#include "net/deadline.hpp"

namespace switchyard::net {

/// What one client address may hold before any of its requests authenticated: connections, and
/// refused requests a second. A connection counts here from its accept until the handler vouches for it
/// (`Session::authenticate`, a valid key) or it closes; so one address opening thousands of slow
/// connections cannot take the slots left (see `open`), while authenticated traffic from the
/// same address (a proxy, a NAT) is limited only by the server's own connection cap.
/// Shared by every event loop (connections of one address land on different loops):
/// sharded maps under mutexes, touched once per connection and once per unauthenticated request,
/// never on the requests of an authenticated keep-alive connection.
class AddressTable {
 public:
  using Address = std::array<unsigned char, 16>;  ///< IPv6, or IPv4 mapped into IPv6

  struct Limits {
    std::size_t max_connections = 256;         ///< unauthenticated connections per address; 0 = none
    std::uint32_t requests_per_second = 100;  ///< refused unauthenticated requests per address; 0 = none
  };

  explicit AddressTable(Limits limits) : limits_(limits) {}

  /// A new connection from `address`: counted, or false (not counted) when `enforce` and the
  /// address already holds its limit of unauthenticated connections. The server enforces the
  /// limit only under pressure (more than half its connection slots taken): a large client pool
  /// opening all its connections at once is never refused while slots are plentiful.
  bool open(const Address& address, bool enforce = true);
  /// An unauthenticated connection of `address` authenticated or closed.
  void release(const Address& address);
  /// Whether `address` is over its rate of refused unauthenticated requests (a request of an
  /// unauthenticated connection is then refused before the handler sees it).
  bool over_rate(const Address& address, Clock::time_point now);
  /// A request of an unauthenticated connection was refused (a missing or wrong key, an unknown
  /// path): counted against the address's rate (GCRA: `requests_per_second`, a burst of one
  /// second's worth). Answers that succeed without a key (/healthz) are not counted.
  void charge_refusal(const Address& address, Clock::time_point now);

  /// Addresses tracked now (tests).
  std::size_t size();

 private:
  struct Entry {
    std::uint32_t connections = 0;
    std::int64_t tat_us = 0;  ///< GCRA's theoretical arrival time, µs on the steady clock
  };
  struct Hash {
    std::size_t operator()(const Address& a) const noexcept;
  };
  struct Shard {
    std::mutex mutex;
    std::unordered_map<Address, Entry, Hash> entries;
    std::int64_t swept_us = 0;
  };
  Shard& shard_of(const Address& a);
  std::int64_t interval_us() const {
    return limits_.requests_per_second ? std::max<std::int64_t>(1, 1'000'000 / limits_.requests_per_second) : 0;
  }
  /// Drops entries that hold no connection and whose rate state has run out (at most once a
  /// second per shard): an address that left is forgotten within a second or two.
  static void sweep(Shard& shard, std::int64_t now_us);

  Limits limits_;
  std::array<Shard, 16> shards_;
};

/// A budget of bytes for the request bodies buffered by every connection together, so that many
/// clients sending large bodies at once cannot take the machine's memory: a body that does not
/// fit is refused (503, retry later) before it is read. Bodies under `kExempt` are not counted:
/// they fit the connection's own buffer (whose size the connection cap bounds).
class MemoryBudget {
 public:
  static constexpr std::size_t kExempt = 64 * 1024;

  explicit MemoryBudget(std::size_t limit) : limit_(limit) {}

  /// Takes `bytes` from the budget; false (nothing taken) when they do not fit. A zero limit
  /// means no budget.
  bool take(std::size_t bytes);
  void give(std::size_t bytes) { used_.fetch_sub(bytes, std::memory_order_relaxed); }
  std::size_t used() const { return used_.load(std::memory_order_relaxed); }
  std::size_t limit() const { return limit_; }

  /// A default from the machine: an eighth of its physical memory, at least 64 MiB.
  static std::size_t machine_default();

  /// What one body holds of the budget, given back when it ends.
  class Hold {
   public:
    explicit Hold(MemoryBudget& budget) : budget_(budget) {}
    ~Hold() { budget_.give(held_); }
    Hold(const Hold&) = delete;
    Hold& operator=(const Hold&) = delete;
    /// The body now needs `bytes` in all: takes what that adds (bodies under kExempt take
    /// nothing); false, holding what it held, when the budget cannot give it.
    bool grow(std::size_t bytes) {
      if (bytes <= kExempt || bytes <= held_) return true;
      if (!budget_.take(bytes - held_)) return false;
      held_ = bytes;
      return true;
    }
    /// Gives back what it holds (the body ended; the hold may grow again for the next one).
    void release() {
      budget_.give(held_);
      held_ = 0;
    }
    bool holds() const { return held_ != 0; }

   private:
    MemoryBudget& budget_;
    std::size_t held_ = 0;
  };

 private:
  std::size_t limit_;
  std::atomic<std::size_t> used_{0};
};

}  // namespace switchyard::net
