#include "routing/decision.hpp"

#include <cstdio>

#include "core/error.hpp"

namespace switchyard::routing {

void append_decimal(std::string& out, double v) {
  char buf[48];
  int n = std::snprintf(buf, sizeof buf, "%.9f", v);
  while (n > 1 && buf[n - 1] == '0') --n;
  if (n > 1 && buf[n - 1] == '.') --n;
  out.append(buf, n);
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

}  // namespace

std::string decision_json(const Decision& d, std::int64_t now_ms) {
  std::string out;
  out.reserve(512 + (d.table ? d.table->candidates.size() * 200 : 0));
  out += '{';
  str(out, "request_id", d.request_id);
  integer(out, "time_unix_ms", d.unix_ms);
  str(out, "route", d.route);
  str(out, "key", d.key);
  str(out, "objective", config::to_string(d.plan.objective));
  str(out, "strategy", config::to_string(d.plan.strategy));
  str(out, "category", catalog::to_string(d.plan.category));
  key(out, "request");
  out += '{';
  integer(out, "estimated_input_tokens", d.traits.input_tokens);
  if (d.traits.max_output_tokens) integer(out, "max_output_tokens", d.traits.max_output_tokens);
  integer(out, "expected_output_tokens", d.plan.expected_output_tokens);
  str(out, "needs", catalog::capability_names(d.traits.needs));
  close(out, '}');
  out += ',';
  key(out, "constraints");
  out += '{';
  if (d.plan.deadline_ms) integer(out, "deadline_ms", d.plan.deadline_ms);
  if (d.plan.max_cost_usd >= 0) num(out, "max_cost_usd", d.plan.max_cost_usd);
  if (d.table) {
    const auto& p = d.table->config->policy;
    if (p.ttft_ms) integer(out, "ttft_ms", p.ttft_ms);
    if (p.max_input_price >= 0) num(out, "max_input_price", p.max_input_price);
    if (p.max_output_price >= 0) num(out, "max_output_price", p.max_output_price);
    if (!p.providers.empty()) {
      key(out, "providers");
      out += '[';
      for (const auto& x : p.providers) {
        core::append_json_string(out, x);
        out += ',';
      }
      close(out, ']');
      out += ',';
    }
    if (!p.regions.empty()) {
      key(out, "regions");
      out += '[';
      for (const auto& x : p.regions) {
        core::append_json_string(out, x);
        out += ',';
      }
      close(out, ']');
      out += ',';
    }
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
      if (s.excluded != Exclusion::none) {
        str(out, "excluded", to_string(s.excluded));
        str(out, "reason", exclusion_reason(c, s, d.traits, d.plan, now_ms));
      } else {
        num(out, "score", s.score);
      }
      if (s.est_cost_usd >= 0) num(out, "estimated_cost_usd", s.est_cost_usd);
      num(out, "expected_latency_ms", static_cast<double>(static_cast<long long>(s.est_latency_ms)));
      str(out, "latency_source", s.live_latency ? "observed" : "prior");
      num(out, "quality_prior", s.quality);
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
  if (d.hedged) out += "\"hedged\":true,";
  if (d.estimated_cost_usd >= 0) num(out, "estimated_cost_usd", d.estimated_cost_usd);
  if (d.cost_usd >= 0) num(out, "cost_usd", d.cost_usd);
  integer(out, "status", d.status);
  close(out, '}');
  return out;
}

void DecisionRing::add(std::string_view request_id, std::string_view key, std::string json) {
  if (slots_.empty()) return;
  std::lock_guard lock(mutex_);
  Slot& s = slots_[next_];
  next_ = (next_ + 1) % slots_.size();
  s.request_id.assign(request_id);
  s.key.assign(key);
  s.json = std::move(json);
}

std::optional<std::string> DecisionRing::find(std::string_view request_id, std::string_view key) const {
  std::lock_guard lock(mutex_);
  // Newest first: a client-chosen request id may repeat; the latest is the one asked about.
  for (std::size_t k = 0; k < slots_.size(); ++k) {
    const Slot& s = slots_[(next_ + slots_.size() - 1 - k) % slots_.size()];
    if (s.request_id.empty()) break;
    if (s.request_id == request_id && (key.empty() || s.key == key)) return s.json;
  }
  return std::nullopt;
}

}  // namespace switchyard::routing
