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

void AccessLog::write(const core::AccountingRecord& record) {
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
