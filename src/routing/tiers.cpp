#include "routing/tiers.hpp"

#include "routing/complexity/model.hpp"

namespace switchyard::routing {

void score_and_tier(const TierPolicy& c, const complexity::Sparse& features, RequestTraits& traits) {
  const complexity::Model* model = c.model.get();
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

int choose_tier(const TierPolicy& c, const complexity::Sparse& features, RequestTraits& traits) {
  const complexity::Model* model = c.model.get();
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

std::vector<TierProblem> load_tier_model(TierPolicy& c) {
  std::vector<TierProblem> problems;
  if (c.model_file.empty()) return problems;  // no path: already reported by the config reader
  std::string error;
  auto model = complexity::load(c.model_file, error);
  if (!model) {
    problems.push_back({"model", error});
    return problems;
  }
  if (model->calibration.size() != 101) {
    problems.push_back({"model", "has no calibration; train it again"});
    return problems;
  }
  if (c.quality_floor && c.heads.empty() && c.tiers.size() == 2) c.heads = {model->weak, model->strong};
  for (std::size_t i = 0; c.quality_floor && i < c.heads.size(); ++i)
    if (!model->head(c.heads[i])) {
      std::string known;
      for (const auto& h : model->heads) known += (known.empty() ? "" : ", ") + h.model;
      problems.push_back({"heads[" + std::to_string(i) + "]",
                          "the model has no head \"" + c.heads[i] + "\" (it has: " + known + ")"});
    }
  if (problems.empty()) c.model = std::make_shared<const complexity::Model>(std::move(*model));
  return problems;
}

}  // namespace switchyard::routing
