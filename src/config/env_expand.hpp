#pragma once

#include <map>
#include <string>
#include <vector>

namespace switchyard::config {

struct Expansion {
  std::string value;
  std::vector<std::string> unset;  ///< variables referenced without a default and not set
  std::string error;               ///< malformed reference
};

/// Expands `${VAR}` and `${VAR:-default}`; `$$` is a literal `$`.
Expansion expand_env(const std::string& text, const std::map<std::string, std::string>& env);

}  // namespace switchyard::config
