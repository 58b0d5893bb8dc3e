#include "server/admin_cli.hpp"

#include <CLI/CLI.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <cctype>
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "config/config.hpp"
#include "store/postgres_store.hpp"
#include "store/sqlite_store.hpp"

namespace switchyard::server {

namespace json = boost::json;
namespace http = boost::beast::http;

namespace {

/// What the command line asked for: one request to the admin API.
struct Call {
  std::string method = "GET";
  std::string path;  ///< below /admin/v1
  json::object body;
  bool has_body = false;
  std::string query;
  std::string kind;  ///< how to print the answer: "list:<columns>", "object", "key-secret", "spend", "raw"
};

struct State {
  std::string url = "http://127.0.0.1:8080";
  std::string key;
  bool json_out = false;
  Call call;
  // Option values, read when the command's callback builds the call.
  std::string config_path;
  std::string id, name, team, policy, expires, scope, subject, period = "month", limit, timezone, webhook, group_by,
      from, to, metadata;
  std::vector<std::string> routes, models, alerts, overrides;
  std::int64_t rpm = -1, tpm = -1, concurrent = -1, after = 0, count = 100;
  bool soft = false, csv = false, no_overrides = false;
};

State& state() {
  static State s;
  return s;
}

/// A query value, percent-encoded ("+05:30" would otherwise arrive as " 05:30").
std::string encode(const std::string& v) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : v) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == ':') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

void set_strings(json::object& o, const char* name, const std::vector<std::string>& v) {
  if (v.empty()) return;
  json::array a;
  for (const auto& s : v) a.emplace_back(s);
  o[name] = a;
}

void key_fields(State& s, json::object& o) {
  if (!s.name.empty()) o["name"] = s.name;
  if (!s.team.empty()) o["team"] = s.team;
  set_strings(o, "routes", s.routes);
  set_strings(o, "models", s.models);
  if (!s.policy.empty()) o["policy"] = s.policy;
  if (!s.expires.empty()) o["expires_at"] = s.expires;
  if (s.no_overrides) o["overrides"] = false;
  set_strings(o, "overrides", s.overrides);
  if (!s.metadata.empty()) {
    boost::system::error_code ec;
    json::value m = json::parse(s.metadata, ec);
    if (ec) throw CLI::ValidationError("--metadata", "must be a JSON object");
    o["metadata"] = m;
  }
}

void budget_fields(State& s, json::object& o) {
  if (!s.limit.empty()) o["limit_usd"] = s.limit;
  if (!s.timezone.empty()) o["timezone"] = s.timezone;
  if (!s.webhook.empty()) o["webhook"] = s.webhook;
  if (!s.alerts.empty()) {
    json::array a;
    for (const auto& p : s.alerts) {
      try {
        a.emplace_back(std::stoll(p));
      } catch (...) {
        throw CLI::ValidationError("--alerts", "percentages, e.g. --alerts 50,80");
      }
    }
    o["alerts"] = a;
  }
  if (s.soft) o["hard"] = false;
}

void limit_fields(State& s, json::object& o) {
  if (s.rpm >= 0) o["rpm"] = s.rpm;
  if (s.tpm >= 0) o["tpm"] = s.tpm;
  if (s.concurrent >= 0) o["concurrent"] = s.concurrent;
}

/// A command whose callback makes the call.
CLI::App* command(CLI::App* parent, const char* name, const char* help, std::function<void(State&)> make) {
  CLI::App* c = parent->add_subcommand(name, help);
  c->callback([make] { make(state()); });
  return c;
}

void id_arg(CLI::App* c, const char* what) { c->add_option("id", state().id, what)->required(); }

std::string text_of(const json::value& v) {
  if (v.is_string()) return std::string(v.as_string());
  if (v.is_null()) return "-";
  return json::serialize(v);
}

void print_table(const json::array& rows, const std::vector<std::string>& columns) {
  std::vector<std::size_t> width(columns.size());
  std::vector<std::vector<std::string>> cells;
  for (std::size_t c = 0; c < columns.size(); ++c) width[c] = columns[c].size();
  for (const auto& r : rows) {
    std::vector<std::string> line;
    for (std::size_t c = 0; c < columns.size(); ++c) {
      const json::value* v = r.as_object().if_contains(columns[c]);
      line.push_back(v ? text_of(*v) : "-");
      width[c] = std::max(width[c], line.back().size());
    }
    cells.push_back(std::move(line));
  }
  for (std::size_t c = 0; c < columns.size(); ++c) std::cout << std::left << std::setw(static_cast<int>(width[c] + 2)) << columns[c];
  std::cout << "\n";
  for (const auto& line : cells) {
    for (std::size_t c = 0; c < columns.size(); ++c)
      std::cout << std::left << std::setw(static_cast<int>(width[c] + 2)) << line[c];
    std::cout << "\n";
  }
}

void print_object(const json::object& o) {
  std::size_t w = 0;
  for (const auto& kv : o) w = std::max(w, kv.key().size());
  for (const auto& kv : o)
    std::cout << std::left << std::setw(static_cast<int>(w + 2)) << std::string(kv.key()) << text_of(kv.value()) << "\n";
}

struct Target {
  std::string host, port;
};

Target parse_url(const std::string& url, std::string& error) {
  config::Url u;
  if (!config::parse_url(url, u, error)) return {};
  if (u.tls()) {
    error = "https is not supported by the admin command; reach the gateway over http (loopback or a tunnel)";
    return {};
  }
  return {u.host, std::to_string(u.port)};
}

}  // namespace

CLI::App* add_admin_commands(CLI::App& app) {
  State& s = state();
  CLI::App* admin = app.add_subcommand("admin", "Manage teams, keys, budgets and limits; read spend (the admin API)");
  admin->require_subcommand(1);
  admin->add_option("--url", s.url, "The gateway (default $SWITCHYARD_URL, else http://127.0.0.1:8080)")
      ->envname("SWITCHYARD_URL");
  admin->add_option("--admin-key", s.key, "The admin credential (default $SWITCHYARD_ADMIN_KEY)")
      ->envname("SWITCHYARD_ADMIN_KEY");
  admin->add_flag("--json", s.json_out, "Print the API's JSON as is");

  CLI::App* teams = admin->add_subcommand("teams", "Teams");
  teams->require_subcommand(1);
  command(teams, "list", "List teams", [](State& s) { s.call = {"GET", "/teams", {}, false, {}, "list:id,name,disabled,created_at"}; });
  auto* tc = command(teams, "create", "Create a team", [](State& s) {
    s.call = {"POST", "/teams", {{"id", s.id}}, true, {}, "object"};
    if (!s.name.empty()) s.call.body["name"] = s.name;
  });
  tc->add_option("--id", s.id, "Its id (a slug; never changes)")->required();
  tc->add_option("--name", s.name, "Its name for people");
  for (const char* verb : {"disable", "enable"}) {
    auto* c = command(teams, verb, verb[0] == 'd' ? "Disable a team (its keys are refused)" : "Enable a team",
                      [verb](State& s) {
                        s.call = {"PATCH", "/teams/" + s.id, {{"disabled", verb[0] == 'd'}}, true, {}, "object"};
                      });
    id_arg(c, "team id");
  }

  CLI::App* keys = admin->add_subcommand("keys", "Virtual keys");
  keys->require_subcommand(1);
  auto* kl = command(keys, "list", "List keys", [](State& s) {
    s.call = {"GET", "/keys", {}, false, s.team.empty() ? "" : "team=" + encode(s.team), "list:id,name,team,prefix,routes,disabled,expires_at"};
  });
  kl->add_option("--team", s.team, "Only this team's");
  auto key_options = [&](CLI::App* c) {
    c->add_option("--name", s.name, "Its name");
    c->add_option("--team", s.team, "The team it belongs to");
    c->add_option("--routes", s.routes, "Routes it may use (default: all)")->delimiter(',');
    c->add_option("--models", s.models, "Upstream models it may reach (default: any)")->delimiter(',');
    c->add_option("--policy", s.policy, "Default objective: cost, latency, quality, balanced, ordered");
    c->add_option("--expires", s.expires, "When it stops working (2027-01-31T00:00:00Z)");
    c->add_flag("--no-overrides", s.no_overrides, "May not send x-switchyard-* routing overrides");
    c->add_option("--overrides", s.overrides, "Only these overrides: policy, deadline_ms, max_cost_usd")->delimiter(',');
    c->add_option("--metadata", s.metadata, "Tags, a JSON object");
  };
  auto* kc = command(keys, "create", "Create a key (its secret is printed once)", [](State& s) {
    s.call = {"POST", "/keys", {}, true, {}, "key-secret"};
    key_fields(s, s.call.body);
  });
  key_options(kc);
  kc->get_option("--name")->required();
  auto* ku = command(keys, "update", "Change a key", [](State& s) {
    s.call = {"PATCH", "/keys/" + s.id, {}, true, {}, "object"};
    key_fields(s, s.call.body);
  });
  id_arg(ku, "key id");
  key_options(ku);
  id_arg(command(keys, "get", "Show a key", [](State& s) { s.call = {"GET", "/keys/" + s.id, {}, false, {}, "object"}; }), "key id");
  for (const char* verb : {"disable", "enable", "rotate"}) {
    auto* c = command(keys, verb,
                      verb[0] == 'd'   ? "Disable a key"
                      : verb[0] == 'e' ? "Enable a key"
                                       : "Give a key a new secret (the old one stops working; printed once)",
                      [verb](State& s) {
                        s.call = {"POST", "/keys/" + s.id + "/" + verb, {}, false, {}, verb[0] == 'r' ? "key-secret" : "object"};
                      });
    id_arg(c, "key id");
  }

  CLI::App* budgets = admin->add_subcommand("budgets", "Budgets (USD)");
  budgets->require_subcommand(1);
  command(budgets, "list", "List budgets with what each has spent and reserved", [](State& s) {
    s.call = {"GET", "/budgets", {}, false, {}, "list:id,scope,subject,period,limit_usd,spent_usd,reserved_usd,hard"};
  });
  auto budget_options = [&](CLI::App* c) {
    c->add_option("--limit", s.limit, "US dollars (\"100\", \"0.50\")");
    c->add_option("--timezone", s.timezone, "Where its days start: UTC (default) or an offset like +05:30");
    c->add_option("--alerts", s.alerts, "Soft limits: alert at these percentages (50,80)")->delimiter(',');
    c->add_option("--webhook", s.webhook, "POST alerts here");
  };
  auto* bc = command(budgets, "create", "Create a budget", [](State& s) {
    s.call = {"POST", "/budgets", {{"scope", s.scope}, {"subject", s.subject}, {"period", s.period}}, true, {}, "object"};
    budget_fields(s, s.call.body);
  });
  bc->add_option("--scope", s.scope, "key, team, user or route")->required();
  bc->add_option("--subject", s.subject, "The key id, team id, user or route")->required();
  bc->add_option("--period", s.period, "day, week, month (default) or total");
  budget_options(bc);
  bc->get_option("--limit")->required();
  bc->add_flag("--soft", s.soft, "Alerts only; never refuses");
  auto* bu = command(budgets, "update", "Change a budget", [](State& s) {
    s.call = {"PATCH", "/budgets/" + s.id, {}, true, {}, "object"};
    budget_fields(s, s.call.body);
  });
  id_arg(bu, "budget id");
  budget_options(bu);
  id_arg(command(budgets, "get", "Show a budget", [](State& s) { s.call = {"GET", "/budgets/" + s.id, {}, false, {}, "object"}; }), "budget id");
  id_arg(command(budgets, "delete", "Delete a budget", [](State& s) { s.call = {"DELETE", "/budgets/" + s.id, {}, false, {}, "object"}; }), "budget id");

  CLI::App* limits = admin->add_subcommand("limits", "Rate limits");
  limits->require_subcommand(1);
  command(limits, "list", "List rate limits", [](State& s) {
    s.call = {"GET", "/limits", {}, false, {}, "list:id,scope,subject,rpm,tpm,concurrent"};
  });
  auto limit_options = [&](CLI::App* c) {
    c->add_option("--rpm", s.rpm, "Requests per minute");
    c->add_option("--tpm", s.tpm, "Tokens (input + output) per minute");
    c->add_option("--concurrent", s.concurrent, "Requests in flight");
  };
  auto* lc = command(limits, "create", "Create a rate limit", [](State& s) {
    s.call = {"POST", "/limits", {{"scope", s.scope}, {"subject", s.subject}}, true, {}, "object"};
    limit_fields(s, s.call.body);
  });
  lc->add_option("--scope", s.scope, "key, team, user or route")->required();
  lc->add_option("--subject", s.subject, "The key id, team id, user or route")->required();
  limit_options(lc);
  auto* lu = command(limits, "update", "Change a rate limit", [](State& s) {
    s.call = {"PATCH", "/limits/" + s.id, {}, true, {}, "object"};
    limit_fields(s, s.call.body);
  });
  id_arg(lu, "limit id");
  limit_options(lu);
  id_arg(command(limits, "delete", "Delete a rate limit", [](State& s) { s.call = {"DELETE", "/limits/" + s.id, {}, false, {}, "object"}; }), "limit id");

  auto* spend = command(admin, "spend", "Spend (and savings) by key, team, user, model, route, deployment or day", [](State& s) {
    std::string q = "group_by=" + encode(s.group_by.empty() ? std::string("key") : s.group_by);
    if (!s.from.empty()) q += "&from=" + encode(s.from);
    if (!s.to.empty()) q += "&to=" + encode(s.to);
    if (!s.team.empty()) q += "&team=" + encode(s.team);
    if (s.csv) q += "&format=csv";
    s.call = {"GET", "/spend", {}, false, q, s.csv ? "raw" : "spend"};
  });
  spend->add_option("--group-by", s.group_by, "key (default), team, user, model, route, deployment, day");
  spend->add_option("--from", s.from, "From this day (2026-12-01; default: 30 days ago)");
  spend->add_option("--to", s.to, "To this day, exclusive");
  spend->add_option("--team", s.team, "Only this team's spend");
  spend->add_flag("--csv", s.csv, "CSV, for a spreadsheet");
  auto* audit = command(admin, "audit", "Changes to keys, budgets and limits: who, what, when", [](State& s) {
    s.call = {"GET", "/audit", {}, false, "after=" + std::to_string(s.after) + "&limit=" + std::to_string(s.count),
              "list:id,at,actor,action,object_type,object_id"};
  });
  audit->add_option("--after", s.after, "Entries after this id");
  audit->add_option("--limit", s.count, "At most this many");
  command(admin, "status", "The ledger's state and the budgets' overruns", [](State& s) {
    s.call = {"GET", "/status", {}, false, {}, "raw"};
  });
  // Not an API call: the store itself, as the configuration names it (nodes also migrate at
  // start-up; this lets an operator do it first, once, before rolling the nodes).
  auto* migrate = command(admin, "migrate", "Apply the store's schema migrations (reads --config, not the API)",
                          [](State& s) { s.call = {"", "", {}, false, {}, "migrate"}; });
  migrate->add_option("--config", s.config_path, "The gateway's configuration file")->required();
  return admin;
}

namespace {

int migrate_store(const std::string& path) {
  config::LoadResult loaded = config::load_config_file(path);
  if (!loaded.problems.empty()) {
    for (const auto& p : loaded.problems) std::cerr << path << ": " << p.path << ": " << p.message << "\n";
    return 1;
  }
  const config::GovernanceConfig& g = loaded.config.governance;
  if (!g.enabled) {
    std::cerr << path << ": governance is off (no `governance:` section): there is no store to migrate\n";
    return 1;
  }
  try {
    if (g.store == "postgres") {
      store::PostgresOptions o;
      o.conninfo = g.postgres.url;
      store::PostgresStore st(o);
      std::cout << st.describe() << ": schema at version " << store::PostgresStore::schema_version() << "\n";
    } else {
      store::SqliteOptions o;
      o.path = g.sqlite_path;
      store::SqliteStore st(o);
      std::cout << st.describe() << ": schema up to date\n";
    }
  } catch (const std::exception& e) {
    std::cerr << "migrate: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace

int run_admin() {
  State& s = state();
  if (s.call.kind == "migrate") return migrate_store(s.config_path);
  if (s.key.empty()) {
    std::cerr << "an admin credential is needed: --admin-key or $SWITCHYARD_ADMIN_KEY\n";
    return 2;
  }
  std::string error;
  Target t = parse_url(s.url, error);
  if (!error.empty()) {
    std::cerr << s.url << ": " << error << "\n";
    return 2;
  }
  http::response<http::string_body> res;
  try {
    boost::asio::io_context io;
    boost::asio::ip::tcp::resolver resolver(io);
    boost::asio::ip::tcp::socket socket(io);
    boost::asio::connect(socket, resolver.resolve(t.host, t.port));
    std::string target = "/admin/v1" + s.call.path + (s.call.query.empty() ? "" : "?" + s.call.query);
    http::request<http::string_body> req{http::string_to_verb(s.call.method), target, 11};
    req.set(http::field::host, t.host);
    req.set(http::field::authorization, "Bearer " + s.key);
    req.set(http::field::user_agent, "switchyard-admin");
    if (s.call.has_body || s.call.method == "POST" || s.call.method == "PATCH") {
      req.set(http::field::content_type, "application/json");
      req.body() = json::serialize(s.call.body);
    }
    req.prepare_payload();
    http::write(socket, req);
    boost::beast::flat_buffer buffer;
    http::read(socket, buffer, res);
  } catch (const std::exception& e) {
    std::cerr << "cannot reach " << s.url << ": " << e.what() << "\n";
    return 1;
  }
  const std::string& body = res.body();
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (res.result_int() >= 400) {
    if (!ec && v.is_object() && v.as_object().contains("error"))
      std::cerr << "error " << res.result_int() << " (" << text_of(v.at("error").at("code"))
                << "): " << text_of(v.at("error").at("message")) << "\n";
    else
      std::cerr << "error " << res.result_int() << ": " << body << "\n";
    return 1;
  }
  if (s.json_out || s.call.kind == "raw" || ec) {
    std::cout << body << (body.empty() || body.back() == '\n' ? "" : "\n");
    return 0;
  }
  const std::string& kind = s.call.kind;
  if (kind.rfind("list:", 0) == 0) {
    std::vector<std::string> columns;
    std::stringstream cs(kind.substr(5));
    for (std::string c; std::getline(cs, c, ',');) columns.push_back(c);
    print_table(v.at("data").as_array(), columns);
  } else if (kind == "key-secret") {
    json::object o = v.as_object();
    std::string secret = text_of(o["secret"]);
    o.erase("secret");
    print_object(o);
    std::cout << "\nsecret (shown once, only its hash is kept): " << secret << "\n";
  } else if (kind == "spend") {
    json::array rows = v.at("data").as_array();
    json::object total = v.at("total").as_object();
    total[std::string(v.at("group_by").as_string())] = "TOTAL";
    rows.push_back(total);
    std::string group(v.at("group_by").as_string());
    std::vector<std::string> columns{group};
    if (group == "key") columns.push_back("name");
    for (const char* c : {"requests", "errors", "input_tokens", "output_tokens", "cost_usd", "reference_cost_usd", "savings_usd"})
      columns.push_back(c);
    print_table(rows, columns);
  } else {
    print_object(v.as_object());
  }
  return 0;
}

}  // namespace switchyard::server
