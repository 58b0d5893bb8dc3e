#include "core/error.hpp"

#include "core/byte_scan.hpp"

#include <cstdio>

namespace switchyard::core {

ApiError ApiError::make(ErrorKind kind, std::string message, std::string param, std::string code) {
  return ApiError{kind, status_of(kind), std::move(message), std::move(param), std::move(code)};
}

int status_of(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::invalid_request: return 400;
    case ErrorKind::authentication: return 401;
    case ErrorKind::permission: return 403;
    case ErrorKind::not_found: return 404;
    case ErrorKind::method_not_allowed: return 405;
    case ErrorKind::payload_too_large: return 413;
    case ErrorKind::headers_too_large: return 431;
    case ErrorKind::rate_limited: return 429;
    case ErrorKind::upstream_status: return 502;
    case ErrorKind::upstream_connect: return 502;
    case ErrorKind::upstream_timeout: return 504;
    case ErrorKind::unavailable: return 503;
    case ErrorKind::internal: return 500;
  }
  return 500;
}

std::string_view openai_type_of(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::invalid_request:
    case ErrorKind::not_found:
    case ErrorKind::method_not_allowed:
    case ErrorKind::payload_too_large:
    case ErrorKind::headers_too_large: return "invalid_request_error";
    case ErrorKind::authentication: return "authentication_error";
    case ErrorKind::permission: return "permission_error";
    case ErrorKind::rate_limited: return "rate_limit_error";
    case ErrorKind::upstream_status:
    case ErrorKind::upstream_connect:
    case ErrorKind::upstream_timeout: return "upstream_error";
    case ErrorKind::unavailable: return "service_unavailable";
    case ErrorKind::internal: return "server_error";
  }
  return "server_error";
}

std::string_view to_string(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::invalid_request: return "invalid_request";
    case ErrorKind::authentication: return "authentication";
    case ErrorKind::permission: return "permission";
    case ErrorKind::not_found: return "not_found";
    case ErrorKind::method_not_allowed: return "method_not_allowed";
    case ErrorKind::payload_too_large: return "payload_too_large";
    case ErrorKind::headers_too_large: return "headers_too_large";
    case ErrorKind::rate_limited: return "rate_limited";
    case ErrorKind::upstream_status: return "upstream_status";
    case ErrorKind::upstream_connect: return "upstream_connect";
    case ErrorKind::upstream_timeout: return "upstream_timeout";
    case ErrorKind::unavailable: return "unavailable";
    case ErrorKind::internal: return "internal";
  }
  return "internal";
}

bool is_retryable(ErrorKind kind, int status) {
  switch (kind) {
    case ErrorKind::upstream_connect:
    case ErrorKind::upstream_timeout:
    case ErrorKind::rate_limited:
    case ErrorKind::unavailable: return true;
    case ErrorKind::upstream_status: return status == 429 || status >= 500;
    default: return false;
  }
}

void append_json_string(std::string& out, std::string_view text) {
  // Runs of bytes that need no escape are copied whole, found 16 bytes at a time.
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  out.push_back('"');
  std::size_t pos = 0;
  while (pos < n) {
    std::size_t special = bytes::find_string_special(s, pos, n);
    // find_string_special also stops at non-ASCII bytes, which need no escape: copy them too.
    while (special < n && s[special] >= 0x80) special = bytes::find_string_special(s, special + 1, n);
    out.append(text.data() + pos, special - pos);
    if (special >= n) break;
    unsigned char c = s[special];
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default: {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", c);
        out += buf;
      }
    }
    pos = special + 1;
  }
  out.push_back('"');
}

std::string openai_error_body(const ApiError& error) {
  std::string out;
  out.reserve(96 + error.message.size());
  out += R"({"error":{"message":)";
  append_json_string(out, error.message);
  out += R"(,"type":)";
  append_json_string(out, openai_type_of(error.kind));
  out += R"(,"param":)";
  if (error.param.empty()) out += "null"; else append_json_string(out, error.param);
  out += R"(,"code":)";
  if (error.code.empty()) out += "null"; else append_json_string(out, error.code);
  out += "}}";
  return out;
}

}  // namespace switchyard::core
