#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "governance/store.hpp"

/// The spend ledger's writer: rows queued by the event loops, written by one thread of its own
/// with group commit (every row queued while a commit runs goes into the next one, in one
/// transaction). The event loops never touch the database.
namespace switchyard::governance {

struct LedgerOptions {
  /// `sync`: a row's `done` runs once its transaction has committed, and the gateway releases
  /// the end of the response only then (nothing acknowledged is lost). `async`: rows are
  /// committed within `async_window_ms` of being queued, and nobody waits.
  enum class Durability { sync, async } durability = Durability::sync;
  std::int64_t async_window_ms = 200;
  std::size_t max_batch = 2048;  ///< rows per transaction at most
};

class Ledger {
 public:
  /// Called on the writer thread: true once the row is committed, false when it never will be
  /// (the ledger stopped with the store failing).
  using Done = std::function<void(bool committed)>;
  /// What the writer reports when a commit fails (it keeps the rows and tries again).
  using OnError = std::function<void(const std::string&)>;

  Ledger(Store& store, LedgerOptions options, OnError on_error = {});
  ~Ledger();
  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  /// Queues a row (thread-safe). `done` (may be empty) runs on the writer thread after commit.
  void append(LedgerRow row, Done done = {});
  /// Commits what is queued and stops the writer, waiting at most `deadline_ms` for a failing
  /// store; rows it could not commit are reported to their `done` as not committed.
  void stop(std::int64_t deadline_ms = 10000);

  struct Stats {
    std::uint64_t appended = 0, committed = 0, batches = 0, failures = 0;
    std::size_t depth = 0, max_depth = 0;  ///< rows queued now, and at most so far
    std::size_t largest_batch = 0;
    double last_commit_ms = 0, max_commit_ms = 0;
  };
  Stats stats() const;
  const LedgerOptions& options() const { return options_; }

 private:
  void run();

  Store& store_;
  LedgerOptions options_;
  OnError on_error_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  struct Entry {
    LedgerRow row;
    Done done;
  };
  std::vector<Entry> queue_;
  bool stopping_ = false;
  std::int64_t stop_deadline_ms_ = 0;
  Stats stats_;
  std::thread thread_;
};

}  // namespace switchyard::governance
