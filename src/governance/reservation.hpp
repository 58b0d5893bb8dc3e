#pragma once

#include <cstdint>
#include <optional>

#include "catalog/pricing.hpp"
#include "core/money.hpp"

/// What a request may cost at most, to reserve against budgets before it runs (issue 19). The
/// ceiling holds whatever the provider reports, as long as the price table is right and the
/// output is bounded: every prompt token billed at the dearest rate a prompt token can bill at
/// (a one-hour cache write, at Anthropic), every output token at the dearer of the output and
/// reasoning rates, the long-context tier when the prompt could reach it, no off-peak discount.
/// The pipeline's reserve step prices every deployment of a plan with it (`plan_ceiling`).
namespace switchyard::governance {

/// The ceiling for `input_tokens` of prompt (an estimate: the caller adds its margin) and at most
/// `max_output_tokens` of output, at the prices in effect at `unix_s`; nullopt when unpriced.
std::optional<core::Money> max_cost(const catalog::Pricing& pricing, std::int64_t input_tokens,
                                    std::int64_t max_output_tokens, std::int64_t unix_s);

}  // namespace switchyard::governance
