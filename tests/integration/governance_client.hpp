#pragma once

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"

/// The admin API as the governance tests call it: one admin credential, JSON in and out, the
/// expected status checked; and the figures the tests compare.
namespace harness {

/// A client key's headers.
inline std::map<std::string, std::string> bearer(const std::string& secret) {
  return {{"Authorization", "Bearer " + secret}, {"Content-Type", "application/json"}};
}

class AdminClient {
 public:
  explicit AdminClient(std::string key) : key_(std::move(key)) {}

  /// One call; its JSON (null when the body is empty). A status other than `expect` fails the test.
  boost::json::value operator()(int port, const std::string& method, const std::string& path,
                                const std::string& body = "", int expect = 200) const {
    Response r = http(port, method, path, bearer(key_), body);
    EXPECT_EQ(r.status, expect) << method << " " << path << ": " << r.body;
    return r.body.empty() ? boost::json::value() : boost::json::parse(r.body);
  }

  /// Waits (bounded) until every row the node's ledger took is in its store.
  void wait_ledger_committed(int port) const {
    for (int i = 0; i < 500; ++i) {
      boost::json::value s = (*this)(port, "GET", "/admin/v1/status");
      if (s.at("ledger").at("appended") == s.at("ledger").at("committed")) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "the ledger did not catch up";
  }

  /// The ledger's rows, as the admin API lists them.
  std::vector<boost::json::object> ledger_rows(int port) const {
    std::vector<boost::json::object> rows;
    const boost::json::value page = (*this)(port, "GET", "/admin/v1/ledger?limit=100000");
    for (const auto& r : page.at("data").as_array()) rows.push_back(r.as_object());
    return rows;
  }

 private:
  std::string key_;
};

/// "0.0123" (US dollars as the API writes them) -> nano-dollars, exactly.
inline std::int64_t usd_nanos(const boost::json::value& usd) {
  std::string s(usd.as_string());
  auto dot = s.find('.');
  std::string whole = s.substr(0, dot), frac = dot == std::string::npos ? "" : s.substr(dot + 1);
  frac.resize(9, '0');
  return std::stoll(whole) * 1'000'000'000 + std::stoll(frac);
}

}  // namespace harness
