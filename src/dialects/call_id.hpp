#pragma once

#include <string>
#include <string_view>

/// Gemini's thought signature belongs to a function call, and Gemini 3 refuses the next turn
/// without it. Anthropic's `tool_use` block and the Responses API's `function_call` item have no
/// member for it, but their clients send a call's id back unchanged (on the call and on its
/// result): so for those clients the signature rides in the id, `<id>__sig_<base64url>`, and is
/// taken out again when the conversation comes back.
namespace switchyard::dialects {

/// `id` with `signature` folded in (`id` itself when there is no signature).
std::string id_with_signature(std::string_view id, std::string_view signature);

/// Takes a folded signature out of `id` (left as the call's own id); "" when it has none.
std::string take_signature(std::string& id);

}  // namespace switchyard::dialects
