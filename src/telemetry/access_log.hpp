#pragma once

#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

namespace switchyard::telemetry {

/// One request as the access log records it. Never holds keys or bodies.
struct AccessRecord {
  std::string_view request_id;
  std::string_view method;
  std::string_view path;
  std::string_view key_name;
  std::string_view route;
  std::string_view model;       ///< upstream model of the deployment that answered
  std::string_view deployment;
  int status = 0;
  bool stream = false;
  int attempts = 0;
  std::int64_t prompt_tokens = -1;  ///< -1 when unknown
  std::int64_t completion_tokens = -1;
  std::int64_t total_tokens = -1;
  std::int64_t cached_tokens = 0;     ///< of prompt_tokens, read from a prompt cache
  std::int64_t reasoning_tokens = 0;  ///< of completion_tokens, spent thinking
  double latency_ms = 0;
  double upstream_ttfb_ms = -1;
  std::string_view error;       ///< short error code when the request failed
  std::string_view policy;      ///< the routing objective applied
  std::string_view plan;        ///< deployments in plan order, "a>b>c"
  std::string_view excluded;    ///< "c:capability,d:circuit_open" (at most 8, then "+N")
  std::string_view tried;       ///< attempt outcomes, "a:http_503,b:ok"
  double estimated_cost_usd = -1;
  double cost_usd = -1;         ///< from usage and the deployment's prices; -1 unknown
  bool hedged = false;
};

/// Formats a record as one JSON line (with the trailing newline).
std::string format_access_line(const AccessRecord& record, std::int64_t unix_ms);

/// Appends lines to a buffer that a background thread writes out every 100 ms (or sooner when
/// large), so request threads never block on the log's file descriptor.
class AccessLog {
 public:
  /// `target`: "stdout", "stderr", "off" or a file path (appended to).
  explicit AccessLog(const std::string& target);
  ~AccessLog();
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  bool enabled() const { return file_ != nullptr; }
  /// False when a file target could not be opened.
  bool ok() const { return ok_; }
  void write(const AccessRecord& record);
  void flush();

 private:
  void run();

  std::FILE* file_ = nullptr;
  bool owns_file_ = false;
  bool ok_ = true;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::string buffer_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace switchyard::telemetry
