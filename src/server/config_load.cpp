#include "server/config_load.hpp"

#include "routing/tiers.hpp"

namespace switchyard::server {

void load_models(config::LoadResult& loaded) {
  for (auto& route : loaded.config.routes) {
    if (!route.complexity) continue;
    for (auto& p : routing::load_tier_model(*route.complexity))
      loaded.problems.push_back({"routes." + route.name + ".complexity." + p.field, std::move(p.message)});
  }
}

config::LoadResult load_config_file(const std::string& path) {
  config::LoadResult loaded = config::load_config_file(path);
  load_models(loaded);
  return loaded;
}

config::LoadResult load_config_text(const std::string& yaml_text, const std::map<std::string, std::string>& env,
                                    const std::string& base_dir) {
  config::LoadResult loaded = config::load_config_text(yaml_text, env, base_dir);
  load_models(loaded);
  return loaded;
}

}  // namespace switchyard::server
