#pragma once

#include <string>
#include <vector>

#include "routing/complexity/features.hpp"
#include "routing/planner.hpp"
#include "routing/policy.hpp"

namespace switchyard::routing {

/// The complexity tier of a request whose score is in `traits.complexity`. By shares: the
/// strongest tier takes the requests whose score is in the top `shares.back()` of the model's
/// calibration sample, the next one the following share, and so on (weakest tier 0). By quality
/// floor: the weakest tier whose head predicts at least the floor on `features`, else the
/// strongest; the floor and every tier's prediction are recorded in `traits`.
int choose_tier(const TierPolicy& c, const complexity::Sparse& features, RequestTraits& traits);

/// Sets `traits.complexity` (the predicted gain of the model's strong head over its weak one)
/// and `traits.tier` for a request's features: what the gateway and `explain` both do.
void score_and_tier(const TierPolicy& c, const complexity::Sparse& features, RequestTraits& traits);

/// A problem with a route's tiers found when their model is loaded; `field` is relative to the
/// route's `complexity` ("model", "heads[1]").
struct TierProblem {
  std::string field;
  std::string message;
};

/// Loads `c.model` from `c.model_file`, then checks it: a calibration, and every head the tiers
/// name (with two tiers and no heads, the model's own weak and strong heads are filled in).
/// Every problem found, none when the tiers are ready to use.
std::vector<TierProblem> load_tier_model(TierPolicy& c);

}  // namespace switchyard::routing
