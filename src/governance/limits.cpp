#include "governance/limits.hpp"

namespace switchyard::governance {

std::string_view to_string(LimitKind k) {
  switch (k) {
    case LimitKind::requests: return "requests";
    case LimitKind::tokens: return "tokens";
    case LimitKind::concurrent: return "concurrent";
  }
  return "requests";
}

void LimitBook::set(const std::vector<Limit>& limits) {
  std::lock_guard lock(mutex_);
  std::unordered_map<std::string, std::shared_ptr<State>> next;
  by_subject_.clear();
  for (const Limit& l : limits) {
    std::shared_ptr<State> s;
    if (auto it = by_id_.find(l.id); it != by_id_.end()) {
      s = it->second;  // keeps its allowance, and its requests in flight
      // A changed figure starts full: the state counts in units of the old rate.
      if (s->def.rpm != l.rpm) s->requests = {};
      if (s->def.tpm != l.tpm) s->tokens = {};
    } else {
      s = std::make_shared<State>();
    }
    s->def = l;
    next.emplace(l.id, s);
    by_subject_[subject_key(l.scope, l.subject)].push_back(s);
  }
  by_id_ = std::move(next);
}

bool LimitBook::empty() const {
  std::lock_guard lock(mutex_);
  return by_subject_.empty();
}

std::optional<LimitRefusal> LimitBook::take(const Subjects& subjects, std::int64_t tokens, std::int64_t now_ms,
                                            Ticket& ticket) {
  std::lock_guard lock(mutex_);
  ticket.states.clear();
  ticket.tokens = tokens;
  if (by_subject_.empty()) return std::nullopt;
  for (std::size_t i = 0; i < kScopes; ++i) {
    if (subjects.of[i].empty()) continue;
    auto it = by_subject_.find(subject_key_view(static_cast<Scope>(i), subjects.of[i]));
    if (it != by_subject_.end()) ticket.states.insert(ticket.states.end(), it->second.begin(), it->second.end());
  }
  // Check every limit on copies of their state first: a refusal takes nothing from any.
  std::vector<std::pair<GcraState, GcraState>> after;
  after.reserve(ticket.states.size());
  for (const auto& sp : ticket.states) {
    State& s = *sp;
    GcraState req = s.requests, tok = s.tokens;
    auto refuse = [&](LimitKind kind, std::int64_t allowed, const GcraDecision& d) {
      LimitRefusal r{s.def, kind, allowed, d.remaining, d.retry_after_ms, d.reset_ms};
      ticket.states.clear();
      return r;
    };
    if (s.def.concurrent > 0 && s.in_flight >= s.def.concurrent) {
      LimitRefusal r{s.def, LimitKind::concurrent, s.def.concurrent, 0, 1000, 1000};
      ticket.states.clear();
      return r;
    }
    if (s.def.rpm > 0) {
      GcraDecision d = gcra_take(s.request_limit(), req, now_ms, 1);
      if (!d.allowed) return refuse(LimitKind::requests, s.def.rpm, d);
    }
    if (s.def.tpm > 0 && tokens > 0) {
      // A request larger than a minute's allowance could never pass: it takes the whole
      // allowance when full, rather than be refused forever.
      GcraDecision d = gcra_take(s.token_limit(), tok, now_ms, std::min(tokens, s.def.tpm));
      if (!d.allowed) return refuse(LimitKind::tokens, s.def.tpm, d);
    }
    after.emplace_back(req, tok);
  }
  for (std::size_t i = 0; i < ticket.states.size(); ++i) {
    State& s = *ticket.states[i];
    s.requests = after[i].first;
    s.tokens = after[i].second;
    ++s.in_flight;
  }
  return std::nullopt;
}

void LimitBook::settle(Ticket& ticket, std::int64_t actual_tokens, std::int64_t now_ms) {
  if (!ticket.active()) return;
  std::lock_guard lock(mutex_);
  for (const auto& sp : ticket.states) {
    State& s = *sp;
    --s.in_flight;
    if (s.def.tpm <= 0 || actual_tokens < 0) continue;
    const std::int64_t taken = std::min(ticket.tokens, s.def.tpm);
    if (actual_tokens < taken) {
      gcra_give_back(s.token_limit(), s.tokens, taken - actual_tokens);
    } else if (actual_tokens > taken) {
      // Used more than estimated: the excess is owed (the allowance goes into debt; later
      // requests wait for it).
      gcra_charge(s.token_limit(), s.tokens, now_ms, actual_tokens - taken);
    }
  }
  ticket.states.clear();
}

void DeploymentQuota::set(std::int64_t rpm, std::int64_t tpm) {
  std::lock_guard lock(mutex_);
  if (rpm != rpm_) requests_ = {};
  if (tpm != tpm_) tokens_ = {};
  rpm_ = rpm;
  tpm_ = tpm;
}

bool DeploymentQuota::exhausted(std::int64_t now_ms) const {
  std::lock_guard lock(mutex_);
  if (rpm_ > 0) {
    GcraState probe = requests_;
    if (!gcra_take({rpm_, 60'000, rpm_}, probe, now_ms, 1).allowed) return true;
  }
  if (tpm_ > 0) {
    GcraState probe = tokens_;
    if (!gcra_take({tpm_, 60'000, tpm_}, probe, now_ms, 1).allowed) return true;
  }
  return false;
}

void DeploymentQuota::charge_request(std::int64_t tokens, std::int64_t now_ms) {
  std::lock_guard lock(mutex_);
  if (rpm_ > 0) gcra_charge({rpm_, 60'000, rpm_}, requests_, now_ms, 1);
  if (tpm_ > 0 && tokens > 0) gcra_charge({tpm_, 60'000, tpm_}, tokens_, now_ms, tokens);
}

void DeploymentQuota::charge_tokens(std::int64_t tokens, std::int64_t now_ms) {
  std::lock_guard lock(mutex_);
  if (tpm_ > 0 && tokens > 0) gcra_charge({tpm_, 60'000, tpm_}, tokens_, now_ms, tokens);
}

DeploymentQuota& QuotaRegistry::get(std::string_view name) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(std::string(name));
  if (it == entries_.end()) it = entries_.emplace(std::string(name), std::make_unique<DeploymentQuota>()).first;
  return *it->second;
}

}  // namespace switchyard::governance
