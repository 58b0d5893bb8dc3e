#include "routing/request_traits.hpp"

#include "core/token_estimate.hpp"
#include "dialects/translate.hpp"
#include "routing/complexity/model.hpp"

namespace switchyard::routing {

std::int64_t estimate_body_tokens(std::string_view body, bool has_images, bool precise) {
  auto estimate = [precise](std::string_view text) {
    return static_cast<std::int64_t>(precise ? core::estimate_text_tokens(text) : core::quick_text_tokens(text));
  };
  if (!has_images) return estimate(body);
  constexpr std::string_view kDataUrl = "\"data:";
  constexpr std::int64_t kImageTokens = 1000;
  std::int64_t tokens = 0;
  std::size_t pos = 0;
  for (;;) {
    std::size_t at = body.find(kDataUrl, pos);
    if (at == std::string_view::npos) break;
    tokens += estimate(body.substr(pos, at - pos));
    std::size_t end = body.find('"', at + kDataUrl.size());
    if (end == std::string_view::npos) return tokens;
    tokens += kImageTokens;
    pos = end + 1;
  }
  return tokens + estimate(body.substr(pos));
}

RequestTraits traits_of(const dialects::openai::ChatRequestInfo& info, std::string_view body) {
  RequestTraits t;
  t.input_tokens = estimate_body_tokens(body, info.has_images, false);
  t.max_output_tokens = info.max_output_tokens;
  static const std::uint32_t kToolsBit = dialects::openai::param_bit("tools");
  if (info.params & kToolsBit) t.needs |= catalog::kTools;
  if (info.has_images) t.needs |= catalog::kVision;
  if (info.json_schema) t.needs |= catalog::kJsonSchema;
  return t;
}

RequestTraits traits_of(const core::ChatRequest& r) {
  RequestTraits t;
  t.input_tokens = dialects::estimate_tokens(r, false);
  t.max_output_tokens = r.max_tokens.value_or(0);
  if (!r.tools.empty()) t.needs |= catalog::kTools;
  if (r.response_format.kind == core::ResponseFormat::Kind::json_schema) t.needs |= catalog::kJsonSchema;
  auto has_image = [](const std::vector<core::Block>& blocks, auto& self) -> bool {
    for (const auto& b : blocks)
      if (b.type == core::Block::Type::image || self(b.content, self)) return true;
    return false;
  };
  for (const auto& m : r.messages)
    if (has_image(m.content, has_image)) {
      t.needs |= catalog::kVision;
      break;
    }
  return t;
}

std::string prompt_text(const core::ChatRequest& r) {
  std::string text;
  auto add = [&](const std::vector<core::Block>& blocks) {
    for (const auto& b : blocks) {
      if (b.text.empty()) continue;
      if (!text.empty()) text += '\n';
      text += b.text;
    }
  };
  add(r.system);
  for (const auto& m : r.messages) add(m.content);
  return text;
}

void score_and_tier(const config::ComplexityConfig& c, const complexity::Sparse& features, RequestTraits& traits) {
  const auto* model = static_cast<const complexity::Model*>(c.model.get());
  if (!model) return;
  if (!c.quality_floor) {
    traits.complexity = model->strong_gain(features);
    traits.tier = choose_tier(c, features, traits);
    return;
  }
  traits.tier = choose_tier(c, features, traits);
  // The score from the tiers' predictions when they include the pair (two tiers by default):
  // the same heads are not run twice.
  int strong = -1, weak = -1;
  for (std::uint8_t k = 0; k < traits.tier_quality_count; ++k) {
    if (c.heads[k] == model->strong) strong = k;
    if (c.heads[k] == model->weak) weak = k;
  }
  traits.complexity = strong >= 0 && weak >= 0
                          ? static_cast<double>(traits.tier_quality[static_cast<std::size_t>(strong)]) -
                                traits.tier_quality[static_cast<std::size_t>(weak)]
                          : model->strong_gain(features);
}

int choose_tier(const config::ComplexityConfig& c, const complexity::Sparse& features, RequestTraits& traits) {
  const auto* model = static_cast<const complexity::Model*>(c.model.get());
  if (!model) return -1;
  const double score = traits.complexity;
  if (c.quality_floor) {
    // Every tier's prediction is kept for the decision record; the weakest that reaches the
    // floor wins, else the strongest.
    traits.quality_floor = static_cast<float>(*c.quality_floor);
    traits.tier_quality_count = static_cast<std::uint8_t>(std::min(c.heads.size(), traits.tier_quality.size()));
    int chosen = -1;
    for (std::uint8_t k = 0; k < traits.tier_quality_count; ++k) {
      const complexity::Head* h = model->head(c.heads[k]);
      double q = h ? h->predict(features) : 0.0;
      traits.tier_quality[k] = static_cast<float>(q);
      if (chosen < 0 && q >= *c.quality_floor) chosen = k;
    }
    return chosen >= 0 ? chosen : static_cast<int>(traits.tier_quality_count) - 1;
  }
  if (c.shares.empty()) return -1;
  double above = model->share_above(score);  // how much of the sample is harder than this
  double cumulative = 0;
  for (std::size_t k = c.shares.size(); k-- > 0;) {
    cumulative += c.shares[k];
    if (above < cumulative) return static_cast<int>(k);
  }
  return 0;
}

}  // namespace switchyard::routing
