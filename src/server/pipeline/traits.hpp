#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/chat.hpp"
#include "dialects/openai/chat_request.hpp"
#include "routing/planner.hpp"

/// The pipeline's "traits" step: what a request needs of a model (tokens, tools, vision, JSON
/// schema), read from the client's body in whichever form the endpoint holds it. Here, not in
/// routing/, because it reads wire types; the router takes only `routing::RequestTraits`.
namespace switchyard::server {

/// Estimated input tokens of an OpenAI chat body: the whole body (JSON keys stand in for the
/// per-message overhead real tokenizers add), with inline images (data URLs) counted as a
/// typical image rather than as text.
/// `has_images` false skips the search for data URLs; `precise` picks the accurate estimator
/// over the quick one.
std::int64_t estimate_body_tokens(std::string_view body, bool has_images, bool precise = true);

/// What an OpenAI chat request needs, from the fast path's inspection. The token count is the
/// quick estimate (`core::quick_text_tokens`); `estimate_body_tokens` gives the precise one
/// when a plan says it matters (`Plan::context_tight`).
routing::RequestTraits traits_of(const dialects::openai::ChatRequestInfo& info, std::string_view body);
/// What a canonical (translated) chat request needs (quick token estimate).
routing::RequestTraits traits_of(const core::ChatRequest& r);

/// The text the complexity classifier reads: system and message texts, joined by lines.
std::string prompt_text(const core::ChatRequest& r);

}  // namespace switchyard::server
