#include "governance/ledger.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace switchyard::governance {

namespace fs = std::filesystem;

namespace {

std::int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

void put(std::string& out, std::string_view s) {
  bool plain = true;
  for (char c : s) plain &= c != '\\' && static_cast<unsigned char>(c) >= 0x20;
  if (plain) {  // the usual case: nothing to escape
    out += s;
    out += '\t';
    return;
  }
  for (char c : s) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      default: out += c;
    }
  }
  out += '\t';
}
void put(std::string& out, std::int64_t n) {
  char buf[24];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, p);
  out += '\t';
}
/// Milliseconds as integer microseconds (printf's floating point is a tenth of an append).
void put_ms(std::string& out, double ms) { put(out, static_cast<std::int64_t>(std::llround(ms * 1000))); }
void put(std::string& out, const std::optional<core::Money>& m) {
  if (m) put(out, m->nanos());
  else out += '\t';
}

std::string unescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out += s[i];
      continue;
    }
    char c = s[++i];
    out += c == 't' ? '\t' : c == 'n' ? '\n' : c == 'r' ? '\r' : c;
  }
  return out;
}

bool to_int(std::string_view s, std::int64_t& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && p == s.data() + s.size();
}

constexpr std::string_view kVersion = "v1";
constexpr std::size_t kFields = 36;  // the version tag and the row's 35 fields

}  // namespace

void Ledger::encode(const LedgerRow& r, std::string& line) {
  line.clear();
  line += kVersion;
  line += '\t';
  put(line, r.id);
  put(line, r.request_id);
  put(line, r.unix_ms);
  put(line, r.key_id);
  put(line, r.key_name);
  put(line, r.team);
  put(line, r.user);
  put(line, r.route);
  put(line, r.model);
  put(line, r.deployment);
  put(line, r.provider);
  put(line, r.dialect);
  put(line, static_cast<std::int64_t>(r.stream));
  put(line, static_cast<std::int64_t>(r.status));
  put(line, r.error);
  put(line, r.error_kind);
  const core::TokenUsage& u = r.usage;
  for (std::int64_t n : {u.input, u.output, u.cache_read, u.cache_creation, u.cache_creation_1h, u.reasoning})
    put(line, n);
  put(line, static_cast<std::int64_t>(u.known));
  put(line, static_cast<std::int64_t>(r.usage_estimated));
  put(line, r.cost);
  put(line, static_cast<std::int64_t>(r.unpriced));
  put(line, r.price_since_ms);
  put(line, r.reference_cost);
  put(line, r.reserved);
  put_ms(line, r.latency_ms);
  put_ms(line, r.ttft_ms);
  put(line, static_cast<std::int64_t>(r.attempts));
  put(line, static_cast<std::int64_t>(r.tier));
  put(line, static_cast<std::int64_t>(r.cancelled));
  std::string charges;
  for (const auto& c : r.charges) {
    if (!charges.empty()) charges += ';';
    charges += c.budget_id;
    charges += '@';
    charges += std::to_string(c.period_start_ms);
  }
  put(line, charges);
  line.back() = '\n';
}

bool Ledger::decode(std::string_view line, LedgerRow& r) {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  std::vector<std::string_view> f;
  f.reserve(kFields);
  for (std::size_t b = 0;;) {
    std::size_t e = line.find('\t', b);
    f.push_back(line.substr(b, e == std::string_view::npos ? std::string_view::npos : e - b));
    if (e == std::string_view::npos) break;
    b = e + 1;
  }
  if (f.size() != kFields || f[0] != kVersion) return false;
  std::int64_t n[18];
  const std::size_t ints[] = {3, 13, 14, 17, 18, 19, 20, 21, 22, 23, 24, 26, 27, 32, 33, 34, 30, 31};
  for (std::size_t i = 0; i < std::size(ints); ++i)
    if (!to_int(f[ints[i]], n[i])) return false;
  r = LedgerRow{};
  r.id = unescape(f[1]);
  r.request_id = unescape(f[2]);
  r.unix_ms = n[0];
  r.key_id = unescape(f[4]);
  r.key_name = unescape(f[5]);
  r.team = unescape(f[6]);
  r.user = unescape(f[7]);
  r.route = unescape(f[8]);
  r.model = unescape(f[9]);
  r.deployment = unescape(f[10]);
  r.provider = unescape(f[11]);
  r.dialect = unescape(f[12]);
  r.stream = n[1] != 0;
  r.status = static_cast<int>(n[2]);
  r.error = unescape(f[15]);
  r.error_kind = unescape(f[16]);
  r.usage.input = n[3];
  r.usage.output = n[4];
  r.usage.cache_read = n[5];
  r.usage.cache_creation = n[6];
  r.usage.cache_creation_1h = n[7];
  r.usage.reasoning = n[8];
  r.usage.known = n[9] != 0;
  r.usage_estimated = n[10] != 0;
  auto money = [&](std::string_view s, std::optional<core::Money>& out) {
    if (s.empty()) return true;
    std::int64_t v = 0;
    if (!to_int(s, v)) return false;
    out = core::Money::nanos(v);
    return true;
  };
  if (!money(f[25], r.cost)) return false;
  r.unpriced = n[11] != 0;
  r.price_since_ms = n[12];
  if (!money(f[28], r.reference_cost) || !money(f[29], r.reserved)) return false;
  r.latency_ms = static_cast<double>(n[16]) / 1000;
  r.ttft_ms = static_cast<double>(n[17]) / 1000;
  r.attempts = static_cast<int>(n[13]);
  r.tier = static_cast<int>(n[14]);
  r.cancelled = n[15] != 0;
  std::string charges = unescape(f[35]);
  for (std::size_t b = 0; b < charges.size();) {
    std::size_t e = charges.find(';', b);
    if (e == std::string::npos) e = charges.size();
    std::string_view c(charges.data() + b, e - b);
    std::size_t at = c.rfind('@');
    std::int64_t start = 0;
    if (at == std::string_view::npos || !to_int(c.substr(at + 1), start)) return false;
    r.charges.push_back({std::string(c.substr(0, at)), start});
    b = e + 1;
  }
  return true;
}

Ledger::Ledger(Store& store, LedgerOptions options, OnError on_error)
    : store_(store), options_(std::move(options)), on_error_(std::move(on_error)) {
  if (options_.durability != LedgerOptions::Durability::async) {
    if (options_.spool_dir.empty()) throw StoreError("the ledger's spool needs a directory");
    std::error_code ec;
    fs::create_directories(options_.spool_dir, ec);
    if (ec) throw StoreError("cannot create the ledger's spool " + options_.spool_dir + ": " + ec.message());
    replay();
    open_segment();
  }
  thread_ = std::thread([this] { run(); });
}

Ledger::~Ledger() {
  stop();
  if (spool_fd_ >= 0) ::close(spool_fd_);
}

void Ledger::replay() {
  // Segments in the order they were written; each line a row; a last line without its newline
  // was never acknowledged (its write did not complete) and is left out.
  std::vector<std::pair<std::uint64_t, fs::path>> segments;
  for (const auto& e : fs::directory_iterator(options_.spool_dir)) {
    const std::string name = e.path().filename().string();
    std::uint64_t number = 0;
    if (name.size() > 12 && name.rfind("segment-", 0) == 0 && name.ends_with(".log") &&
        std::from_chars(name.data() + 8, name.data() + name.size() - 4, number).ec == std::errc{})
      segments.emplace_back(number, e.path());
  }
  std::sort(segments.begin(), segments.end());
  std::vector<std::string> paths;
  for (const auto& [number, path] : segments) {
    segment_number_ = std::max(segment_number_, number + 1);
    paths.push_back(path.string());
  }
  // Throws: the gateway does not start over a spool it cannot replay.
  stats_.replayed += replay_segments(paths);
  for (const auto& p : paths) fs::remove(p);
}

std::size_t Ledger::replay_segments(const std::vector<std::string>& paths) {
  std::vector<LedgerRow> batch;
  std::size_t bad = 0, written = 0;
  for (const std::string& path : paths) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string text = ss.str();
    for (std::size_t b = 0; b < text.size();) {
      std::size_t e = text.find('\n', b);
      if (e == std::string::npos) break;  // torn: never acknowledged
      LedgerRow row;
      if (decode(std::string_view(text).substr(b, e + 1 - b), row)) batch.push_back(std::move(row));
      else ++bad;
      b = e + 1;
      if (batch.size() >= options_.max_batch) {
        store_.write_ledger(batch);
        written += batch.size();
        batch.clear();
      }
    }
  }
  if (!batch.empty()) {
    store_.write_ledger(batch);
    written += batch.size();
  }
  if (bad && on_error_) on_error_("ledger spool: " + std::to_string(bad) + " unreadable lines skipped");
  return written;
}

bool Ledger::rotate_segment() {
  // Under mutex_, on the writer's thread.
  const int old_fd = spool_fd_;
  const std::string old_path = segment_path_;
  const std::uint64_t old_bytes = stats_.spool_bytes;
  try {
    open_segment();
  } catch (const std::exception& e) {
    if (on_error_) on_error_(std::string("ledger spool rotation failed (kept appending): ") + e.what());
    return false;
  }
  ::close(old_fd);
  retired_.push_back({old_path, next_seq_ - 1, old_bytes});
  retired_bytes_ += old_bytes;
  return true;
}

void Ledger::update_accepting() {
  // Under mutex_.
  stats_.spool_total_bytes = retired_bytes_ + stats_.spool_bytes;
  const bool room = stats_.spool_total_bytes < options_.max_spool_bytes;
  if (room != accepting_.load(std::memory_order_relaxed)) {
    accepting_.store(room, std::memory_order_relaxed);
    if (!room && on_error_)
      on_error_("ledger: the spool is full (" + std::to_string(stats_.spool_total_bytes) +
                " bytes): billable requests are refused until the store has caught up");
  }
}

void Ledger::open_segment() {
  char name[40];
  std::snprintf(name, sizeof name, "segment-%012llu.log", static_cast<unsigned long long>(segment_number_++));
  std::string path = (fs::path(options_.spool_dir) / name).string();
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) throw StoreError("cannot open the ledger's spool " + path + ": " + std::strerror(errno));
  spool_fd_ = fd;
  segment_path_ = std::move(path);
  stats_.spool_bytes = 0;
}

bool Ledger::append(LedgerRow row, Done on_durable) {
  const auto mode = options_.durability;
  thread_local std::string line;
  if (mode != LedgerOptions::Durability::async) encode(row, line);
  bool wake;
  bool first_spool_only = false;
  bool dropped = false;
  std::size_t behind = 0;
  {
    std::lock_guard lock(mutex_);
    if (mode != LedgerOptions::Durability::async) {
      // Under the lock: a segment is never rotated under a write, and rows enter the queue in
      // spool order.
      if (!write_all(spool_fd_, line)) {
        const int err = errno;
        ++stats_.failures;
        if (on_error_) on_error_(std::string("ledger spool write failed: ") + std::strerror(err));
        if (on_durable) on_durable(false);
        return false;
      }
      stats_.spool_bytes += line.size();
      if (stats_.spool_bytes + retired_bytes_ >= options_.max_spool_bytes) update_accepting();
    }
    wake = queue_.empty();
    ++next_seq_;
    ++stats_.appended;
    if (mode == LedgerOptions::Durability::fsync && on_durable) {
      wake = wake || unflushed_.empty();
      unflushed_.push_back(std::move(on_durable));
    }
    if (mode == LedgerOptions::Durability::async && queue_.size() >= options_.max_queued) {
      // No spool to fall back on: past the bound the row is dropped, and counted (async trades
      // durability for latency; a store this far behind is failing).
      ++stats_.dropped;
      dropped = true;
    } else if (mode != LedgerOptions::Durability::async && queue_.size() >= options_.max_queued) {
      // The store is that far behind: this row waits in the spool only (replayed into the store
      // at the next start), and from now on no segment is deleted.
      keep_spool_ = true;
      first_spool_only = stats_.spool_only++ == 0;
      behind = queue_.size();
    } else {
      if (mode == LedgerOptions::Durability::async) queue_dones_.push_back(std::move(on_durable));
      queue_.push_back(std::move(row));
      stats_.depth = queue_.size();
      stats_.max_depth = std::max(stats_.max_depth, stats_.depth);
    }
  }
  if (dropped) {
    if (on_durable) on_durable(false);
    return false;
  }
  if (first_spool_only && on_error_)
    on_error_("ledger: the store is " + std::to_string(behind) +
              " rows behind; rows wait in the spool only until the next start");
  if (mode == LedgerOptions::Durability::sync && on_durable) on_durable(true);
  if (wake) wake_.notify_one();
  return true;
}

void Ledger::stop(std::int64_t deadline_ms) {
  {
    std::lock_guard lock(mutex_);
    if (!thread_.joinable()) return;
    stopping_ = true;
    stop_deadline_ms_ = steady_ms() + deadline_ms;
  }
  wake_.notify_one();
  thread_.join();
}

void Ledger::abandon() {
  {
    std::lock_guard lock(mutex_);
    if (!thread_.joinable()) return;
    abandoned_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

Ledger::Stats Ledger::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void Ledger::run() {
  // A background writer yields to the event loops: at nice 10 it gets about a tenth of a core
  // they want (Linux CFS weights 110 against 1024), and all the idle CPU otherwise. Its rows
  // are durable in the spool already; only reports see them later.
  ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 10);
  const bool async = options_.durability == LedgerOptions::Durability::async;
  const std::int64_t window = async ? options_.async_window_ms : options_.store_window_ms;
  std::vector<LedgerRow> rows;
  std::vector<Done> dones;
  std::int64_t backoff_ms = 50;
  std::int64_t first_queued_at = 0;  ///< when the oldest row now queued was appended
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [&] { return stopping_ || abandoned_ || !queue_.empty() || !unflushed_.empty(); });
    if (abandoned_) return;
    if (!unflushed_.empty()) {
      // fsync: appends waiting on a flush come first (a response is held for each). Rotation
      // happens on this thread only, so the descriptor stays valid unlocked.
      std::vector<Done> flushing;
      flushing.swap(unflushed_);
      const int fd = spool_fd_;
      lock.unlock();
      const bool ok = ::fdatasync(fd) == 0;
      if (!ok && on_error_) on_error_(std::string("ledger spool flush failed: ") + std::strerror(errno));
      for (auto& d : flushing) d(ok);
      lock.lock();
      continue;
    }
    if (queue_.empty()) {
      if (!stopping_) continue;
      // Everything queued is committed: unless rows went to the spool only, the spool holds
      // nothing the store lacks.
      if (spool_fd_ >= 0) {
        ::close(spool_fd_);
        spool_fd_ = -1;
        if (!keep_spool_) fs::remove(segment_path_);
      }
      if (!keep_spool_)
        for (const auto& r : retired_) fs::remove(r.path);
      retired_.clear();
      return;
    }
    if (!first_queued_at) first_queued_at = steady_ms();
    if (!stopping_ && queue_.size() < options_.max_batch) {
      // Rows wait up to the window (from the oldest one) for company: fewer, larger
      // transactions.
      const auto until = std::chrono::steady_clock::now() +
                         std::chrono::milliseconds(std::max<std::int64_t>(0, first_queued_at + window - steady_ms()));
      wake_.wait_until(lock, until, [&] {
        return stopping_ || abandoned_ || queue_.size() >= options_.max_batch || !unflushed_.empty();
      });
      if (abandoned_) return;
      if (!unflushed_.empty()) continue;
      if (!stopping_ && queue_.size() < options_.max_batch && steady_ms() < first_queued_at + window) continue;
    }
    const std::size_t n = std::min(queue_.size(), options_.max_batch);
    rows.clear();
    dones.clear();
    if (n == queue_.size()) {
      rows.swap(queue_);
      dones.swap(queue_dones_);
    } else {
      rows.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.begin() + n));
      queue_.erase(queue_.begin(), queue_.begin() + n);
      if (!queue_dones_.empty()) {
        dones.assign(std::make_move_iterator(queue_dones_.begin()), std::make_move_iterator(queue_dones_.begin() + n));
        queue_dones_.erase(queue_dones_.begin(), queue_dones_.begin() + n);
      }
    }
    const std::uint64_t last_seq = next_seq_ - 1 - queue_.size();
    first_queued_at = queue_.empty() ? 0 : steady_ms();
    lock.unlock();

    std::string failure;
    const auto started = std::chrono::steady_clock::now();
    try {
      store_.write_ledger(rows);
    } catch (const std::exception& e) {
      failure = e.what();
    }
    const double took = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
    if (failure.empty()) {
      backoff_ms = 50;
      for (auto& d : dones)
        if (d) d(true);
      lock.lock();
      stats_.committed += n;
      ++stats_.batches;
      stats_.largest_batch = std::max(stats_.largest_batch, n);
      stats_.last_commit_ms = took;
      stats_.max_commit_ms = std::max(stats_.max_commit_ms, took);
      stats_.depth = queue_.size();
      // The current segment is rotated once large (or once the spool is full: its rows may all
      // be in the store now, and only a retired segment can be deleted). Then segments whose
      // every row is in the store go (unlinked outside the lock: freeing a large file's blocks
      // must not hold up an append).
      if (!async && (stats_.spool_bytes >= options_.segment_bytes || !accepting_) && stats_.spool_bytes > 0 &&
          unflushed_.empty()) {
        rotate_segment();
      }
      std::vector<std::string> done_segments;
      std::erase_if(retired_, [&](const Retired& r) {
        if (keep_spool_ || r.last_seq > last_seq) return false;
        done_segments.push_back(r.path);
        retired_bytes_ -= r.bytes;
        return true;
      });
      update_accepting();
      if (!done_segments.empty()) {
        lock.unlock();
        for (const auto& path : done_segments) fs::remove(path);
        lock.lock();
      }
      if (keep_spool_ && queue_.empty() && !stopping_ && !async) {
        // The store has caught up with what was queued; rows that went to the spool only are
        // written now, from the segments (idempotent: rows already there count nothing twice),
        // and the segments go — without waiting for a restart.
        if (!rotate_segment()) continue;
        std::vector<Retired> catching = retired_;
        const std::uint64_t spool_only_before = stats_.spool_only;
        lock.unlock();
        std::vector<std::string> paths;
        for (const auto& r : catching) paths.push_back(r.path);
        std::string why;
        std::size_t written = 0;
        try {
          written = replay_segments(paths);
        } catch (const std::exception& e) {
          why = e.what();
        }
        lock.lock();
        if (!why.empty()) {
          ++stats_.failures;
          if (on_error_) on_error_("ledger catch-up from the spool failed (kept, retrying): " + why);
          continue;
        }
        ++stats_.catch_ups;
        stats_.replayed += written;
        std::erase_if(retired_, [&](const Retired& r) {
          const bool caught = std::any_of(catching.begin(), catching.end(), [&](const Retired& c) { return c.path == r.path; });
          if (caught) retired_bytes_ -= r.bytes;
          return caught;
        });
        // Rows spooled only while this ran are in the current segment: kept for the next catch-up.
        keep_spool_ = stats_.spool_only != spool_only_before;
        update_accepting();
        lock.unlock();
        for (const auto& p : paths) fs::remove(p);
        lock.lock();
      }
      continue;
    }
    if (on_error_) on_error_("ledger commit of " + std::to_string(n) + " rows failed (kept, retrying): " + failure);
    lock.lock();
    ++stats_.failures;
    // Nothing is dropped: the batch goes back to the head of the queue, in order.
    queue_.insert(queue_.begin(), std::make_move_iterator(rows.begin()), std::make_move_iterator(rows.end()));
    if (!dones.empty())
      queue_dones_.insert(queue_dones_.begin(), std::make_move_iterator(dones.begin()), std::make_move_iterator(dones.end()));
    rows.clear();
    dones.clear();
    stats_.depth = queue_.size();
    if (!first_queued_at) first_queued_at = steady_ms();
    if (stopping_ && steady_ms() >= stop_deadline_ms_) {
      // Stopping with the store still failing. Spooled rows stay in the spool: the next start
      // replays them. Without a spool (async) they are lost, and their waiters told so.
      const std::size_t left = queue_.size();
      std::vector<Done> waiting;
      waiting.swap(queue_dones_);
      queue_.clear();
      stats_.depth = 0;
      if (spool_fd_ >= 0) {
        ::close(spool_fd_);
        spool_fd_ = -1;
      }
      lock.unlock();
      if (on_error_)
        on_error_("ledger stopped with " + std::to_string(left) + " rows not in the store" +
                  (async ? " (lost: async durability has no spool)" : " (kept in the spool for the next start)"));
      for (auto& d : waiting)
        if (d) d(false);
      return;
    }
    wake_.wait_for(lock, std::chrono::milliseconds(backoff_ms), [&] { return abandoned_ || !unflushed_.empty(); });
    backoff_ms = std::min<std::int64_t>(backoff_ms * 2, 2000);
  }
}

}  // namespace switchyard::governance
