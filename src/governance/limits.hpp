#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "governance/budgets.hpp"
#include "governance/gcra.hpp"
#include "governance/model.hpp"

/// Rate limits as the node enforces them: requests per minute and tokens per minute as GCRA
/// (exact continuous refill, bursts of one minute's allowance), and requests in flight. A
/// request takes from every limit that applies to it, all or nothing.
namespace switchyard::governance {

/// Which allowance refused a request.
enum class LimitKind : std::uint8_t { requests, tokens, concurrent };
std::string_view to_string(LimitKind k);

struct LimitRefusal {
  Limit limit;
  LimitKind kind = LimitKind::requests;
  std::int64_t allowed = 0;         ///< the limit's figure (per minute, or in flight)
  std::int64_t remaining = 0;
  std::int64_t retry_after_ms = 0;  ///< when the same request would be allowed (concurrency: 1 s)
  std::int64_t reset_ms = 0;        ///< until the allowance is full again
};

class LimitBook {
 public:
  struct State;
  /// What one request took: the limits, and the tokens it took from each (its estimate).
  struct Ticket {
    std::vector<std::shared_ptr<State>> states;
    std::int64_t tokens = 0;
    bool active() const { return !states.empty(); }
  };

  void set(const std::vector<Limit>& limits);
  bool empty() const;

  /// Takes one request and `tokens` (the estimate) from every limit of `subjects`; nullopt when
  /// all allow it (`ticket` filled), else the first that does not (nothing is taken).
  std::optional<LimitRefusal> take(const Subjects& subjects, std::int64_t tokens, std::int64_t now_ms, Ticket& ticket);
  /// At the request's end: its place in flight given back, and its tokens corrected to what it
  /// used (`actual_tokens` < 0: unknown, the estimate stands). Idempotent.
  void settle(Ticket& ticket, std::int64_t actual_tokens, std::int64_t now_ms);

 private:
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<State>> by_id_;
  SubjectMap<std::vector<std::shared_ptr<State>>> by_subject_;
};

struct LimitBook::State {
  Limit def;
  GcraState requests, tokens;
  std::int64_t in_flight = 0;
  GcraLimit request_limit() const { return {def.rpm, 60'000, def.rpm}; }
  GcraLimit token_limit() const { return {def.tpm, 60'000, def.tpm}; }
};

/// A provider's own quota on one deployment (its configured `rpm` and `tpm`), counted here so
/// that the router prefers the deployment's siblings before the provider answers 429. It never
/// refuses a request: when every candidate is out of quota, they are tried as planned.
class DeploymentQuota {
 public:
  /// Sets the figures (0: none); a changed figure starts with a full allowance.
  void set(std::int64_t rpm, std::int64_t tpm);
  bool active() const { return rpm_ > 0 || tpm_ > 0; }
  /// Whether one more request (or any token) would go over the quota now.
  bool exhausted(std::int64_t now_ms) const;
  /// An attempt sent: one request and its estimated prompt tokens.
  void charge_request(std::int64_t tokens, std::int64_t now_ms);
  /// An answer's output tokens.
  void charge_tokens(std::int64_t tokens, std::int64_t now_ms);

 private:
  mutable std::mutex mutex_;
  std::int64_t rpm_ = 0, tpm_ = 0;
  GcraState requests_, tokens_;
};

/// Every deployment's quota by name; entries outlive configuration reloads.
class QuotaRegistry {
 public:
  /// The entry for `name`, created on first use; stays valid for the registry's lifetime.
  DeploymentQuota& get(std::string_view name);

 private:
  std::mutex mutex_;
  std::unordered_map<std::string, std::unique_ptr<DeploymentQuota>> entries_;
};

}  // namespace switchyard::governance
