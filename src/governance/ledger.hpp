#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "governance/store.hpp"

/// The spend ledger's writer. A row is made durable the cheap way first — one line appended to
/// a local spool file by the event loop that settles the request (a `write` of a few hundred
/// bytes: it is then in the kernel's hands and survives the process being killed) — and a
/// thread of its own moves rows into the store in large transactions (group commit). At start,
/// rows a previous process spooled but did not commit are replayed into the store; replay is
/// idempotent (rows are keyed by id). So the event loops never touch the database, and a
/// response's end is released after one append, not after a database commit.
namespace switchyard::governance {

struct LedgerOptions {
  /// `sync`: `append` writes the row to the spool before it returns (survives `kill -9`; not a
  /// power cut). `fsync`: the same, and `on_durable` runs once a group of appends has been
  /// flushed to disk (fdatasync; survives a power cut). `async`: no spool; rows reach the store
  /// within `async_window_ms` (plus one commit) of being queued, and a crash loses at most that.
  enum class Durability { sync, fsync, async } durability = Durability::sync;
  std::string spool_dir;  ///< sync and fsync: where the spool's segments live (created)
  std::int64_t async_window_ms = 200;
  /// sync and fsync: how long spooled rows wait for company before a store transaction (they
  /// are durable already; only reports see them this much later).
  std::int64_t store_window_ms = 100;
  std::size_t max_batch = 4096;                 ///< rows per store transaction at most
  /// Rows kept in memory for the store at most (about 700 bytes each). Beyond, when the store
  /// has fallen that far behind: with a spool (sync, fsync) rows wait in the spool only, which is
  /// then kept whole and replayed into the store at the next start (memory bounded, nothing
  /// lost); without (async) they are dropped and counted.
  std::size_t max_queued = 200'000;
  std::size_t segment_bytes = 16 * 1024 * 1024;  ///< a spool segment is rotated past this size
  /// The spool's size on disk at most (the store unreachable for long): past it `accepting()`
  /// is false and the gateway refuses billable requests (503) until the store has caught up —
  /// it never answers what it could not account for.
  std::uint64_t max_spool_bytes = 1024ull * 1024 * 1024;
};

class Ledger {
 public:
  /// Called when the row is as durable as the mode promises (see `LedgerOptions`): inline in
  /// `append` for sync, on the writer thread for fsync (after the flush) and async (after the
  /// store's commit). false: it never will be (the spool could not be written, or the ledger
  /// stopped with the store failing).
  using Done = std::function<void(bool durable)>;
  /// What the writer reports when something fails (it keeps the rows and tries again).
  using OnError = std::function<void(const std::string&)>;

  /// Opens the spool (replaying what an earlier process left in it into the store) and starts
  /// the writer; throws `StoreError` when the spool cannot be opened or replayed.
  Ledger(Store& store, LedgerOptions options, OnError on_error = {});
  ~Ledger();
  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  /// Records a row (thread-safe). Returns false when it could not be made durable (the spool
  /// write failed): the caller must not acknowledge what it accounts for.
  bool append(LedgerRow row, Done on_durable = {});
  /// Commits what is queued and stops the writer, waiting at most `deadline_ms` for a failing
  /// store; rows it could not commit stay in the spool (sync, fsync) for the next start, or are
  /// reported lost to their `on_durable` (async).
  void stop(std::int64_t deadline_ms = 10000);
  /// Tests: stops the writer at once without committing anything (as if the process had died).
  void abandon();

  /// Whether the spool has room (see `LedgerOptions::max_spool_bytes`); lock-free.
  bool accepting() const { return accepting_.load(std::memory_order_relaxed); }

  struct Stats {
    std::uint64_t appended = 0, committed = 0, batches = 0, failures = 0, replayed = 0;
    std::size_t depth = 0, max_depth = 0;  ///< rows queued for the store now, and at most so far
    std::size_t largest_batch = 0;
    double last_commit_ms = 0, max_commit_ms = 0;
    std::uint64_t spool_bytes = 0;  ///< in the current segment
    std::uint64_t spool_total_bytes = 0;  ///< every segment on disk
    std::uint64_t catch_ups = 0;  ///< spool-only rows replayed into the store while running
    std::uint64_t spool_only = 0;   ///< rows left in the spool only (the store too far behind)
    std::uint64_t dropped = 0;      ///< async: rows dropped past `max_queued` (no spool to keep them)
  };
  Stats stats() const;
  const LedgerOptions& options() const { return options_; }

  /// One row as a spool line (tab-separated, escaped; ends in '\n'), and back.
  static void encode(const LedgerRow& row, std::string& line);
  static bool decode(std::string_view line, LedgerRow& row);

 private:
  void run();
  void replay();
  /// Writes every row of these segments into the store (idempotent); throws on a store failure.
  std::size_t replay_segments(const std::vector<std::string>& paths);
  void open_segment();
  /// Starts a new segment; the current one is retired (deleted once its rows are committed).
  bool rotate_segment();
  void update_accepting();

  Store& store_;
  LedgerOptions options_;
  OnError on_error_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  // Rows waiting for the store, in spool order; with async durability their callbacks
  // alongside (the spooled modes have none to keep). A batch that takes them all swaps the
  // vectors: no row is moved one by one. Row k of the queue has sequence number
  // next_seq_ - size + k.
  std::vector<LedgerRow> queue_;
  std::vector<Done> queue_dones_;
  std::uint64_t next_seq_ = 1;
  // The spool: the segment appended to now, and older ones still awaiting their rows' commit.
  int spool_fd_ = -1;
  std::uint64_t segment_number_ = 0;
  struct Retired {
    std::string path;
    std::uint64_t last_seq;  ///< deleted once every row up to this one is committed
    std::uint64_t bytes = 0;
  };
  std::uint64_t retired_bytes_ = 0;
  std::atomic<bool> accepting_{true};
  std::vector<Retired> retired_;
  std::string segment_path_;
  std::vector<Done> unflushed_;  ///< fsync: waiting for the next fdatasync
  bool keep_spool_ = false;      ///< rows went to the spool only: keep every segment for replay
  bool stopping_ = false, abandoned_ = false;
  std::int64_t stop_deadline_ms_ = 0;
  Stats stats_;
  std::thread thread_;
};

}  // namespace switchyard::governance
