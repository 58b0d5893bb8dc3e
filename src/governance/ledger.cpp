#include "governance/ledger.hpp"

#include <chrono>

namespace switchyard::governance {

namespace {
std::int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

Ledger::Ledger(Store& store, LedgerOptions options, OnError on_error)
    : store_(store), options_(options), on_error_(std::move(on_error)), thread_([this] { run(); }) {}

Ledger::~Ledger() { stop(); }

void Ledger::append(LedgerRow row, Done done) {
  bool first;
  {
    std::lock_guard lock(mutex_);
    first = queue_.empty();
    queue_.push_back({std::move(row), std::move(done)});
    ++stats_.appended;
    stats_.depth = queue_.size();
    if (stats_.depth > stats_.max_depth) stats_.max_depth = stats_.depth;
  }
  // The writer sleeps only on an empty queue (or in the async window, which it ends itself).
  if (first) wake_.notify_one();
}

void Ledger::stop(std::int64_t deadline_ms) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
    stop_deadline_ms_ = steady_ms() + deadline_ms;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

Ledger::Stats Ledger::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void Ledger::run() {
  std::vector<Entry> batch;
  std::vector<LedgerRow> rows;
  std::int64_t backoff_ms = 50;
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty() && stopping_) return;
    if (options_.durability == LedgerOptions::Durability::async && !stopping_) {
      // Rows wait up to the window for company: fewer, larger transactions.
      const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.async_window_ms);
      wake_.wait_until(lock, until, [&] { return stopping_ || queue_.size() >= options_.max_batch; });
    }
    const std::size_t n = std::min(queue_.size(), options_.max_batch);
    batch.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.begin() + n));
    queue_.erase(queue_.begin(), queue_.begin() + n);
    lock.unlock();

    rows.clear();
    for (auto& e : batch) rows.push_back(std::move(e.row));
    bool committed = false;
    const auto started = std::chrono::steady_clock::now();
    std::string failure;
    try {
      store_.write_ledger(rows);
      committed = true;
    } catch (const std::exception& e) {
      failure = e.what();
    }
    const double took = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
    if (committed) {
      backoff_ms = 50;
      for (auto& e : batch)
        if (e.done) e.done(true);
      batch.clear();
      lock.lock();
      stats_.committed += n;
      ++stats_.batches;
      stats_.largest_batch = std::max(stats_.largest_batch, n);
      stats_.last_commit_ms = took;
      stats_.max_commit_ms = std::max(stats_.max_commit_ms, took);
      stats_.depth = queue_.size();
      continue;
    }
    if (on_error_) on_error_("ledger commit of " + std::to_string(n) + " rows failed (kept, retrying): " + failure);
    lock.lock();
    ++stats_.failures;
    // Nothing is dropped: the batch goes back to the head of the queue, in order.
    for (std::size_t i = 0; i < batch.size(); ++i) batch[i].row = std::move(rows[i]);
    queue_.insert(queue_.begin(), std::make_move_iterator(batch.begin()), std::make_move_iterator(batch.end()));
    batch.clear();
    stats_.depth = queue_.size();
    if (stopping_ && steady_ms() >= stop_deadline_ms_) {
      // Stopping with the store still failing: these rows are lost, and every waiter is told
      // so (its response's end is never released, so nothing lost was acknowledged).
      std::vector<Entry> lost;
      lost.swap(queue_);
      stats_.depth = 0;
      lock.unlock();
      if (on_error_) on_error_("ledger stopped with " + std::to_string(lost.size()) + " rows not committed");
      for (auto& e : lost)
        if (e.done) e.done(false);
      return;
    }
    wake_.wait_for(lock, std::chrono::milliseconds(backoff_ms), [&] { return false; });
    backoff_ms = std::min<std::int64_t>(backoff_ms * 2, 2000);
  }
}

}  // namespace switchyard::governance
