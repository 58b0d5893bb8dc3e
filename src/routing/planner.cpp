#include "routing/planner.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace switchyard::routing {

namespace {

using config::Objective;
using config::Strategy;

/// SplitMix64: small, fast, and good enough for load spreading.
struct Rng {
  std::uint64_t state;
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  std::size_t below(std::size_t n) { return n ? static_cast<std::size_t>(next() % n) : 0; }
};

constexpr double kDefaultTtftMs = 800;
constexpr double kDefaultTokensPerS = 60;

bool allowed(std::span<const std::string> list, std::string_view a, std::string_view b) {
  if (list.empty()) return true;
  for (const auto& x : list)
    if (x == a || x == b) return true;
  return false;
}

/// Lower is better; `min`/`max` over the eligible models.
double normalised(double v, double min, double max) {
  return max > min ? (v - min) / (max - min) : 0.0;
}

}  // namespace

std::string_view to_string(Exclusion e) {
  switch (e) {
    case Exclusion::none: return "none";
    case Exclusion::capability: return "capability";
    case Exclusion::context_window: return "context_window";
    case Exclusion::max_output: return "max_output";
    case Exclusion::input_price: return "input_price";
    case Exclusion::output_price: return "output_price";
    case Exclusion::max_cost: return "max_cost";
    case Exclusion::provider: return "provider";
    case Exclusion::region: return "region";
    case Exclusion::deadline: return "deadline";
    case Exclusion::circuit_open: return "circuit_open";
    case Exclusion::rate_limited: return "rate_limited";
  }
  return "unknown";
}

std::int64_t expected_output_tokens(const RequestTraits& traits) {
  return traits.max_output_tokens > 0 ? std::min<std::int64_t>(traits.max_output_tokens, 1000) : 500;
}

void make_plan(const RouteTable& route, const RequestTraits& traits, const Overrides& overrides,
               std::span<const health::Snapshot> health, const PlanContext& ctx, Plan& out) {
  const config::RouteConfig& rc = *route.config;
  const config::PolicyConfig& policy = rc.policy;
  const std::size_t n = route.candidates.size();
  Rng rng{ctx.seed};

  out.objective = overrides.objective.value_or(policy.objective);
  out.strategy = rc.strategy;
  out.category = policy.category;
  out.deadline_ms = policy.deadline_ms;
  if (overrides.deadline_ms && (!out.deadline_ms || overrides.deadline_ms < out.deadline_ms))
    out.deadline_ms = overrides.deadline_ms;
  out.max_cost_usd = policy.max_cost_usd;
  if (overrides.max_cost_usd >= 0 && (out.max_cost_usd < 0 || overrides.max_cost_usd < out.max_cost_usd))
    out.max_cost_usd = overrides.max_cost_usd;
  out.expected_output_tokens = expected_output_tokens(traits);
  out.scores.assign(n, CandidateScore{});
  out.order.clear();
  out.earliest_recovery_ms = 0;
  out.explored = false;

  const double out_tokens = static_cast<double>(out.expected_output_tokens);
  for (std::size_t i = 0; i < n; ++i) {
    const Candidate& c = route.candidates[i];
    CandidateScore& s = out.scores[i];
    const health::Snapshot& h = health[i];
    const catalog::ModelInfo* m = c.model;

    s.state = h.state;
    if (c.priced)
      s.est_cost_usd = catalog::cost_usd(c.price, traits.input_tokens, 0, out.expected_output_tokens, 0);
    s.live_latency = h.ttft_ms >= 0;
    s.ttft_ms = s.live_latency ? h.ttft_ms : (m ? m->latency.ttft_ms : kDefaultTtftMs);
    double speed = h.tokens_per_s > 0 ? h.tokens_per_s : (m ? m->latency.tokens_per_s : kDefaultTokensPerS);
    s.est_latency_ms = s.ttft_ms + out_tokens / std::max(speed, 0.001) * 1000.0;
    s.quality = m ? m->quality_of(policy.category) : 0.5;

    // Hard constraints first (the cheapest checks), then health.
    if (m && (traits.needs & ~m->capabilities)) {
      s.excluded = Exclusion::capability;
      s.missing = traits.needs & ~m->capabilities;
    } else if (m && m->max_output > 0 && traits.max_output_tokens > m->max_output) {
      s.excluded = Exclusion::max_output;
    } else if (m && m->context_window > 0 &&
               traits.input_tokens + std::max<std::int64_t>(traits.max_output_tokens, 0) > m->context_window) {
      s.excluded = Exclusion::context_window;
    } else if (!allowed(policy.providers, c.provider, c.provider_type)) {
      s.excluded = Exclusion::provider;
    } else if (!allowed(policy.regions, c.region, c.region)) {
      s.excluded = Exclusion::region;
    } else if (policy.max_input_price >= 0 && c.priced && c.price.input > policy.max_input_price) {
      s.excluded = Exclusion::input_price;
    } else if (policy.max_output_price >= 0 && c.priced && c.price.output > policy.max_output_price) {
      s.excluded = Exclusion::output_price;
    } else if (out.max_cost_usd >= 0 && s.est_cost_usd > out.max_cost_usd) {
      s.excluded = Exclusion::max_cost;
    } else if ((s.live_latency || m) &&  // a model nothing is known of is not presumed slow
               ((out.deadline_ms && s.est_latency_ms > out.deadline_ms) ||
                (policy.ttft_ms && s.ttft_ms > policy.ttft_ms))) {
      s.excluded = Exclusion::deadline;
    } else if (h.state == health::State::open) {
      s.excluded = Exclusion::circuit_open;
      s.recovers_at_ms = h.recovers_at_ms;
    } else if (h.state == health::State::cooling) {
      s.excluded = Exclusion::rate_limited;
      s.recovers_at_ms = h.recovers_at_ms;
    }
    if (s.recovers_at_ms &&
        (!out.earliest_recovery_ms || s.recovers_at_ms < out.earliest_recovery_ms))
      out.earliest_recovery_ms = s.recovers_at_ms;
  }

  // Score each model (group) by the objective over its eligible deployments.
  struct Group {
    double cost = std::numeric_limits<double>::infinity();  ///< cheapest eligible deployment
    double latency = std::numeric_limits<double>::infinity();
    double quality = 0;
    double score = 0;
    std::uint16_t first = 0xFFFF;  ///< position of its first candidate (tie-break: as written)
    bool eligible = false;
    bool priced = false;
  };
  thread_local std::vector<Group> groups;
  groups.assign(route.groups, Group{});
  for (std::size_t i = 0; i < n; ++i) {
    const CandidateScore& s = out.scores[i];
    Group& g = groups[route.candidates[i].group];
    if (g.first == 0xFFFF) g.first = static_cast<std::uint16_t>(i);
    if (s.excluded != Exclusion::none) continue;
    g.eligible = true;
    if (s.est_cost_usd >= 0) {
      g.cost = std::min(g.cost, s.est_cost_usd);
      g.priced = true;
    }
    g.latency = std::min(g.latency, s.est_latency_ms);
    g.quality = s.quality;
  }
  double cmin = 1e300, cmax = -1e300, lmin = 1e300, lmax = -1e300, qmin = 1e300, qmax = -1e300;
  for (const Group& g : groups) {
    if (!g.eligible) continue;
    if (g.priced) {
      double lc = std::log(g.cost + 1e-9);
      cmin = std::min(cmin, lc);
      cmax = std::max(cmax, lc);
    }
    double ll = std::log(g.latency + 1);
    lmin = std::min(lmin, ll);
    lmax = std::max(lmax, ll);
    qmin = std::min(qmin, g.quality);
    qmax = std::max(qmax, g.quality);
  }
  const double wsum = policy.weight_quality + policy.weight_cost + policy.weight_latency;
  for (Group& g : groups) {
    if (!g.eligible) continue;
    switch (out.objective) {
      case Objective::ordered: g.score = g.first; break;
      // Unpriced models after priced ones: their cost is unknown, not zero.
      case Objective::cost: g.score = g.priced ? g.cost : 1e9; break;
      case Objective::latency: g.score = g.latency; break;
      case Objective::quality: g.score = -g.quality; break;
      case Objective::balanced: {
        double c = g.priced ? normalised(std::log(g.cost + 1e-9), cmin, cmax) : 1.0;
        double l = normalised(std::log(g.latency + 1), lmin, lmax);
        double q = normalised(qmax - g.quality, 0, qmax - qmin);
        g.score = (policy.weight_quality * q + policy.weight_cost * c + policy.weight_latency * l) / wsum;
        break;
      }
    }
  }
  for (std::size_t i = 0; i < n; ++i) out.scores[i].score = groups[route.candidates[i].group].score;

  // Eligible candidates, best model first; within a model, by the strategy.
  thread_local std::vector<double> key;
  key.assign(n, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    const CandidateScore& s = out.scores[i];
    if (s.excluded != Exclusion::none) continue;
    out.order.push_back(static_cast<std::uint16_t>(i));
    const Candidate& c = route.candidates[i];
    const health::Snapshot& h = health[i];
    switch (rc.strategy) {
      case Strategy::priority: key[i] = static_cast<double>(i); break;
      case Strategy::weighted:
        // Efraimidis–Spirakis: sorting by u^(1/w) samples without replacement by weight.
        key[i] = c.weight ? -std::pow(rng.uniform(), 1.0 / c.weight) : 2.0;
        break;
      case Strategy::least_latency: key[i] = s.est_latency_ms; break;
      case Strategy::least_busy: key[i] = h.in_flight; break;
      case Strategy::lowest_cost: key[i] = s.est_cost_usd >= 0 ? s.est_cost_usd : 1e9; break;
      case Strategy::rate_limit_aware: {
        // Known headroom ranks by itself; unknown sits between exhausted and any known headroom.
        double headroom = h.rl_remaining_requests >= 0 ? static_cast<double>(h.rl_remaining_requests)
                                                       : 0.5;
        if (h.rl_remaining_tokens == 0) headroom = 0;
        key[i] = -headroom;
        break;
      }
    }
  }
  std::stable_sort(out.order.begin(), out.order.end(), [&](std::uint16_t a, std::uint16_t b) {
    const auto& ga = groups[route.candidates[a].group];
    const auto& gb = groups[route.candidates[b].group];
    if (ga.score != gb.score) return ga.score < gb.score;
    if (ga.first != gb.first) return ga.first < gb.first;
    if (key[a] != key[b]) return key[a] < key[b];
    return a < b;
  });

  if (rc.strategy == Strategy::least_latency) {
    // Power of two choices within the first model: two random deployments, the faster leads
    // (the sort ranked the rest). Without it every request piles onto one deployment.
    std::size_t run = 0;
    while (run < out.order.size() &&
           route.candidates[out.order[run]].group == route.candidates[out.order[0]].group)
      ++run;
    if (run > 2) {
      std::size_t a = rng.below(run), b = rng.below(run - 1);
      if (b >= a) ++b;
      std::size_t pick = key[out.order[a]] <= key[out.order[b]] ? a : b;
      std::rotate(out.order.begin(), out.order.begin() + pick, out.order.begin() + pick + 1);
    }
  }
  // Exploration: latency statistics only stay true for deployments that get traffic, so a
  // small share of latency-ranked requests tries the runner-up first.
  bool latency_ranked = out.objective == Objective::latency || out.objective == Objective::balanced ||
                        rc.strategy == Strategy::least_latency;
  if (latency_ranked && out.order.size() > 1 && ctx.exploration > 0 && rng.uniform() < ctx.exploration) {
    std::swap(out.order[0], out.order[1]);
    out.explored = true;
  }
  if (rc.max_attempts && out.order.size() > rc.max_attempts) out.order.resize(rc.max_attempts);
}

std::string exclusion_reason(const Candidate& c, const CandidateScore& s, const RequestTraits& traits,
                             const Plan& plan, std::int64_t now_ms) {
  char buf[256];
  auto seconds = [&](std::int64_t at) { return std::max<double>(0, static_cast<double>(at - now_ms) / 1000.0); };
  switch (s.excluded) {
    case Exclusion::none: return "eligible";
    case Exclusion::capability:
      return "model " + std::string(c.model_id) + " lacks " + catalog::capability_names(s.missing);
    case Exclusion::context_window:
      std::snprintf(buf, sizeof buf, "request needs ~%lld tokens; context window is %lld",
                    static_cast<long long>(traits.input_tokens + std::max<std::int64_t>(traits.max_output_tokens, 0)),
                    static_cast<long long>(c.model ? c.model->context_window : 0));
      return buf;
    case Exclusion::max_output:
      std::snprintf(buf, sizeof buf, "max_tokens %lld above the model's maximum output %lld",
                    static_cast<long long>(traits.max_output_tokens),
                    static_cast<long long>(c.model ? c.model->max_output : 0));
      return buf;
    case Exclusion::input_price:
      std::snprintf(buf, sizeof buf, "input price $%g/M above the route's cap", c.price.input);
      return buf;
    case Exclusion::output_price:
      std::snprintf(buf, sizeof buf, "output price $%g/M above the route's cap", c.price.output);
      return buf;
    case Exclusion::max_cost:
      std::snprintf(buf, sizeof buf, "estimated cost $%.6f above the cap $%.6f", s.est_cost_usd,
                    plan.max_cost_usd);
      return buf;
    case Exclusion::provider: return "provider " + std::string(c.provider) + " not allowed by the policy";
    case Exclusion::region:
      return "region \"" + std::string(c.region) + "\" not allowed by the policy";
    case Exclusion::deadline:
      std::snprintf(buf, sizeof buf, "expected %.0f ms (first byte %.0f ms, %s) exceeds the deadline",
                    s.est_latency_ms, s.ttft_ms, s.live_latency ? "observed" : "catalogue prior");
      return buf;
    case Exclusion::circuit_open:
      std::snprintf(buf, sizeof buf, "circuit open after failures; recovers in %.1f s", seconds(s.recovers_at_ms));
      return buf;
    case Exclusion::rate_limited:
      std::snprintf(buf, sizeof buf, "rate limited (429); cooling down for %.1f s", seconds(s.recovers_at_ms));
      return buf;
  }
  return "excluded";
}

}  // namespace switchyard::routing
