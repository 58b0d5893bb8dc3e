#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/money.hpp"
#include "routing/planner.hpp"

namespace switchyard::routing {

/// One attempt the executor made.
struct AttemptRecord {
  std::uint16_t candidate = 0;
  std::string outcome;  ///< "ok", "http_503", "first_byte_timeout", "skipped: ..." ...
  int status = 0;       ///< upstream HTTP status; 0 when none
  double ms = 0;        ///< from the attempt's start to its end or hand-over
  bool hedge = false;   ///< started as a hedge
  bool retry = false;   ///< a retry of the same deployment after a backoff
  std::int64_t backoff_ms = 0;
};

/// Why a request went where it went: the plan and what became of it.
struct Decision {
  /// Empties it for another request, keeping the memory of its strings and vectors.
  void reset() {
    request_id.clear();
    route = key = {};
    unix_ms = 0;
    traits = {};
    table = nullptr;
    plan.scores.clear();
    plan.order.clear();
    plan.explored = false;
    plan.earliest_recovery_ms = 0;
    attempts.clear();
    chosen = -1;
    estimated_cost_usd = -1;
    cost.reset();
    status = 0;
    hedged = false;
  }

  std::string request_id;
  std::string_view route;
  std::string_view key;
  std::int64_t unix_ms = 0;
  RequestTraits traits;
  const RouteTable* table = nullptr;
  Plan plan;
  std::vector<AttemptRecord> attempts;
  int chosen = -1;              ///< candidate that answered
  double estimated_cost_usd = -1;
  std::optional<core::Money> cost;  ///< the accounting record's: usage at the deployment's prices
  int status = 0;
  bool hedged = false;
};

/// The decision as JSON (the body of `GET /v1/switchyard/decisions`).
std::string decision_json(const Decision& d, std::int64_t now_ms);

/// The last decision records, by request id: at most `capacity` of them and about `max_bytes`
/// of memory. Records are kept as data and written as JSON only when asked for, so a request
/// pays a move, not a serialisation. Thread-safe.
class DecisionRing {
 public:
  DecisionRing(std::size_t capacity, std::size_t max_bytes = 64u << 20)
      : capacity_(capacity), max_bytes_(max_bytes) {}
  /// Keeps `d`; `keep_alive` owns what its views point into (the route table, names). Returns
  /// the record that made room, for reuse (its vectors keep their capacity), or null.
  std::unique_ptr<Decision> add(std::unique_ptr<Decision> d, std::shared_ptr<const void> keep_alive);
  /// The record as JSON, if still kept; `key` non-empty restricts to that key's requests.
  std::optional<std::string> find(std::string_view request_id, std::string_view key,
                                  std::int64_t now_ms) const;
  std::size_t capacity() const { return capacity_; }
  std::size_t size() const;

 private:
  struct Slot {
    std::unique_ptr<Decision> decision;
    std::shared_ptr<const void> keep_alive;
    std::size_t bytes = 0;
  };
  mutable std::mutex mutex_;
  std::deque<Slot> slots_;
  std::size_t capacity_;
  std::size_t max_bytes_;
  std::size_t bytes_ = 0;
};

/// A `%.*g`-style number for JSON (no exponent surprises for money): up to 9 decimals,
/// trailing zeros removed.
void append_decimal(std::string& out, double v);

}  // namespace switchyard::routing
