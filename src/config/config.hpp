#pragma once

#include <cstdint>
#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "catalog/catalog.hpp"
#include "routing/policy.hpp"

/// Switchyard's configuration: YAML → plain structs → strict validation. Every problem is
/// reported with its dotted path, all at once.
namespace switchyard::config {

/// A parsed upstream base URL.
struct Url {
  std::string scheme;  ///< "http" or "https"
  std::string host;
  std::uint16_t port = 0;
  std::string path;    ///< base path without trailing slash, for example "/v1"
  bool tls() const { return scheme == "https"; }
};

/// Parses `http(s)://host[:port][/path]`; returns false with a reason on error.
bool parse_url(const std::string& text, Url& out, std::string& error);

struct ServerConfig {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;
  int threads = 0;  ///< event loops; 0 = one per core
  std::size_t max_connections = 10000;
  std::size_t max_body_bytes = 4 * 1024 * 1024;
  std::size_t max_header_bytes = 16 * 1024;
  std::size_t max_json_depth = 64;
  std::uint32_t header_timeout_ms = 10000;  ///< to receive a whole request head
  std::uint32_t body_timeout_ms = 30000;    ///< to receive a whole request body
  std::uint32_t idle_timeout_ms = 60000;    ///< keep-alive connection without a request
  std::uint32_t write_timeout_ms = 30000;   ///< a client that does not read its response
  std::uint32_t drain_timeout_ms = 10000;   ///< in-flight work allowed after SIGTERM
  std::string access_log = "stdout";        ///< "stdout", "stderr", "off" or a file path
  std::size_t decisions_kept = 10000;       ///< decision records kept in memory
  std::string feedback_log;                 ///< where feedback rows go (JSONL); empty = feedback off
  std::size_t feedback_kept = 10000;        ///< complexity-routed requests awaiting feedback
  /// Request bodies buffered at once by every connection together, MiB; 0 = an eighth of the
  /// machine's memory (at least 64 MiB).
  std::size_t body_memory_mb = 0;
  /// Per client address, until a request of the connection authenticates: connections (0 = no
  /// limit), and refused requests a second (a missing or wrong key, an unknown path; 0 = no limit).
  std::size_t per_address_connections = 256;
  std::uint32_t per_address_rps = 100;
  /// The operators' listener (health, decisions, admin API): when set, those are served there
  /// and the admin API is no longer served on the public listener.
  struct Admin {
    bool enabled = false;
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;
  } admin;
};

struct UpstreamConfig {
  std::uint32_t connect_timeout_ms = 5000;
  std::uint32_t first_byte_timeout_ms = 120000;
  std::uint32_t total_timeout_ms = 600000;
  /// Once content flows (a stream's first content event, a JSON body's first bytes), the longest
  /// wait for the next bytes.
  std::uint32_t idle_timeout_ms = 30000;
  std::size_t max_idle_per_host = 64;          ///< per event loop
  std::size_t max_connections_per_host = 10000; ///< per event loop
  std::uint32_t idle_ttl_ms = 30000;           ///< a pooled connection older than this is closed
  std::uint32_t dns_cache_ttl_ms = 60000;
  std::string ca_file;                         ///< extra trust anchors (PEM); system store otherwise
};

struct ProviderConfig {
  std::string name;
  std::string type = "openai";  ///< a row of dialects::provider_types()
  Url base_url;
  std::string api_key;  ///< resolved secret; never logged
  std::string api_version;  ///< Azure `api-version`; Anthropic `anthropic-version`
  bool drop_unsupported_params = false;  ///< drop (and report) what the provider refuses
  bool optional = false;
  bool enabled = true;  ///< false when optional and its api_key variable is unset
};

struct DeploymentConfig {
  std::string name;
  std::string provider;
  std::string model;  ///< upstream model id (Azure: the deployment name)
  std::int64_t max_tokens = 0;  ///< sent to Anthropic when the client gives none; 0 = built-in
  std::string catalog_model;    ///< the catalogue entry; empty = looked up by `model`
  std::string region;           ///< free-form ("eu", "us-east"); for route constraints
  std::uint32_t weight = 1;     ///< share under the `weighted` strategy
  std::optional<catalog::Pricing> price;  ///< this deployment's prices, when not the catalogue's
  /// The provider's quota for it (requests and tokens per minute; 0 = none known): the router
  /// prefers other deployments once it is used up, before the provider answers 429.
  std::int64_t rpm = 0, tpm = 0;
  bool enabled = true;
};

/// A route: its public name, its candidates and what the router reads of it (routing's types).
struct RouteConfig : routing::RouteRules {
  std::string name;
  std::vector<std::string> candidates;  ///< deployment names
  /// The deployment savings are measured against (what each request would have cost there);
  /// empty: the route's dearest candidate.
  std::string reference;
};

/// The routing overrides a key may send (`x-switchyard-policy`, `-deadline-ms`,
/// `-max-cost-usd`), as bits.
enum OverrideBits : std::uint8_t {
  kOverridePolicy = 1,
  kOverrideDeadline = 2,
  kOverrideMaxCost = 4,
  kAllOverrides = 7,
};
/// "policy", "deadline_ms", "max_cost_usd" → its bit; 0 for anything else.
std::uint8_t override_bit(std::string_view name);

/// A client key: written in the YAML file (static), or made through the admin API (the
/// governance store gives its keys the same shape).
struct KeyConfig {
  std::string name;
  std::string sha256;               ///< lowercase hex of SHA-256(key)
  std::vector<std::string> routes;  ///< allowed routes; "*" = all
  std::uint8_t overrides = kAllOverrides;  ///< `OverrideBits` of the overrides it may send
  bool admin = false;               ///< may read every decision record
  /// What budgets and limits name it by: a store key's id ("key_..."); a YAML key's name.
  std::string id;
  std::string team;    ///< the team it belongs to (budgets and limits of the team apply); empty: none
  std::vector<std::string> models;  ///< upstream models it may reach (deployment or catalogue id); empty = any
  std::string policy;  ///< the objective applied when a request names none; empty: the route's
  std::int64_t expires_ms = 0;  ///< unix ms after which it is refused; 0 = never
  bool disabled = false;
  const std::string& subject() const { return id.empty() ? name : id; }
};

/// An operator's credential for the admin API (`/admin/v1/`): never a client key.
struct AdminKeyConfig {
  std::string name;
  std::string sha256;
};

/// PostgreSQL as governance's store (many nodes share it): definitions, audit log, ledger.
struct PostgresConfig {
  /// A libpq connection string or URI ("postgresql://user:${PGPASSWORD}@db/switchyard?sslmode=
  /// verify-full"); TLS and everything else as libpq reads them.
  std::string url;
  /// Definitions changed by another node arrive by LISTEN/NOTIFY at once; a full re-read every
  /// `refresh_ms` covers a notification lost with a broken connection.
  std::uint32_t refresh_ms = 30000;
};

/// What a shared scope does while Redis cannot be reached.
enum class Unavailable : std::uint8_t { fail_open, fail_closed };

/// Redis: the counters shared by every node (budget reservations, rate limits).
struct RedisConfig {
  bool enabled = false;
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;
  std::string username, password;
  int database = 0;
  bool tls = false;
  std::string key_prefix = "switchyard:";
  /// An admission waits this long for Redis before the scope's failure mode applies.
  std::uint32_t timeout_ms = 250;
  /// A reservation's lease: a node that dies holding it gives it back after this long.
  std::uint32_t lease_ms = 600000;
  /// Per scope (key, team, user, route, deployment): what happens while Redis is unreachable.
  std::array<Unavailable, 5> on_unavailable{Unavailable::fail_open, Unavailable::fail_open, Unavailable::fail_open,
                                            Unavailable::fail_open, Unavailable::fail_open};
};

/// Governance: where keys, budgets, limits and the ledger live, and how durable the ledger is.
/// Absent from the file: governance is off (YAML keys only, no budgets, limits or ledger).
struct GovernanceConfig {
  bool enabled = false;
  std::string store = "sqlite";  ///< "sqlite" (one node) or "postgres" (many)
  std::string sqlite_path = "switchyard.db";  ///< relative to the working directory
  PostgresConfig postgres;
  RedisConfig redis;
  /// The ledger's local spool (one per node, on its own disk); empty: `<sqlite_path>.spool`, or
  /// `switchyard.spool` with PostgreSQL.
  std::string spool_dir;
  /// The spool's size at most (the store unreachable for long); past it billable requests are
  /// refused with 503 `ledger_unavailable` until the store has caught up.
  std::uint32_t spool_max_mb = 1024;
  /// "sync": a response's end is released once its ledger row is committed (survives the
  /// process being killed); "fsync": the same, each commit flushed to disk (survives a power
  /// cut); "async": rows are committed within `async_window_ms`, nobody waits.
  std::string durability = "sync";
  std::uint32_t async_window_ms = 200;
  std::vector<AdminKeyConfig> admin_keys;
};

struct HealthConfig {
  bool circuit_breaking = true;  ///< false: outcomes are only observed, never exclude a deployment
  std::uint32_t window_ms = 30000;
  int min_requests = 10;
  double error_rate = 0.5;
  int consecutive_failures = 3;
  std::uint32_t cooldown_ms = 5000;
  std::uint32_t max_cooldown_ms = 60000;
  std::uint32_t rate_limit_cooldown_ms = 1000;
  /// After a provider refuses a deployment's key, access, model id or base_url (401, 403, 404, a
  /// redirect): out of rotation this long, then one probe.
  std::uint32_t misconfigured_cooldown_ms = 300000;
  /// When another candidate remains, an attempt that has produced no content (JSON: no body;
  /// stream: no event with content) after max(stall_ms, 4 x its deployment's p95 time to first
  /// content) is failed over. 0: only `policy.ttft_ms` and the upstream timeouts bound it.
  std::uint32_t stall_ms = 10000;
  /// A deployment with no latency measurement newer than this is measured again: the next
  /// latency-ranked request it could serve tries it first (when none is in flight on it).
  std::uint32_t stale_after_ms = 60000;
  /// A half-open deployment is tested by a one-token request of the gateway's own while the
  /// request that found it goes on to the next deployment; false (or a deployment that is the
  /// request's last option): that request is the probe.
  bool synthetic_probes = true;
  double exploration = 0;  ///< share of latency-ranked requests that try the runner-up first
  /// Percent (routing::PlanContext::panic_threshold): below this share of healthy candidates, the
  /// ones waiting on health are tried last instead of left out. Routes may set their own.
  int panic_threshold = 50;
};

struct Config {
  ServerConfig server;
  UpstreamConfig upstream;
  std::vector<ProviderConfig> providers;
  std::vector<DeploymentConfig> deployments;
  std::vector<RouteConfig> routes;
  std::vector<KeyConfig> keys;
  GovernanceConfig governance;
  HealthConfig health;
  std::vector<catalog::ModelInfo> models;  ///< catalogue overrides and additions

  const ProviderConfig* find_provider(const std::string& name) const;
  const DeploymentConfig* find_deployment(const std::string& name) const;
};

struct Problem {
  std::string path;
  std::string message;
};

struct LoadResult {
  Config config;
  std::vector<Problem> problems;
  std::vector<Problem> warnings;  ///< worth fixing, but the config works
  bool ok() const { return problems.empty(); }
};

/// Reads, expands `${VAR}` / `${VAR:-default}` references from `env`, and validates.
/// `base_dir`: where relative paths in the config (complexity models) are resolved. Complexity
/// models are not loaded here (see `server/config_load.hpp`).
LoadResult load_config_text(const std::string& yaml_text,
                            const std::map<std::string, std::string>& env,
                            const std::string& base_dir = ".");
LoadResult load_config_file(const std::string& path);

/// The process environment as a map.
std::map<std::string, std::string> process_env();

/// "path: message" lines.
std::string format_problems(const std::vector<Problem>& problems);

}  // namespace switchyard::config
