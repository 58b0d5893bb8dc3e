#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "governance/budgets.hpp"

/// Budget alerts delivered: every alert is logged, and POSTed as JSON to its budget's webhook
/// by a thread of its own (the event loops never wait on a webhook). The queue is bounded: when
/// a webhook is slower than the alerts, the excess is dropped and counted, never buffered
/// without bound.
namespace switchyard::server {

class AlertNotifier {
 public:
  explicit AlertNotifier(std::string ca_file = {}, std::size_t max_queued = 1000);
  ~AlertNotifier();
  AlertNotifier(const AlertNotifier&) = delete;
  AlertNotifier& operator=(const AlertNotifier&) = delete;

  /// Logs the alert and queues its webhook call (thread-safe, never blocks).
  void notify(const governance::BudgetAlert& alert);
  /// Stops after at most `deadline_ms` more of deliveries.
  void stop(std::int64_t deadline_ms = 2000);

  struct Stats {
    std::uint64_t sent = 0, failed = 0, dropped = 0;
  };
  Stats stats() const;

  /// The webhook's body for an alert (`text` makes it readable in chat tools' incoming hooks).
  static std::string payload(const governance::BudgetAlert& alert);

 private:
  void run();
  struct Item {
    std::string url, body;
  };
  std::string ca_file_;
  std::size_t max_queued_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Item> queue_;
  bool stopping_ = false;
  std::int64_t stop_by_ms_ = 0;
  Stats stats_;
  std::thread thread_;
};

}  // namespace switchyard::server
