#pragma once

#include <yaml-cpp/yaml.h>

#include "catalog/catalog.hpp"

namespace switchyard::catalog {

/// Reads one model entry onto `model` (fields not given keep their value, so an override starts
/// from the built-in entry). Problems are reported under `path`.
void read_model(const YAML::Node& node, const std::string& path, ModelInfo& model,
                Problems& problems);

/// Reads a `price:` mapping (USD per 1M tokens, decimals read exactly): `input`, `output`,
/// `cached_input`, `cache_write_5m`, `cache_write_1h`, `reasoning`, `since` (YYYY-MM-DD),
/// `long_context: {above_input_tokens, input, output, ...}`, `off_peak: [{from: "16:30", to:
/// "00:30", percent_off: 50}]`. `anthropic_writes`: cache writes not given bill at Anthropic's
/// 1.25x (5 min) and 2x (1 h) of the input price. False when the mapping is unusable.
bool read_price_version(const YAML::Node& node, const std::string& path, PriceVersion& out,
                        bool anthropic_writes, Problems& problems);

}  // namespace switchyard::catalog
