#pragma once

#include <string>
#include <string_view>

namespace switchyard::core {

/// One error vocabulary for the request path. The kind decides the HTTP status a client sees,
/// the OpenAI error `type`, and whether the executor may try another deployment.
enum class ErrorKind {
  invalid_request,       ///< 400: malformed JSON, wrong types, missing fields
  authentication,        ///< 401: missing or unknown key
  permission,            ///< 403: key may not use the route
  not_found,             ///< 404: unknown path or route
  method_not_allowed,    ///< 405
  payload_too_large,     ///< 413
  headers_too_large,     ///< 431
  rate_limited,          ///< 429 (from an upstream)
  upstream_status,       ///< an upstream answered with an HTTP error; status passed on
  upstream_connect,      ///< 502: could not connect / connection reset / bad upstream response
  upstream_timeout,      ///< 504: connect, first-byte or total timeout
  unavailable,           ///< 503: draining, connection cap, no deployment available
  internal,              ///< 500
};

/// An error ready to be shown to a client in OpenAI's shape:
/// `{"error":{"message":..,"type":..,"param":..,"code":..}}`.
struct ApiError {
  ErrorKind kind = ErrorKind::internal;
  int status = 500;
  std::string message;
  std::string param;  ///< empty → JSON null
  std::string code;   ///< empty → JSON null

  /// Cold: a call to it marks the path as the exception, so the compiler lays error paths out
  /// of the way of the request path (fewer instruction-cache lines per request).
  [[gnu::cold]] static ApiError make(ErrorKind kind, std::string message, std::string param = {},
                                     std::string code = {});
};

/// Default HTTP status of an error kind.
int status_of(ErrorKind kind);

/// OpenAI `error.type` string for a kind.
std::string_view openai_type_of(ErrorKind kind);
/// The kind's own name ("upstream_timeout"), for records and logs.
std::string_view to_string(ErrorKind kind);

/// Whether a failure of this kind on one deployment may be retried on the next one.
bool is_retryable(ErrorKind kind, int status);

/// `{"error":{...}}` in OpenAI's shape.
std::string openai_error_body(const ApiError& error);

/// Appends `text` as a JSON string literal (with quotes) to `out`.
void append_json_string(std::string& out, std::string_view text);

}  // namespace switchyard::core
