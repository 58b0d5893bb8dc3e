#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/money.hpp"
#include "core/usage.hpp"
#include "governance/model.hpp"

/// Where governance keeps what must outlive the process: definitions (teams, keys, budgets,
/// limits), the audit log, the spend ledger and its rollups, and what each budget has spent in
/// its current period. One interface: SQLite embedded for one node (`store/sqlite_store`);
/// PostgreSQL for many implements the same.
namespace switchyard::governance {

/// A budget charged by a ledger row: the period it was reserved in.
struct BudgetCharge {
  std::string budget_id;
  std::int64_t period_start_ms = 0;
};

/// One request in the ledger: an owned copy of what its accounting record says, made when the
/// request ends. `id` is the gateway's own (unique per node and time-ordered): the primary key,
/// so replaying a row never counts it twice.
struct LedgerRow {
  std::string id;
  std::string request_id;  ///< as the client saw it (x-request-id)
  std::int64_t unix_ms = 0;  ///< arrival
  std::string key_id, key_name, team, user, route, model, deployment, provider;
  std::string dialect;
  bool stream = false;
  int status = 0;
  std::string error, error_kind;
  core::TokenUsage usage;
  bool usage_estimated = false;
  std::optional<core::Money> cost;  ///< nullopt: no usage or unpriced
  bool unpriced = false;
  std::int64_t price_since_ms = -1;  ///< the price version billed (its start); -1 none
  std::optional<core::Money> reference_cost;  ///< on the route's reference model: the savings
  std::optional<core::Money> reserved;  ///< what admission reserved (budgets), when it did
  double latency_ms = 0;
  double ttft_ms = -1;
  int attempts = 0;
  int tier = -1;
  bool cancelled = false;
  std::vector<BudgetCharge> charges;  ///< budgets this row's cost counts against
};

/// What a budget spent in one period (the ledger's `budget_spend`).
struct BudgetSpend {
  std::string budget_id;
  std::int64_t period_start_ms = 0;
  core::Money spent;
};

/// A spend report's grouping and range.
struct SpendQuery {
  std::string group_by = "key";  ///< key, team, user, model, route, deployment, day
  std::int64_t from_ms = 0;      ///< from this UTC day (inclusive)
  std::int64_t to_ms = 0;        ///< up to this UTC day (exclusive); 0 = no end
  std::string key_id, team, user, route, model;  ///< filters; empty = any
};

struct SpendRow {
  std::string group;  ///< the group's value ("" for none: no key, no user)
  std::int64_t requests = 0, errors = 0, unpriced = 0;
  core::TokenUsage usage;
  core::Money cost;
  core::Money reference_cost;  ///< what the same tokens would have cost on the reference model
};

/// The store's interface. Safe to call from several threads (an implementation serialises what
/// it must).
class Store {
 public:
  virtual ~Store() = default;

  // Definitions. Every write takes the audit entry to record in the same transaction. A
  // failure throws `StoreError` with nothing written.
  virtual std::vector<Team> teams() = 0;
  virtual std::vector<Key> keys() = 0;
  virtual std::vector<Budget> budgets() = 0;
  virtual std::vector<Limit> limits() = 0;
  virtual void put_team(const Team& t, const AuditEntry& audit) = 0;
  virtual void put_key(const Key& k, const AuditEntry& audit) = 0;
  virtual void put_budget(const Budget& b, const AuditEntry& audit) = 0;
  virtual void delete_budget(const std::string& id, const AuditEntry& audit) = 0;
  virtual void put_limit(const Limit& l, const AuditEntry& audit) = 0;
  virtual void delete_limit(const std::string& id, const AuditEntry& audit) = 0;
  virtual std::vector<AuditEntry> audit(std::int64_t after_id, std::size_t limit) = 0;

  // The ledger. `write_ledger` commits every row of a batch in one transaction (rows already
  // present are skipped: idempotent), with their rollups and budget spend; it throws
  // `StoreError` with nothing written.
  virtual void write_ledger(const std::vector<LedgerRow>& rows) = 0;
  /// What a budget has spent in the period that starts at `period_start_ms`.
  virtual core::Money budget_spent(const std::string& budget_id, std::int64_t period_start_ms) = 0;
  /// What every budget spent in the periods starting at these times: one query, however many
  /// budgets (the shared counters' seeds, refreshed every second).
  virtual std::vector<BudgetSpend> budget_spends(const std::vector<std::int64_t>& period_starts_ms) = 0;
  virtual std::vector<SpendRow> spend(const SpendQuery& q) = 0;
  /// Rows of the ledger that arrived in [from_ms, to_ms) (to_ms 0: no end), in time order (the
  /// newest first when `newest_first`), at most `limit`.
  virtual std::vector<LedgerRow> ledger_rows(std::int64_t from_ms, std::int64_t to_ms, std::size_t limit,
                                             bool newest_first = false) = 0;
  virtual std::int64_t ledger_count() = 0;

  // Sharing. A store several processes write to tells each of them when definitions may have
  // changed elsewhere: `on_change` is called from a thread of the store's (at once for a change
  // announced, and periodically as a fallback). A store of one process calls nothing.
  virtual void watch(std::function<void()> on_change) { (void)on_change; }
  /// Stops calling `on_change` (returns once no call is running).
  virtual void stop_watching() {}
  /// For the log: the engine and where it is, never a password.
  virtual std::string describe() const = 0;
};

struct StoreError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace switchyard::governance
