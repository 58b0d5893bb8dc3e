#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
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
///
/// Bounded: when what reads the log stalls (a blocked pipe, `switchyard serve | less`), the writer
/// blocks, the buffer fills to `max_buffer_bytes` and further lines are dropped and counted; once
/// the writer gets through, it writes a line saying how many were dropped. Stopping never waits
/// on a blocked writer for more than `stop_wait`: the thread is then left to the process's exit.
class AccessLog {
 public:
  /// `target`: "stdout", "stderr", "off" or a file path (appended to).
  explicit AccessLog(const std::string& target, std::size_t max_buffer_bytes = 8 * 1024 * 1024,
                     std::chrono::milliseconds stop_wait = std::chrono::milliseconds(2000));
  ~AccessLog();
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  bool enabled() const { return state_ != nullptr; }
  /// False when a file target could not be opened.
  bool ok() const { return ok_; }
  void write(const core::AccountingRecord& record);

  /// What the writer thread shares with the log (it may outlive the log: see above).
  struct State;

 private:
  std::shared_ptr<State> state_;
  bool ok_ = true;
  std::chrono::milliseconds stop_wait_;
  std::thread thread_;
};

}  // namespace switchyard::telemetry
