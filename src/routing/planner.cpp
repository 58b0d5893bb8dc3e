#include "routing/planner.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace switchyard::routing {

namespace {


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
    case Exclusion::category: return "category";
  }
  return "unknown";
}

void prepare_route(RouteTable& route) {
  const routing::Policy& policy = route.rules->policy;
  route.hot.assign(route.candidates.size(), CandidateHot{});
  for (std::size_t i = 0; i < route.candidates.size(); ++i) {
    const Candidate& c = route.candidates[i];
    CandidateHot& h = route.hot[i];
    const catalog::ModelInfo* m = c.model;
    h.priced = c.priced;
    h.input_per_token = core::usd_per_million(c.price.input) * 1e-6;
    h.output_per_token = core::usd_per_million(c.price.output) * 1e-6;
    h.known_model = m != nullptr;
    h.context_window = m ? m->context_window : 0;
    h.max_output = m ? m->max_output : 0;
    h.capabilities = m ? m->capabilities : ~0u;
    h.prior_ttft_ms = static_cast<float>(m ? m->latency.ttft_ms : kDefaultTtftMs);
    h.prior_tokens_per_s = static_cast<float>(m ? m->latency.tokens_per_s : kDefaultTokensPerS);
    h.quality = m ? m->quality_of(policy.category) : 0.5f;
    h.weight = c.weight;
    h.group = c.group;
    Exclusion e = Exclusion::none;
    if (!allowed(policy.providers, c.provider, c.provider_type)) e = Exclusion::provider;
    else if (!allowed(policy.regions, c.region, c.region)) e = Exclusion::region;
    else if (policy.max_input_price >= 0 && c.priced && core::usd_per_million(c.price.input) > policy.max_input_price)
      e = Exclusion::input_price;
    else if (policy.max_output_price >= 0 && c.priced && core::usd_per_million(c.price.output) > policy.max_output_price)
      e = Exclusion::output_price;
    h.static_exclusion = static_cast<std::uint8_t>(e);
    for (std::size_t k = 0; k < catalog::kCategoryCount; ++k) {
      h.quality_by_category[k] = m ? m->quality_of(static_cast<catalog::Category>(k)) : 0.5f;
      const auto& rule = route.rules->category_rules[k];
      bool listed = rule.empty() || std::find(rule.begin(), rule.end(), c.deployment) != rule.end();
      if (!listed) h.categories &= static_cast<std::uint8_t>(~(1u << k));
    }
    if (route.rules->complexity)
      for (std::size_t t = 0; t < route.rules->complexity->tiers.size(); ++t)
        for (const auto& name : route.rules->complexity->tiers[t])
          if (name == c.deployment) h.tier = static_cast<std::int8_t>(t);
  }
}

std::int64_t expected_output_tokens(const RequestTraits& traits) {
  return traits.max_output_tokens > 0 ? std::min<std::int64_t>(traits.max_output_tokens, 1000) : 500;
}

namespace {

/// The latency a candidate is ranked by: its estimate; while it is being measured, its prior
/// divided by 1,000 — ahead of anything measured (no answer is estimated under a few ms), and
/// several unmeasured ones still in their priors' order.
double ranking_latency(const CandidateScore& s) {
  return s.measuring ? static_cast<double>(s.est_latency_ms) * 1e-3 : static_cast<double>(s.est_latency_ms);
}

/// The plan by the route's rules: the eligible candidates, ranked.
void rank(const RouteTable& route, const RequestTraits& traits, const Overrides& overrides,
          std::span<const health::Snapshot> health, const PlanContext& ctx, Plan& out) {
  const RouteRules& rc = *route.rules;
  const routing::Policy& policy = rc.policy;
  const std::size_t n = route.candidates.size();
  Rng rng{ctx.seed};

  out.objective = overrides.objective.value_or(policy.objective);
  out.strategy = rc.strategy;
  out.category = policy.category_auto && traits.category >= 0 ? static_cast<catalog::Category>(traits.category)
                                                               : policy.category;
  const bool auto_quality = policy.category_auto && traits.category >= 0;
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
  out.latency_ranked = false;
  out.context_tight = false;

  // Routes ranked by latency alone measure what they do not know (CandidateScore::measuring).
  const bool latency_first = out.objective == Objective::latency || rc.strategy == Strategy::least_latency;
  const double out_tokens = static_cast<double>(out.expected_output_tokens);
  const double in_tokens = static_cast<double>(traits.input_tokens);
  for (std::size_t i = 0; i < n; ++i) {
    const CandidateHot& c = route.hot[i];
    std::int64_t max_output = std::max<std::int64_t>(traits.max_output_tokens, 0);
    if (traits.clamp_max_tokens && c.max_output > 0) max_output = std::min(max_output, c.max_output);
    const std::int64_t needed_window = traits.input_tokens + max_output;
    CandidateScore& s = out.scores[i];
    const health::Snapshot& h = health[i];

    s.state = h.state;
    if (c.priced) s.est_cost_usd = in_tokens * c.input_per_token + out_tokens * c.output_per_token;
    s.live_latency = h.ttft_ms >= 0;
    const double ttft = s.live_latency ? h.ttft_ms : c.prior_ttft_ms;
    const double speed = h.tokens_per_s > 0 ? h.tokens_per_s : c.prior_tokens_per_s;
    const double latency = ttft + out_tokens / std::max(speed, 0.001) * 1000.0;
    if (c.context_window > 0 && needed_window * 6 > c.context_window * 5) out.context_tight = true;
    s.ttft_ms = static_cast<float>(ttft);
    s.est_latency_ms = static_cast<float>(latency);
    s.quality = auto_quality ? c.quality_by_category[traits.category] : c.quality;

    // Hard constraints first (the cheapest checks), then health.
    if (traits.needs & ~c.capabilities) {
      s.excluded = Exclusion::capability;
      s.missing = traits.needs & ~c.capabilities;
    } else if (c.max_output > 0 && traits.max_output_tokens > c.max_output && !traits.clamp_max_tokens) {
      s.excluded = Exclusion::max_output;
    } else if (c.context_window > 0 && needed_window > c.context_window) {
      s.excluded = Exclusion::context_window;
      out.context_tight = true;
    } else if (traits.category >= 0 && !(c.categories & (1u << traits.category))) {
      s.excluded = Exclusion::category;
    } else if (c.static_exclusion) {
      s.excluded = static_cast<Exclusion>(c.static_exclusion);
    } else if (out.max_cost_usd >= 0 && s.est_cost_usd > out.max_cost_usd) {
      s.excluded = Exclusion::max_cost;
    } else if (h.state == health::State::open) {
      s.excluded = Exclusion::circuit_open;
      s.recovers_at_ms = h.recovers_at_ms;
    } else if (h.state == health::State::cooling) {
      s.excluded = Exclusion::rate_limited;
      s.recovers_at_ms = h.recovers_at_ms;
    } else if ((s.live_latency || c.known_model) &&  // a model nothing is known of is not presumed slow
               ((out.deadline_ms && latency > out.deadline_ms) || (policy.ttft_ms && ttft > policy.ttft_ms))) {
      s.excluded = Exclusion::deadline;  // ordered last (add_tried_last), not left out
    }
    // Optimism under uncertainty: a deployment not measured yet, or not lately, is ranked as the
    // fastest by latency until one request (none in flight on it) measures it.
    s.measuring = latency_first && h.in_flight == 0 &&
                  (!s.live_latency || (ctx.stale_after_ms > 0 && ctx.now_ms - h.sampled_at_ms > ctx.stale_after_ms));
    if (s.recovers_at_ms &&
        (!out.earliest_recovery_ms || s.recovers_at_ms < out.earliest_recovery_ms))
      out.earliest_recovery_ms = s.recovers_at_ms;
  }

  if (n == 1) {
    // One candidate (a route that names one deployment, the commonest kind): nothing to rank.
    // The same order and score the general path below gives a model alone (no range to place
    // it on: every normalised term is 0), without its groups, buckets and sorts.
    CandidateScore& s = out.scores[0];
    out.order.clear();
    if (s.excluded != Exclusion::none) return;  // an ineligible model keeps score 0
    const bool priced = s.est_cost_usd >= 0;
    switch (out.objective) {
      case Objective::ordered: s.score = 0; break;
      case Objective::cost: s.score = priced ? s.est_cost_usd : 1e9; break;
      case Objective::latency: s.score = ranking_latency(s); break;
      case Objective::quality: s.score = -s.quality; break;
      case Objective::balanced:
        s.score = (policy.weight_quality * 0.0 + policy.weight_cost * (priced ? 0.0 : 1.0) +
                   policy.weight_latency * 0.0) /
                  (policy.weight_quality + policy.weight_cost + policy.weight_latency);
        break;
    }
    out.order.assign(1, 0);
    return;
  }

  // Score each model (group) by the objective over its eligible deployments.
  struct Group {
    double cost = std::numeric_limits<double>::infinity();  ///< cheapest eligible deployment
    double latency = std::numeric_limits<double>::infinity();
    double quality = 0;
    double score = 0;
    double log_cost = 0, log_latency = 0;
    std::uint16_t first = 0xFFFF;  ///< position of its first candidate (tie-break: as written)
    int tier_rank = 0;             ///< distance of its tier from the request's (0 first)
    bool eligible = false;
    bool priced = false;
  };
  thread_local std::vector<Group> groups;
  groups.assign(route.groups, Group{});
  for (std::size_t i = 0; i < n; ++i) {
    const CandidateScore& s = out.scores[i];
    Group& g = groups[route.hot[i].group];
    if (g.first == 0xFFFF) {
      g.first = static_cast<std::uint16_t>(i);
      // The request's tier first, then the nearest ones (stronger before weaker at equal distance).
      int tier = route.hot[i].tier;
      if (traits.tier >= 0)
        g.tier_rank = tier < 0 ? 1000 : 2 * std::abs(tier - traits.tier) - (tier > traits.tier ? 1 : 0);
    }
    if (s.excluded != Exclusion::none) continue;
    g.eligible = true;
    if (s.est_cost_usd >= 0) {
      g.cost = std::min(g.cost, s.est_cost_usd);
      g.priced = true;
    }
    g.latency = std::min(g.latency, ranking_latency(s));
    g.quality = s.quality;
  }
  double cmin = 1e300, cmax = -1e300, lmin = 1e300, lmax = -1e300, qmin = 1e300, qmax = -1e300;
  const bool balanced = out.objective == Objective::balanced;
  if (balanced) {
    for (Group& g : groups) {
      if (!g.eligible) continue;
      if (g.priced) {
        // Single precision: the scale only ranks, and logf costs half of log.
        g.log_cost = std::log(static_cast<float>(g.cost + 1e-9));
        cmin = std::min(cmin, g.log_cost);
        cmax = std::max(cmax, g.log_cost);
      }
      g.log_latency = std::log(static_cast<float>(g.latency + 1));
      lmin = std::min(lmin, g.log_latency);
      lmax = std::max(lmax, g.log_latency);
      qmin = std::min(qmin, g.quality);
      qmax = std::max(qmax, g.quality);
    }
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
        double c = g.priced ? normalised(g.log_cost, cmin, cmax) : 1.0;
        double l = normalised(g.log_latency, lmin, lmax);
        double q = normalised(qmax - g.quality, 0, qmax - qmin);
        g.score = (policy.weight_quality * q + policy.weight_cost * c + policy.weight_latency * l) / wsum;
        break;
      }
    }
  }
  for (std::size_t i = 0; i < n; ++i) out.scores[i].score = groups[route.hot[i].group].score;

  // Eligible candidates, best model first; within a model, by the strategy. Models are few, so
  // they are sorted on their own and the deployments bucketed under them (a sort of every
  // deployment on a compound key costs several times more with hundreds of them).
  struct Keyed {
    double key;
    std::uint16_t index;
    bool operator<(const Keyed& o) const { return key != o.key ? key < o.key : index < o.index; }
  };
  thread_local std::vector<Keyed> keyed;
  thread_local std::vector<std::uint16_t> group_order;
  thread_local std::vector<std::uint32_t> group_start;
  keyed.resize(n);
  group_order.clear();
  for (std::uint16_t gi = 0; gi < groups.size(); ++gi)
    if (groups[gi].eligible) group_order.push_back(gi);
  std::sort(group_order.begin(), group_order.end(), [&](std::uint16_t a, std::uint16_t b) {
    const Group& ga = groups[a];
    const Group& gb = groups[b];
    if (ga.tier_rank != gb.tier_rank) return ga.tier_rank < gb.tier_rank;
    return ga.score != gb.score ? ga.score < gb.score : ga.first < gb.first;
  });
  // Bucket starts in model rank order, then deployments placed in written order.
  group_start.assign(groups.size() + 1, 0);
  for (std::size_t i = 0; i < n; ++i)
    if (out.scores[i].excluded == Exclusion::none) ++group_start[route.hot[i].group];
  std::uint32_t total = 0;
  for (std::uint16_t gi : group_order) {
    std::uint32_t count = group_start[gi];
    group_start[gi] = total;
    total += count;
  }
  out.order.resize(total);
  std::size_t placed = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const CandidateScore& s = out.scores[i];
    if (s.excluded != Exclusion::none) continue;
    const CandidateHot& c = route.hot[i];
    const health::Snapshot& h = health[i];
    double key = 0;
    switch (rc.strategy) {
      case Strategy::priority: key = static_cast<double>(i); break;
      case Strategy::weighted:
        // Efraimidis–Spirakis: sorting by u^(1/w) samples without replacement by weight.
        // Equal weights (the usual case) are shuffled below instead: same distribution,
        // no sort.
        if (c.weight == 0) key = 2.0;  // only when nothing else is left
        else if (c.weight == 1) key = -1.0;
        else key = -std::pow(rng.uniform(), 1.0 / c.weight);
        break;
      case Strategy::least_latency: key = ranking_latency(s); break;
      case Strategy::least_busy: key = h.in_flight; break;
      case Strategy::lowest_cost: key = s.est_cost_usd >= 0 ? s.est_cost_usd : 1e9; break;
      case Strategy::rate_limit_aware: {
        // Known headroom ranks by itself; unknown sits between exhausted and any known headroom.
        double headroom = h.rl_remaining_requests >= 0 ? static_cast<double>(h.rl_remaining_requests)
                                                       : 0.5;
        if (h.rl_remaining_tokens == 0) headroom = 0;
        key = -headroom;
        break;
      }
    }
    std::uint32_t at = group_start[c.group]++;
    keyed[at] = {key, static_cast<std::uint16_t>(i)};
    ++placed;
  }
  // Each bucket now ends at its start; sort within buckets (written order under priority is
  // already sorted).
  std::uint32_t begin = 0;
  std::size_t first_run = 0;
  for (std::size_t k = 0; k < group_order.size(); ++k) {
    std::uint32_t end = group_start[group_order[k]];
    if (rc.strategy == Strategy::weighted && end - begin > 1 &&
        std::all_of(keyed.begin() + begin, keyed.begin() + end, [](const Keyed& x) { return x.key == -1.0; })) {
      for (std::uint32_t j = end - 1; j > begin; --j)  // Fisher–Yates
        std::swap(keyed[j], keyed[begin + rng.below(j - begin + 1)]);
    } else if (rc.strategy != Strategy::priority && end - begin > 1) {
      if (rc.strategy == Strategy::weighted)  // mixed weights: weight 1 draws its key now
        for (std::uint32_t j = begin; j < end; ++j)
          if (keyed[j].key == -1.0) keyed[j].key = -rng.uniform();
      std::sort(keyed.begin() + begin, keyed.begin() + end);
    }
    if (k == 0) first_run = end - begin;
    begin = end;
  }

  if (rc.strategy == Strategy::least_latency && first_run > 2) {
    // Power of two choices within the first model: two random deployments, the faster leads
    // (the sort ranked the rest). Without it every request piles onto one deployment.
    std::size_t a = rng.below(first_run), b = rng.below(first_run - 1);
    if (b >= a) ++b;
    std::size_t pick = keyed[a].key <= keyed[b].key ? a : b;
    std::rotate(keyed.begin(), keyed.begin() + pick, keyed.begin() + pick + 1);
  }
  for (std::size_t k = 0; k < placed; ++k) out.order[k] = keyed[k].index;

  // Exploration: latency statistics only stay true for deployments that get traffic, so a
  // small share of latency-ranked requests tries the runner-up first.
  out.latency_ranked = out.objective == Objective::latency || out.objective == Objective::balanced ||
                       rc.strategy == Strategy::least_latency;
  if (out.latency_ranked && out.order.size() > 1 && ctx.exploration > 0 && rng.uniform() < ctx.exploration) {
    std::swap(out.order[0], out.order[1]);
    out.explored = true;
  }
  if (rc.max_attempts && out.order.size() > rc.max_attempts) out.order.resize(rc.max_attempts);
}

/// Candidates expected too slow for the request's ttft_ms or deadline follow every candidate
/// expected in time, fastest first: the estimate may be wrong, and the attempt's own limits cut
/// it if it is right.
void add_tried_last(Plan& out) {
  thread_local std::vector<std::uint16_t> slow;
  slow.clear();
  for (std::size_t i = 0; i < out.scores.size(); ++i)
    if (out.scores[i].excluded == Exclusion::deadline) slow.push_back(static_cast<std::uint16_t>(i));
  if (slow.empty()) return;
  std::stable_sort(slow.begin(), slow.end(), [&out](std::uint16_t a, std::uint16_t b) {
    return out.scores[a].est_latency_ms < out.scores[b].est_latency_ms;
  });
  for (std::uint16_t i : slow) {
    out.scores[i].tried_last = true;
    out.order.push_back(i);
  }
}

/// The panic threshold (PlanContext::panic_threshold): candidates that only health keeps out
/// join the plan's tail when too few are healthy, the soonest to recover first.
void add_last_resort(Plan& out, int threshold_pct) {
  out.panic = false;
  if (threshold_pct <= 0) return;
  std::size_t healthy = 0;
  thread_local std::vector<std::uint16_t> waiting;
  waiting.clear();
  for (std::size_t i = 0; i < out.scores.size(); ++i) {
    const Exclusion e = out.scores[i].excluded;
    if (e == Exclusion::none || e == Exclusion::deadline) ++healthy;
    else if (e == Exclusion::circuit_open || e == Exclusion::rate_limited) waiting.push_back(static_cast<std::uint16_t>(i));
  }
  if (waiting.empty() || healthy * 100 >= static_cast<std::size_t>(threshold_pct) * (healthy + waiting.size())) return;
  std::stable_sort(waiting.begin(), waiting.end(), [&out](std::uint16_t a, std::uint16_t b) {
    return out.scores[a].recovers_at_ms < out.scores[b].recovers_at_ms;
  });
  for (std::uint16_t i : waiting) {
    out.scores[i].last_resort = true;
    out.order.push_back(i);
  }
  out.panic = true;
}

}  // namespace

void make_plan(const RouteTable& route, const RequestTraits& traits, const Overrides& overrides,
               std::span<const health::Snapshot> health, const PlanContext& ctx, Plan& out) {
  rank(route, traits, overrides, health, ctx, out);
  add_tried_last(out);
  const int own = route.rules->panic_threshold;
  add_last_resort(out, own >= 0 ? own : ctx.panic_threshold);
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
      std::snprintf(buf, sizeof buf, "input price $%g/M above the route's cap", core::usd_per_million(c.price.input));
      return buf;
    case Exclusion::output_price:
      std::snprintf(buf, sizeof buf, "output price $%g/M above the route's cap", core::usd_per_million(c.price.output));
      return buf;
    case Exclusion::max_cost:
      std::snprintf(buf, sizeof buf, "estimated cost $%.6f above the cap $%.6f", s.est_cost_usd,
                    plan.max_cost_usd);
      return buf;
    case Exclusion::provider: return "provider " + std::string(c.provider) + " not allowed by the policy";
    case Exclusion::region:
      return "region \"" + std::string(c.region) + "\" not allowed by the policy";
    case Exclusion::deadline:
      std::snprintf(buf, sizeof buf, "expected %.0f ms (first byte %.0f ms, %s) exceeds the deadline: tried last",
                    s.est_latency_ms, s.ttft_ms, s.live_latency ? "observed" : "catalogue prior");
      return buf;
    case Exclusion::circuit_open:
      std::snprintf(buf, sizeof buf, "circuit open after failures; recovers in %.1f s", seconds(s.recovers_at_ms));
      return buf;
    case Exclusion::rate_limited:
      std::snprintf(buf, sizeof buf, "rate limited (429); cooling down for %.1f s", seconds(s.recovers_at_ms));
      return buf;
    case Exclusion::category:
      return "the route sends " +
             std::string(catalog::to_string(static_cast<catalog::Category>(std::max(traits.category, 0)))) +
             " requests elsewhere";
  }
  return "excluded";
}

}  // namespace switchyard::routing
