#include "server/pipeline/plan.hpp"

#include <algorithm>
#include <vector>

#include "dialects/translate.hpp"
#include "routing/complexity/category.hpp"
#include "routing/complexity/model.hpp"
#include "routing/tiers.hpp"
#include "server/pipeline/traits.hpp"

namespace switchyard::server {

std::optional<core::ApiError> assess_chat(const RouteRuntime& route, ChatInput& in, std::size_t max_depth,
                                          bool keep_features, routing::RequestTraits& traits, Assessment& out) {
  traits = in.info ? traits_of(*in.info, in.body) : traits_of(*in.canonical);
  const config::RouteConfig& rc = *route.config;
  traits.clamp_max_tokens = rc.clamp_max_tokens.value_or(in.client == dialects::Dialect::anthropic);
  if (!rc.complexity && !rc.needs_category()) return std::nullopt;
  // The classifiers read the conversation's text: decoded once (a translation reuses it).
  if (auto e = in.decode(max_depth)) return e;
  const std::string text = prompt_text(*in.canonical);
  if (rc.needs_category()) {
    traits.category = static_cast<int>(routing::complexity::categorize(text).best);
    out.category = catalog::to_string(static_cast<catalog::Category>(traits.category));
  }
  if (!rc.complexity || !rc.complexity->model) return std::nullopt;
  const routing::complexity::Model& model = *rc.complexity->model;
  thread_local routing::complexity::Sparse features;
  routing::complexity::extract(text, model.spec, features);
  routing::score_and_tier(*rc.complexity, features, traits);
  if (keep_features) {
    out.pending = std::make_unique<routing::complexity::Pending>();
    out.pending->hash_bits = model.spec.hash_bits;
    out.pending->words = model.spec.words;
    out.pending->features = features;
  }
  return std::nullopt;
}

void plan_request(const RouteRuntime& route, const ChatInput* in, const routing::Overrides& overrides,
                  bool circuit_breaking, const routing::PlanContext& ctx, routing::RequestTraits& traits,
                  routing::Plan& out) {
  thread_local std::vector<health::Snapshot> snapshots;
  snapshots.assign(route.candidates.size(), health::Snapshot{});
  for (std::size_t i = 0; i < route.candidates.size(); ++i) {
    if (!route.candidates[i]->health) continue;
    snapshots[i] = route.candidates[i]->health->read(ctx.now_ms);
    if (!circuit_breaking) {  // observed, never excluding
      snapshots[i].state = health::State::closed;
      snapshots[i].recovers_at_ms = 0;
    }
  }
  routing::make_plan(route.table, traits, overrides, snapshots, ctx, out);
  if (out.context_tight && in && (in->info || in->canonical)) {
    // Near a context window the quick token estimate is not good enough: count precisely and
    // plan again.
    traits.input_tokens = in->info ? estimate_body_tokens(in->body, in->info->has_images, true)
                                   : dialects::estimate_tokens(*in->canonical, true);
    routing::make_plan(route.table, traits, overrides, snapshots, ctx, out);
  }
  if (route.has_quotas) prefer_quota_left(route, out, governance::unix_now_ms());
}

void prefer_quota_left(const RouteRuntime& route, routing::Plan& plan, std::int64_t unix_ms) {
  // Deployments whose provider quota is used up go last, in plan order; when all are, the plan
  // stands (the provider may still serve: never refuse what it might answer).
  auto left = [&](std::uint16_t i) {
    const DeploymentRuntime* d = route.candidates[i];
    return !d->quota || !d->quota->exhausted(unix_ms);
  };
  if (std::none_of(plan.order.begin(), plan.order.end(), left)) return;
  std::stable_partition(plan.order.begin(), plan.order.end(), left);
}

}  // namespace switchyard::server
