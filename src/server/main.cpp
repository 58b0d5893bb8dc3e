#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <fstream>
#include <iostream>
#include <pthread.h>
#include <sys/resource.h>
#include <thread>
#include <unistd.h>

#include "config/config.hpp"
#include "core/version.hpp"
#include "governance/keys.hpp"
#include "net/server.hpp"
#include "server/gateway.hpp"
#include "server/runtime.hpp"
#include "telemetry/access_log.hpp"

using namespace switchyard;

namespace {

int cmd_check(const std::string& path) {
  config::LoadResult loaded = config::load_config_file(path);
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
  server::Runtime runtime(c);
  for (const auto& route : runtime.routes())
    if (route.candidates.empty())
      std::cout << "  warning: route " << route.config->name
                << " has no enabled deployment; requests to it get 503\n";
  return 0;
}

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

int cmd_serve(const std::string& path, const std::string& port_file, int threads_override) {
  config::LoadResult loaded = config::load_config_file(path);
  if (!loaded.ok()) {
    std::cerr << config::format_problems(loaded.problems);
    std::cerr << loaded.problems.size() << " problem(s) in " << path << "; not starting\n";
    return 1;
  }
  auto runtime = std::make_shared<const server::Runtime>(std::move(loaded.config));
  const config::ServerConfig& sc = runtime->config().server;

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
  net::Server server(options, [&](net::Loop& loop) -> std::unique_ptr<net::Handler> {
    return std::make_unique<server::Gateway>(loop, runtime, access_log);
  });
  std::string error;
  if (!server.bind(error)) {
    spdlog::error("{}", error);
    return 1;
  }
  if (!port_file.empty()) {
    std::ofstream(port_file + ".tmp") << server.port() << "\n";
    std::rename((port_file + ".tmp").c_str(), port_file.c_str());
  }
  spdlog::info("switchyard {} listening on {}:{} with {} event loop(s), {} route(s)", core::version(),
               options.host, server.port(), options.threads, runtime->routes().size());

  std::thread signal_thread([&] {
    int count = 0;
    for (;;) {
      int sig = 0;
      if (sigwait(&signals, &sig) != 0 || sig == SIGUSR2) return;
      if (sig == SIGHUP) {
        spdlog::warn("SIGHUP: configuration reload is not supported yet; restart to apply changes");
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

  auto* check = app.add_subcommand("check", "Validate a configuration and print every problem");
  check->add_option("-c,--config", config_path, "Configuration file (YAML)")->required();

  std::string key;
  auto* hash = app.add_subcommand("hash-key", "Print the SHA-256 of a client key, for keys[].sha256");
  hash->add_option("key", key, "The key (read from stdin when omitted)");

  CLI11_PARSE(app, argc, argv);
  if (show_version) {
    std::cout << "switchyard " << core::version() << "\n";
    return 0;
  }
  if (*serve) return cmd_serve(config_path, port_file, threads);
  if (*check) return cmd_check(config_path);
  if (*hash) return cmd_hash_key(key);
  std::cout << app.help();
  return 0;
}
