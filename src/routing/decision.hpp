#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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
  std::string_view request_id;
  std::string_view route;
  std::string_view key;
  std::int64_t unix_ms = 0;
  RequestTraits traits;
  const RouteTable* table = nullptr;
  Plan plan;
  std::vector<AttemptRecord> attempts;
  int chosen = -1;              ///< candidate that answered
  double estimated_cost_usd = -1;
  double cost_usd = -1;         ///< from the answer's usage
  int status = 0;
  bool hedged = false;
};

/// The decision as JSON (the body of `GET /v1/switchyard/decisions`).
std::string decision_json(const Decision& d, std::int64_t now_ms);

/// The last N decision records, by request id. Thread-safe.
class DecisionRing {
 public:
  explicit DecisionRing(std::size_t capacity) : slots_(capacity) {}
  void add(std::string_view request_id, std::string_view key, std::string json);
  /// The record's JSON, if still kept; `key` non-empty restricts to that key's requests.
  std::optional<std::string> find(std::string_view request_id, std::string_view key) const;
  std::size_t capacity() const { return slots_.size(); }

 private:
  struct Slot {
    std::string request_id;
    std::string key;
    std::string json;
  };
  mutable std::mutex mutex_;
  std::vector<Slot> slots_;
  std::size_t next_ = 0;
};

/// A `%.*g`-style number for JSON (no exponent surprises for money): up to 9 decimals,
/// trailing zeros removed.
void append_decimal(std::string& out, double v);

}  // namespace switchyard::routing
