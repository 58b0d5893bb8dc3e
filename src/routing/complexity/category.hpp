#pragma once

#include <array>
#include <string_view>

#include "catalog/catalog.hpp"

/// The task category of a prompt (code, math, reasoning, knowledge QA, writing, extraction /
/// summarisation, chat) from cues in its text: code fences and syntax, math notation and
/// numbers, fill-in-the-blank and inference phrasing, writing and extraction requests, question
/// forms, small talk. Rules rather than a trained model: the routing data has labels for only
/// some categories (docs/routing-quality.md measures it on those).
namespace switchyard::routing::complexity {

struct CategoryScores {
  std::array<float, catalog::kCategoryCount> score{};
  catalog::Category best = catalog::Category::chat;
};

CategoryScores categorize(std::string_view text);

}  // namespace switchyard::routing::complexity
