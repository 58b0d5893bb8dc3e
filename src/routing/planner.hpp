#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "catalog/catalog.hpp"
#include "routing/policy.hpp"
#include "health/registry.hpp"

/// The router: for one request, which deployments to try and in which order, and why. Pure: the
/// health it sees, the time and the randomness are arguments.
namespace switchyard::routing {

/// What a request needs, derived from its body.
struct RequestTraits {
  std::int64_t input_tokens = 0;       ///< estimated
  std::int64_t max_output_tokens = 0;  ///< the client's max_tokens; 0 = not given
  std::uint32_t needs = 0;             ///< catalog::Capability bits
  int tier = -1;                       ///< complexity tier chosen for the request; -1 = none
  int category = -1;                   ///< predicted catalog::Category; -1 = not predicted
  double complexity = -1;              ///< the classifier's score (predicted gain of the strong tier)
  /// With a quality floor: the floor and each tier's predicted quality, weakest first.
  float quality_floor = -1;
  std::uint8_t tier_quality_count = 0;
  std::array<float, 8> tier_quality{};
  /// A max_tokens above a model's maximum output is lowered to it (RouteRules::clamp_max_tokens)
  /// rather than excluding the model.
  bool clamp_max_tokens = false;
};

/// Per-request overrides from `x-switchyard-*` headers (already validated and permitted).
struct Overrides {
  std::optional<routing::Objective> objective;
  std::uint32_t deadline_ms = 0;  ///< 0 = none
  double max_cost_usd = -1;       ///< < 0 = none
};

/// A route candidate as the router sees it, prepared once per configuration.
struct Candidate {
  std::string_view deployment;
  std::string_view provider;
  std::string_view provider_type;
  std::string_view region;
  std::string_view model_id;  ///< catalogue id when known, else the upstream model
  const catalog::ModelInfo* model = nullptr;
  catalog::Prices price;  ///< the deployment's, else the catalogue's
  bool priced = false;
  std::uint32_t weight = 1;
  std::uint16_t group = 0;  ///< index of its model among the route's distinct models
};

/// What the router reads of a candidate on every request, packed (`prepare_route` derives it
/// from the candidate and the route's policy).
struct CandidateHot {
  double input_per_token = 0;   ///< USD
  double output_per_token = 0;
  std::int64_t context_window = 0;  ///< 0 = unknown
  std::int64_t max_output = 0;      ///< 0 = unknown
  float prior_ttft_ms = 0;
  float prior_tokens_per_s = 0;
  float quality = 0.5f;  ///< the prior for the route's category
  std::uint32_t capabilities = ~0u;  ///< all bits for a model the catalogue does not know
  std::uint32_t weight = 1;
  std::uint16_t group = 0;
  std::uint8_t static_exclusion = 0;  ///< an `Exclusion` the policy implies whatever the request
  std::int8_t tier = -1;              ///< its complexity tier (weakest 0); -1 = in none
  std::uint8_t categories = 0x7F;     ///< bit c: allowed for requests of category c (route rules)
  std::array<float, catalog::kCategoryCount> quality_by_category{};  ///< for `category: auto`
  bool priced = false;
  bool known_model = false;
};

struct RouteTable {
  std::string_view name;
  const RouteRules* rules = nullptr;  ///< the route's policy, strategy, tiers and category rules
  std::vector<Candidate> candidates;  ///< enabled deployments, in the order written
  std::vector<CandidateHot> hot;      ///< one per candidate
  std::uint16_t groups = 0;
};

/// Fills `route.hot` from its candidates and policy; call after building or changing them.
void prepare_route(RouteTable& route);

/// Why a candidate is not in the plan.
enum class Exclusion : std::uint8_t {
  none,
  capability,      ///< the model lacks tools / vision / json_schema the request uses
  context_window,  ///< input + output tokens exceed the model's window
  max_output,      ///< max_tokens above the model's maximum output
  input_price,
  output_price,
  max_cost,        ///< estimated cost above the cap
  provider,        ///< provider not allowed by the policy
  region,
  deadline,        ///< expected latency above the deadline
  circuit_open,
  rate_limited,    ///< cooling down after a 429
  category,        ///< the route's rule for the request's category lists other deployments
};
std::string_view to_string(Exclusion e);

struct CandidateScore {
  Exclusion excluded = Exclusion::none;
  std::uint32_t missing = 0;  ///< capabilities missing (capability exclusions)
  health::State state = health::State::closed;
  std::int64_t recovers_at_ms = 0;
  double est_cost_usd = -1;  ///< < 0 = unknown (no price)
  float est_latency_ms = 0;
  float ttft_ms = 0;         ///< expected time to first byte (live EWMA, else the prior)
  bool live_latency = false; ///< from observed traffic rather than the catalogue prior
  float quality = 0.5f;
  double score = 0;          ///< of its model under the objective; lower is better
  /// Kept out by health alone, yet in the plan's tail: too few candidates were healthy (see
  /// PlanContext::panic_threshold). Tried after every healthy one, breaker or not.
  bool last_resort = false;
  /// Expected slower than the request's ttft_ms or deadline (Exclusion::deadline), yet in the
  /// plan's tail after every candidate expected in time: an estimate orders, it never leaves a
  /// request without a deployment that might serve it.
  bool tried_last = false;
  /// No latency measurement yet (or only stale ones): latency ranking tries it first, so that
  /// it is measured instead of judged by its catalogue prior.
  bool measuring = false;
};

struct Plan {
  routing::Objective objective = routing::Objective::ordered;
  routing::Strategy strategy = routing::Strategy::priority;
  catalog::Category category = catalog::Category::chat;
  std::uint32_t deadline_ms = 0;
  double max_cost_usd = -1;
  std::int64_t expected_output_tokens = 0;
  std::vector<CandidateScore> scores;  ///< one per route candidate, in route order
  std::vector<std::uint16_t> order;    ///< eligible candidates, first choice first
  std::int64_t earliest_recovery_ms = 0;  ///< when everything waits on health: the soonest
  bool explored = false;                  ///< a random exploration step reordered the plan
  bool latency_ranked = false;            ///< latency ranks its candidates (measuring matters)
  bool panic = false;                     ///< candidates waiting on health were added as a last resort
  /// Some candidate's context window is within 20% of what the request needs (or excluded it):
  /// a rough token estimate should be replaced by the precise one and the plan made again.
  bool context_tight = false;
};

struct PlanContext {
  std::int64_t now_ms = 0;
  std::uint64_t seed = 0;    ///< randomness for weighted / power-of-two / exploration
  double exploration = 0;    ///< share of latency-ranked plans that explore
  /// A deployment whose last latency measurement is older than this (ms) is measured again
  /// (CandidateScore::measuring); 0: measurements never go stale.
  std::int64_t stale_after_ms = 60000;
  /// Envoy's panic threshold, in percent: when fewer of the candidates that may serve the request
  /// are healthy than this, the ones only health keeps out (circuit open, cooling after a 429)
  /// join the plan after the healthy ones, soonest recovery first — the gateway never refuses a
  /// request a provider might serve. 0: never.
  int panic_threshold = 50;
};

/// Output tokens assumed for cost and latency estimates: the client's max_tokens capped at
/// 1,000, else 500.
std::int64_t expected_output_tokens(const RequestTraits& traits);

/// Builds the plan for one request. `health` has one snapshot per candidate.
void make_plan(const RouteTable& route, const RequestTraits& traits, const Overrides& overrides,
               std::span<const health::Snapshot> health, const PlanContext& ctx, Plan& out);

/// One line on why a candidate was excluded ("circuit open after server errors; recovers in
/// 4.2 s").
std::string exclusion_reason(const Candidate& c, const CandidateScore& s, const RequestTraits& traits,
                             const Plan& plan, std::int64_t now_ms);

}  // namespace switchyard::routing
