#include "governance/budgets.hpp"

#include <algorithm>

namespace switchyard::governance {

std::string subject_key(Scope scope, std::string_view subject) {
  std::string k(to_string(scope));
  k += '\x1f';
  k += subject;
  return k;
}

std::string_view subject_key_view(Scope scope, std::string_view subject) {
  thread_local std::string k;
  k.assign(to_string(scope));
  k += '\x1f';
  k += subject;
  return k;
}

void BudgetBook::roll(State& s, std::int64_t now_ms) {
  if (now_ms >= s.period_start_ms && now_ms < s.period_end_ms) return;
  PeriodBounds b = period_bounds(s.def.period, s.def.utc_offset_minutes, now_ms);
  s.period_start_ms = b.start_ms;
  s.period_end_ms = b.end_ms;
  // A new period starts from what the ledger holds of it (nothing, unless rows of this period
  // were already committed: a restart within it). Reservations of the old period stay there:
  // their requests settle into the period they were admitted in.
  s.spent = loader_ ? loader_(s.def.id, b.start_ms) : core::Money{};
  s.reserved = core::Money{};
  s.alerted = 0;
}

void BudgetBook::set(const std::vector<Budget>& budgets, std::int64_t now_ms) {
  std::lock_guard lock(mutex_);
  std::unordered_map<std::string, std::shared_ptr<State>> next;
  by_subject_.clear();
  for (const Budget& b : budgets) {
    std::shared_ptr<State> s;
    if (auto it = by_id_.find(b.id); it != by_id_.end()) {
      s = it->second;
      const bool same_period = s->def.period == b.period && s->def.utc_offset_minutes == b.utc_offset_minutes;
      // The raised-alert marks are by position in the list: a new list starts unmarked (a
      // threshold already passed is raised again at the next settlement).
      if (s->def.alert_percents != b.alert_percents) s->alerted = 0;
      s->def = b;
      if (!same_period) s->period_start_ms = s->period_end_ms = -1;
    } else {
      s = std::make_shared<State>();
      s->def = b;
    }
    roll(*s, now_ms);
    next.emplace(b.id, s);
    by_subject_[subject_key(b.scope, b.subject)].push_back(s);
  }
  by_id_ = std::move(next);
}

bool BudgetBook::applies(const Subjects& subjects) const {
  std::lock_guard lock(mutex_);
  if (by_subject_.empty()) return false;
  for (std::size_t i = 0; i < kScopes; ++i)
    if (!subjects.of[i].empty() && by_subject_.count(subject_key_view(static_cast<Scope>(i), subjects.of[i])))
      return true;
  return false;
}

std::optional<BudgetRefusal> BudgetBook::reserve(const Subjects& subjects, core::Money amount, std::int64_t now_ms,
                                                 Hold& hold) {
  std::lock_guard lock(mutex_);
  hold.entries.clear();
  hold.amount = amount;
  if (by_subject_.empty()) return std::nullopt;
  for (std::size_t i = 0; i < kScopes; ++i) {
    if (subjects.of[i].empty()) continue;
    auto it = by_subject_.find(subject_key_view(static_cast<Scope>(i), subjects.of[i]));
    if (it == by_subject_.end()) continue;
    for (const auto& s : it->second) {
      roll(*s, now_ms);
      if (s->def.hard && s->spent + s->reserved + amount > s->def.limit) {
        BudgetRefusal r{s->def, s->spent, s->reserved, amount,
                        s->def.period == Period::total ? 0 : s->period_end_ms};
        hold.entries.clear();
        return r;
      }
      hold.entries.push_back({s, s->period_start_ms});
    }
  }
  // Every budget can take it: reserve on all of them (still under the one lock).
  for (auto& e : hold.entries) e.state->reserved += amount;
  return std::nullopt;
}

void BudgetBook::settle(Hold& hold, std::optional<core::Money> actual, std::int64_t now_ms,
                        std::vector<BudgetAlert>& alerts, std::vector<BudgetCharge>& charges) {
  if (!hold.active()) return;
  std::lock_guard lock(mutex_);
  if (actual && *actual > hold.amount) ++overruns_;
  for (auto& e : hold.entries) {
    State& s = *e.state;
    roll(s, now_ms);
    if (s.period_start_ms != e.period_start_ms) {
      // Admitted in a period that has ended: its reservation went with that period; its cost
      // belongs to it (the ledger row's charge says which period).
      if (actual) charges.push_back({s.def.id, e.period_start_ms});
      continue;
    }
    s.reserved -= hold.amount;
    if (!actual) continue;
    s.spent += *actual;
    charges.push_back({s.def.id, e.period_start_ms});
    const auto& percents = s.def.alert_percents;
    for (std::size_t i = 0; i < percents.size() && i < 31; ++i) {
      if (s.alerted & (1u << i)) continue;
      // spent >= limit * percent / 100, in integers.
      if (static_cast<__int128>(s.spent.nanos()) * 100 >= static_cast<__int128>(s.def.limit.nanos()) * percents[i]) {
        s.alerted |= 1u << i;
        alerts.push_back({s.def, percents[i], s.spent, s.period_start_ms});
      }
    }
    const bool listed_100 = std::any_of(percents.begin(), percents.end(), [](int p) { return p >= 100; });
    if (!listed_100 && !(s.alerted & (1u << 31)) && s.spent >= s.def.limit) {
      s.alerted |= 1u << 31;
      alerts.push_back({s.def, 100, s.spent, s.period_start_ms});
    }
  }
  hold.entries.clear();
}

std::vector<BudgetBook::View> BudgetBook::view(std::int64_t now_ms) {
  std::lock_guard lock(mutex_);
  std::vector<View> out;
  for (auto& [id, s] : by_id_) {
    roll(*s, now_ms);
    out.push_back({s->def, s->period_start_ms, s->period_end_ms, s->spent, s->reserved});
  }
  std::sort(out.begin(), out.end(), [](const View& a, const View& b) {
    return a.budget.created_ms != b.budget.created_ms ? a.budget.created_ms < b.budget.created_ms : a.budget.id < b.budget.id;
  });
  return out;
}

std::int64_t BudgetBook::overruns() const {
  std::lock_guard lock(mutex_);
  return overruns_;
}

}  // namespace switchyard::governance
