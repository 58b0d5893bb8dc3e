#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "catalog/catalog.hpp"

/// What a route asks of the router and the executor: its objective and constraints, how it
/// orders deployments of one model, retries, hedging and complexity tiers. Plain values, read
/// from the config file by `config/` and used by the planner; they belong to routing so that
/// routing needs nothing of the config reader.
namespace switchyard::routing {

namespace complexity {
struct Model;
}

/// What a route optimises among its candidates' models.
enum class Objective {
  ordered,   ///< the candidates in the order written (a failover chain)
  cost,      ///< cheapest estimated cost first
  latency,   ///< fastest expected answer first
  quality,   ///< highest quality prior for the route's category first
  balanced,  ///< weighted sum of normalised quality, cost and latency
};
std::string_view to_string(Objective o);
std::optional<Objective> parse_objective(std::string_view name);

/// How deployments of the same model are ordered.
enum class Strategy {
  priority,          ///< as written
  weighted,          ///< random, proportional to `weight`
  least_latency,     ///< power of two choices on the EWMA of expected latency
  least_busy,        ///< fewest requests in flight
  lowest_cost,       ///< cheapest deployment price
  rate_limit_aware,  ///< most rate-limit headroom reported by the provider
};
std::string_view to_string(Strategy s);
std::optional<Strategy> parse_strategy(std::string_view name);

struct Policy {
  Objective objective = Objective::ordered;
  double weight_quality = 1, weight_cost = 1, weight_latency = 1;  ///< balanced
  catalog::Category category = catalog::Category::chat;  ///< for the quality priors
  bool category_auto = false;  ///< `category: auto`: the request's predicted category
  double max_input_price = -1;   ///< USD per 1M tokens; < 0 = no cap
  double max_output_price = -1;
  double max_cost_usd = -1;      ///< per request, estimated; < 0 = no cap
  std::vector<std::string> providers;  ///< allowed provider names or types; empty = any
  std::vector<std::string> regions;    ///< allowed deployment regions; empty = any
  std::uint32_t deadline_ms = 0;  ///< total time for the request (all attempts); 0 = none
  std::uint32_t ttft_ms = 0;      ///< per attempt: time to the response head; 0 = upstream default
};

struct RetryPolicy {
  int attempts = 0;             ///< rounds over the plan again after every entry failed
  std::uint32_t base_ms = 100;  ///< backoff: full jitter of base · 2^n, capped
  std::uint32_t max_ms = 2000;
};

struct HedgePolicy {
  bool enabled = false;
  std::uint32_t delay_ms = 0;      ///< 0 = the primary's observed p95 time to first byte
  std::uint32_t min_delay_ms = 50; ///< never hedge sooner than this
  double max_share = 0.1;          ///< hedges at most this share of the route's requests
};

/// Complexity-aware tiers: the classifier's score of each request picks a tier (weakest first).
struct TierPolicy {
  std::string model_path;  ///< as written (relative: to the config file)
  std::string model_file;  ///< `model_path` resolved against the config file's folder
  /// The classifier, loaded by the runtime (`server/config_load`) from `model_path`; null in a
  /// config that has only been read.
  std::shared_ptr<const complexity::Model> model;
  std::vector<std::vector<std::string>> tiers;   ///< deployments per tier, weakest first
  std::vector<double> shares;                    ///< target share of requests per tier (sums to 1)
  /// Instead of shares: each request goes to the weakest tier whose head predicts at least this
  /// quality (0..1), the strongest when none does.
  std::optional<double> quality_floor;
  /// With quality_floor: the model head per tier, weakest first (empty with two tiers: the
  /// model's own weak and strong heads, filled in when the model is loaded).
  std::vector<std::string> heads;
};

/// Everything the router reads of a route besides its candidates.
struct RouteRules {
  Policy policy;
  Strategy strategy = Strategy::priority;
  RetryPolicy retry;
  HedgePolicy hedge;
  std::uint32_t max_attempts = 0;  ///< 0 = every eligible deployment
  int panic_threshold = -1;        ///< percent (routing::PlanContext::panic_threshold); -1: health's
  /// A client's max_tokens above a model's maximum output is lowered to that maximum instead of
  /// leaving the model out. Unset: on for the Anthropic ingress (whose clients send large
  /// ceilings by habit: Claude Code asks 32,000 and more), off for the others.
  std::optional<bool> clamp_max_tokens;
  std::optional<TierPolicy> complexity;
  /// `categories: {code: [...]}`: requests of a category may use only the deployments listed for
  /// it (categories without a rule: any candidate).
  std::array<std::vector<std::string>, catalog::kCategoryCount> category_rules;
  /// Whether requests to this route need their category predicted.
  bool needs_category() const {
    return policy.category_auto ||
           std::any_of(category_rules.begin(), category_rules.end(), [](const auto& r) { return !r.empty(); });
  }
};

}  // namespace switchyard::routing
