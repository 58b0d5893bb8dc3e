#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <iostream>
#include <pthread.h>
#include <sys/resource.h>
#include <thread>
#include <unistd.h>

#include "config/config.hpp"
#include "core/version.hpp"
#include "governance/governor.hpp"
#include "governance/keys.hpp"
#include "shared/counters.hpp"
#include "store/postgres_store.hpp"
#include "store/sqlite_store.hpp"
#include "net/server.hpp"
#include "server/config_load.hpp"
#include "server/gateway.hpp"
#include "dialects/anthropic/translate.hpp"
#include "dialects/translate.hpp"
#include "routing/complexity/category.hpp"
#include "routing/complexity/model.hpp"
#include "routing/decision.hpp"
#include "routing/tiers.hpp"
#include "server/pipeline/admission.hpp"
#include "server/pipeline/plan.hpp"
#include "server/admin_cli.hpp"
#include "server/alerts.hpp"
#include "server/router_cli.hpp"
#include "server/runtime.hpp"
#include "telemetry/access_log.hpp"

using namespace switchyard;

namespace {

int cmd_check(const std::string& path) {
  config::LoadResult loaded = server::load_config_file(path);
  if (!loaded.ok()) {
    std::cerr << config::format_problems(loaded.problems);
    std::cerr << loaded.problems.size() << " problem(s) in " << path << "\n";
    return 1;
  }
  const config::Config& c = loaded.config;
  std::size_t enabled = 0;
  for (const auto& d : c.deployments) enabled += d.enabled;
  std::cout << path << ": OK (" << c.providers.size() << " providers, " << c.deployments.size()
            << " deployments of which " << enabled << " enabled, " << c.routes.size()
            << " routes, " << c.keys.size() << " keys)\n";
  for (const auto& p : c.providers)
    if (!p.enabled) std::cout << "  provider " << p.name << ": disabled (its api key is not set)\n";
  if (c.governance.enabled)
    std::cout << "  governance: store " << c.governance.sqlite_path << " (sqlite), ledger durability "
              << c.governance.durability << ", " << c.governance.admin_keys.size() << " admin key(s)"
              << (c.governance.admin_keys.empty() ? ": the admin API refuses every request" : "") << "\n";
  for (const auto& w : loaded.warnings) std::cout << "  warning: " << w.path << ": " << w.message << "\n";
  server::Runtime runtime(c, nullptr);
  for (const auto& route : runtime.routes())
    if (route.candidates.empty())
      std::cout << "  warning: route " << route.config->name
                << " has no enabled deployment; requests to it get 503\n";
  return 0;
}

/// Prints the plan a request would get on a fresh gateway (every deployment healthy, latency
/// from the catalogue's priors).
int cmd_explain(const std::string& path, const std::string& request_path,
                const std::vector<std::string>& headers, bool as_json) {
  config::LoadResult loaded = server::load_config_file(path);
  if (!loaded.ok()) {
    std::cerr << config::format_problems(loaded.problems);
    return 1;
  }
  std::ifstream in(request_path);
  if (!in) {
    std::cerr << "cannot read " << request_path << "\n";
    return 1;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string body = ss.str();
  server::Runtime runtime(std::move(loaded.config), nullptr);
  // The same admission and planning code as `serve` (server/pipeline), on a runtime without
  // live health: an OpenAI chat body, or else an Anthropic messages body.
  const std::size_t max_depth = runtime.config().server.max_json_depth;
  server::ChatInput input;
  auto as_openai = server::read_chat(dialects::Dialect::openai, body, max_depth, input);
  if (as_openai) {
    input = server::ChatInput{};
    if (auto as_anthropic = server::read_chat(dialects::Dialect::anthropic, body, max_depth, input)) {
      std::cerr << "not a chat request (OpenAI: " << as_openai->message << "; Anthropic: " << as_anthropic->message
                << ")\n";
      return 1;
    }
  }
  core::ApiError refused;
  const server::RouteRuntime* route = server::resolve_route(runtime, input.model, nullptr, refused);
  if (!route) {
    std::cerr << refused.message << " (" << path << ")\n";
    return 1;
  }
  server::OverrideHeaders override_headers;
  std::vector<std::string> values;
  values.reserve(headers.size());
  for (const auto& h : headers) {
    auto colon = h.find(':');
    std::string name = h.substr(0, colon);
    std::string& value = values.emplace_back(colon == std::string::npos ? "" : h.substr(colon + 1));
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    if (name == "x-switchyard-policy") override_headers.policy = value;
    else if (name == "x-switchyard-deadline-ms") override_headers.deadline_ms = value;
    else if (name == "x-switchyard-max-cost-usd") override_headers.max_cost_usd = value;
    else {
      std::cerr << "unknown header " << name << " (x-switchyard-policy, -deadline-ms, -max-cost-usd)\n";
      return 1;
    }
  }
  routing::Overrides overrides;
  if (auto e = server::read_overrides(override_headers, nullptr, overrides)) {
    std::cerr << e->message << "\n";
    return 1;
  }
  routing::RequestTraits traits;
  server::Assessment assessment;
  if (auto e = server::assess_chat(*route, input, max_depth, false, traits, assessment)) {
    std::cerr << e->message << "\n";
    return 1;
  }
  routing::Decision d;
  d.request_id = "explain";
  d.route = route->config->name;
  d.table = &route->table;
  routing::PlanContext ctx;
  ctx.seed = 1;
  ctx.panic_threshold = runtime.config().health.panic_threshold;
  server::plan_request(*route, &input, overrides, runtime.config().health.circuit_breaking, ctx, traits, d.plan);
  d.traits = traits;
  if (!d.plan.order.empty()) d.estimated_cost_usd = d.plan.scores[d.plan.order[0]].est_cost_usd;
  if (as_json) {
    std::cout << routing::decision_json(d, 0) << "\n";
    return 0;
  }
  const auto& p = d.plan;
  std::cout << "route " << d.route << ": objective " << routing::to_string(p.objective) << ", strategy "
            << routing::to_string(p.strategy) << ", category " << catalog::to_string(p.category) << "\n";
  std::cout << "request: ~" << traits.input_tokens << " input tokens, " << p.expected_output_tokens
            << " output tokens expected";
  if (traits.needs) std::cout << ", needs " << catalog::capability_names(traits.needs);
  std::cout << "\n";
  if (traits.category >= 0)
    std::printf("category: %s (predicted)\n",
                std::string(catalog::to_string(static_cast<catalog::Category>(traits.category))).c_str());
  if (traits.tier >= 0 && traits.tier_quality_count) {
    // Quality floor: each tier's predicted quality, weakest first, and the first that reaches it.
    std::printf("complexity: quality floor %.2f; predicted quality per tier:", traits.quality_floor);
    for (int k = 0; k < traits.tier_quality_count; ++k)
      std::printf(" %d=%.3f%s", k, traits.tier_quality[static_cast<std::size_t>(k)], k == traits.tier ? " (chosen)" : "");
    std::printf(" -> tier %d of %d (score %.3f)\n", traits.tier, traits.tier_quality_count, traits.complexity);
  } else if (traits.tier >= 0) {
    std::printf("complexity: score %.3f (predicted gain of the strongest tier) -> tier %d of %zu\n",
                traits.complexity, traits.tier, route->config->complexity->tiers.size());
  }
  if (p.deadline_ms) std::cout << "deadline: " << p.deadline_ms << " ms\n";
  if (p.max_cost_usd >= 0) std::cout << "max cost: $" << p.max_cost_usd << "\n";
  std::cout << "plan:\n";
  int rank = 0;
  for (auto i : p.order) {
    const auto& c = route->table.candidates[i];
    const auto& s = p.scores[i];
    std::string cost = "?";
    if (s.est_cost_usd >= 0) {
      cost.clear();
      routing::append_decimal(cost, s.est_cost_usd);
    }
    std::printf("  %d. %-28s model %-26s score %-7.4f est. $%-10s %6.0f ms  quality %.2f\n", ++rank,
                std::string(c.deployment).c_str(), std::string(c.model_id).c_str(), s.score, cost.c_str(),
                s.est_latency_ms, s.quality);
  }
  if (p.order.empty()) std::cout << "  (none: every candidate is excluded)\n";
  bool header = false;
  for (std::size_t i = 0; i < p.scores.size(); ++i) {
    if (p.scores[i].excluded == routing::Exclusion::none) continue;
    if (!header) std::cout << "excluded:\n";
    header = true;
    std::cout << "  " << route->table.candidates[i].deployment << ": "
              << routing::exclusion_reason(route->table.candidates[i], p.scores[i], traits, p, 0) << "\n";
  }
  std::cout << std::flush;
  return p.order.empty() ? 2 : 0;
}

/// Loads, validates and swaps in a changed configuration; a bad one is logged and ignored.
bool reload(const std::string& path, server::Shared& shared) {
  config::LoadResult loaded = server::load_config_file(path);
  if (!loaded.ok()) {
    for (const auto& p : loaded.problems) spdlog::error("reload: {}: {}", p.path, p.message);
    spdlog::error("reload rejected: {} problem(s) in {}; the running configuration stays",
                  loaded.problems.size(), path);
    return false;
  }
  for (const auto& w : loaded.warnings) spdlog::warn("reload: {}: {}", w.path, w.message);
  auto current = shared.runtime.get();
  const auto& before = current->config();
  const auto& after = loaded.config;
  if (before.server.host != after.server.host || before.server.port != after.server.port ||
      before.server.threads != after.server.threads || before.server.access_log != after.server.access_log ||
      before.server.decisions_kept != after.server.decisions_kept ||
      before.upstream.connect_timeout_ms != after.upstream.connect_timeout_ms ||
      before.upstream.first_byte_timeout_ms != after.upstream.first_byte_timeout_ms ||
      before.upstream.total_timeout_ms != after.upstream.total_timeout_ms ||
      before.upstream.idle_timeout_ms != after.upstream.idle_timeout_ms ||
      before.upstream.ca_file != after.upstream.ca_file)
    spdlog::warn("reload: changes under server: and upstream: apply at the next restart");
  const auto& g0 = before.governance;
  const auto& g1 = after.governance;
  if (g0.enabled != g1.enabled || g0.store != g1.store || g0.sqlite_path != g1.sqlite_path ||
      g0.durability != g1.durability || g0.async_window_ms != g1.async_window_ms)
    spdlog::warn("reload: changes under governance: (other than admin_keys) apply at the next restart");
  shared.health.set_options(server::breaker_options(after.health));
  shared.runtime.set(std::make_shared<const server::Runtime>(std::move(loaded.config), &shared.health, shared.quotas));
  spdlog::info("configuration reloaded from {} ({} routes)", path, shared.runtime.get()->routes().size());
  return true;
}

/// Watches the configuration file and reloads it when its content changes.
class ConfigWatcher {
 public:
  ConfigWatcher(std::string path, server::Shared& shared) : path_(std::move(path)), shared_(shared) {
    last_ = read();
    thread_ = std::thread([this] { run(); });
  }
  ~ConfigWatcher() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

 private:
  std::string read() const {
    std::ifstream in(path_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  void run() {
    std::unique_lock lock(mutex_);
    while (!wake_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_; })) {
      std::string now = read();
      if (now.empty() || now == last_) continue;
      last_ = now;
      spdlog::info("{} changed: reloading", path_);
      reload(path_, shared_);
    }
  }
  std::string path_;
  server::Shared& shared_;
  std::string last_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

int cmd_hash_key(std::string key) {
  if (key.empty()) {
    if (isatty(STDIN_FILENO)) std::cerr << "key: ";
    std::getline(std::cin, key);
  }
  if (key.empty()) {
    std::cerr << "no key given\n";
    return 1;
  }
  std::cout << governance::sha256_hex(key) << "\n";
  return 0;
}

int cmd_serve(const std::string& path, const std::string& port_file, int threads_override, bool watch) {
  config::LoadResult loaded = server::load_config_file(path);
  if (!loaded.ok()) {
    std::cerr << config::format_problems(loaded.problems);
    std::cerr << loaded.problems.size() << " problem(s) in " << path << "; not starting\n";
    return 1;
  }
  for (const auto& w : loaded.warnings) spdlog::warn("{}: {}", w.path, w.message);
  health::Registry health_registry(server::breaker_options(loaded.config.health));
  governance::QuotaRegistry quotas;
  auto runtime = std::make_shared<const server::Runtime>(std::move(loaded.config), &health_registry, &quotas);
  const config::ServerConfig sc = runtime->config().server;

  net::ServerOptions options;
  options.host = sc.host;
  options.port = sc.port;
  unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  options.threads = threads_override > 0 ? threads_override
                                         : (sc.threads > 0 ? sc.threads : static_cast<int>(cores));
  options.max_connections = sc.max_connections;
  options.max_header_bytes = sc.max_header_bytes;
  options.max_body_bytes = sc.max_body_bytes;
  options.header_timeout = std::chrono::milliseconds(sc.header_timeout_ms);
  options.body_timeout = std::chrono::milliseconds(sc.body_timeout_ms);
  options.idle_timeout = std::chrono::milliseconds(sc.idle_timeout_ms);
  options.write_timeout = std::chrono::milliseconds(sc.write_timeout_ms);
  options.drain_timeout = std::chrono::milliseconds(sc.drain_timeout_ms);
  options.per_address.max_connections = sc.per_address_connections;
  options.per_address.requests_per_second = sc.per_address_rps;
  options.body_memory_bytes =
      sc.body_memory_mb ? sc.body_memory_mb * 1024 * 1024 : net::MemoryBudget::machine_default();
  options.admin_listener = sc.admin.enabled;
  options.admin_host = sc.admin.host;
  options.admin_port = sc.admin.port;

  // Each proxied request holds two descriptors: take the whole hard limit, and say so when even
  // that cannot hold max_connections.
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < 2 * options.max_connections + 64)
    spdlog::warn("open-files limit {} is below 2 x server.max_connections + 64 = {}: raise it "
                 "(ulimit -n) or lower max_connections",
                 static_cast<unsigned long long>(files.rlim_cur), 2 * options.max_connections + 64);

  // Signals go to one thread that waits for them; the event loops never see them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGUSR2);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  telemetry::AccessLog access_log(sc.access_log);
  if (!access_log.ok()) {
    spdlog::error("cannot open server.access_log \"{}\" for appending", sc.access_log);
    return 1;
  }
  // Governance: its store opened (and migrated) and its definitions loaded before the first
  // request; its ledger's writer runs until the loops have stopped.
  std::unique_ptr<governance::Governor> governor;
  server::AlertNotifier alerts(runtime->config().upstream.ca_file);
  if (const config::GovernanceConfig& gc = runtime->config().governance; gc.enabled) {
    try {
      store::SqliteOptions so;
      so.path = gc.sqlite_path;
      so.fsync = gc.durability == "fsync";
      governance::LedgerOptions lo;
      lo.durability = gc.durability == "async"   ? governance::LedgerOptions::Durability::async
                      : gc.durability == "fsync" ? governance::LedgerOptions::Durability::fsync
                                                 : governance::LedgerOptions::Durability::sync;
      lo.async_window_ms = gc.async_window_ms;
      lo.spool_dir = gc.spool_dir;
      lo.max_spool_bytes = static_cast<std::uint64_t>(gc.spool_max_mb) * 1024 * 1024;
      std::unique_ptr<governance::Store> st;
      if (gc.store == "postgres") {
        store::PostgresOptions po;
        po.conninfo = gc.postgres.url;
        po.refresh_ms = gc.postgres.refresh_ms;
        st = std::make_unique<store::PostgresStore>(po);
      } else {
        st = std::make_unique<store::SqliteStore>(so);
      }
      governor = std::make_unique<governance::Governor>(
          std::move(st), lo, [](const std::string& e) { spdlog::error("{}", e); },
          [&alerts](const governance::BudgetAlert& a) { alerts.notify(a); });
    } catch (const std::exception& e) {
      spdlog::error("governance: {}", e.what());
      return 1;
    }
    spdlog::info("governance: store {}, ledger durability {} (spool {}), {} admin key(s)",
                 governor->store().describe(), gc.durability, gc.spool_dir, gc.admin_keys.size());
  }
  // Budgets and limits counted across nodes in Redis (its connections are the loops' own).
  std::unique_ptr<shared::SharedCounters> counters;
  if (governor) {
    const config::GovernanceConfig& gc = runtime->config().governance;
    if (gc.redis.enabled) {
      counters = std::make_unique<shared::SharedCounters>(gc.redis, *governor);
      spdlog::info("governance: budgets and rate limits shared through redis {}:{} (db {}{})", gc.redis.host,
                   gc.redis.port, gc.redis.database, gc.redis.tls ? ", tls" : "");
    } else if (gc.store == "postgres") {
      spdlog::warn("governance: store postgres without redis: budgets and rate limits are counted by each node "
                   "on its own (add governance.redis to share them; docs/scaling.md)");
    }
  }
  server::Shared shared(runtime, access_log, health_registry, sc.decisions_kept, sc.feedback_log, sc.feedback_kept);
  shared.governor = governor.get();
  shared.counters = counters.get();
  shared.quotas = &quotas;
  runtime.reset();  // the shared source owns it now (a reload must be able to free it)
  net::Server server(options, [&](net::Loop& loop) -> std::unique_ptr<net::Handler> {
    return std::make_unique<server::Gateway>(loop, shared);
  });
  std::string error;
  if (!server.bind(error)) {
    spdlog::error("{}", error);
    return 1;
  }
  if (!port_file.empty()) {
    // The public port; the admin listener's on a second line when there is one.
    std::ofstream out(port_file + ".tmp");
    out << server.port() << "\n";
    if (options.admin_listener) out << server.admin_port() << "\n";
    out.close();
    std::rename((port_file + ".tmp").c_str(), port_file.c_str());
  }
  spdlog::info("switchyard {} listening on {}:{} with {} event loop(s), {} route(s)", core::version(),
               options.host, server.port(), options.threads, shared.runtime.get()->routes().size());
  if (options.admin_listener)
    spdlog::info("admin listener on {}:{} (health, decisions, admin API)", options.admin_host, server.admin_port());
  std::optional<ConfigWatcher> watcher;
  if (watch) watcher.emplace(path, shared);

  std::thread signal_thread([&] {
    int count = 0;
    for (;;) {
      int sig = 0;
      if (sigwait(&signals, &sig) != 0 || sig == SIGUSR2) return;
      if (sig == SIGHUP) {
        spdlog::info("SIGHUP: reloading {}", path);
        reload(path, shared);
        continue;
      }
      if (++count == 1) {
        spdlog::info("signal {}: draining (deadline {} ms)", sig, sc.drain_timeout_ms);
        server.drain();
      } else {
        spdlog::warn("second signal: stopping now");
        server.stop();
      }
    }
  });
  server.run();
  // The loops have stopped; their io_contexts live on with the server, so the ledger's last
  // completions still have somewhere to go.
  if (governor) governor->ledger().stop(sc.drain_timeout_ms);
  alerts.stop();
  pthread_kill(signal_thread.native_handle(), SIGUSR2);
  signal_thread.join();
  spdlog::info("switchyard stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Service messages on stderr; stdout carries the access log by default.
  spdlog::set_default_logger(spdlog::stderr_color_mt("switchyard"));
  CLI::App app{"Switchyard: a self-hosted AI router between your applications and LLM providers"};
  app.require_subcommand(0, 1);
  bool show_version = false;
  app.add_flag("--version", show_version, "Print the version and exit");

  std::string config_path;
  std::string port_file;
  int threads = 0;
  auto* serve = app.add_subcommand("serve", "Run the gateway");
  serve->add_option("-c,--config", config_path, "Configuration file (YAML)")->required();
  serve->add_option("--port-file", port_file, "Write the listening port to this file once bound");
  serve->add_option("--threads", threads, "Event loops (overrides server.threads)");
  bool no_watch = false;
  serve->add_flag("--no-watch", no_watch, "Do not reload the configuration when its file changes (SIGHUP still does)");

  std::string request_path;
  std::vector<std::string> explain_headers;
  bool explain_json = false;
  auto* explain = app.add_subcommand("explain", "Print the routing plan a request would get");
  explain->add_option("-c,--config", config_path, "Configuration file (YAML)")->required();
  explain->add_option("-r,--request", request_path, "Request body (OpenAI chat or Anthropic messages JSON)")->required();
  explain->add_option("-H,--header", explain_headers, "An override header, e.g. 'x-switchyard-policy: cost'");
  explain->add_flag("--json", explain_json, "Print the decision record as JSON");

  auto* check = app.add_subcommand("check", "Validate a configuration and print every problem");
  check->add_option("-c,--config", config_path, "Configuration file (YAML)")->required();

  std::string key;
  auto* hash = app.add_subcommand("hash-key", "Print the SHA-256 of a client key, for keys[].sha256");
  hash->add_option("key", key, "The key (read from stdin when omitted)");

  server::RouterCliOptions router_options;
  auto* router = app.add_subcommand("router", "Train and evaluate the complexity classifier");
  router->require_subcommand(1);
  // The training options, shared by `train` and `cv`.
  auto training_options = [&](CLI::App* cmd) {
    cmd->add_option("--strong", router_options.strong, "Strong model (default: the data's strong_model)");
    cmd->add_option("--weak", router_options.weak, "Weak model (default: the data's weak_model)");
    cmd->add_option("--epochs", router_options.epochs, "Passes over the data (1: more memorise)")->check(CLI::Range(1, 100));
    cmd->add_option("--learning-rate", router_options.learning_rate, "AdaGrad base rate")->check(CLI::Range(1e-6, 10.0));
    cmd->add_option("--hash-bits", router_options.hash_bits, "Hashed feature buckets, 2^N")->check(CLI::Range(8, 24));
    cmd->add_option("--ensemble", router_options.ensemble, "SGD runs averaged, each in another order")->check(CLI::Range(1, 100));
    cmd->add_flag("--words", router_options.words, "Also hashed words and word bigrams (default: character 4-grams)");
    cmd->add_option("--balance", router_options.balance, "Weight rows by (mean category size / theirs)^B (0: off)")->check(CLI::Range(0.0, 4.0));
    cmd->add_option("--seed", router_options.seed, "Shuffling seed (runs use seed, seed+1, ...)");
  };
  auto* train = router->add_subcommand("train", "Train a model from routing data (JSONL)");
  train->add_option("--data", router_options.data, "Rows of {prompt|messages, outcomes: {model: score}}")->required();
  train->add_option("--out", router_options.model, "Model file to write")->required();
  train->add_option("--holdout", router_options.holdout, "K/N: leave out the categories of part K of N");
  train->add_option("--holdout-category", router_options.holdout_category, "Leave out this category (a whole benchmark)");
  train->add_flag("--all-models", router_options.all_models, "A head for every model in the outcomes, not just the pair");
  training_options(train);
  auto* eval = router->add_subcommand("eval", "Evaluate a model: APGR, CPT(50%), CPT(80%), PGR curve");
  eval->add_option("--model", router_options.model, "Model file")->required();
  eval->add_option("--data", router_options.data, "Rows to evaluate on")->required();
  eval->add_option("--strong", router_options.strong, "Strong model (default: the model's)");
  eval->add_option("--weak", router_options.weak, "Weak model (default: the model's)");
  eval->add_option("--holdout", router_options.holdout, "K/N: evaluate only the categories of part K of N");
  eval->add_option("--holdout-category", router_options.holdout_category, "Evaluate only this category");
  eval->add_option("--svg", router_options.svg, "Write the PGR curve as SVG");
  eval->add_option("--cost-svg", router_options.cost_svg, "Models with 3+ heads: write the quality-cost curve as SVG");
  eval->add_option("--seed", router_options.seed, "Seed of the random baseline");

  auto* cv = router->add_subcommand("cv", "Cross-validate by category: train on the other parts, score each part");
  cv->add_option("--data", router_options.data, "Rows of {prompt|messages, outcomes, category}")->required();
  cv->add_option("--folds", router_options.folds, "Parts the categories are split into")->check(CLI::Range(2, 1000));
  cv->add_option("--svg", router_options.svg, "Write the pooled PGR curve as SVG");
  cv->add_option("--split", router_options.split, "category: categories held out; row: rows split by id (in-distribution)")
      ->check(CLI::IsMember({"category", "row"}));
  training_options(cv);

  std::string savings_log;
  auto* savings = router->add_subcommand("savings", "What the traffic cost against the strongest model of each route");
  savings->add_option("-c,--config", config_path, "Configuration file (YAML)")->required();
  savings->add_option("--log", savings_log, "Access log (JSON lines)")->required();

  CLI::App* admin = server::add_admin_commands(app);

  CLI11_PARSE(app, argc, argv);
  if (*admin) return server::run_admin();
  if (*savings) return server::router_savings(config_path, savings_log);
  if (*train) return server::router_train(router_options);
  if (*eval) return server::router_eval(router_options);
  if (*cv) return server::router_cv(router_options);
  if (show_version) {
    std::cout << "switchyard " << core::version() << "\n";
    return 0;
  }
  if (*serve) return cmd_serve(config_path, port_file, threads, !no_watch);
  if (*explain) return cmd_explain(config_path, request_path, explain_headers, explain_json);
  if (*check) return cmd_check(config_path);
  if (*hash) return cmd_hash_key(key);
  std::cout << app.help();
  return 0;
}
