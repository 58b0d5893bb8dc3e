#include "governance/admin_api.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <set>

#include "governance/keys.hpp"
#include "routing/policy.hpp"

namespace switchyard::governance {

namespace json = boost::json;

namespace {

/// A refusal of the admin API, thrown by the handlers and rendered once.
struct Refusal {
  int status;
  std::string type, code, message, param;
};

[[noreturn]] void refuse(int status, std::string code, std::string message, std::string param = {}) {
  std::string type = status == 404   ? "not_found_error"
                     : status == 409 ? "conflict_error"
                     : status == 405 ? "invalid_request_error"
                     : status >= 500 ? "api_error"
                                     : "invalid_request_error";
  throw Refusal{status, std::move(type), std::move(code), std::move(message), std::move(param)};
}

std::string money_text(core::Money m) { return m.to_string(); }

/// The request's JSON object; refuses anything else.
json::object body_object(const AdminRequest& r) {
  json::parse_options opt;
  opt.max_depth = r.max_json_depth;
  boost::system::error_code ec;
  json::value v = json::parse(r.body, ec, {}, opt);
  if (ec) refuse(400, "invalid_json", "The request body is not valid JSON: " + ec.message() + ".");
  if (!v.is_object()) refuse(400, "invalid_json", "The request body must be a JSON object.");
  return std::move(v.as_object());
}

/// Refuses members of `o` not in `allowed` (a typo must not be silently ignored).
void only(const json::object& o, std::initializer_list<std::string_view> allowed) {
  for (const auto& kv : o)
    if (std::find(allowed.begin(), allowed.end(), std::string_view(kv.key())) == allowed.end()) {
      std::string names;
      for (auto a : allowed) names += (names.empty() ? "" : ", ") + std::string(a);
      refuse(400, "unknown_field", "Unknown field '" + std::string(kv.key()) + "' (expected: " + names + ").",
             std::string(kv.key()));
    }
}

std::optional<std::string> opt_string(const json::object& o, std::string_view name, std::size_t max_len = 256) {
  const json::value* v = o.if_contains(name);
  if (!v || v->is_null()) return std::nullopt;
  if (!v->is_string()) refuse(400, "invalid_type", "'" + std::string(name) + "' must be a string.", std::string(name));
  if (v->as_string().size() > max_len)
    refuse(400, "invalid_value", "'" + std::string(name) + "' is longer than " + std::to_string(max_len) + " characters.",
           std::string(name));
  return std::string(v->as_string());
}

std::optional<bool> opt_bool(const json::object& o, std::string_view name) {
  const json::value* v = o.if_contains(name);
  if (!v || v->is_null()) return std::nullopt;
  if (!v->is_bool()) refuse(400, "invalid_type", "'" + std::string(name) + "' must be true or false.", std::string(name));
  return v->as_bool();
}

std::optional<std::int64_t> opt_int(const json::object& o, std::string_view name, std::int64_t lo, std::int64_t hi) {
  const json::value* v = o.if_contains(name);
  if (!v || v->is_null()) return std::nullopt;
  std::int64_t n = 0;
  if (v->is_int64()) n = v->as_int64();
  else if (v->is_uint64() && v->as_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) n = static_cast<std::int64_t>(v->as_uint64());
  else refuse(400, "invalid_type", "'" + std::string(name) + "' must be an integer.", std::string(name));
  if (n < lo || n > hi)
    refuse(400, "invalid_value",
           "'" + std::string(name) + "' must be from " + std::to_string(lo) + " to " + std::to_string(hi) + ".",
           std::string(name));
  return n;
}

std::optional<std::vector<std::string>> opt_strings(const json::object& o, std::string_view name) {
  const json::value* v = o.if_contains(name);
  if (!v || v->is_null()) return std::nullopt;
  if (!v->is_array()) refuse(400, "invalid_type", "'" + std::string(name) + "' must be an array of strings.", std::string(name));
  std::vector<std::string> out;
  for (const auto& e : v->as_array()) {
    if (!e.is_string() || e.as_string().empty())
      refuse(400, "invalid_type", "'" + std::string(name) + "' must be an array of non-empty strings.", std::string(name));
    out.emplace_back(e.as_string());
  }
  if (out.size() > 1000) refuse(400, "invalid_value", "'" + std::string(name) + "' has too many entries.", std::string(name));
  return out;
}

std::optional<std::string> opt_metadata(const json::object& o) {
  const json::value* v = o.if_contains("metadata");
  if (!v || v->is_null()) return std::nullopt;
  if (!v->is_object()) refuse(400, "invalid_type", "'metadata' must be an object.", "metadata");
  std::string text = json::serialize(*v);
  if (text.size() > 16 * 1024) refuse(400, "invalid_value", "'metadata' is larger than 16 KiB.", "metadata");
  return text;
}

/// An amount of dollars: a decimal string ("12.50") or a number; exact, 0 to 1e9.
std::optional<core::Money> opt_usd(const json::object& o, std::string_view name) {
  const json::value* v = o.if_contains(name);
  if (!v || v->is_null()) return std::nullopt;
  std::string text;
  if (v->is_string()) text = std::string(v->as_string());
  else if (v->is_int64()) text = std::to_string(v->as_int64());
  else if (v->is_uint64()) text = std::to_string(v->as_uint64());
  else if (v->is_double()) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.9f", v->as_double());
    text = buf;
  } else {
    refuse(400, "invalid_type", "'" + std::string(name) + "' must be an amount of US dollars (\"12.50\").",
           std::string(name));
  }
  auto m = core::Money::parse(text);
  if (!m) refuse(400, "invalid_value", "'" + std::string(name) + "' is not an amount of US dollars: " + text + ".", std::string(name));
  if (*m < core::Money{}) refuse(400, "invalid_value", "'" + std::string(name) + "' must not be negative.", std::string(name));
  if (*m > core::Money::nanos(1'000'000'000LL * 1'000'000'000LL))
    refuse(400, "invalid_value", "'" + std::string(name) + "' is above 1,000,000,000 USD.", std::string(name));
  return m;
}

json::value parse_or_null(const std::string& text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  return ec ? json::value(nullptr) : v;
}

json::array strings(const std::vector<std::string>& v) {
  json::array a;
  for (const auto& s : v) a.emplace_back(s);
  return a;
}

json::object to_json(const Team& t) {
  return {{"id", t.id}, {"object", "team"}, {"name", t.name}, {"metadata", parse_or_null(t.metadata_json)},
          {"disabled", t.disabled}, {"created_at", rfc3339(t.created_ms)}};
}

json::array override_names(std::uint8_t bits) {
  json::array a;
  for (const char* name : {"policy", "deadline_ms", "max_cost_usd"})
    if (bits & config::override_bit(name)) a.emplace_back(name);
  return a;
}

json::object to_json(const Key& k) {
  json::object o{{"id", k.id},
                 {"object", "key"},
                 {"name", k.name},
                 {"team", k.team.empty() ? json::value(nullptr) : json::value(k.team)},
                 {"prefix", k.prefix},
                 {"routes", strings(k.routes)},
                 {"models", strings(k.models)},
                 {"policy", k.policy.empty() ? json::value(nullptr) : json::value(k.policy)},
                 {"overrides", override_names(k.overrides)},
                 {"expires_at", k.expires_ms ? json::value(rfc3339(k.expires_ms)) : json::value(nullptr)},
                 {"disabled", k.disabled},
                 {"metadata", parse_or_null(k.metadata_json)},
                 {"created_at", rfc3339(k.created_ms)},
                 {"updated_at", rfc3339(k.updated_ms)}};
  return o;
}

json::object to_json(const Budget& b) {
  json::array alerts;
  for (int p : b.alert_percents) alerts.emplace_back(p);
  return {{"id", b.id},
          {"object", "budget"},
          {"scope", to_string(b.scope)},
          {"subject", b.subject},
          {"period", to_string(b.period)},
          {"timezone", b.timezone},
          {"limit_usd", money_text(b.limit)},
          {"alerts", alerts},
          {"webhook", b.webhook.empty() ? json::value(nullptr) : json::value(b.webhook)},
          {"hard", b.hard},
          {"created_at", rfc3339(b.created_ms)}};
}

json::object to_json(const BudgetBook::View& v) {
  json::object o = to_json(v.budget);
  o["spent_usd"] = money_text(v.spent);
  o["reserved_usd"] = money_text(v.reserved);
  core::Money left = v.budget.limit - v.spent - v.reserved;
  o["remaining_usd"] = money_text(left < core::Money{} ? core::Money{} : left);
  o["period_start"] = v.budget.period == Period::total ? json::value(nullptr) : json::value(rfc3339(v.period_start_ms));
  o["period_end"] = v.budget.period == Period::total ? json::value(nullptr) : json::value(rfc3339(v.period_end_ms));
  return o;
}

json::object to_json(const Limit& l) {
  auto figure = [](std::int64_t n) { return n > 0 ? json::value(n) : json::value(nullptr); };
  return {{"id", l.id},          {"object", "limit"},       {"scope", to_string(l.scope)},
          {"subject", l.subject}, {"rpm", figure(l.rpm)},    {"tpm", figure(l.tpm)},
          {"concurrent", figure(l.concurrent)}, {"created_at", rfc3339(l.created_ms)}};
}

json::object to_json(const AuditEntry& a) {
  return {{"id", a.id},
          {"at", rfc3339(a.unix_ms)},
          {"actor", a.actor},
          {"action", a.action},
          {"object_type", a.object_type},
          {"object_id", a.object_id},
          {"before", parse_or_null(a.before_json)},
          {"after", parse_or_null(a.after_json)}};
}

json::object to_json(const LedgerRow& r) {
  auto money = [](const std::optional<core::Money>& m) { return m ? json::value(m->to_string()) : json::value(nullptr); };
  return {{"id", r.id},
          {"request_id", r.request_id},
          {"at", rfc3339(r.unix_ms)},
          {"key", r.key_id},
          {"key_name", r.key_name},
          {"team", r.team},
          {"user", r.user},
          {"route", r.route},
          {"model", r.model},
          {"deployment", r.deployment},
          {"provider", r.provider},
          {"dialect", r.dialect},
          {"stream", r.stream},
          {"status", r.status},
          {"error", r.error},
          {"error_kind", r.error_kind},
          {"input_tokens", r.usage.input},
          {"output_tokens", r.usage.output},
          {"cache_read_tokens", r.usage.cache_read},
          {"cache_write_tokens", r.usage.cache_creation},
          {"cache_write_1h_tokens", r.usage.cache_creation_1h},
          {"reasoning_tokens", r.usage.reasoning},
          {"usage_known", r.usage.known},
          {"usage_estimated", r.usage_estimated},
          {"cost_usd", money(r.cost)},
          {"unpriced", r.unpriced},
          {"price_since", r.price_since_ms >= 0 ? json::value(rfc3339(r.price_since_ms)) : json::value(nullptr)},
          {"reference_cost_usd", money(r.reference_cost)},
          {"reserved_usd", money(r.reserved)},
          {"latency_ms", r.latency_ms},
          {"ttft_ms", r.ttft_ms >= 0 ? json::value(r.ttft_ms) : json::value(nullptr)},
          {"attempts", r.attempts},
          {"tier", r.tier >= 0 ? json::value(r.tier) : json::value(nullptr)},
          {"cancelled", r.cancelled}};
}

AuditEntry audit_of(const AdminRequest& r, std::string action, std::string type, std::string id,
                    const json::value& before, const json::value& after) {
  AuditEntry a;
  a.unix_ms = unix_now_ms();
  a.actor = r.actor;
  a.action = std::move(action);
  a.object_type = std::move(type);
  a.object_id = std::move(id);
  a.before_json = json::serialize(before);
  a.after_json = json::serialize(after);
  return a;
}

/// The path below /admin/v1/, split at '/'.
std::vector<std::string_view> segments(std::string_view path) {
  std::vector<std::string_view> out;
  path.remove_prefix(std::string_view("/admin/v1").size());
  while (!path.empty()) {
    if (path.front() == '/') {
      path.remove_prefix(1);
      continue;
    }
    auto slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash);
  }
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string url_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') out += ' ';
    else if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::map<std::string, std::string> query_params(std::string_view q) {
  std::map<std::string, std::string> out;
  while (!q.empty()) {
    auto amp = q.find('&');
    std::string_view pair = q.substr(0, amp);
    auto eq = pair.find('=');
    out[url_decode(pair.substr(0, eq))] = eq == std::string_view::npos ? "" : url_decode(pair.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    q.remove_prefix(amp + 1);
  }
  return out;
}

AdminResponse ok(const json::value& v, int status = 200) { return {status, json::serialize(v)}; }

template <class T>
const T* find_by_id(const std::vector<T>& items, std::string_view id) {
  for (const auto& i : items)
    if (i.id == id) return &i;
  return nullptr;
}

/// Validates a budget's or a limit's subject against what exists.
void check_subject(Governor& g, const AdminContext& ctx, Scope scope, const std::string& subject) {
  if (subject.empty()) refuse(400, "missing_field", "'subject' is required.", "subject");
  auto contains = [](const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
  };
  switch (scope) {
    case Scope::team:
      if (!find_by_id(g.store().teams(), subject))
        refuse(404, "team_not_found", "No team '" + subject + "' exists (create it first: POST /admin/v1/teams).", "subject");
      break;
    case Scope::key: {
      bool known = find_by_id(g.store().keys(), subject) != nullptr;
      for (const auto* k : ctx.static_keys) known = known || k->subject() == subject;
      if (!known) refuse(404, "key_not_found", "No key '" + subject + "' exists (a key id, or a static key's name).", "subject");
      break;
    }
    case Scope::route:
      if (!contains(ctx.routes, subject)) refuse(404, "route_not_found", "No route '" + subject + "' is configured.", "subject");
      break;
    case Scope::deployment:
      if (!contains(ctx.deployments, subject))
        refuse(404, "deployment_not_found", "No deployment '" + subject + "' is configured.", "subject");
      break;
    case Scope::user:
      if (subject.size() > 256) refuse(400, "invalid_value", "'subject' is longer than 256 characters.", "subject");
      break;
  }
}

Scope scope_of(const json::object& o) {
  auto text = opt_string(o, "scope");
  if (!text) refuse(400, "missing_field", "'scope' is required (key, team, user or route).", "scope");
  auto s = parse_scope(*text);
  if (!s) refuse(400, "invalid_value", "'scope' must be key, team, user, route or deployment.", "scope");
  return *s;
}

// ---- teams

AdminResponse teams(Governor& g, const AdminRequest& r, const std::vector<std::string_view>& seg) {
  if (seg.size() == 1 && r.method == "GET") {
    json::array data;
    for (const auto& t : g.store().teams()) data.push_back(to_json(t));
    return ok(json::object{{"object", "list"}, {"data", data}});
  }
  if (seg.size() == 1 && r.method == "POST") {
    json::object o = body_object(r);
    only(o, {"id", "name", "metadata"});
    Team t;
    t.id = opt_string(o, "id", 64).value_or("");
    if (!valid_slug(t.id)) refuse(400, "invalid_value", "'id' is required: 1 to 64 of A-Z a-z 0-9 _ . -", "id");
    t.name = opt_string(o, "name").value_or(t.id);
    t.metadata_json = opt_metadata(o).value_or("{}");
    t.created_ms = unix_now_ms();
    if (find_by_id(g.store().teams(), t.id)) refuse(409, "team_exists", "A team '" + t.id + "' already exists.", "id");
    json::object after = to_json(t);
    g.store().put_team(t, audit_of(r, "create", "team", t.id, nullptr, after));
    g.reload();
    return ok(after, 201);
  }
  if (seg.size() == 2) {
    auto all = g.store().teams();
    const Team* found = find_by_id(all, seg[1]);
    if (!found) refuse(404, "team_not_found", "No team '" + std::string(seg[1]) + "'.");
    if (r.method == "GET") return ok(to_json(*found));
    if (r.method == "PATCH") {
      json::object o = body_object(r);
      only(o, {"name", "metadata", "disabled"});
      Team t = *found;
      if (auto v = opt_string(o, "name")) t.name = *v;
      if (auto v = opt_metadata(o)) t.metadata_json = *v;
      if (auto v = opt_bool(o, "disabled")) t.disabled = *v;
      json::object after = to_json(t);
      g.store().put_team(t, audit_of(r, "update", "team", t.id, to_json(*found), after));
      g.reload();
      return ok(after);
    }
  }
  refuse(405, "method_not_allowed", std::string(r.method) + " is not allowed on " + std::string(r.path) + ".");
}

// ---- keys

void apply_key_fields(const json::object& o, const AdminContext& ctx, Governor& g, Key& k) {
  if (auto v = opt_string(o, "name")) {
    if (v->empty()) refuse(400, "invalid_value", "'name' must not be empty.", "name");
    k.name = *v;
  }
  if (const json::value* t = o.if_contains("team")) {
    if (t->is_null()) {
      k.team.clear();
    } else {
      k.team = opt_string(o, "team", 64).value_or("");
      if (!find_by_id(g.store().teams(), k.team))
        refuse(404, "team_not_found", "No team '" + k.team + "' exists (create it first: POST /admin/v1/teams).", "team");
    }
  }
  if (auto v = opt_strings(o, "routes")) {
    for (const auto& name : *v)
      if (name != "*" && std::find(ctx.routes.begin(), ctx.routes.end(), name) == ctx.routes.end())
        refuse(404, "route_not_found", "No route '" + name + "' is configured.", "routes");
    k.routes = *v;
  }
  if (auto v = opt_strings(o, "models")) k.models = *v;
  if (const json::value* p = o.if_contains("policy")) {
    if (p->is_null()) {
      k.policy.clear();
    } else {
      k.policy = opt_string(o, "policy", 32).value_or("");
      if (!routing::parse_objective(k.policy))
        refuse(400, "invalid_value", "'policy' must be cost, latency, quality, balanced or ordered.", "policy");
    }
  }
  if (const json::value* v = o.if_contains("overrides"); v && !v->is_null()) {
    // true (all), false (none), or the list of those it may send.
    if (v->is_bool()) {
      k.overrides = v->as_bool() ? config::kAllOverrides : 0;
    } else if (v->is_array()) {
      k.overrides = 0;
      for (const auto& e : v->as_array()) {
        std::uint8_t bit = e.is_string() ? config::override_bit(std::string_view(e.as_string())) : 0;
        if (!bit)
          refuse(400, "invalid_value", "'overrides' lists policy, deadline_ms or max_cost_usd.", "overrides");
        k.overrides |= bit;
      }
    } else {
      refuse(400, "invalid_type", "'overrides' must be true, false or a list (policy, deadline_ms, max_cost_usd).",
             "overrides");
    }
  }
  if (const json::value* e = o.if_contains("expires_at")) {
    if (e->is_null()) {
      k.expires_ms = 0;
    } else {
      auto text = opt_string(o, "expires_at", 64);
      auto t = parse_time(*text);
      if (!t) refuse(400, "invalid_value", "'expires_at' must be an RFC 3339 time (2027-01-31T00:00:00Z).", "expires_at");
      k.expires_ms = *t;
    }
  }
  if (auto v = opt_metadata(o)) k.metadata_json = *v;
}

json::object key_with_secret(const Key& k, const std::string& secret) {
  json::object o = to_json(k);
  o["secret"] = secret;  // shown once: only its hash is kept
  return o;
}

AdminResponse keys(Governor& g, const AdminContext& ctx, const AdminRequest& r, const std::vector<std::string_view>& seg) {
  if (seg.size() == 1 && r.method == "GET") {
    auto params = query_params(r.query);
    json::array data;
    for (const auto& k : g.store().keys())
      if (!params.count("team") || params["team"] == k.team) data.push_back(to_json(k));
    return ok(json::object{{"object", "list"}, {"data", data}});
  }
  if (seg.size() == 1 && r.method == "POST") {
    json::object o = body_object(r);
    only(o, {"name", "team", "routes", "models", "policy", "overrides", "expires_at", "metadata"});
    Key k;
    k.id = Governor::new_id("key_");
    apply_key_fields(o, ctx, g, k);
    if (k.name.empty()) refuse(400, "missing_field", "'name' is required.", "name");
    const std::string secret = Governor::new_secret();
    k.sha256 = sha256_hex(secret);
    k.prefix = secret.substr(0, 10);
    k.created_ms = k.updated_ms = unix_now_ms();
    json::object after = to_json(k);
    g.store().put_key(k, audit_of(r, "create", "key", k.id, nullptr, after));
    g.reload();
    return ok(key_with_secret(k, secret), 201);
  }
  if (seg.size() >= 2) {
    auto all = g.store().keys();
    const Key* found = find_by_id(all, seg[1]);
    if (!found) refuse(404, "key_not_found", "No key '" + std::string(seg[1]) + "'.");
    Key k = *found;
    if (seg.size() == 2 && r.method == "GET") return ok(to_json(k));
    if (seg.size() == 2 && r.method == "PATCH") {
      json::object o = body_object(r);
      only(o, {"name", "team", "routes", "models", "policy", "overrides", "expires_at", "metadata", "disabled"});
      apply_key_fields(o, ctx, g, k);
      if (auto v = opt_bool(o, "disabled")) k.disabled = *v;
      k.updated_ms = unix_now_ms();
      json::object after = to_json(k);
      g.store().put_key(k, audit_of(r, "update", "key", k.id, to_json(*found), after));
      g.reload();
      return ok(after);
    }
    if (seg.size() == 3 && r.method == "POST" && (seg[2] == "disable" || seg[2] == "enable")) {
      k.disabled = seg[2] == "disable";
      k.updated_ms = unix_now_ms();
      json::object after = to_json(k);
      g.store().put_key(k, audit_of(r, std::string(seg[2]), "key", k.id, to_json(*found), after));
      g.reload();
      return ok(after);
    }
    if (seg.size() == 3 && r.method == "POST" && seg[2] == "rotate") {
      // A new secret for the same key (its budgets, limits and ledger stay); the old secret
      // stops working at once.
      const std::string secret = Governor::new_secret();
      k.sha256 = sha256_hex(secret);
      k.prefix = secret.substr(0, 10);
      k.updated_ms = unix_now_ms();
      json::object after = to_json(k);
      g.store().put_key(k, audit_of(r, "rotate", "key", k.id, to_json(*found), after));
      g.reload();
      return ok(key_with_secret(k, secret));
    }
  }
  refuse(405, "method_not_allowed", std::string(r.method) + " is not allowed on " + std::string(r.path) + ".");
}

// ---- budgets

void apply_budget_fields(const json::object& o, Budget& b) {
  if (auto v = opt_string(o, "period")) {
    auto p = parse_period(*v);
    if (!p) refuse(400, "invalid_value", "'period' must be day, week, month or total.", "period");
    b.period = *p;
  }
  if (auto v = opt_string(o, "timezone", 16)) {
    auto off = parse_utc_offset(*v);
    if (!off) refuse(400, "invalid_value", "'timezone' must be UTC or a fixed offset such as +05:30.", "timezone");
    b.timezone = *v;
    b.utc_offset_minutes = *off;
  }
  if (auto v = opt_usd(o, "limit_usd")) b.limit = *v;
  if (const json::value* a = o.if_contains("alerts"); a && !a->is_null()) {
    if (!a->is_array()) refuse(400, "invalid_type", "'alerts' must be an array of percentages.", "alerts");
    std::set<int> percents;
    for (const auto& e : a->as_array()) {
      if (!e.is_int64() || e.as_int64() < 1 || e.as_int64() > 1000)
        refuse(400, "invalid_value", "'alerts' must hold integer percentages from 1 to 1000.", "alerts");
      percents.insert(static_cast<int>(e.as_int64()));
    }
    if (percents.size() > 16) refuse(400, "invalid_value", "'alerts' holds at most 16 thresholds.", "alerts");
    b.alert_percents.assign(percents.begin(), percents.end());
  }
  if (const json::value* w = o.if_contains("webhook")) {
    b.webhook = w->is_null() ? "" : opt_string(o, "webhook", 2048).value_or("");
    if (!b.webhook.empty() && b.webhook.substr(0, 7) != "http://" && b.webhook.substr(0, 8) != "https://")
      refuse(400, "invalid_value", "'webhook' must be an http:// or https:// URL.", "webhook");
  }
  if (auto v = opt_bool(o, "hard")) b.hard = *v;
}

AdminResponse budgets(Governor& g, const AdminContext& ctx, const AdminRequest& r,
                      const std::vector<std::string_view>& seg) {
  const std::int64_t now = unix_now_ms();
  auto live = [&](const std::string& id) -> json::object {
    for (const auto& v : g.budget_views(now))
      if (v.budget.id == id) return to_json(v);
    refuse(404, "budget_not_found", "No budget '" + id + "'.");
  };
  if (seg.size() == 1 && r.method == "GET") {
    json::array data;
    for (const auto& v : g.budget_views(now)) data.push_back(to_json(v));
    return ok(json::object{{"object", "list"}, {"data", data}});
  }
  if (seg.size() == 1 && r.method == "POST") {
    json::object o = body_object(r);
    only(o, {"scope", "subject", "period", "timezone", "limit_usd", "alerts", "webhook", "hard"});
    Budget b;
    b.id = Governor::new_id("bud_");
    b.scope = scope_of(o);
    if (b.scope == Scope::deployment)
      refuse(400, "invalid_value", "Budgets apply to a key, team, user or route (deployments take limits).", "scope");
    b.subject = opt_string(o, "subject").value_or("");
    check_subject(g, ctx, b.scope, b.subject);
    if (!o.contains("limit_usd")) refuse(400, "missing_field", "'limit_usd' is required.", "limit_usd");
    apply_budget_fields(o, b);
    b.created_ms = now;
    json::object after = to_json(b);
    g.store().put_budget(b, audit_of(r, "create", "budget", b.id, nullptr, after));
    g.reload();
    return ok(live(b.id), 201);
  }
  if (seg.size() == 2) {
    auto all = g.store().budgets();
    const Budget* found = find_by_id(all, seg[1]);
    if (!found) refuse(404, "budget_not_found", "No budget '" + std::string(seg[1]) + "'.");
    if (r.method == "GET") return ok(live(found->id));
    if (r.method == "PATCH") {
      json::object o = body_object(r);
      only(o, {"period", "timezone", "limit_usd", "alerts", "webhook", "hard"});
      Budget b = *found;
      apply_budget_fields(o, b);
      g.store().put_budget(b, audit_of(r, "update", "budget", b.id, to_json(*found), to_json(b)));
      g.reload();
      return ok(live(b.id));
    }
    if (r.method == "DELETE") {
      g.store().delete_budget(found->id, audit_of(r, "delete", "budget", found->id, to_json(*found), nullptr));
      g.reload();
      return ok(json::object{{"id", found->id}, {"object", "budget"}, {"deleted", true}});
    }
  }
  refuse(405, "method_not_allowed", std::string(r.method) + " is not allowed on " + std::string(r.path) + ".");
}

// ---- limits

void apply_limit_fields(const json::object& o, Limit& l) {
  constexpr std::int64_t kMax = 1'000'000'000'000LL;
  if (auto v = opt_int(o, "rpm", 0, kMax)) l.rpm = *v;
  if (auto v = opt_int(o, "tpm", 0, kMax)) l.tpm = *v;
  if (auto v = opt_int(o, "concurrent", 0, 10'000'000)) l.concurrent = *v;
  if (l.rpm == 0 && l.tpm == 0 && l.concurrent == 0)
    refuse(400, "missing_field", "A limit needs at least one of 'rpm', 'tpm', 'concurrent' above 0.");
}

AdminResponse limits(Governor& g, const AdminContext& ctx, const AdminRequest& r,
                     const std::vector<std::string_view>& seg) {
  if (seg.size() == 1 && r.method == "GET") {
    json::array data;
    for (const auto& l : g.store().limits()) data.push_back(to_json(l));
    return ok(json::object{{"object", "list"}, {"data", data}});
  }
  if (seg.size() == 1 && r.method == "POST") {
    json::object o = body_object(r);
    only(o, {"scope", "subject", "rpm", "tpm", "concurrent"});
    Limit l;
    l.id = Governor::new_id("lim_");
    l.scope = scope_of(o);
    if (l.scope == Scope::deployment)
      refuse(400, "invalid_value",
             "A deployment's own quota is configured on the deployment (its rpm and tpm), not through the admin API.",
             "scope");
    l.subject = opt_string(o, "subject").value_or("");
    check_subject(g, ctx, l.scope, l.subject);
    apply_limit_fields(o, l);
    l.created_ms = unix_now_ms();
    json::object after = to_json(l);
    g.store().put_limit(l, audit_of(r, "create", "limit", l.id, nullptr, after));
    g.reload();
    return ok(after, 201);
  }
  if (seg.size() == 2) {
    auto all = g.store().limits();
    const Limit* found = find_by_id(all, seg[1]);
    if (!found) refuse(404, "limit_not_found", "No limit '" + std::string(seg[1]) + "'.");
    if (r.method == "GET") return ok(to_json(*found));
    if (r.method == "PATCH") {
      json::object o = body_object(r);
      only(o, {"rpm", "tpm", "concurrent"});
      Limit l = *found;
      apply_limit_fields(o, l);
      json::object after = to_json(l);
      g.store().put_limit(l, audit_of(r, "update", "limit", l.id, to_json(*found), after));
      g.reload();
      return ok(after);
    }
    if (r.method == "DELETE") {
      g.store().delete_limit(found->id, audit_of(r, "delete", "limit", found->id, to_json(*found), nullptr));
      g.reload();
      return ok(json::object{{"id", found->id}, {"object", "limit"}, {"deleted", true}});
    }
  }
  refuse(405, "method_not_allowed", std::string(r.method) + " is not allowed on " + std::string(r.path) + ".");
}

// ---- reports

std::string day_text(std::int64_t day) {
  using namespace std::chrono;
  year_month_day ymd{sys_days{days(day)}};
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                static_cast<unsigned>(ymd.day()));
  return buf;
}

void csv_field(std::string& out, std::string_view s) {
  // Quoted when it could be read as something else; a leading = + - @ is neutralised (a
  // spreadsheet would run it as a formula).
  bool quote = s.find_first_of(",\"\r\n") != std::string_view::npos;
  bool formula = !s.empty() && (s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@');
  if (!quote && !formula) {
    out += s;
    return;
  }
  out += '"';
  if (formula) out += '\'';
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
}

AdminResponse spend(Governor& g, const AdminRequest& r) {
  if (r.method != "GET") refuse(405, "method_not_allowed", "Use GET on /admin/v1/spend.");
  auto p = query_params(r.query);
  SpendQuery q;
  q.group_by = p.count("group_by") ? p["group_by"] : "key";
  static const std::set<std::string> kGroups = {"key", "team", "user", "model", "route", "deployment", "day"};
  if (!kGroups.count(q.group_by))
    refuse(400, "invalid_value", "'group_by' must be key, team, user, model, route, deployment or day.", "group_by");
  const std::int64_t now = unix_now_ms();
  q.from_ms = now - 30LL * 86'400'000;
  q.to_ms = 0;
  if (p.count("from")) {
    auto t = parse_time(p["from"]);
    if (!t) refuse(400, "invalid_value", "'from' must be a date (2026-12-01) or an RFC 3339 time.", "from");
    q.from_ms = *t;
  }
  if (p.count("to")) {
    auto t = parse_time(p["to"]);
    if (!t) refuse(400, "invalid_value", "'to' must be a date (2026-12-31, exclusive) or an RFC 3339 time.", "to");
    q.to_ms = *t;
  }
  q.key_id = p["key"];
  q.team = p["team"];
  q.user = p["user"];
  q.route = p["route"];
  q.model = p["model"];
  std::vector<SpendRow> rows = g.store().spend(q);
  // Keys are shown with their names too (a key's id is what the ledger keeps).
  std::map<std::string, std::string> key_names;
  if (q.group_by == "key")
    for (const auto& k : g.store().keys()) key_names[k.id] = k.name;
  const bool csv = p["format"] == "csv";
  SpendRow total;
  for (const auto& row : rows) {
    total.requests += row.requests;
    total.errors += row.errors;
    total.unpriced += row.unpriced;
    total.usage.input += row.usage.input;
    total.usage.output += row.usage.output;
    total.usage.cache_read += row.usage.cache_read;
    total.usage.cache_creation += row.usage.cache_creation;
    total.usage.reasoning += row.usage.reasoning;
    total.cost += row.cost;
    total.reference_cost += row.reference_cost;
  }
  auto group_text = [&](const SpendRow& row) {
    return q.group_by == "day" ? day_text(std::stoll(row.group)) : row.group;
  };
  if (csv) {
    std::string out = q.group_by + ",name,requests,errors,unpriced,input_tokens,output_tokens,cache_read_tokens,"
                      "cache_write_tokens,reasoning_tokens,cost_usd,reference_cost_usd,savings_usd\n";
    for (const auto& row : rows) {
      csv_field(out, group_text(row));
      out += ',';
      auto n = key_names.find(row.group);
      csv_field(out, n == key_names.end() ? std::string() : n->second);
      for (std::int64_t v : {row.requests, row.errors, row.unpriced, row.usage.input, row.usage.output,
                             row.usage.cache_read, row.usage.cache_creation, row.usage.reasoning}) {
        out += ',';
        out += std::to_string(v);
      }
      out += ',' + row.cost.to_string() + ',' + row.reference_cost.to_string() + ',' +
             (row.reference_cost - row.cost).to_string() + '\n';
    }
    return {200, std::move(out), "text/csv; charset=utf-8"};
  }
  auto row_json = [&](const SpendRow& row, bool is_total) {
    json::object o;
    if (!is_total) {
      o[q.group_by] = group_text(row);
      if (auto n = key_names.find(row.group); n != key_names.end()) o["name"] = n->second;
    }
    o["requests"] = row.requests;
    o["errors"] = row.errors;
    o["unpriced"] = row.unpriced;
    o["input_tokens"] = row.usage.input;
    o["output_tokens"] = row.usage.output;
    o["cache_read_tokens"] = row.usage.cache_read;
    o["cache_write_tokens"] = row.usage.cache_creation;
    o["reasoning_tokens"] = row.usage.reasoning;
    o["cost_usd"] = row.cost.to_string();
    o["reference_cost_usd"] = row.reference_cost.to_string();
    o["savings_usd"] = (row.reference_cost - row.cost).to_string();
    return o;
  };
  json::array data;
  for (const auto& row : rows) data.push_back(row_json(row, false));
  return ok(json::object{{"object", "spend_report"},
                         {"group_by", q.group_by},
                         {"from", rfc3339(q.from_ms)},
                         {"to", q.to_ms ? json::value(rfc3339(q.to_ms)) : json::value(nullptr)},
                         {"data", data},
                         {"total", row_json(total, true)}});
}

AdminResponse audit(Governor& g, const AdminRequest& r) {
  if (r.method != "GET") refuse(405, "method_not_allowed", "Use GET on /admin/v1/audit.");
  auto p = query_params(r.query);
  std::int64_t after = 0, limit = 100;
  try {
    if (p.count("after")) after = std::stoll(p["after"]);
    if (p.count("limit")) limit = std::stoll(p["limit"]);
  } catch (...) {
    refuse(400, "invalid_value", "'after' and 'limit' must be integers.");
  }
  limit = std::clamp<std::int64_t>(limit, 1, 1000);
  json::array data;
  for (const auto& a : g.store().audit(after, static_cast<std::size_t>(limit))) data.push_back(to_json(a));
  return ok(json::object{{"object", "list"}, {"data", data}});
}

AdminResponse ledger(Governor& g, const AdminRequest& r) {
  if (r.method != "GET") refuse(405, "method_not_allowed", "Use GET on /admin/v1/ledger.");
  auto p = query_params(r.query);
  std::int64_t from = 0, to = 0, limit = 1000;
  if (p.count("from")) {
    auto t = parse_time(p["from"]);
    if (!t) refuse(400, "invalid_value", "'from' must be a date or an RFC 3339 time.", "from");
    from = *t;
  }
  if (p.count("to")) {
    auto t = parse_time(p["to"]);
    if (!t) refuse(400, "invalid_value", "'to' must be a date or an RFC 3339 time.", "to");
    to = *t;
  }
  try {
    if (p.count("limit")) limit = std::stoll(p["limit"]);
  } catch (...) {
    refuse(400, "invalid_value", "'limit' must be an integer.", "limit");
  }
  limit = std::clamp<std::int64_t>(limit, 1, 100000);
  json::array data;
  const std::string order = p.count("order") ? p["order"] : "asc";
  if (order != "asc" && order != "desc") refuse(400, "invalid_value", "'order' must be asc or desc.", "order");
  for (const auto& row : g.store().ledger_rows(from, to, static_cast<std::size_t>(limit), order == "desc"))
    data.push_back(to_json(row));
  return ok(json::object{{"object", "list"}, {"data", data}});
}

AdminResponse status(Governor& g) {
  Ledger::Stats s = g.ledger().stats();
  return ok(json::object{
      {"object", "governance_status"},
      {"ledger",
       json::object{{"durability", g.ledger().options().durability == LedgerOptions::Durability::sync    ? "sync"
                                   : g.ledger().options().durability == LedgerOptions::Durability::fsync ? "fsync"
                                                                                                         : "async"},
                    {"replayed", s.replayed},
                    {"spool_bytes", s.spool_total_bytes},
                    {"spool_max_bytes", g.ledger().options().max_spool_bytes},
                    {"accepting", g.ledger().accepting()},
                    {"spool_only", s.spool_only},
                    {"catch_ups", s.catch_ups},
                    {"dropped", s.dropped},
                    {"appended", s.appended},
                    {"committed", s.committed},
                    {"queued", s.depth},
                    {"max_queued", s.max_depth},
                    {"batches", s.batches},
                    {"largest_batch", s.largest_batch},
                    {"failures", s.failures},
                    {"last_commit_ms", s.last_commit_ms},
                    {"max_commit_ms", s.max_commit_ms}}},
      {"budget_overruns", g.budgets().overruns()},
      {"keys", g.directory()->size()}});
}

}  // namespace

std::string rfc3339(std::int64_t unix_ms) {
  using namespace std::chrono;
  const sys_time<milliseconds> t{milliseconds(unix_ms)};
  const sys_days day = floor<days>(t);
  const year_month_day ymd{day};
  const hh_mm_ss hms{t - day};
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()), static_cast<int>(hms.subseconds().count()));
  return buf;
}

std::optional<std::int64_t> parse_time(std::string_view text) {
  using namespace std::chrono;
  if (text.empty()) return std::nullopt;
  if (std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }) && text.size() <= 15)
    return std::stoll(std::string(text));
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0, n = 0;
  std::string t(text);
  if (t.size() == 10 && std::sscanf(t.c_str(), "%4d-%2d-%2d%n", &y, &mo, &d, &n) == 3 && n == 10) {
  } else if (std::sscanf(t.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &n) == 6) {
    std::string_view rest = text.substr(static_cast<std::size_t>(n));
    std::int64_t frac_ms = 0;
    if (!rest.empty() && rest[0] == '.') {
      rest.remove_prefix(1);
      int digits = 0;
      while (!rest.empty() && rest[0] >= '0' && rest[0] <= '9') {
        if (digits < 3) frac_ms = frac_ms * 10 + (rest[0] - '0');
        ++digits;
        rest.remove_prefix(1);
      }
      if (digits == 0) return std::nullopt;
      for (int i = digits; i < 3; ++i) frac_ms *= 10;
    }
    std::int32_t offset = 0;
    if (rest == "Z" || rest == "z") offset = 0;
    else if (auto o = parse_utc_offset(rest); o && !rest.empty()) offset = *o;
    else return std::nullopt;
    if (h > 23 || mi > 59 || s > 60) return std::nullopt;
    year_month_day ymd{year(y), month(static_cast<unsigned>(mo)), day(static_cast<unsigned>(d))};
    if (!ymd.ok()) return std::nullopt;
    return duration_cast<milliseconds>(sys_days(ymd).time_since_epoch()).count() +
           ((h * 60LL + mi) * 60 + s) * 1000 + frac_ms - offset * 60'000LL;
  } else {
    return std::nullopt;
  }
  year_month_day ymd{year(y), month(static_cast<unsigned>(mo)), day(static_cast<unsigned>(d))};
  if (!ymd.ok()) return std::nullopt;
  return duration_cast<milliseconds>(sys_days(ymd).time_since_epoch()).count();
}

AdminResponse handle_admin(Governor& g, const AdminContext& ctx, const AdminRequest& r) {
  std::lock_guard one_at_a_time(g.admin_mutex());
  try {
    std::vector<std::string_view> seg = segments(r.path);
    if (seg.empty()) refuse(404, "unknown_url", "Unknown admin URL: " + std::string(r.path) + ".");
    const std::string_view what = seg[0];
    if (what == "teams") return teams(g, r, seg);
    if (what == "keys") return keys(g, ctx, r, seg);
    if (what == "budgets") return budgets(g, ctx, r, seg);
    if (what == "limits") return limits(g, ctx, r, seg);
    if (what == "spend" && seg.size() == 1) return spend(g, r);
    if (what == "audit" && seg.size() == 1) return audit(g, r);
    if (what == "ledger" && seg.size() == 1) return ledger(g, r);
    if (what == "status" && seg.size() == 1) return status(g);
    refuse(404, "unknown_url", "Unknown admin URL: " + std::string(r.method) + " " + std::string(r.path) + ".");
  } catch (const Refusal& e) {
    json::object err{{"type", e.type}, {"code", e.code}, {"message", e.message},
                     {"param", e.param.empty() ? json::value(nullptr) : json::value(e.param)}};
    return {e.status, json::serialize(json::object{{"error", err}})};
  } catch (const StoreError& e) {
    json::object err{{"type", "api_error"}, {"code", "store_error"},
                     {"message", std::string("The governance store failed; nothing was changed: ") + e.what()},
                     {"param", nullptr}};
    return {503, json::serialize(json::object{{"error", err}})};
  }
}

}  // namespace switchyard::governance
