#pragma once

#include <map>
#include <string>

#include "config/config.hpp"

/// The config as the runtime uses it: the YAML read and validated by `config/`, then what it
/// refers to loaded (the routes' complexity models), every problem with its dotted path. Every
/// command that runs requests or plans (`serve`, `check`, `explain`, a reload) loads through here.
namespace switchyard::server {

config::LoadResult load_config_file(const std::string& path);
config::LoadResult load_config_text(const std::string& yaml_text, const std::map<std::string, std::string>& env,
                                    const std::string& base_dir = ".");

/// Loads the complexity model of every route that has tiers; problems are added to `loaded`.
void load_models(config::LoadResult& loaded);

}  // namespace switchyard::server
