#pragma once

#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "core/accounting.hpp"

namespace switchyard::telemetry {

/// Formats a record as one JSON line (with the trailing newline).
/// (Never holds keys or bodies: the record has none.)
std::string format_access_line(const core::AccountingRecord& record, std::int64_t unix_ms);

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
  void write(const core::AccountingRecord& record);
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
