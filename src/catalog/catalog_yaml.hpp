#pragma once

#include <yaml-cpp/yaml.h>

#include "catalog/catalog.hpp"

namespace switchyard::catalog {

/// Reads one model entry onto `model` (fields not given keep their value, so an override starts
/// from the built-in entry). Problems are reported under `path`.
void read_model(const YAML::Node& node, const std::string& path, ModelInfo& model,
                Problems& problems);

}  // namespace switchyard::catalog
