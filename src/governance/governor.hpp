#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "config/config.hpp"
#include "governance/budgets.hpp"
#include "governance/ledger.hpp"
#include "governance/limits.hpp"
#include "governance/model.hpp"
#include "governance/store.hpp"

/// One node's governance: the keys made through the admin API, the budgets and rate limits in
/// force, and the ledger every request's spend goes to — over a `Store`. Thread-safe: every
/// event loop admits and settles through it.
namespace switchyard::governance {

/// The store's keys as the pipeline reads them (`config::KeyConfig`, like the YAML keys),
/// found by the SHA-256 of what a client presents. Immutable: a change makes a new directory.
class KeyDirectory {
 public:
  KeyDirectory(const std::vector<Key>& keys, const std::vector<Team>& teams);
  /// The key whose hash is `sha256_hex` (found by its first 16 digits, then compared whole in
  /// constant time), or nullptr. Disabled and expired keys are found too: the caller refuses
  /// them with the reason.
  const config::KeyConfig* find_hash(std::string_view sha256_hex) const;
  std::size_t size() const { return count_; }
  /// Whether a team of the store is disabled (its static keys are refused too).
  bool team_disabled(std::string_view team) const {
    return !team.empty() && disabled_teams_.count(std::string(team)) > 0;
  }

 private:
  std::unordered_set<std::string> disabled_teams_;
  std::unordered_map<std::string, std::vector<config::KeyConfig>> by_prefix_;
  std::size_t count_ = 0;
};

/// The budgets and limits in force, as one immutable snapshot indexed by subject (what a request
/// admitted against shared counters pins while it runs).
struct Definitions {
  std::vector<Budget> budgets;
  std::vector<Limit> limits;
  SubjectMap<std::vector<std::size_t>> budgets_by_subject, limits_by_subject;  ///< indexes into the above
  Definitions(std::vector<Budget> b, std::vector<Limit> l);
  /// The budgets and the limits that apply to these subjects, in scope order.
  void match(const Subjects& s, std::vector<const Budget*>& budgets_out, std::vector<const Limit*>& limits_out) const;
};

/// One node's own books while the shared counters cannot be reached (their figures are this
/// node's share); a request admitted there settles there.
struct FallbackBooks {
  BudgetBook budgets{nullptr};
  LimitBook limits;
};

/// A request admitted against the counters every node shares (Redis, `shared/counters`): what
/// to settle there. `local`: admitted by this node's share alone while Redis was unreachable.
struct SharedHold {
  std::shared_ptr<const Definitions> defs;  ///< keeps the pointers below alive
  std::string lease;                        ///< its lease in Redis (the ledger row's id)
  std::vector<const Budget*> budgets;
  std::vector<std::int64_t> period_start_ms, period_end_ms;  ///< per budget
  std::vector<const Limit*> limits;
  core::Money amount;
  std::int64_t tokens = 0;  ///< the estimate taken from token limits
  bool admitted = false;    ///< in Redis (to settle there)
  std::string epoch;        ///< Redis's epoch when it was admitted there (see the settlement script)
  std::shared_ptr<FallbackBooks> local;  ///< admitted in this node's fallback books (settled there)
};

/// What one request holds while it runs: its place in the rate limits and its reservation
/// against the budgets — in this node's books, or in the shared counters. Settled once; every
/// part is idempotent.
struct Admission {
  LimitBook::Ticket ticket;
  BudgetBook::Hold hold;
  SharedHold shared;
  bool active() const { return ticket.active() || hold.active() || shared.admitted; }
};

class Governor {
 public:
  /// Told of every alert raised (a soft limit crossed, a hard budget reached).
  using AlertSink = std::function<void(const BudgetAlert&)>;

  /// Loads every definition from `store` and starts the ledger's writer.
  Governor(std::unique_ptr<Store> store, LedgerOptions ledger, Ledger::OnError on_error = {},
           AlertSink on_alert = {});
  ~Governor();

  Store& store() { return *store_; }
  Ledger& ledger() { return ledger_; }
  BudgetBook& budgets() { return budgets_; }
  LimitBook& limits() { return limits_; }

  /// Held by the admin API around each request: a change validates against the store and
  /// writes to it as one step (two concurrent creations of the same team cannot both pass).
  std::mutex& admin_mutex() { return admin_mutex_; }

  /// The budgets and limits in force (a snapshot; a change makes a new one).
  std::shared_ptr<const Definitions> definitions() const;
  /// Told after every reload (the shared counters rebuild what they derive from definitions).
  void on_reload(std::function<void()> f);

  /// The key directory in force, and its generation (which a change moves on).
  std::shared_ptr<const KeyDirectory> directory() const;
  std::uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
  /// Reads the definitions again from the store (after a change through the admin API).
  void reload();

  /// Rate limits, then budgets: nullopt when admitted (what is held goes into `held`).
  std::optional<LimitRefusal> take_limits(const Subjects& s, std::int64_t tokens, std::int64_t now_ms,
                                          Admission& held) {
    return limits_.take(s, tokens, now_ms, held.ticket);
  }
  std::optional<BudgetRefusal> reserve(const Subjects& s, core::Money amount, std::int64_t now_ms, Admission& held) {
    return budgets_.reserve(s, amount, now_ms, held.hold);
  }
  /// Whether anything could apply to these subjects (no lock taken by the caller's fast path
  /// when neither budgets nor limits exist).
  bool governs(const Subjects& s) const { return !limits_.empty() || budgets_.applies(s); }
  /// Settles what a request held: its actual cost (nullopt: none, the reservation released) and
  /// tokens (< 0: unknown). The budgets charged go to `charges` (the ledger row's).
  void settle(Admission& held, std::optional<core::Money> cost, std::int64_t tokens, std::int64_t now_ms,
              std::vector<BudgetCharge>& charges);

  /// What a budget has spent and has reserved in a period, read from counters shared with other
  /// nodes: false when they cannot say (then the ledger's figure is reported).
  using SharedView = std::function<bool(const Budget&, std::int64_t period_start_ms, core::Money& spent,
                                        core::Money& reserved)>;
  void set_shared_view(SharedView f) { shared_view_ = std::move(f); }
  /// Every budget's state now: this node's books, or the shared counters when there are.
  std::vector<BudgetBook::View> budget_views(std::int64_t now_ms);

  /// Raises an alert (the shared counters' settlements cross them).
  void alert(const BudgetAlert& a) {
    if (on_alert_) on_alert_(a);
  }

  /// A fresh id: `prefix` + 16 random hex digits.
  static std::string new_id(std::string_view prefix);
  /// A fresh client key secret ("sk-sy-" + 48 random characters).
  static std::string new_secret();
  /// Unique, time-ordered ledger ids for this process.
  std::string next_ledger_id(std::int64_t unix_ms);

 private:
  std::unique_ptr<Store> store_;
  Ledger ledger_;
  AlertSink on_alert_;
  BudgetBook budgets_;
  LimitBook limits_;
  std::mutex admin_mutex_;
  mutable std::mutex directory_mutex_;
  std::shared_ptr<const KeyDirectory> directory_;
  std::shared_ptr<const Definitions> definitions_;
  std::function<void()> on_reload_;
  SharedView shared_view_;
  std::atomic<std::uint64_t> generation_{0};
  std::string node_tag_;  ///< random, per process: ledger ids from two processes never collide
  std::atomic<std::uint64_t> ledger_seq_{0};
};

}  // namespace switchyard::governance
