#include "routing/decision.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>

#include "core/error.hpp"

namespace switchyard::routing {

namespace {
/// Outside the common range: laid out away from the request path.
[[gnu::cold, gnu::noinline]] void append_decimal_general(std::string& out, double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed, 9);
  out.append(buf, ec == std::errc{} ? end : buf);
}
}  // namespace

void append_decimal(std::string& out, double v) {
  // Integer arithmetic for the common range (costs, rates): a tenth of to_chars' cost, and on
  // the request path (cost headers) twice per request.
  if (!(v >= 0) || v >= 9e9) return append_decimal_general(out, v);
  auto scaled = static_cast<std::uint64_t>(v * 1e9 + 0.5);
  std::uint64_t whole = scaled / 1000000000u;
  auto frac = static_cast<std::uint32_t>(scaled % 1000000000u);
  // Whole part, a point and nine fraction digits written into one buffer (two digits per step),
  // trailing zeros dropped, then one append.
  static constexpr char kPairs[] =
      "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
      "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
      "8081828384858687888990919293949596979899";
  char buf[40];
  auto [end, ec] = std::to_chars(buf, buf + 20, whole);
  if (frac == 0) {
    out.append(buf, end);
    return;
  }
  char* p = end;
  *p++ = '.';
  p[8] = static_cast<char>('0' + frac % 10);
  frac /= 10;
  for (int i = 6; i >= 0; i -= 2) {
    std::uint32_t pair = frac % 100;
    frac /= 100;
    p[i] = kPairs[2 * pair];
    p[i + 1] = kPairs[2 * pair + 1];
  }
  char* last = p + 8;
  while (*last == '0') --last;
  out.append(buf, last + 1);
}

namespace {

void key(std::string& out, std::string_view k) {
  out += '"';
  out += k;
  out += "\":";
}

void str(std::string& out, std::string_view k, std::string_view v) {
  key(out, k);
  core::append_json_string(out, v);
  out += ',';
}

void num(std::string& out, std::string_view k, double v) {
  key(out, k);
  append_decimal(out, v);
  out += ',';
}

void integer(std::string& out, std::string_view k, long long v) {
  key(out, k);
  out += std::to_string(v);
  out += ',';
}

void close(std::string& out, char c) {
  if (out.back() == ',') out.back() = c;
  else out += c;
}

/// `"name":["a","b"],` when the list is not empty.
void strings(std::string& out, std::string_view name, const std::vector<std::string>& list) {
  if (list.empty()) return;
  key(out, name);
  out += '[';
  for (const auto& x : list) {
    core::append_json_string(out, x);
    out += ',';
  }
  close(out, ']');
  out += ',';
}

}  // namespace

std::string decision_json(const Decision& d, std::int64_t now_ms) {
  std::string out;
  out.reserve(512 + (d.table ? d.table->candidates.size() * 200 : 0));
  out += '{';
  str(out, "request_id", d.request_id);
  integer(out, "time_unix_ms", d.unix_ms);
  str(out, "route", d.route);
  str(out, "key", d.key);
  str(out, "objective", routing::to_string(d.plan.objective));
  str(out, "strategy", routing::to_string(d.plan.strategy));
  str(out, "category", catalog::to_string(d.plan.category));
  key(out, "request");
  out += '{';
  integer(out, "estimated_input_tokens", d.traits.input_tokens);
  if (d.traits.max_output_tokens) integer(out, "max_output_tokens", d.traits.max_output_tokens);
  integer(out, "expected_output_tokens", d.plan.expected_output_tokens);
  str(out, "needs", catalog::capability_names(d.traits.needs));
  if (d.traits.category >= 0)
    str(out, "predicted_category", catalog::to_string(static_cast<catalog::Category>(d.traits.category)));
  if (d.traits.tier >= 0) {
    num(out, "complexity", std::round(d.traits.complexity * 1000) / 1000);
    integer(out, "tier", d.traits.tier);
    if (d.traits.tier_quality_count) {
      num(out, "quality_floor", std::round(d.traits.quality_floor * 1000) / 1000);
      key(out, "tier_quality");
      out += '[';
      for (std::uint8_t k = 0; k < d.traits.tier_quality_count; ++k) {
        if (k) out += ',';
        append_decimal(out, std::round(d.traits.tier_quality[k] * 1000) / 1000);
      }
      out += "],";
    }
  }
  close(out, '}');
  out += ',';
  key(out, "constraints");
  out += '{';
  if (d.plan.deadline_ms) integer(out, "deadline_ms", d.plan.deadline_ms);
  if (d.plan.max_cost_usd >= 0) num(out, "max_cost_usd", d.plan.max_cost_usd);
  if (d.table) {
    const auto& p = d.table->rules->policy;
    if (p.ttft_ms) integer(out, "ttft_ms", p.ttft_ms);
    if (p.max_input_price >= 0) num(out, "max_input_price", p.max_input_price);
    if (p.max_output_price >= 0) num(out, "max_output_price", p.max_output_price);
    strings(out, "providers", p.providers);
    strings(out, "regions", p.regions);
  }
  close(out, '}');
  out += ',';
  if (d.table) {
    key(out, "plan");
    out += '[';
    for (auto i : d.plan.order) {
      core::append_json_string(out, d.table->candidates[i].deployment);
      out += ',';
    }
    close(out, ']');
    out += ',';
    key(out, "candidates");
    out += '[';
    for (std::size_t i = 0; i < d.table->candidates.size() && i < d.plan.scores.size(); ++i) {
      const Candidate& c = d.table->candidates[i];
      const CandidateScore& s = d.plan.scores[i];
      out += '{';
      str(out, "deployment", c.deployment);
      str(out, "model", c.model_id);
      str(out, "provider", c.provider);
      if (!c.region.empty()) str(out, "region", c.region);
      str(out, "health", health::to_string(s.state));
      if (d.table->hot.size() > i && d.table->hot[i].tier >= 0) integer(out, "tier", d.table->hot[i].tier);
      if (s.excluded != Exclusion::none) {
        str(out, "excluded", to_string(s.excluded));
        str(out, "reason", exclusion_reason(c, s, d.traits, d.plan, now_ms));
        if (s.last_resort) out += "\"last_resort\":true,";
        if (s.tried_last) out += "\"tried_last\":true,";
      } else {
        num(out, "score", s.score);
      }
      if (s.est_cost_usd >= 0) num(out, "estimated_cost_usd", s.est_cost_usd);
      num(out, "expected_latency_ms", static_cast<double>(static_cast<long long>(s.est_latency_ms)));
      str(out, "latency_source", s.live_latency ? "observed" : "prior");
      if (s.measuring && d.plan.latency_ranked) out += "\"measuring\":true,";
      num(out, "quality_prior", std::round(s.quality * 1000) / 1000);
      close(out, '}');
      out += ',';
    }
    close(out, ']');
    out += ',';
    key(out, "attempts");
    out += '[';
    for (const auto& a : d.attempts) {
      out += '{';
      str(out, "deployment", d.table->candidates[a.candidate].deployment);
      str(out, "outcome", a.outcome);
      if (a.status) integer(out, "status", a.status);
      num(out, "ms", static_cast<double>(static_cast<long long>(a.ms * 10)) / 10);
      if (a.hedge) out += "\"hedge\":true,";
      if (a.retry) {
        out += "\"retry\":true,";
        integer(out, "backoff_ms", a.backoff_ms);
      }
      close(out, '}');
      out += ',';
    }
    close(out, ']');
    out += ',';
    if (d.chosen >= 0) str(out, "deployment", d.table->candidates[d.chosen].deployment);
  }
  if (d.plan.explored) out += "\"explored\":true,";
  if (d.plan.panic) out += "\"panic\":true,";
  if (d.hedged) out += "\"hedged\":true,";
  if (d.estimated_cost_usd >= 0) num(out, "estimated_cost_usd", d.estimated_cost_usd);
  if (d.cost) {
    key(out, "cost_usd");
    d.cost->append_decimal(out);
    out += ',';
  }
  integer(out, "status", d.status);
  close(out, '}');
  return out;
}

std::unique_ptr<Decision> DecisionRing::add(std::unique_ptr<Decision> d, std::shared_ptr<const void> keep_alive) {
  if (capacity_ == 0 || !d) return d;
  Slot slot;
  slot.bytes = sizeof(Decision) + d->request_id.capacity() +
               d->plan.scores.capacity() * sizeof(CandidateScore) +
               d->plan.order.capacity() * sizeof(std::uint16_t) +
               d->attempts.capacity() * (sizeof(AttemptRecord) + 16);
  slot.decision = std::move(d);
  slot.keep_alive = std::move(keep_alive);
  std::unique_ptr<Decision> evicted;  // handed back (or freed) outside the lock
  std::shared_ptr<const void> released;
  {
    std::lock_guard lock(mutex_);
    bytes_ += slot.bytes;
    slots_.push_back(std::move(slot));
    while (slots_.size() > capacity_ || (bytes_ > max_bytes_ && slots_.size() > 1)) {
      bytes_ -= slots_.front().bytes;
      evicted = std::move(slots_.front().decision);
      released = std::move(slots_.front().keep_alive);
      slots_.pop_front();
    }
  }
  return evicted;
}

std::size_t DecisionRing::size() const {
  std::lock_guard lock(mutex_);
  return slots_.size();
}

std::optional<std::string> DecisionRing::find(std::string_view request_id, std::string_view key,
                                              std::int64_t now_ms) const {
  std::lock_guard lock(mutex_);
  // Newest first: a client-chosen request id may repeat; the latest is the one asked about.
  for (auto it = slots_.rbegin(); it != slots_.rend(); ++it) {
    const Decision& d = *it->decision;
    if (d.request_id == request_id && (key.empty() || d.key == key)) return decision_json(d, now_ms);
  }
  return std::nullopt;
}

}  // namespace switchyard::routing
