#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "core/error.hpp"
#include "routing/complexity/feedback.hpp"
#include "routing/planner.hpp"
#include "server/pipeline/admission.hpp"
#include "server/runtime.hpp"

/// The pipeline's "traits and complexity" and "plan" steps, shared by the server and
/// `switchyard explain` (which runs them on a runtime without live health: every deployment
/// healthy, latency from the catalogue's priors).
namespace switchyard::server {

/// What the classifiers said of a request, beyond its traits.
struct Assessment {
  std::string_view category;  ///< predicted task category, when the route needs one
  /// Complexity-routed requests with `keep_features`: what feedback on the answer will train.
  std::unique_ptr<routing::complexity::Pending> pending;
};

/// The traits of a chat request on `route` (needs, token estimate, max tokens), and when the
/// route has tiers or category rules its predicted category and complexity tier; the 400 when
/// the classifiers need the decoded conversation and the body cannot be decoded.
std::optional<core::ApiError> assess_chat(const RouteRuntime& route, ChatInput& in, std::size_t max_depth,
                                          bool keep_features, routing::RequestTraits& traits, Assessment& out);

/// The plan for a request: each candidate's health now (all closed when circuit breaking is off
/// or there is no registry), `routing::make_plan`, and — when the plan says a context window is
/// close — the precise token count instead of the quick one and the plan made again. `in` may be
/// null (embeddings: the quick count is all there is).
void plan_request(const RouteRuntime& route, const ChatInput* in, const routing::Overrides& overrides,
                  bool circuit_breaking, const routing::PlanContext& ctx, routing::RequestTraits& traits,
                  routing::Plan& out);

/// Moves the plan's deployments whose provider quota (`rpm`/`tpm` on the deployment) is used up
/// behind the others, unless all of them are out of quota.
void prefer_quota_left(const RouteRuntime& route, routing::Plan& plan, std::int64_t unix_ms);

}  // namespace switchyard::server
