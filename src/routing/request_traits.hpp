#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/chat.hpp"
#include "dialects/openai/chat_request.hpp"
#include "routing/complexity/features.hpp"
#include "routing/planner.hpp"

namespace switchyard::routing {

/// Estimated input tokens of an OpenAI chat body: the whole body (JSON keys stand in for the
/// per-message overhead real tokenizers add), with inline images (data URLs) counted as a
/// typical image rather than as text.
/// `has_images` false skips the search for data URLs; `precise` picks the accurate estimator
/// over the quick one.
std::int64_t estimate_body_tokens(std::string_view body, bool has_images, bool precise = true);

/// What an OpenAI chat request needs, from the fast path's inspection. The token count is the
/// quick estimate (`core::quick_text_tokens`); `estimate_body_tokens` gives the precise one
/// when a plan says it matters (`Plan::context_tight`).
RequestTraits traits_of(const dialects::openai::ChatRequestInfo& info, std::string_view body);
/// What a canonical (translated) chat request needs (quick token estimate).
RequestTraits traits_of(const core::ChatRequest& r);

/// The text the complexity classifier reads: system and message texts, joined by lines.
std::string prompt_text(const core::ChatRequest& r);

/// The complexity tier of a request whose score is in `traits.complexity`. By shares: the
/// strongest tier takes the requests whose score is in the top `shares.back()` of the model's
/// calibration sample, the next one the following share, and so on (weakest tier 0). By quality
/// floor: the weakest tier whose head predicts at least the floor on `features`, else the
/// strongest; the floor and every tier's prediction are recorded in `traits`.
int choose_tier(const config::ComplexityConfig& c, const complexity::Sparse& features, RequestTraits& traits);

/// Sets `traits.complexity` (the predicted gain of the model's strong head over its weak one)
/// and `traits.tier` for a request's features: what the gateway and `explain` both do.
void score_and_tier(const config::ComplexityConfig& c, const complexity::Sparse& features, RequestTraits& traits);

}  // namespace switchyard::routing
