#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "governance/governor.hpp"

/// The admin API (`/admin/v1/...`, docs/governance.md): teams, keys, budgets, limits, spend
/// reports, the audit log and the ledger, as JSON in and out. Pure over a `Governor`: the
/// server authenticates the admin credential and hands the request here.
///
/// Every error has one shape: `{"error":{"type","code","message","param"}}` with its status.
/// Every change is validated whole before anything is written, and is written with its audit
/// entry in one transaction.
namespace switchyard::governance {

struct AdminRequest {
  std::string_view method;
  std::string_view path;   ///< "/admin/v1/keys/key_0123..."
  std::string_view query;  ///< without '?'
  std::string_view body;
  std::string actor;  ///< the admin credential's name (the audit log's "who")
  std::size_t max_json_depth = 64;
};

struct AdminResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
};

/// What the configuration says that the admin API validates against: routes and deployments
/// that budgets and limits may name, and the static keys (a budget may name one by its name).
struct AdminContext {
  std::vector<std::string> routes;
  std::vector<std::string> deployments;
  std::vector<const config::KeyConfig*> static_keys;
};

AdminResponse handle_admin(Governor& governor, const AdminContext& context, const AdminRequest& request);

/// A unix time in milliseconds as RFC 3339 UTC ("2026-12-07T18:20:00.123Z").
std::string rfc3339(std::int64_t unix_ms);
/// "2026-12-07" (a UTC day) or an RFC 3339 time or unix milliseconds, as unix ms.
std::optional<std::int64_t> parse_time(std::string_view text);

}  // namespace switchyard::governance
