#include "telemetry/access_log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cinttypes>

#include "core/error.hpp"

namespace switchyard::telemetry {

namespace {

void field(std::string& out, std::string_view name, std::string_view value) {
  if (value.empty()) return;
  out += ",\"";
  out += name;
  out += "\":";
  core::append_json_string(out, value);
}

void field(std::string& out, std::string_view name, std::int64_t value) {
  if (value < 0) return;
  char buf[32];
  int n = std::snprintf(buf, sizeof buf, "%" PRId64, value);
  out += ",\"";
  out += name;
  out += "\":";
  out.append(buf, static_cast<std::size_t>(n));
}

void field_ms(std::string& out, std::string_view name, double ms) {
  if (ms < 0) return;
  char buf[32];
  int n = std::snprintf(buf, sizeof buf, "%.3f", ms);
  out += ",\"";
  out += name;
  out += "\":";
  out.append(buf, static_cast<std::size_t>(n));
}

void field_usd(std::string& out, std::string_view name, const std::optional<core::Money>& usd) {
  if (!usd) return;
  out += ",\"";
  out += name;
  out += "\":";
  usd->append_decimal(out);
}

}  // namespace

std::string format_access_line(const core::AccountingRecord& r, std::int64_t unix_ms) {
  std::string out;
  out.reserve(384);
  out += "{\"ts\":";
  out += std::to_string(unix_ms);
  out += ",\"type\":\"access\"";
  field(out, "request_id", r.request_id);
  field(out, "method", r.method);
  field(out, "path", r.path);
  field(out, "key", r.key);
  field(out, "route", r.route);
  field(out, "model", r.model);
  field(out, "deployment", r.deployment);
  field(out, "provider", r.provider);
  field(out, "status", static_cast<std::int64_t>(r.status));
  out += r.stream ? ",\"stream\":true" : ",\"stream\":false";
  std::int64_t sent = 0;  // attempts that reached a deployment (skipped candidates are not)
  for (const auto& a : r.attempts) sent += a.outcome.rfind("skipped", 0) != 0;
  field(out, "attempts", sent);
  if (r.usage.known) {
    field(out, "prompt_tokens", r.usage.input);
    field(out, "completion_tokens", r.usage.output);
    field(out, "total_tokens", r.usage.input + r.usage.output);
    if (r.usage.cache_read > 0) field(out, "cached_tokens", r.usage.cache_read);
    if (r.usage.cache_creation > 0) field(out, "cache_write_tokens", r.usage.cache_creation);
    if (r.usage.cache_creation_1h > 0) field(out, "cache_write_1h_tokens", r.usage.cache_creation_1h);
    if (r.usage.reasoning > 0) field(out, "reasoning_tokens", r.usage.reasoning);
    if (r.usage_estimated) out += ",\"tokens_estimated\":true";
  }
  field_ms(out, "latency_ms", r.latency_ms);
  field_ms(out, "upstream_ttfb_ms", r.ttfb_ms);
  field(out, "error", r.error);
  if (r.error_kind) field(out, "error_kind", core::to_string(*r.error_kind));
  field(out, "policy", r.policy);
  field(out, "plan", r.plan);
  field(out, "excluded", r.excluded);
  if (!r.attempts.empty()) {
    std::string tried;
    for (const auto& a : r.attempts) {
      if (!tried.empty()) tried += ',';
      tried += a.deployment;
      tried += ':';
      tried += std::string_view(a.outcome).substr(0, a.outcome.find(':'));
    }
    field(out, "tried", tried);
  }
  if (r.tier >= 0) field(out, "tier", static_cast<std::int64_t>(r.tier));
  field(out, "category", r.category);
  field_usd(out, "estimated_cost_usd", r.estimated_cost);
  field_usd(out, "cost_usd", r.cost);
  if (r.unpriced) out += ",\"unpriced\":true";
  if (r.hedged) out += ",\"hedged\":true";
  if (r.client_cancelled) out += ",\"client_cancelled\":true";
  out += "}\n";
  return out;
}

struct AccessLog::State {
  // A descriptor, not a FILE: a writer blocked on it holds no stdio lock that the process's exit
  // (which flushes stdout) would wait on.
  int fd = -1;
  bool owns_fd = false;
  std::size_t max_bytes = 0;
  std::mutex mutex;
  std::condition_variable wake, finished_cv;
  std::string buffer;
  std::uint64_t dropped = 0, dropped_reported = 0;
  bool stop = false, finished = false;

  ~State() {
    if (owns_fd) ::close(fd);
  }

  /// Writes out what is buffered (blocking on the file: this thread's alone).
  void flush() {
    std::string out;
    std::uint64_t newly_dropped = 0;
    {
      std::lock_guard lock(mutex);
      out.swap(buffer);
      newly_dropped = dropped - dropped_reported;
      dropped_reported = dropped;
    }
    if (newly_dropped) {
      const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
      out += "{\"ts\":" + std::to_string(now) + ",\"type\":\"access_log_dropped\",\"lines\":" +
             std::to_string(newly_dropped) + "}\n";
    }
    for (std::size_t done = 0; done < out.size();) {
      const ssize_t n = ::write(fd, out.data() + done, out.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // the log cannot be written: these lines are lost with it
      done += static_cast<std::size_t>(n);
    }
  }

  void run() {
    std::unique_lock lock(mutex);
    while (!stop) {
      wake.wait_for(lock, std::chrono::milliseconds(100));
      lock.unlock();
      flush();
      lock.lock();
    }
    lock.unlock();
    flush();
    lock.lock();
    finished = true;
    finished_cv.notify_all();
  }
};

AccessLog::AccessLog(const std::string& target, std::size_t max_buffer_bytes, std::chrono::milliseconds stop_wait)
    : stop_wait_(stop_wait) {
  if (target == "off" || target.empty()) return;
  int fd = -1;
  bool owns = false;
  if (target == "stdout") fd = STDOUT_FILENO;
  else if (target == "stderr") fd = STDERR_FILENO;
  else {
    fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    owns = fd >= 0;
    ok_ = fd >= 0;
  }
  if (fd < 0) return;
  state_ = std::make_shared<State>();
  state_->fd = fd;
  state_->owns_fd = owns;
  state_->max_bytes = max_buffer_bytes;
  thread_ = std::thread([s = state_] { s->run(); });
}

AccessLog::~AccessLog() {
  if (!thread_.joinable()) return;
  std::unique_lock lock(state_->mutex);
  state_->stop = true;
  state_->wake.notify_one();
  if (state_->finished_cv.wait_for(lock, stop_wait_, [&] { return state_->finished; })) {
    lock.unlock();
    thread_.join();
  } else {
    // The writer is blocked on the file (nothing reads it): it keeps its state and ends with
    // the process.
    lock.unlock();
    thread_.detach();
  }
}

void AccessLog::write(const core::AccountingRecord& record) {
  if (!state_) return;
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  std::string line = format_access_line(record, now);
  bool big;
  {
    std::lock_guard lock(state_->mutex);
    if (state_->buffer.size() + line.size() > state_->max_bytes) {
      ++state_->dropped;
      return;
    }
    state_->buffer += line;
    big = state_->buffer.size() > 64 * 1024;
  }
  if (big) state_->wake.notify_one();
}

}  // namespace switchyard::telemetry
