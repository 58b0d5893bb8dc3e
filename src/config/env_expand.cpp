#include "config/env_expand.hpp"

namespace switchyard::config {

Expansion expand_env(const std::string& text, const std::map<std::string, std::string>& env) {
  Expansion out;
  out.value.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c != '$' || i + 1 >= text.size()) {
      out.value.push_back(c);
      continue;
    }
    if (text[i + 1] == '$') {
      out.value.push_back('$');
      ++i;
      continue;
    }
    if (text[i + 1] != '{') {
      out.value.push_back(c);
      continue;
    }
    std::size_t close = text.find('}', i + 2);
    if (close == std::string::npos) {
      out.error = "unterminated ${...} reference";
      return out;
    }
    std::string inner = text.substr(i + 2, close - i - 2);
    std::string name = inner, fallback;
    bool has_default = false;
    if (auto d = inner.find(":-"); d != std::string::npos) {
      name = inner.substr(0, d);
      fallback = inner.substr(d + 2);
      has_default = true;
    }
    bool valid = !name.empty();
    for (char n : name)
      if (!(n == '_' || (n >= 'A' && n <= 'Z') || (n >= 'a' && n <= 'z') || (n >= '0' && n <= '9')))
        valid = false;
    if (!valid) {
      out.error = "invalid variable name in ${" + inner + "}";
      return out;
    }
    auto it = env.find(name);
    if (it != env.end() && !it->second.empty()) {
      out.value += it->second;
    } else if (has_default) {
      out.value += fallback;
    } else {
      out.unset.push_back(name);
    }
    i = close;
  }
  return out;
}

}  // namespace switchyard::config
