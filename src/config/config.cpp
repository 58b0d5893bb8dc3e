#include "config/config.hpp"

#include <yaml-cpp/yaml.h>

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cmath>
#include <cstdlib>
#include <charconv>
#include <fstream>
#include <initializer_list>
#include <set>
#include <sstream>

#include "catalog/catalog_yaml.hpp"
#include "catalog/pricing.hpp"
#include "config/env_expand.hpp"
#include "dialects/providers.hpp"

extern char** environ;

namespace switchyard::config {

using routing::Objective;
using routing::Strategy;
using routing::parse_objective;
using routing::parse_strategy;

bool parse_url(const std::string& text, Url& out, std::string& error) {
  std::string rest;
  if (text.rfind("http://", 0) == 0) {
    out.scheme = "http";
    rest = text.substr(7);
  } else if (text.rfind("https://", 0) == 0) {
    out.scheme = "https";
    rest = text.substr(8);
  } else {
    error = "must start with http:// or https://";
    return false;
  }
  std::size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  out.path = slash == std::string::npos ? "" : rest.substr(slash);
  while (!out.path.empty() && out.path.back() == '/') out.path.pop_back();
  if (out.path.find_first_of("?# ") != std::string::npos) {
    error = "must not carry a query, fragment or space";
    return false;
  }
  if (authority.find('@') != std::string::npos) {
    error = "must not embed credentials; use api_key";
    return false;
  }
  std::string host = authority;
  std::string port_text;
  if (!authority.empty() && authority.front() == '[') {  // [v6]:port
    std::size_t close = authority.find(']');
    if (close == std::string::npos) {
      error = "unterminated IPv6 address";
      return false;
    }
    host = authority.substr(1, close - 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') {
        error = "malformed host";
        return false;
      }
      port_text = authority.substr(close + 2);
    }
  } else if (auto colon = authority.rfind(':'); colon != std::string::npos) {
    host = authority.substr(0, colon);
    port_text = authority.substr(colon + 1);
  }
  if (host.empty()) {
    error = "has no host";
    return false;
  }
  out.host = host;
  out.port = out.tls() ? 443 : 80;
  if (!port_text.empty()) {
    unsigned port = 0;
    auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc{} || p != port_text.data() + port_text.size() || port == 0 || port > 65535) {
      error = "has an invalid port \"" + port_text + "\"";
      return false;
    }
    out.port = static_cast<std::uint16_t>(port);
  }
  return true;
}

const ProviderConfig* Config::find_provider(const std::string& name) const {
  for (const auto& p : providers)
    if (p.name == name) return &p;
  return nullptr;
}

const DeploymentConfig* Config::find_deployment(const std::string& name) const {
  for (const auto& d : deployments)
    if (d.name == name) return &d;
  return nullptr;
}

namespace {

class Reader {
 public:
  Reader(const std::map<std::string, std::string>& env, std::vector<Problem>& problems)
      : env_(env), problems_(problems) {}

  void problem(const std::string& path, std::string message) {
    problems_.push_back({path, std::move(message)});
  }

  /// Reports keys of `node` that are not in `allowed`.
  bool check_map(const YAML::Node& node, const std::string& path,
                 std::initializer_list<const char*> allowed) {
    if (!node.IsMap()) {
      problem(path, "must be a mapping");
      return false;
    }
    for (const auto& kv : node) {
      std::string key = kv.first.as<std::string>();
      bool known = std::any_of(allowed.begin(), allowed.end(),
                               [&](const char* a) { return key == a; });
      if (!known) problem(join(path, key), "unknown key");
    }
    return true;
  }

  static std::string join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }

  /// A string scalar with ${VAR} expanded. `unset` collects unset variables instead of reporting
  /// them when non-null.
  bool string(const YAML::Node& node, const std::string& path, std::string& out,
              std::vector<std::string>* unset = nullptr) {
    if (!node) return false;
    if (node.IsNull()) {
      problem(path, "must not be empty");
      return false;
    }
    if (!node.IsScalar()) {
      problem(path, "must be a single value, not a list or mapping");
      return false;
    }
    Expansion e = expand_env(node.Scalar(), env_);
    if (!e.error.empty()) {
      problem(path, e.error);
      return false;
    }
    if (!e.unset.empty()) {
      if (unset) {
        unset->insert(unset->end(), e.unset.begin(), e.unset.end());
      } else {
        for (const auto& v : e.unset) problem(path, "environment variable " + v + " is not set");
      }
      return false;
    }
    out = std::move(e.value);
    return true;
  }

  template <class Int>
  void integer(const YAML::Node& node, const std::string& path, Int& out, long long min,
               long long max) {
    if (!node) return;
    std::string text;
    if (!string(node, path, text)) return;
    long long v = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc{} || p != text.data() + text.size()) {
      problem(path, "must be an integer, got \"" + text + "\"");
      return;
    }
    if (v < min || v > max) {
      problem(path, "must be between " + std::to_string(min) + " and " + std::to_string(max));
      return;
    }
    out = static_cast<Int>(v);
  }

  void number(const YAML::Node& node, const std::string& path, double& out, double min,
              double max) {
    if (!node) return;
    std::string text;
    if (!string(node, path, text)) return;
    char* end = nullptr;
    double v = std::strtod(text.c_str(), &end);
    if (text.empty() || end != text.c_str() + text.size()) {
      problem(path, "must be a number, got \"" + text + "\"");
      return;
    }
    if (v < min || v > max) {
      problem(path, "must be between " + format_number(min) + " and " + format_number(max));
      return;
    }
    out = v;
  }

  static std::string format_number(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
  }

  void warning(const std::string& path, std::string message) {
    if (warnings_) warnings_->push_back({path, std::move(message)});
  }
  void set_warnings(std::vector<Problem>* w) { warnings_ = w; }
  std::vector<Problem>& problems() { return problems_; }

  void boolean(const YAML::Node& node, const std::string& path, bool& out) {
    if (!node) return;
    std::string text;
    if (!string(node, path, text)) return;
    if (text == "true" || text == "True" || text == "TRUE") out = true;
    else if (text == "false" || text == "False" || text == "FALSE") out = false;
    else problem(path, "must be true or false, got \"" + text + "\"");
  }

  void string_list(const YAML::Node& node, const std::string& path, std::vector<std::string>& out) {
    if (!node || node.IsNull()) return;
    if (!node.IsSequence()) {
      problem(path, "must be a list");
      return;
    }
    for (std::size_t i = 0; i < node.size(); ++i) {
      std::string v;
      if (string(node[i], path + "[" + std::to_string(i) + "]", v)) out.push_back(v);
    }
  }

 private:
  const std::map<std::string, std::string>& env_;
  std::vector<Problem>& problems_;
  std::vector<Problem>* warnings_ = nullptr;
};

constexpr long long kMaxMs = 24LL * 3600 * 1000;

bool is_ip_address(const std::string& text) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, text.c_str(), buf) == 1 || inet_pton(AF_INET6, text.c_str(), buf) == 1;
}

void read_server(Reader& r, const YAML::Node& node, ServerConfig& s) {
  if (!node) return;
  if (!r.check_map(node, "server",
                   {"host", "port", "threads", "max_connections", "max_body_bytes",
                    "max_header_bytes", "max_json_depth", "header_timeout_ms", "body_timeout_ms",
                    "idle_timeout_ms", "write_timeout_ms", "drain_timeout_ms", "access_log",
                    "decisions_kept", "feedback_log", "feedback_kept", "body_memory_mb", "per_address",
                    "admin"}))
    return;
  if (r.string(node["host"], "server.host", s.host)) {
    if (s.host == "localhost") s.host = "127.0.0.1";
    if (!is_ip_address(s.host))
      r.problem("server.host", "must be an IP address to listen on (for example 127.0.0.1 or 0.0.0.0)");
  }
  r.integer(node["port"], "server.port", s.port, 0, 65535);
  r.integer(node["threads"], "server.threads", s.threads, 0, 256);
  r.integer(node["max_connections"], "server.max_connections", s.max_connections, 1, 10'000'000);
  r.integer(node["max_body_bytes"], "server.max_body_bytes", s.max_body_bytes, 1024,
            1LL << 30);
  r.integer(node["max_header_bytes"], "server.max_header_bytes", s.max_header_bytes, 1024,
            1 << 20);
  r.integer(node["max_json_depth"], "server.max_json_depth", s.max_json_depth, 2, 1024);
  r.integer(node["header_timeout_ms"], "server.header_timeout_ms", s.header_timeout_ms, 1, kMaxMs);
  r.integer(node["body_timeout_ms"], "server.body_timeout_ms", s.body_timeout_ms, 1, kMaxMs);
  r.integer(node["idle_timeout_ms"], "server.idle_timeout_ms", s.idle_timeout_ms, 1, kMaxMs);
  r.integer(node["write_timeout_ms"], "server.write_timeout_ms", s.write_timeout_ms, 1, kMaxMs);
  r.integer(node["drain_timeout_ms"], "server.drain_timeout_ms", s.drain_timeout_ms, 0, kMaxMs);
  r.string(node["access_log"], "server.access_log", s.access_log);
  r.integer(node["decisions_kept"], "server.decisions_kept", s.decisions_kept, 0, 10'000'000);
  r.string(node["feedback_log"], "server.feedback_log", s.feedback_log);
  r.integer(node["feedback_kept"], "server.feedback_kept", s.feedback_kept, 0, 10'000'000);
  r.integer(node["body_memory_mb"], "server.body_memory_mb", s.body_memory_mb, 0, 1 << 20);
  if (const YAML::Node pa = node["per_address"]; pa &&
      r.check_map(pa, "server.per_address", {"unauthenticated_connections", "unauthenticated_rps"})) {
    r.integer(pa["unauthenticated_connections"], "server.per_address.unauthenticated_connections",
              s.per_address_connections, 0, 10'000'000);
    r.integer(pa["unauthenticated_rps"], "server.per_address.unauthenticated_rps", s.per_address_rps, 0,
              10'000'000);
  }
  if (const YAML::Node a = node["admin"]; a && r.check_map(a, "server.admin", {"host", "port"})) {
    s.admin.enabled = true;
    if (r.string(a["host"], "server.admin.host", s.admin.host)) {
      if (s.admin.host == "localhost") s.admin.host = "127.0.0.1";
      if (!is_ip_address(s.admin.host))
        r.problem("server.admin.host", "must be an IP address to listen on (for example 127.0.0.1)");
    }
    if (!a["port"]) r.problem("server.admin.port", "is required (0 = any free port)");
    r.integer(a["port"], "server.admin.port", s.admin.port, 0, 65535);
    if (s.admin.port != 0 && s.admin.port == s.port && s.admin.host == s.host)
      r.problem("server.admin.port", "must differ from server.port");
  }
}

void read_health(Reader& r, const YAML::Node& node, HealthConfig& h) {
  if (!node) return;
  if (!r.check_map(node, "health",
                   {"circuit_breaking", "window_ms", "min_requests", "error_rate", "consecutive_failures",
                    "cooldown_ms", "max_cooldown_ms", "rate_limit_cooldown_ms", "exploration",
                    "panic_threshold", "misconfigured_cooldown_ms", "stall_ms", "stale_after_ms",
                    "synthetic_probes"}))
    return;
  r.boolean(node["circuit_breaking"], "health.circuit_breaking", h.circuit_breaking);
  r.integer(node["window_ms"], "health.window_ms", h.window_ms, 100, kMaxMs);
  r.integer(node["min_requests"], "health.min_requests", h.min_requests, 1, 1'000'000);
  r.number(node["error_rate"], "health.error_rate", h.error_rate, 0.01, 1);
  r.integer(node["consecutive_failures"], "health.consecutive_failures", h.consecutive_failures, 1, 1000);
  r.integer(node["cooldown_ms"], "health.cooldown_ms", h.cooldown_ms, 1, kMaxMs);
  r.integer(node["max_cooldown_ms"], "health.max_cooldown_ms", h.max_cooldown_ms, 1, kMaxMs);
  r.integer(node["rate_limit_cooldown_ms"], "health.rate_limit_cooldown_ms", h.rate_limit_cooldown_ms, 1, kMaxMs);
  r.number(node["exploration"], "health.exploration", h.exploration, 0, 0.5);
  r.integer(node["panic_threshold"], "health.panic_threshold", h.panic_threshold, 0, 100);
  r.integer(node["misconfigured_cooldown_ms"], "health.misconfigured_cooldown_ms", h.misconfigured_cooldown_ms, 1,
            kMaxMs);
  r.integer(node["stall_ms"], "health.stall_ms", h.stall_ms, 0, kMaxMs);
  r.integer(node["stale_after_ms"], "health.stale_after_ms", h.stale_after_ms, 1, kMaxMs);
  r.boolean(node["synthetic_probes"], "health.synthetic_probes", h.synthetic_probes);
  if (h.max_cooldown_ms < h.cooldown_ms)
    r.problem("health.max_cooldown_ms", "must not be below health.cooldown_ms");
}

void read_models(Reader& r, const YAML::Node& node, Config& c) {
  if (!node) return;
  if (!node.IsSequence()) {
    r.problem("models", "must be a list of catalogue entries");
    return;
  }
  for (std::size_t i = 0; i < node.size(); ++i) {
    std::string path = "models[" + std::to_string(i) + "]";
    const YAML::Node& v = node[i];
    if (!v.IsMap() || !v["id"] || !v["id"].IsScalar()) {
      r.problem(path + ".id", "is required");
      continue;
    }
    std::string id = v["id"].Scalar();
    // An entry of the built-in catalogue is overridden field by field; a new one starts empty.
    catalog::ModelInfo m;
    if (const auto* known = catalog::builtin().find(id); known && known->id == id) m = *known;
    catalog::Problems problems;
    catalog::read_model(v, path, m, problems);
    for (auto& [p, message] : problems) r.problem(p, std::move(message));
    bool duplicate = std::any_of(c.models.begin(), c.models.end(),
                                 [&](const catalog::ModelInfo& o) { return o.id == id; });
    if (duplicate) r.problem(path + ".id", "duplicate model \"" + id + "\"");
    c.models.push_back(std::move(m));
  }
}

const catalog::ModelInfo* find_model(const Config& c, const std::string& id) {
  for (const auto& m : c.models)
    if (m.id == id) return &m;
  for (const auto& m : c.models)
    for (const auto& a : m.aliases)
      if (a == id) return &m;
  return catalog::builtin().find(id);
}

void read_upstream(Reader& r, const YAML::Node& node, UpstreamConfig& u) {
  if (!node) return;
  if (!r.check_map(node, "upstream",
                   {"connect_timeout_ms", "first_byte_timeout_ms", "total_timeout_ms",
                    "max_idle_per_host", "max_connections_per_host", "idle_ttl_ms",
                    "dns_cache_ttl_ms", "ca_file", "idle_timeout_ms"}))
    return;
  r.integer(node["connect_timeout_ms"], "upstream.connect_timeout_ms", u.connect_timeout_ms, 1, kMaxMs);
  r.integer(node["first_byte_timeout_ms"], "upstream.first_byte_timeout_ms", u.first_byte_timeout_ms, 1, kMaxMs);
  r.integer(node["total_timeout_ms"], "upstream.total_timeout_ms", u.total_timeout_ms, 1, kMaxMs);
  r.integer(node["idle_timeout_ms"], "upstream.idle_timeout_ms", u.idle_timeout_ms, 1, kMaxMs);
  r.integer(node["max_idle_per_host"], "upstream.max_idle_per_host", u.max_idle_per_host, 0, 100000);
  r.integer(node["max_connections_per_host"], "upstream.max_connections_per_host", u.max_connections_per_host, 1, 1000000);
  r.integer(node["idle_ttl_ms"], "upstream.idle_ttl_ms", u.idle_ttl_ms, 1, kMaxMs);
  r.integer(node["dns_cache_ttl_ms"], "upstream.dns_cache_ttl_ms", u.dns_cache_ttl_ms, 0, kMaxMs);
  if (r.string(node["ca_file"], "upstream.ca_file", u.ca_file) && !u.ca_file.empty()) {
    std::ifstream probe(u.ca_file);
    if (!probe) r.problem("upstream.ca_file", "cannot read \"" + u.ca_file + "\"");
  }
}

bool valid_name(const std::string& name) {
  if (name.empty() || name.size() > 128) return false;
  return std::all_of(name.begin(), name.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '@' || c == ':' || c == '/';
  });
}

/// A key copied from an example rather than a provider's console: "YOUR_API_KEY", "sk-...",
/// "<key>", "changeme", "xxxx".
bool looks_like_placeholder(std::string_view key) {
  std::string lower(key);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (std::string_view marker : {"your", "xxxx", "changeme", "placeholder", "replace", "...", "<", ">", "todo"})
    if (lower.find(marker) != std::string::npos) return true;
  return false;
}

void read_providers(Reader& r, const YAML::Node& node, Config& c) {
  if (!node) return;
  if (!node.IsMap()) {
    r.problem("providers", "must be a mapping of provider names");
    return;
  }
  for (const auto& kv : node) {
    ProviderConfig p;
    p.name = kv.first.as<std::string>();
    std::string path = "providers." + p.name;
    if (!valid_name(p.name)) r.problem(path, "invalid name (letters, digits, - _ . @ : / only)");
    const YAML::Node& v = kv.second;
    if (!r.check_map(v, path, {"type", "base_url", "api_key", "api_version", "optional",
                               "drop_unsupported_params"}))
      continue;
    r.boolean(v["optional"], path + ".optional", p.optional);
    r.boolean(v["drop_unsupported_params"], path + ".drop_unsupported_params",
              p.drop_unsupported_params);
    r.string(v["type"], path + ".type", p.type);
    const dialects::ProviderType* type = dialects::find_provider_type(p.type);
    if (!type) {
      std::string known;
      for (const auto& t : dialects::provider_types()) known += (known.empty() ? "" : ", ") + std::string(t.name);
      r.problem(path + ".type", "unknown provider type \"" + p.type + "\" (supported: " + known + ")");
    }
    std::string url;
    if (!v["base_url"] && type && !type->default_base_url.empty()) url = type->default_base_url;
    if (!v["base_url"] && url.empty()) r.problem(path + ".base_url", "is required");
    else if (!v["base_url"] || r.string(v["base_url"], path + ".base_url", url)) {
      std::string why;
      if (!parse_url(url, p.base_url, why)) r.problem(path + ".base_url", why);
    }
    r.string(v["api_version"], path + ".api_version", p.api_version);
    if (type && type->azure_paths && p.api_version.empty())
      r.problem(path + ".api_version", "is required for Azure OpenAI (for example 2024-10-21)");
    if (type && type->dialect == dialects::Dialect::anthropic && p.api_version.empty())
      p.api_version = "2023-06-01";
    if (v["api_key"]) {
      std::vector<std::string> unset;
      if (!r.string(v["api_key"], path + ".api_key", p.api_key, &unset) && !unset.empty()) {
        if (p.optional) p.enabled = false;
        else
          for (const auto& name : unset)
            r.problem(path + ".api_key", "environment variable " + name +
                                             " is not set (mark the provider optional: true to "
                                             "skip it when unset)");
      } else if (looks_like_placeholder(p.api_key)) {
        // Never echoed: what it looks like is said, not what it is.
        r.warning(path + ".api_key", "looks like a placeholder, not a real key (the provider will refuse it)");
      }
    }
    if (c.find_provider(p.name)) r.problem(path, "duplicate provider");
    c.providers.push_back(std::move(p));
  }
}

/// Whether a deployment entry's provider speaks Anthropic's API (its cache writes bill at 1.25x
/// and 2x the input price).
bool price_provider_is_anthropic(const Config& c, const YAML::Node& deployment) {
  const YAML::Node& name = deployment["provider"];
  const ProviderConfig* p = name && name.IsScalar() ? c.find_provider(name.Scalar()) : nullptr;
  return p && p->type == "anthropic";
}

void read_deployments(Reader& r, const YAML::Node& node, Config& c) {
  if (!node || (node.IsMap() && node.size() == 0)) {
    r.problem("deployments", "at least one deployment is required");
    return;
  }
  if (!node.IsMap()) {
    r.problem("deployments", "must be a mapping of deployment names");
    return;
  }
  for (const auto& kv : node) {
    DeploymentConfig d;
    d.name = kv.first.as<std::string>();
    std::string path = "deployments." + d.name;
    if (!valid_name(d.name)) r.problem(path, "invalid name (letters, digits, - _ . @ : / only)");
    const YAML::Node& v = kv.second;
    if (c.find_deployment(d.name)) r.problem(path, "duplicate deployment");
    if (!r.check_map(v, path, {"provider", "model", "max_tokens", "catalog_model", "region",
                               "weight", "price", "rpm", "tpm"}))
      continue;
    r.integer(v["rpm"], path + ".rpm", d.rpm, 0, 1'000'000'000);
    r.integer(v["tpm"], path + ".tpm", d.tpm, 0, 1'000'000'000'000);
    r.integer(v["max_tokens"], path + ".max_tokens", d.max_tokens, 1, 10'000'000);
    r.string(v["region"], path + ".region", d.region);
    r.integer(v["weight"], path + ".weight", d.weight, 0, 1'000'000);
    if (const YAML::Node& price = v["price"]) {
      // The deployment's own prices (a negotiated rate, a self-hosted model); the provider's type
      // decides whether cache writes bill at Anthropic's multiples.
      catalog::Problems problems;
      catalog::PriceVersion version;
      const bool anthropic = price_provider_is_anthropic(c, v);
      if (catalog::read_price_version(price, path + ".price", version, anthropic, problems)) {
        d.price.emplace();
        d.price->versions.push_back(std::move(version));
      }
      for (auto& [where, message] : problems) r.problem(where, message);
    }
    if (!v["provider"]) r.problem(path + ".provider", "is required");
    else if (r.string(v["provider"], path + ".provider", d.provider)) {
      const ProviderConfig* p = c.find_provider(d.provider);
      if (!p) r.problem(path + ".provider", "unknown provider \"" + d.provider + "\"");
      else d.enabled = p->enabled;
    }
    if (!v["model"]) r.problem(path + ".model", "is required");
    else r.string(v["model"], path + ".model", d.model);
    if (v["catalog_model"]) {
      if (r.string(v["catalog_model"], path + ".catalog_model", d.catalog_model) &&
          !find_model(c, d.catalog_model))
        r.problem(path + ".catalog_model",
                  "unknown model \"" + d.catalog_model + "\" (not in the catalogue nor under models)");
    } else if (!d.model.empty() && !find_model(c, d.model)) {
      r.warning(path + ".model",
                "\"" + d.model + "\" is not in the model catalogue: " +
                    std::string(d.price ? "its context window and capabilities are unknown"
                                        : "no price, context window or capabilities are known for it") +
                    " (set catalog_model, or add it under models)");
    }
    c.deployments.push_back(std::move(d));
  }
}

void read_complexity(Reader& r, const YAML::Node& node, const std::string& path, const std::string& base_dir,
                     RouteConfig& route) {
  if (!r.check_map(node, path, {"model", "tiers", "strong_share", "shares", "quality_floor", "heads"})) return;
  routing::TierPolicy cc;
  if (!node["model"]) r.problem(path + ".model", "is required (a file from `switchyard router train`)");
  else if (r.string(node["model"], path + ".model", cc.model_path))
    cc.model_file = !cc.model_path.empty() && cc.model_path[0] != '/' ? base_dir + "/" + cc.model_path
                                                                       : cc.model_path;
  const YAML::Node& tiers = node["tiers"];
  if (!tiers || !tiers.IsSequence() || tiers.size() < 2) {
    r.problem(path + ".tiers", "needs two or more tiers (lists of candidates), weakest first");
  } else {
    for (std::size_t i = 0; i < tiers.size(); ++i) {
      std::string tp = path + ".tiers[" + std::to_string(i) + "]";
      std::vector<std::string> names;
      r.string_list(tiers[i], tp, names);
      if (names.empty()) r.problem(tp, "must list at least one candidate");
      for (std::size_t j = 0; j < names.size(); ++j)
        if (std::find(route.candidates.begin(), route.candidates.end(), names[j]) == route.candidates.end())
          r.problem(tp + "[" + std::to_string(j) + "]", "\"" + names[j] + "\" is not among the route's candidates");
      cc.tiers.push_back(std::move(names));
    }
  }
  const std::size_t n = cc.tiers.size();
  if (node["quality_floor"]) {
    double floor = -1;
    r.number(node["quality_floor"], path + ".quality_floor", floor, 0, 1);
    cc.quality_floor = floor;
    if (node["shares"] || node["strong_share"])
      r.problem(path + ".quality_floor", "use either quality_floor or shares/strong_share, not both");
    if (n > 8) r.problem(path + ".tiers", "at most 8 tiers with quality_floor");
    // With two tiers and no heads the model's own weak and strong heads are used; they and
    // the heads named here are checked against the model when it is loaded.
    if (node["heads"]) {
      r.string_list(node["heads"], path + ".heads", cc.heads);
      if (cc.heads.size() != n) r.problem(path + ".heads", "needs one model head per tier");
    } else if (n != 2) {
      r.problem(path + ".heads", "is required with quality_floor and more than two tiers (one model head per tier)");
    }
    route.complexity = std::move(cc);
    return;
  }
  if (node["heads"]) r.problem(path + ".heads", "is used with quality_floor only");
  if (node["shares"]) {
    if (!node["shares"].IsSequence() || node["shares"].size() != n) {
      r.problem(path + ".shares", "needs one share per tier");
    } else {
      double sum = 0;
      for (std::size_t i = 0; i < n; ++i) {
        double x = -1;
        r.number(node["shares"][i], path + ".shares[" + std::to_string(i) + "]", x, 0, 1);
        cc.shares.push_back(x);
        sum += x;
      }
      if (std::abs(sum - 1) > 1e-6) r.problem(path + ".shares", "must add up to 1");
    }
  } else if (n >= 2) {
    double strong = n == 2 ? 0.3 : 1.0 / static_cast<double>(n);
    if (node["strong_share"]) r.number(node["strong_share"], path + ".strong_share", strong, 0, 1);
    // The strongest tier gets `strong_share`; the others split the rest evenly.
    for (std::size_t i = 0; i + 1 < n; ++i) cc.shares.push_back((1 - strong) / static_cast<double>(n - 1));
    cc.shares.push_back(strong);
  }
  route.complexity = std::move(cc);
}

void read_route_policy(Reader& r, const YAML::Node& v, const std::string& path, const Config& c,
                       RouteConfig& route) {
  r.integer(v["max_attempts"], path + ".max_attempts", route.max_attempts, 0, 1000);
  r.integer(v["panic_threshold"], path + ".panic_threshold", route.panic_threshold, 0, 100);
  if (v["clamp_max_tokens"]) {
    bool clamp = false;
    r.boolean(v["clamp_max_tokens"], path + ".clamp_max_tokens", clamp);
    route.clamp_max_tokens = clamp;
  }
  std::string text;
  if (r.string(v["strategy"], path + ".strategy", text)) {
    if (auto s = parse_strategy(text)) route.strategy = *s;
    else
      r.problem(path + ".strategy", "unknown strategy \"" + text +
                                        "\" (priority, weighted, least-latency, least-busy, "
                                        "lowest-cost, rate-limit-aware)");
  }
  if (const YAML::Node& p = v["policy"]) {
    std::string pp = path + ".policy";
    routing::Policy& pc = route.policy;
    if (r.check_map(p, pp, {"objective", "weights", "category", "max_input_price", "max_output_price",
                            "max_cost_usd", "providers", "regions", "deadline_ms", "ttft_ms"})) {
      if (r.string(p["objective"], pp + ".objective", text)) {
        if (auto o = parse_objective(text)) pc.objective = *o;
        else
          r.problem(pp + ".objective", "unknown objective \"" + text +
                                           "\" (ordered, cost, latency, quality, balanced)");
      }
      if (const YAML::Node& w = p["weights"]) {
        if (r.check_map(w, pp + ".weights", {"quality", "cost", "latency"})) {
          r.number(w["quality"], pp + ".weights.quality", pc.weight_quality, 0, 1000);
          r.number(w["cost"], pp + ".weights.cost", pc.weight_cost, 0, 1000);
          r.number(w["latency"], pp + ".weights.latency", pc.weight_latency, 0, 1000);
          if (pc.weight_quality + pc.weight_cost + pc.weight_latency <= 0)
            r.problem(pp + ".weights", "at least one weight must be positive");
        }
      }
      if (r.string(p["category"], pp + ".category", text)) {
        if (text == "auto") pc.category_auto = true;
        else if (auto cat = catalog::parse_category(text)) pc.category = *cat;
        else
          r.problem(pp + ".category", "unknown category \"" + text +
                                          "\" (auto, code, math, reasoning, knowledge, "
                                          "writing, extraction, chat)");
      }
      r.number(p["max_input_price"], pp + ".max_input_price", pc.max_input_price, 0, 1e4);
      r.number(p["max_output_price"], pp + ".max_output_price", pc.max_output_price, 0, 1e4);
      r.number(p["max_cost_usd"], pp + ".max_cost_usd", pc.max_cost_usd, 0, 1e6);
      r.string_list(p["providers"], pp + ".providers", pc.providers);
      for (std::size_t i = 0; i < pc.providers.size(); ++i) {
        const std::string& name = pc.providers[i];
        if (!c.find_provider(name) && !dialects::find_provider_type(name))
          r.problem(pp + ".providers[" + std::to_string(i) + "]",
                    "unknown provider or provider type \"" + name + "\"");
      }
      r.string_list(p["regions"], pp + ".regions", pc.regions);
      r.integer(p["deadline_ms"], pp + ".deadline_ms", pc.deadline_ms, 1, kMaxMs);
      r.integer(p["ttft_ms"], pp + ".ttft_ms", pc.ttft_ms, 1, kMaxMs);
    }
  }
  if (const YAML::Node& rt = v["retry"]) {
    if (r.check_map(rt, path + ".retry", {"attempts", "base_ms", "max_ms"})) {
      r.integer(rt["attempts"], path + ".retry.attempts", route.retry.attempts, 0, 10);
      r.integer(rt["base_ms"], path + ".retry.base_ms", route.retry.base_ms, 1, kMaxMs);
      r.integer(rt["max_ms"], path + ".retry.max_ms", route.retry.max_ms, 1, kMaxMs);
    }
  }
  if (const YAML::Node& h = v["hedge"]) {
    if (r.check_map(h, path + ".hedge", {"enabled", "delay_ms", "min_delay_ms", "max_share"})) {
      route.hedge.enabled = true;
      r.boolean(h["enabled"], path + ".hedge.enabled", route.hedge.enabled);
      r.integer(h["delay_ms"], path + ".hedge.delay_ms", route.hedge.delay_ms, 0, kMaxMs);
      r.integer(h["min_delay_ms"], path + ".hedge.min_delay_ms", route.hedge.min_delay_ms, 0, kMaxMs);
      r.number(h["max_share"], path + ".hedge.max_share", route.hedge.max_share, 0, 1);
    }
  }
  if (route.policy.objective != Objective::ordered) {
    for (std::size_t i = 0; i < route.candidates.size(); ++i) {
      const DeploymentConfig* d = c.find_deployment(route.candidates[i]);
      if (!d) continue;
      const std::string& id = d->catalog_model.empty() ? d->model : d->catalog_model;
      if (!find_model(c, id) && !d->price)
        r.warning(path + ".candidates[" + std::to_string(i) + "]",
                  "\"" + d->name + "\" has no catalogue entry: the " +
                      std::string(to_string(route.policy.objective)) +
                      " objective scores it with neutral defaults");
    }
  }
}

void read_routes(Reader& r, const YAML::Node& node, Config& c, const std::string& base_dir) {
  if (!node || (node.IsMap() && node.size() == 0)) {
    r.problem("routes", "at least one route is required");
    return;
  }
  if (!node.IsMap()) {
    r.problem("routes", "must be a mapping of route names");
    return;
  }
  for (const auto& kv : node) {
    RouteConfig route;
    route.name = kv.first.as<std::string>();
    std::string path = "routes." + route.name;
    if (!valid_name(route.name)) r.problem(path, "invalid name (letters, digits, - _ . @ : / only)");
    const YAML::Node& v = kv.second;
    bool duplicate = std::any_of(c.routes.begin(), c.routes.end(),
                                 [&](const RouteConfig& rc) { return rc.name == route.name; });
    if (duplicate) r.problem(path, "duplicate route");
    if (!r.check_map(v, path, {"candidates", "policy", "strategy", "retry", "hedge", "max_attempts",
                               "panic_threshold", "complexity", "categories", "reference", "clamp_max_tokens"}))
      continue;
    if (r.string(v["reference"], path + ".reference", route.reference) && !c.find_deployment(route.reference))
      r.problem(path + ".reference", "unknown deployment \"" + route.reference + "\"");
    if (!v["candidates"]) {
      r.problem(path + ".candidates", "is required");
      continue;
    }
    r.string_list(v["candidates"], path + ".candidates", route.candidates);
    if (route.candidates.empty()) r.problem(path + ".candidates", "must not be empty");
    for (std::size_t i = 0; i < route.candidates.size(); ++i) {
      if (!c.find_deployment(route.candidates[i]))
        r.problem(path + ".candidates[" + std::to_string(i) + "]",
                  "unknown deployment \"" + route.candidates[i] + "\"");
    }
    read_route_policy(r, v, path, c, route);
    if (v["complexity"]) read_complexity(r, v["complexity"], path + ".complexity", base_dir, route);
    if (const YAML::Node& cats = v["categories"]) {
      if (r.check_map(cats, path + ".categories",
                      {"code", "math", "reasoning", "knowledge", "writing", "extraction", "chat"})) {
        for (const auto& kv : cats) {
          std::string name = kv.first.as<std::string>();
          auto category = catalog::parse_category(name);
          if (!category) continue;  // reported by check_map
          std::string cp = path + ".categories." + name;
          auto& list = route.category_rules[static_cast<int>(*category)];
          r.string_list(kv.second, cp, list);
          if (list.empty()) r.problem(cp, "must list at least one candidate");
          for (std::size_t j = 0; j < list.size(); ++j)
            if (std::find(route.candidates.begin(), route.candidates.end(), list[j]) == route.candidates.end())
              r.problem(cp + "[" + std::to_string(j) + "]", "\"" + list[j] + "\" is not among the route's candidates");
        }
      }
    }
    c.routes.push_back(std::move(route));
  }
}

/// A SHA-256 as 64 hex digits, lowercased in place; false (with the problem reported) otherwise.
bool read_sha256(Reader& r, const YAML::Node& node, const std::string& path, std::string& out) {
  if (!node) {
    r.problem(path, "is required (the SHA-256 of the key, from `switchyard hash-key`)");
    return false;
  }
  if (!r.string(node, path, out)) return false;
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  bool hex = out.size() == 64 && std::all_of(out.begin(), out.end(), [](unsigned char ch) { return std::isxdigit(ch); });
  if (!hex) r.problem(path, "must be 64 hexadecimal digits");
  return hex;
}

/// `redis:` — a URL (redis://[user:password@]host[:port][/db], rediss:// for TLS) or the
/// parts, which override what the URL says.
void read_redis(Reader& r, const YAML::Node& node, RedisConfig& c) {
  if (!r.check_map(node, "governance.redis",
                   {"url", "host", "port", "username", "password", "database", "tls", "key_prefix", "timeout_ms",
                    "lease_ms", "on_unavailable"}))
    return;
  c.enabled = true;
  std::string url;
  if (r.string(node["url"], "governance.redis.url", url)) {
    std::string_view u = url;
    if (u.rfind("rediss://", 0) == 0) {
      c.tls = true;
      u.remove_prefix(9);
    } else if (u.rfind("redis://", 0) == 0) {
      u.remove_prefix(8);
    } else {
      r.problem("governance.redis.url", "must start with redis:// or rediss://");
      u = {};
    }
    if (auto at = u.rfind('@'); at != std::string_view::npos) {
      std::string_view cred = u.substr(0, at);
      u.remove_prefix(at + 1);
      if (auto colon = cred.find(':'); colon != std::string_view::npos) {
        c.username = std::string(cred.substr(0, colon));
        c.password = std::string(cred.substr(colon + 1));
      } else {
        c.password = std::string(cred);
      }
    }
    if (auto slash = u.find('/'); slash != std::string_view::npos) {
      std::string_view db = u.substr(slash + 1);
      u = u.substr(0, slash);
      if (!db.empty()) {
        auto [p, ec] = std::from_chars(db.data(), db.data() + db.size(), c.database);
        if (ec != std::errc{} || p != db.data() + db.size() || c.database < 0)
          r.problem("governance.redis.url", "the database number after / must be an integer");
      }
    }
    if (auto colon = u.rfind(':'); colon != std::string_view::npos && u.find(']') == std::string_view::npos) {
      std::string_view port = u.substr(colon + 1);
      unsigned v = 0;
      auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
      if (ec != std::errc{} || p != port.data() + port.size() || v == 0 || v > 65535)
        r.problem("governance.redis.url", "the port must be 1..65535");
      c.port = static_cast<std::uint16_t>(v);
      u = u.substr(0, colon);
    }
    if (!u.empty()) c.host = std::string(u);
  }
  r.string(node["host"], "governance.redis.host", c.host);
  r.integer(node["port"], "governance.redis.port", c.port, 1, 65535);
  r.string(node["username"], "governance.redis.username", c.username);
  r.string(node["password"], "governance.redis.password", c.password);
  r.integer(node["database"], "governance.redis.database", c.database, 0, 1'000'000);
  r.boolean(node["tls"], "governance.redis.tls", c.tls);
  r.string(node["key_prefix"], "governance.redis.key_prefix", c.key_prefix);
  r.integer(node["timeout_ms"], "governance.redis.timeout_ms", c.timeout_ms, 1, 60'000);
  r.integer(node["lease_ms"], "governance.redis.lease_ms", c.lease_ms, 1'000, 86'400'000);
  const YAML::Node& modes = node["on_unavailable"];
  auto mode_of = [&](const YAML::Node& n, const std::string& path, Unavailable& out) {
    std::string text;
    if (!r.string(n, path, text)) return;
    if (text == "fail_open") out = Unavailable::fail_open;
    else if (text == "fail_closed") out = Unavailable::fail_closed;
    else r.problem(path, "must be fail_open or fail_closed");
  };
  if (modes && modes.IsMap()) {
    // Per scope: {key: fail_open, team: fail_closed, ...}
    for (const auto& kv : modes) {
      const std::string scope = kv.first.as<std::string>();
      const std::string path = "governance.redis.on_unavailable." + scope;
      static constexpr const char* kScopeNames[] = {"key", "team", "user", "route", "deployment"};
      auto it = std::find(std::begin(kScopeNames), std::end(kScopeNames), scope);
      if (it == std::end(kScopeNames)) {
        r.problem(path, "unknown scope (key, team, user, route or deployment)");
        continue;
      }
      mode_of(kv.second, path, c.on_unavailable[static_cast<std::size_t>(it - std::begin(kScopeNames))]);
    }
  } else if (modes) {
    Unavailable all = Unavailable::fail_open;
    mode_of(modes, "governance.redis.on_unavailable", all);
    c.on_unavailable.fill(all);
  }
}

void read_governance(Reader& r, const YAML::Node& node, GovernanceConfig& g) {
  if (!node) return;
  if (!r.check_map(node, "governance",
                   {"store", "sqlite_path", "postgres", "redis", "spool_dir", "spool_max_mb", "durability",
                    "async_window_ms", "admin_keys"}))
    return;
  g.enabled = true;
  if (r.string(node["store"], "governance.store", g.store) && g.store != "sqlite" && g.store != "postgres")
    r.problem("governance.store", "must be sqlite (embedded, one node) or postgres (shared by many nodes)");
  r.string(node["sqlite_path"], "governance.sqlite_path", g.sqlite_path);
  if (g.sqlite_path.empty()) r.problem("governance.sqlite_path", "must not be empty");
  if (const YAML::Node& pg = node["postgres"]; pg && r.check_map(pg, "governance.postgres", {"url", "refresh_ms"})) {
    r.string(pg["url"], "governance.postgres.url", g.postgres.url);
    r.integer(pg["refresh_ms"], "governance.postgres.refresh_ms", g.postgres.refresh_ms, 100, 3'600'000);
  }
  if (g.store == "postgres" && g.postgres.url.empty())
    r.problem("governance.postgres.url", "is required with store: postgres (a libpq connection string or URI)");
  if (const YAML::Node& rd = node["redis"]) read_redis(r, rd, g.redis);
  if (g.redis.enabled && g.store != "postgres")
    r.problem("governance.redis",
              "needs store: postgres (counters shared by many nodes are reconciled from a shared ledger)");
  r.string(node["spool_dir"], "governance.spool_dir", g.spool_dir);
  r.integer(node["spool_max_mb"], "governance.spool_max_mb", g.spool_max_mb, 1, 1'000'000);
  if (g.spool_dir.empty()) g.spool_dir = g.store == "postgres" ? "switchyard.spool" : g.sqlite_path + ".spool";
  if (r.string(node["durability"], "governance.durability", g.durability) && g.durability != "sync" &&
      g.durability != "fsync" && g.durability != "async")
    r.problem("governance.durability", "must be sync, fsync or async");
  r.integer(node["async_window_ms"], "governance.async_window_ms", g.async_window_ms, 1, 60'000);
  const YAML::Node& admins = node["admin_keys"];
  if (!admins) return;
  if (!admins.IsSequence()) {
    r.problem("governance.admin_keys", "must be a list of {name, sha256}");
    return;
  }
  std::set<std::string> names;
  for (std::size_t i = 0; i < admins.size(); ++i) {
    std::string path = "governance.admin_keys[" + std::to_string(i) + "]";
    if (!r.check_map(admins[i], path, {"name", "sha256"})) continue;
    AdminKeyConfig a;
    if (!admins[i]["name"]) r.problem(path + ".name", "is required");
    else r.string(admins[i]["name"], path + ".name", a.name);
    if (!a.name.empty() && !names.insert(a.name).second) r.problem(path + ".name", "duplicate admin key name");
    read_sha256(r, admins[i]["sha256"], path + ".sha256", a.sha256);
    g.admin_keys.push_back(std::move(a));
  }
}

}  // namespace

std::uint8_t override_bit(std::string_view name) {
  if (name == "policy") return kOverridePolicy;
  if (name == "deadline_ms") return kOverrideDeadline;
  if (name == "max_cost_usd") return kOverrideMaxCost;
  return 0;
}

namespace {

void read_keys(Reader& r, const YAML::Node& node, Config& c) {
  if (!node && c.governance.enabled) return;  // keys may all live in the governance store
  if (!node || !node.IsSequence() || node.size() == 0) {
    r.problem("keys", "at least one key is required (a list; see `switchyard hash-key`)");
    return;
  }
  std::set<std::string> names, hashes;
  for (std::size_t i = 0; i < node.size(); ++i) {
    std::string path = "keys[" + std::to_string(i) + "]";
    const YAML::Node& v = node[i];
    if (!r.check_map(v, path, {"name", "sha256", "routes", "overrides", "admin", "team", "policy"})) continue;
    KeyConfig k;
    r.string(v["team"], path + ".team", k.team);
    if (r.string(v["policy"], path + ".policy", k.policy) && !routing::parse_objective(k.policy))
      r.problem(path + ".policy", "must be cost, latency, quality, balanced or ordered");
    if (const YAML::Node& o = v["overrides"]; o && o.IsSequence()) {
      std::vector<std::string> names;
      r.string_list(o, path + ".overrides", names);
      k.overrides = 0;
      for (std::size_t j = 0; j < names.size(); ++j) {
        std::uint8_t bit = override_bit(names[j]);
        if (!bit)
          r.problem(path + ".overrides[" + std::to_string(j) + "]", "must be policy, deadline_ms or max_cost_usd");
        k.overrides |= bit;
      }
    } else if (o) {
      bool all = true;
      r.boolean(o, path + ".overrides", all);
      k.overrides = all ? kAllOverrides : 0;
    }
    r.boolean(v["admin"], path + ".admin", k.admin);
    if (!v["name"]) r.problem(path + ".name", "is required");
    else r.string(v["name"], path + ".name", k.name);
    if (v["name"] && k.name.empty()) r.problem(path + ".name", "must not be empty");
    if (!k.name.empty() && !names.insert(k.name).second) r.problem(path + ".name", "duplicate key name");
    if (read_sha256(r, v["sha256"], path + ".sha256", k.sha256) && !hashes.insert(k.sha256).second)
      r.problem(path + ".sha256", "the same key is already listed under another name");
    if (v["routes"]) r.string_list(v["routes"], path + ".routes", k.routes);
    else k.routes.push_back("*");
    for (std::size_t j = 0; j < k.routes.size(); ++j) {
      const std::string& name = k.routes[j];
      if (name == "*") continue;
      bool known = std::any_of(c.routes.begin(), c.routes.end(),
                               [&](const RouteConfig& rc) { return rc.name == name; });
      if (!known) r.problem(path + ".routes[" + std::to_string(j) + "]", "unknown route \"" + name + "\"");
    }
    c.keys.push_back(std::move(k));
  }
}

}  // namespace

LoadResult load_config_text(const std::string& yaml_text,
                            const std::map<std::string, std::string>& env, const std::string& base_dir) {
  LoadResult result;
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    result.problems.push_back({"(yaml)", "line " + std::to_string(e.mark.line + 1) + ", column " +
                                             std::to_string(e.mark.column + 1) + ": " + e.msg});
    return result;
  }
  Reader r(env, result.problems);
  if (!root.IsMap()) {
    r.problem("(root)", "the configuration must be a mapping");
    return result;
  }
  try {
    r.set_warnings(&result.warnings);
    r.check_map(root, "", {"server", "upstream", "health", "models", "providers", "deployments",
                           "routes", "keys", "governance"});
    read_server(r, root["server"], result.config.server);
    read_upstream(r, root["upstream"], result.config.upstream);
    read_health(r, root["health"], result.config.health);
    read_models(r, root["models"], result.config);
    read_providers(r, root["providers"], result.config);
    read_deployments(r, root["deployments"], result.config);
    read_routes(r, root["routes"], result.config, base_dir);
    read_governance(r, root["governance"], result.config.governance);
    read_keys(r, root["keys"], result.config);
  } catch (const YAML::Exception& e) {
    r.problem("(yaml)", e.what());
  }
  return result;
}

LoadResult load_config_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    LoadResult result;
    result.problems.push_back({path, "cannot read the configuration file"});
    return result;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  std::string dir = path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/'));
  return load_config_text(ss.str(), process_env(), dir.empty() ? "/" : dir);
}

std::map<std::string, std::string> process_env() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string entry(*e);
    auto eq = entry.find('=');
    if (eq != std::string::npos) env.emplace(entry.substr(0, eq), entry.substr(eq + 1));
  }
  return env;
}

std::string format_problems(const std::vector<Problem>& problems) {
  std::string out;
  for (const auto& p : problems) out += p.path + ": " + p.message + "\n";
  return out;
}

}  // namespace switchyard::config
