#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/money.hpp"
#include "governance/model.hpp"
#include "governance/store.hpp"

/// Budgets as the node enforces them: what each budget has spent in its current period and what
/// requests in flight have reserved against it. Admission reserves a request's maximum cost
/// against every budget that applies, all or nothing; settlement turns the reservation into the
/// actual cost, or releases it.
///
/// The guarantee (docs/governance.md): a hard budget's spend in a period never exceeds its limit
/// by more than what providers billed above the reserved maximums, which is zero when the price
/// table is right and the output is bounded — admission admits a request only when spent +
/// reserved + its maximum fits, and a settled cost above its reservation is counted.
namespace switchyard::governance {

/// The subjects a request touches, by scope (empty: none of that kind).
struct Subjects {
  std::array<std::string_view, kScopes> of{};
  std::string_view& operator[](Scope s) { return of[static_cast<std::size_t>(s)]; }
  std::string_view operator[](Scope s) const { return of[static_cast<std::size_t>(s)]; }
};

/// The subject index key of a budget or limit: "scope\x1fsubject".
std::string subject_key(Scope scope, std::string_view subject);
/// The same in a per-thread buffer (a lookup allocates nothing); valid until the next call.
std::string_view subject_key_view(Scope scope, std::string_view subject);

/// Hashing for maps keyed by std::string and looked up by std::string_view.
struct SubjectHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
template <class T>
using SubjectMap = std::unordered_map<std::string, T, SubjectHash, std::equal_to<>>;

/// Why a request was refused: the budget, and when its period resets.
struct BudgetRefusal {
  Budget budget;
  core::Money spent, reserved, asked;
  std::int64_t resets_ms = 0;  ///< unix ms; 0: never (a total budget)
};

/// A soft limit crossed (or a hard budget reached), once per budget and period.
struct BudgetAlert {
  Budget budget;
  int percent = 0;
  core::Money spent;
  std::int64_t period_start_ms = 0;
};

class BudgetBook {
 public:
  struct State;
  /// What one request holds: the budgets it reserved against, each with its period.
  struct Hold {
    struct Entry {
      std::shared_ptr<State> state;
      std::int64_t period_start_ms = 0;
    };
    std::vector<Entry> entries;
    core::Money amount;
    bool active() const { return !entries.empty(); }
  };

  /// Loads what a budget has spent in a period (from the store) when it is first seen.
  using SpentLoader = std::function<core::Money(const std::string& budget_id, std::int64_t period_start_ms)>;
  explicit BudgetBook(SpentLoader loader) : loader_(std::move(loader)) {}

  /// Replaces the definitions. Budgets whose id stays keep their counters (and requests in
  /// flight keep theirs); a changed limit applies to the next admission.
  void set(const std::vector<Budget>& budgets, std::int64_t now_ms);
  /// Whether any budget applies to a subject of this request at all (a cheap check first).
  bool applies(const Subjects& subjects) const;

  /// Reserves `amount` against every budget of `subjects`, or nothing: nullopt when it fits
  /// (`hold` filled), else the first hard budget that cannot take it.
  std::optional<BudgetRefusal> reserve(const Subjects& subjects, core::Money amount, std::int64_t now_ms, Hold& hold);
  /// Settles a hold: `actual` replaces the reservation (nullopt: released, nothing spent).
  /// Idempotent (the hold is emptied). Alerts crossed are appended to `alerts`; the charges
  /// (budget, period) the ledger row carries, to `charges`.
  void settle(Hold& hold, std::optional<core::Money> actual, std::int64_t now_ms, std::vector<BudgetAlert>& alerts,
              std::vector<BudgetCharge>& charges);

  struct View {
    Budget budget;
    std::int64_t period_start_ms = 0, period_end_ms = 0;
    core::Money spent, reserved;
  };
  /// Every budget's state now (the admin API).
  std::vector<View> view(std::int64_t now_ms);
  /// Settled costs above their reservation so far (the guarantee's exception, counted).
  std::int64_t overruns() const;

 private:
  /// Moves a budget into the period containing `now_ms` (spend loaded from the store).
  void roll(State& s, std::int64_t now_ms);

  SpentLoader loader_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<State>> by_id_;
  /// "scope\x1fsubject" -> budgets.
  SubjectMap<std::vector<std::shared_ptr<State>>> by_subject_;
  std::int64_t overruns_ = 0;
};

struct BudgetBook::State {
  Budget def;
  std::int64_t period_start_ms = -1, period_end_ms = -1;
  core::Money spent, reserved;
  std::uint32_t alerted = 0;  ///< bit i: alert_percents[i] raised this period (bit 31: the limit)
};



}  // namespace switchyard::governance
