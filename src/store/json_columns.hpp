#pragma once

#include <boost/json.hpp>

#include <string>
#include <vector>

/// How both stores keep lists in a column: as JSON text.
namespace switchyard::store {

inline std::string json_list(const std::vector<std::string>& v) {
  boost::json::array a;
  for (const auto& s : v) a.emplace_back(s);
  return boost::json::serialize(a);
}

inline std::vector<std::string> parse_list(const std::string& text) {
  std::vector<std::string> out;
  boost::system::error_code ec;
  auto v = boost::json::parse(text, ec);
  if (!ec && v.is_array())
    for (const auto& e : v.as_array())
      if (e.is_string()) out.emplace_back(e.as_string());
  return out;
}

inline std::string json_ints(const std::vector<int>& v) {
  boost::json::array a;
  for (int i : v) a.emplace_back(i);
  return boost::json::serialize(a);
}

inline std::vector<int> parse_ints(const std::string& text) {
  std::vector<int> out;
  boost::system::error_code ec;
  auto v = boost::json::parse(text, ec);
  if (!ec && v.is_array())
    for (const auto& e : v.as_array())
      if (e.is_int64()) out.push_back(static_cast<int>(e.as_int64()));
  return out;
}

}  // namespace switchyard::store
