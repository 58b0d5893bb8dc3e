#pragma once

#include <string_view>

#include "core/error.hpp"

namespace switchyard::dialects {

/// An upstream's HTTP error answer as an `ApiError` with the upstream's status, whichever
/// dialect it is in: OpenAI `{"error":{"message","type","code"}}`, Anthropic
/// `{"type":"error","error":{"type","message"}}` or Google `{"error":{"code","message","status"}}`.
/// Used when the client speaks another dialect than the upstream.
core::ApiError upstream_error(int status, std::string_view body, std::string_view deployment);

}  // namespace switchyard::dialects
