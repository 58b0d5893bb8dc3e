// libFuzzer target: the configuration reader on arbitrary YAML — parsed, `${VAR}` references
// expanded, validated. Every problem must come back as a problem, never a crash or a hang.
#include <cstdint>
#include <map>
#include <string>

#include "config/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::map<std::string, std::string> env{{"OPENAI_API_KEY", "sk-fuzz"}, {"EMPTY", ""}};
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto result = switchyard::config::load_config_text(text, env, "/nonexistent");
  (void)switchyard::config::format_problems(result.problems);
  return 0;
}
