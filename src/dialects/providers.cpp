#include "dialects/providers.hpp"

#include <array>

namespace switchyard::dialects {

namespace {

using sv = std::string_view;

// Parameters each vendor's API documentation lists as unsupported (as of 2026-11), or that it
// answers with a 400/422. A request carrying one is refused for that deployment (the next
// candidate is tried) unless the provider sets `drop_unsupported_params: true`.
constexpr std::array<sv, 0> kNone{};
constexpr std::array<sv, 5> kMistralRejected{"logit_bias", "logprobs", "top_logprobs", "user",
                                             "service_tier"};
constexpr std::array<Rename, 1> kMistralRenamed{Rename{"seed", "random_seed"}};
constexpr std::array<sv, 4> kGroqRejected{"logit_bias", "logprobs", "top_logprobs", "n"};
constexpr std::array<sv, 3> kXaiRejected{"logit_bias", "service_tier", "store"};
constexpr std::array<sv, 5> kPerplexityRejected{"logit_bias", "logprobs", "top_logprobs", "n",
                                                "seed"};
constexpr std::array<sv, 4> kDeepseekRejected{"logit_bias", "n", "service_tier", "store"};
constexpr std::array<sv, 2> kLocalRejected{"service_tier", "store"};
constexpr std::array<Rename, 0> kNoRename{};

constexpr ProviderType kTypes[] = {
    {"openai", Dialect::openai, "https://api.openai.com/v1", Auth::bearer, true, false, true, false,
     kNone, kNoRename, "platform.openai.com/docs/api-reference/chat"},
    {"azure", Dialect::openai, "", Auth::api_key, true, true, true, false, kNone, kNoRename,
     "learn.microsoft.com/azure/ai-services/openai/reference"},
    {"anthropic", Dialect::anthropic, "https://api.anthropic.com/v1", Auth::x_api_key, true, false,
     false, true, kNone, kNoRename, "docs.anthropic.com/en/api/messages"},
    {"gemini", Dialect::gemini, "https://generativelanguage.googleapis.com/v1beta",
     Auth::x_goog_api_key, true, false, false, true, kNone, kNoRename,
     "ai.google.dev/api/generate-content"},
    {"deepseek", Dialect::openai, "https://api.deepseek.com/v1", Auth::bearer, true, false, false,
     false, kDeepseekRejected, kNoRename, "api-docs.deepseek.com/api/create-chat-completion"},
    {"mistral", Dialect::openai, "https://api.mistral.ai/v1", Auth::bearer, true, false, false,
     false, kMistralRejected, kMistralRenamed, "docs.mistral.ai/api"},
    {"groq", Dialect::openai, "https://api.groq.com/openai/v1", Auth::bearer, true, false, false,
     false, kGroqRejected, kNoRename, "console.groq.com/docs/openai"},
    {"together", Dialect::openai, "https://api.together.xyz/v1", Auth::bearer, true, false, false,
     true, kNone, kNoRename, "docs.together.ai/reference/chat-completions"},
    {"fireworks", Dialect::openai, "https://api.fireworks.ai/inference/v1", Auth::bearer, true,
     false, false, true, kNone, kNoRename, "docs.fireworks.ai/api-reference"},
    {"xai", Dialect::openai, "https://api.x.ai/v1", Auth::bearer, true, false, false, false,
     kXaiRejected, kNoRename, "docs.x.ai/docs/api-reference"},
    {"openrouter", Dialect::openai, "https://openrouter.ai/api/v1", Auth::bearer, true, false,
     false, true, kNone, kNoRename, "openrouter.ai/docs/api-reference/parameters"},
    {"perplexity", Dialect::openai, "https://api.perplexity.ai", Auth::bearer, true, false, false,
     true, kPerplexityRejected, kNoRename, "docs.perplexity.ai/api-reference/chat-completions"},
    {"vllm", Dialect::openai, "http://127.0.0.1:8000/v1", Auth::bearer, false, false, false, true,
     kLocalRejected, kNoRename, "docs.vllm.ai/en/latest/serving/openai_compatible_server.html"},
    {"ollama", Dialect::openai, "http://127.0.0.1:11434/v1", Auth::bearer, false, false, false,
     false, kLocalRejected, kNoRename, "github.com/ollama/ollama/blob/main/docs/openai.md"},
    {"lmstudio", Dialect::openai, "http://127.0.0.1:1234/v1", Auth::bearer, false, false, false,
     true, kLocalRejected, kNoRename, "lmstudio.ai/docs/app/api/endpoints/openai"},
};

}  // namespace

const ProviderType* find_provider_type(std::string_view name) {
  for (const auto& t : kTypes)
    if (t.name == name) return &t;
  return nullptr;
}

std::span<const ProviderType> provider_types() { return kTypes; }

}  // namespace switchyard::dialects
