#pragma once

#include <span>
#include <string_view>

/// What Switchyard knows of each provider type: its wire dialect, default base URL, how it
/// authenticates, and — for OpenAI-compatible vendors — which chat parameters it refuses or
/// names differently. Data, not code: adding an OpenAI-compatible vendor is adding a row.
namespace switchyard::dialects {

/// A wire dialect. Providers speak the first three; `responses` is OpenAI's Responses API, a
/// client dialect (served by OpenAI deployments as it is, by the others translated).
enum class Dialect { openai, anthropic, gemini, responses };

enum class Auth {
  bearer,          ///< Authorization: Bearer KEY
  api_key,         ///< api-key: KEY (Azure OpenAI)
  x_api_key,       ///< x-api-key: KEY (Anthropic)
  x_goog_api_key,  ///< x-goog-api-key: KEY (Gemini)
};

struct Rename {
  std::string_view from, to;
};

struct ProviderType {
  std::string_view name;
  Dialect dialect;
  std::string_view default_base_url;  ///< empty: base_url is required
  Auth auth;
  bool key_required;                  ///< false for local servers (vLLM, Ollama, LM Studio)
  bool azure_paths;                   ///< /openai/deployments/{model}/...?api-version=
  bool max_completion_tokens;         ///< takes `max_completion_tokens` rather than `max_tokens`
  bool top_k;                         ///< takes `top_k`
  std::span<const std::string_view> rejected;  ///< top-level chat parameters it refuses
  std::span<const Rename> renamed;             ///< parameters it spells differently
  std::string_view source;                     ///< where the row comes from
};

/// The row of a provider type, or nullptr.
const ProviderType* find_provider_type(std::string_view name);
/// Every row, for `docs/config.md` and error messages.
std::span<const ProviderType> provider_types();

}  // namespace switchyard::dialects
