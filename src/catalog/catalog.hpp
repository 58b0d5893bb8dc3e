#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "catalog/pricing.hpp"

/// What Switchyard knows of models: prices, context window, capabilities, latency and quality
/// priors. The built-in data is `data/catalog.yaml`, compiled into the binary; a configuration
/// may override fields of an entry or add entries.
namespace switchyard::catalog {

/// Task categories of the quality priors (and, later, of the complexity classifier).
enum class Category : std::uint8_t { code, math, reasoning, knowledge, writing, extraction, chat };
inline constexpr std::size_t kCategoryCount = 7;
std::string_view to_string(Category c);
std::optional<Category> parse_category(std::string_view name);

/// Capabilities a request may need, as bits.
enum Capability : std::uint32_t {
  kTools = 1,
  kVision = 2,
  kJsonSchema = 4,
  kReasoning = 8,
  kEmbeddings = 16,
};
std::optional<std::uint32_t> parse_capability(std::string_view name);
/// "tools, vision" for a mask.
std::string capability_names(std::uint32_t mask);

struct LatencyPrior {
  double ttft_ms = 800;
  double tokens_per_s = 60;
};

struct ModelInfo {
  std::string id;
  std::string vendor;
  std::vector<std::string> hosts;
  std::vector<std::string> aliases;
  Pricing pricing;  ///< empty: unpriced
  std::int64_t context_window = 0;  ///< 0 = unknown (not checked)
  std::int64_t max_output = 0;      ///< 0 = unknown
  std::uint32_t capabilities = 0;
  LatencyPrior latency;
  std::array<float, kCategoryCount> quality{};  ///< 0..1 priors per category
  bool has_quality = false;
  float quality_of(Category c) const { return has_quality ? quality[static_cast<int>(c)] : 0.5f; }
};

class Catalog {
 public:
  /// Adds an entry, replacing one with the same id.
  void add(ModelInfo model);
  /// By id or alias.
  const ModelInfo* find(std::string_view id) const;
  const std::vector<ModelInfo>& models() const { return models_; }

  std::string source;
  std::string date;

 private:
  void reindex();
  std::vector<ModelInfo> models_;
  std::unordered_map<std::string, std::size_t> index_;
};

using Problems = std::vector<std::pair<std::string, std::string>>;  ///< (dotted path, message)

/// Parses catalogue YAML (`source`, `date`, `notes`, `models: [...]`), strictly.
Catalog parse_catalog(std::string_view yaml_text, Problems& problems);

/// The built-in catalogue, parsed once (a broken built-in file is a build defect: it aborts).
const Catalog& builtin();

}  // namespace switchyard::catalog
