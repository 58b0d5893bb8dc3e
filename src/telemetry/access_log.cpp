#include "telemetry/access_log.hpp"

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

void field_usd(std::string& out, std::string_view name, double usd) {
  if (usd < 0) return;
  char buf[48];
  int n = std::snprintf(buf, sizeof buf, "%.9f", usd);
  while (n > 1 && buf[n - 1] == '0') --n;
  if (n > 1 && buf[n - 1] == '.') --n;
  out += ",\"";
  out += name;
  out += "\":";
  out.append(buf, static_cast<std::size_t>(n));
}

}  // namespace

std::string format_access_line(const AccessRecord& r, std::int64_t unix_ms) {
  std::string out;
  out.reserve(384);
  out += "{\"ts\":";
  out += std::to_string(unix_ms);
  out += ",\"type\":\"access\"";
  field(out, "request_id", r.request_id);
  field(out, "method", r.method);
  field(out, "path", r.path);
  field(out, "key", r.key_name);
  field(out, "route", r.route);
  field(out, "model", r.model);
  field(out, "deployment", r.deployment);
  field(out, "status", static_cast<std::int64_t>(r.status));
  out += r.stream ? ",\"stream\":true" : ",\"stream\":false";
  field(out, "attempts", static_cast<std::int64_t>(r.attempts));
  field(out, "prompt_tokens", r.prompt_tokens);
  field(out, "completion_tokens", r.completion_tokens);
  field(out, "total_tokens", r.total_tokens);
  if (r.cached_tokens > 0) field(out, "cached_tokens", r.cached_tokens);
  if (r.reasoning_tokens > 0) field(out, "reasoning_tokens", r.reasoning_tokens);
  field_ms(out, "latency_ms", r.latency_ms);
  field_ms(out, "upstream_ttfb_ms", r.upstream_ttfb_ms);
  field(out, "error", r.error);
  field(out, "policy", r.policy);
  field(out, "plan", r.plan);
  field(out, "excluded", r.excluded);
  field(out, "tried", r.tried);
  field_usd(out, "estimated_cost_usd", r.estimated_cost_usd);
  field_usd(out, "cost_usd", r.cost_usd);
  if (r.hedged) out += ",\"hedged\":true";
  out += "}\n";
  return out;
}

AccessLog::AccessLog(const std::string& target) {
  if (target == "off" || target.empty()) return;
  if (target == "stdout") file_ = stdout;
  else if (target == "stderr") file_ = stderr;
  else {
    file_ = std::fopen(target.c_str(), "a");
    owns_file_ = file_ != nullptr;
    ok_ = file_ != nullptr;
  }
  if (file_) thread_ = std::thread([this] { run(); });
}

AccessLog::~AccessLog() {
  if (thread_.joinable()) {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_one();
    thread_.join();
  }
  if (owns_file_) std::fclose(file_);
}

void AccessLog::write(const AccessRecord& record) {
  if (!file_) return;
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  std::string line = format_access_line(record, now);
  bool big;
  {
    std::lock_guard lock(mutex_);
    buffer_ += line;
    big = buffer_.size() > 64 * 1024;
  }
  if (big) wake_.notify_one();
}

void AccessLog::flush() {
  std::string out;
  {
    std::lock_guard lock(mutex_);
    out.swap(buffer_);
  }
  if (!out.empty() && file_) {
    std::fwrite(out.data(), 1, out.size(), file_);
    std::fflush(file_);
  }
}

void AccessLog::run() {
  std::unique_lock lock(mutex_);
  while (!stop_) {
    wake_.wait_for(lock, std::chrono::milliseconds(100));
    lock.unlock();
    flush();
    lock.lock();
  }
  lock.unlock();
  flush();
}

}  // namespace switchyard::telemetry
