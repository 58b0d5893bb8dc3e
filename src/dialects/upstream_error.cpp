#include "dialects/upstream_error.hpp"

#include "dialects/json_util.hpp"

namespace switchyard::dialects {

core::ApiError upstream_error(int status, std::string_view body, std::string_view deployment) {
  core::ErrorKind kind = status == 429            ? core::ErrorKind::rate_limited
                         : status == 400 || status == 422 ? core::ErrorKind::invalid_request
                         : status == 401          ? core::ErrorKind::authentication
                         : status == 403          ? core::ErrorKind::permission
                         : status == 404          ? core::ErrorKind::not_found
                         : status == 413          ? core::ErrorKind::payload_too_large
                                                  : core::ErrorKind::upstream_status;
  std::string message;
  std::string code;
  if (auto parsed = parse_json(body, 16); parsed && parsed->is_object()) {
    if (const json::object* e = object_at(parsed->get_object(), "error")) {
      message = std::string(str_or(*e, "message"));
      code = std::string(str_or(*e, "code"));
      if (code.empty()) code = std::string(str_or(*e, "status"));  // Google
      if (code.empty()) code = std::string(str_or(*e, "type"));    // Anthropic
    }
  }
  if (message.empty())
    message = "Upstream deployment \"" + std::string(deployment) + "\" answered HTTP " +
              std::to_string(status) + ".";
  core::ApiError e = core::ApiError::make(kind, std::move(message), {}, std::move(code));
  e.status = status;
  return e;
}

}  // namespace switchyard::dialects
