#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/money.hpp"

/// The organisation model that governance enforces: teams, virtual keys, budgets and rate
/// limits, and the audit trail of changes to them. Plain values: the store keeps them, the
/// governor enforces them, the admin API reads and writes them.
namespace switchyard::governance {

/// What a budget or a limit applies to. A request touches one subject of each kind at most:
/// its key, the key's team, the end user it names, the route it asked for (limits also to the
/// deployment that serves it).
enum class Scope : std::uint8_t { key, team, user, route, deployment };
inline constexpr std::size_t kScopes = 5;
std::string_view to_string(Scope s);
std::optional<Scope> parse_scope(std::string_view s);

/// A budget's period; `total` never resets.
enum class Period : std::uint8_t { day, week, month, total };
std::string_view to_string(Period p);
std::optional<Period> parse_period(std::string_view s);

struct Team {
  std::string id;    ///< a slug chosen at creation ([A-Za-z0-9_.-], at most 64); never changes
  std::string name;  ///< for people
  std::string metadata_json = "{}";  ///< free-form tags, a JSON object
  bool disabled = false;             ///< its keys are refused
  std::int64_t created_ms = 0;
};

/// A virtual key made through the admin API (YAML keys are `config::KeyConfig`s; the governor
/// gives both the same shape). The secret is never kept: only its SHA-256.
struct Key {
  std::string id;      ///< "key_" + 16 hex digits; public
  std::string name;
  std::string team;    ///< team id; empty: a standalone key
  std::string sha256;  ///< of the secret, lowercase hex
  std::string prefix;  ///< the secret's first characters, to recognise it ("sk-sy-1a2b…")
  std::vector<std::string> routes{"*"};  ///< routes it may use; "*" = all
  std::vector<std::string> models;       ///< upstream models it may reach; empty = any
  std::string policy;                    ///< default objective when the request names none
  std::uint8_t overrides = 7;            ///< `config::OverrideBits` of the routing overrides it may send
  std::int64_t expires_ms = 0;           ///< unix ms; 0 = never
  bool disabled = false;
  std::string metadata_json = "{}";
  std::int64_t created_ms = 0;
  std::int64_t updated_ms = 0;
};

struct Budget {
  std::string id;  ///< "bud_" + hex
  Scope scope = Scope::key;
  std::string subject;  ///< key id (or YAML key name), team id, user, route name
  Period period = Period::month;
  /// Where the period's boundaries fall: "UTC" or a fixed offset "+05:30" / "-08:00".
  std::string timezone = "UTC";
  std::int32_t utc_offset_minutes = 0;
  core::Money limit;
  /// Soft limits: percentages of `limit` at which an alert is raised (once per period).
  std::vector<int> alert_percents;
  std::string webhook;  ///< where alerts are POSTed (empty: the log only)
  bool hard = true;     ///< false: alerts only, never refuses
  std::int64_t created_ms = 0;
};

struct Limit {
  std::string id;  ///< "lim_" + hex
  Scope scope = Scope::key;
  std::string subject;
  std::int64_t rpm = 0;         ///< requests per minute; 0 = none
  std::int64_t tpm = 0;         ///< tokens (input + output) per minute; 0 = none
  std::int64_t concurrent = 0;  ///< requests in flight; 0 = none
  std::int64_t created_ms = 0;
};

struct AuditEntry {
  std::int64_t id = 0;
  std::int64_t unix_ms = 0;
  std::string actor;   ///< the admin credential's name
  std::string action;  ///< "create", "update", "disable", "enable", "rotate", "delete"
  std::string object_type;  ///< "team", "key", "budget", "limit"
  std::string object_id;
  std::string before_json;  ///< "null" on create
  std::string after_json;   ///< "null" on delete
};

/// The period that contains `now_ms`: [start, end) in unix ms, boundaries at midnight in the
/// budget's offset (weeks start on Monday); `total` is [0, max).
struct PeriodBounds {
  std::int64_t start_ms = 0, end_ms = 0;
};
PeriodBounds period_bounds(Period p, std::int32_t utc_offset_minutes, std::int64_t now_ms);

/// "UTC", "Z", "+05:30", "-08:00", "+0530", "UTC+02:00": minutes east of UTC; nullopt otherwise.
std::optional<std::int32_t> parse_utc_offset(std::string_view tz);

/// A team id or other slug: 1..64 of [A-Za-z0-9_.-].
bool valid_slug(std::string_view s);

/// Time as the ledger and the periods count it (unix ms, UTC).
std::int64_t unix_now_ms();

}  // namespace switchyard::governance
