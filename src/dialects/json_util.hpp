#pragma once

#include <boost/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.hpp"

/// Small helpers shared by the translating dialects (Boost.JSON trees; the fast path never
/// comes here).
namespace switchyard::dialects {

namespace json = boost::json;

/// Parses `text` with a depth limit; nullopt (with `error` set) when it is not valid JSON.
inline std::optional<json::value> parse_json(std::string_view text, std::size_t max_depth,
                                             std::string* error = nullptr) {
  json::parse_options opt;
  opt.max_depth = max_depth;
  boost::system::error_code ec;
  json::value v = json::parse(text, ec, {}, opt);
  if (ec) {
    if (error) *error = ec.message();
    return std::nullopt;
  }
  return v;
}

inline const json::value* member(const json::object& o, std::string_view key) {
  return o.if_contains(key);
}

inline std::string_view str_or(const json::object& o, std::string_view key,
                               std::string_view fallback = {}) {
  const json::value* v = o.if_contains(key);
  if (v && v->is_string()) return v->get_string();
  return fallback;
}

inline std::optional<std::int64_t> int_of(const json::value* v) {
  if (!v) return std::nullopt;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64()) return static_cast<std::int64_t>(v->get_uint64());
  if (v->is_double()) {
    double d = v->get_double();
    // In range before the cast (casting an out-of-range double is undefined).
    if (d >= -9.2e18 && d <= 9.2e18 && d == static_cast<double>(static_cast<std::int64_t>(d)))
      return static_cast<std::int64_t>(d);
  }
  return std::nullopt;
}

inline std::int64_t int_or(const json::object& o, std::string_view key, std::int64_t fallback = 0) {
  return int_of(o.if_contains(key)).value_or(fallback);
}

inline std::optional<double> number_of(const json::value* v) {
  if (!v) return std::nullopt;
  if (v->is_double()) return v->get_double();
  if (v->is_int64()) return static_cast<double>(v->get_int64());
  if (v->is_uint64()) return static_cast<double>(v->get_uint64());
  return std::nullopt;
}

inline const json::object* object_at(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_object() ? &v->get_object() : nullptr;
}

inline const json::array* array_at(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_array() ? &v->get_array() : nullptr;
}

inline core::ApiError bad_request(std::string message, std::string param = {},
                                  std::string code = {}) {
  return core::ApiError::make(core::ErrorKind::invalid_request, std::move(message),
                              std::move(param), std::move(code));
}



}  // namespace switchyard::dialects
