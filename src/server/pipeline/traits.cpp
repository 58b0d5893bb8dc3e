#include "server/pipeline/traits.hpp"

#include "core/token_estimate.hpp"
#include "dialects/translate.hpp"

namespace switchyard::server {

std::int64_t estimate_body_tokens(std::string_view body, bool has_images, bool precise) {
  auto estimate = [precise](std::string_view text) {
    return static_cast<std::int64_t>(precise ? core::estimate_text_tokens(text) : core::quick_text_tokens(text));
  };
  if (!has_images) return estimate(body);
  constexpr std::string_view kDataUrl = "\"data:";
  constexpr std::int64_t kImageTokens = 1000;
  std::int64_t tokens = 0;
  std::size_t pos = 0;
  for (;;) {
    std::size_t at = body.find(kDataUrl, pos);
    if (at == std::string_view::npos) break;
    tokens += estimate(body.substr(pos, at - pos));
    std::size_t end = body.find('"', at + kDataUrl.size());
    if (end == std::string_view::npos) return tokens;
    tokens += kImageTokens;
    pos = end + 1;
  }
  return tokens + estimate(body.substr(pos));
}

routing::RequestTraits traits_of(const dialects::openai::ChatRequestInfo& info, std::string_view body) {
  routing::RequestTraits t;
  t.input_tokens = estimate_body_tokens(body, info.has_images, false);
  t.max_output_tokens = info.max_output_tokens;
  static const std::uint32_t kToolsBit = dialects::openai::param_bit("tools");
  if (info.params & kToolsBit) t.needs |= catalog::kTools;
  if (info.has_images) t.needs |= catalog::kVision;
  if (info.json_schema) t.needs |= catalog::kJsonSchema;
  return t;
}

routing::RequestTraits traits_of(const core::ChatRequest& r) {
  routing::RequestTraits t;
  t.input_tokens = dialects::estimate_tokens(r, false);
  t.max_output_tokens = r.max_tokens.value_or(0);
  if (!r.tools.empty()) t.needs |= catalog::kTools;
  if (r.response_format.kind == core::ResponseFormat::Kind::json_schema) t.needs |= catalog::kJsonSchema;
  auto has_image = [](const std::vector<core::Block>& blocks, auto& self) -> bool {
    for (const auto& b : blocks)
      if (b.type == core::Block::Type::image || self(b.content, self)) return true;
    return false;
  };
  for (const auto& m : r.messages)
    if (has_image(m.content, has_image)) {
      t.needs |= catalog::kVision;
      break;
    }
  return t;
}

std::string prompt_text(const core::ChatRequest& r) {
  std::string text;
  auto add = [&](const std::vector<core::Block>& blocks) {
    for (const auto& b : blocks) {
      if (b.text.empty()) continue;
      if (!text.empty()) text += '\n';
      text += b.text;
    }
  };
  add(r.system);
  for (const auto& m : r.messages) add(m.content);
  return text;
}

}  // namespace switchyard::server
