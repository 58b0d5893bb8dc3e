#include "routing/policy.hpp"

namespace switchyard::routing {

namespace {
constexpr std::array<std::string_view, 5> kObjectives = {"ordered", "cost", "latency", "quality",
                                                         "balanced"};
constexpr std::array<std::string_view, 6> kStrategies = {
    "priority", "weighted", "least-latency", "least-busy", "lowest-cost", "rate-limit-aware"};
}  // namespace

std::string_view to_string(Objective o) { return kObjectives[static_cast<int>(o)]; }
std::optional<Objective> parse_objective(std::string_view name) {
  for (std::size_t i = 0; i < kObjectives.size(); ++i)
    if (kObjectives[i] == name) return static_cast<Objective>(i);
  return std::nullopt;
}
std::string_view to_string(Strategy s) { return kStrategies[static_cast<int>(s)]; }
std::optional<Strategy> parse_strategy(std::string_view name) {
  for (std::size_t i = 0; i < kStrategies.size(); ++i)
    if (kStrategies[i] == name) return static_cast<Strategy>(i);
  return std::nullopt;
}

}  // namespace switchyard::routing
