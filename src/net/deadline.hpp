#pragma once

#include <chrono>

namespace switchyard::net {

using Clock = std::chrono::steady_clock;

/// Something with a deadline, checked by its event loop's periodic sweep instead of a timer of
/// its own: setting a deadline is a store, not a timer-queue operation (and not a syscall).
/// Entries link themselves into the loop's list; `expire()` runs on the loop's thread.
class Deadline {
 public:
  Deadline() = default;
  Deadline(const Deadline&) = delete;
  Deadline& operator=(const Deadline&) = delete;
  virtual ~Deadline() = default;

  void set(Clock::time_point at) { at_ = at; }
  void clear() { at_ = Clock::time_point::max(); }
  Clock::time_point at() const { return at_; }

  /// Called once the deadline has passed; should close whatever the owner waits on.
  virtual void expire() = 0;

 private:
  friend class DeadlineList;
  Clock::time_point at_ = Clock::time_point::max();
  Deadline* prev_ = nullptr;
  Deadline* next_ = nullptr;
};

/// An intrusive list of deadlines owned by one event loop (single-threaded).
class DeadlineList {
 public:
  void add(Deadline& d) {
    d.prev_ = nullptr;
    d.next_ = head_;
    if (head_) head_->prev_ = &d;
    head_ = &d;
    ++size_;
  }
  void remove(Deadline& d) {
    if (d.prev_) d.prev_->next_ = d.next_;
    else if (head_ == &d) head_ = d.next_;
    if (d.next_) d.next_->prev_ = d.prev_;
    d.prev_ = d.next_ = nullptr;
    --size_;
  }
  /// Expires every entry whose deadline is at or before `now`.
  void sweep(Clock::time_point now) {
    for (Deadline* d = head_; d;) {
      Deadline* next = d->next_;
      if (d->at_ <= now) {
        d->at_ = Clock::time_point::max();
        d->expire();
      }
      d = next;
    }
  }
  std::size_t size() const { return size_; }

 private:
  Deadline* head_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace switchyard::net
