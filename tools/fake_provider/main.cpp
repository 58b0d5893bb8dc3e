// The scripted fake provider as a standalone program: the demo provider of the quick start, the
// upstream of the integration tests and of the benchmarks.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <csignal>
#include <fstream>
#include <iostream>
#include <pthread.h>
#include <thread>

#include "net/server.hpp"
#include "fake_provider.hpp"

using namespace switchyard;

int main(int argc, char** argv) {
  CLI::App app{"Switchyard's scripted fake OpenAI-compatible provider"};
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  int threads = 1;
  std::string behavior_json = "{}";
  std::string port_file;
  unsigned idle_timeout_ms = 60000;
  app.add_option("--idle-timeout-ms", idle_timeout_ms, "Close keep-alive connections idle this long");
  app.add_option("--host", host, "Listen address");
  app.add_option("--port", port, "Listen port (0 = any)");
  app.add_option("--threads", threads, "Event loops");
  app.add_option("--behavior", behavior_json, "Default behavior (JSON)");
  app.add_option("--port-file", port_file, "Write the listening port here once bound");
  CLI11_PARSE(app, argc, argv);

  std::string error;
  auto behavior = testing::parse_behavior(behavior_json, error);
  if (!behavior) {
    std::cerr << "--behavior: " << error << "\n";
    return 1;
  }
  std::signal(SIGPIPE, SIG_IGN);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  auto state = std::make_shared<testing::FakeProviderState>(*behavior);
  net::ServerOptions options;
  options.host = host;
  options.port = port;
  options.threads = threads;
  options.max_body_bytes = 64 * 1024 * 1024;
  options.drain_timeout = std::chrono::milliseconds(1000);
  options.idle_timeout = std::chrono::milliseconds(idle_timeout_ms);
  net::Server server(options, [state](net::Loop& loop) -> std::unique_ptr<net::Handler> {
    return std::make_unique<testing::FakeProvider>(loop, state);
  });
  if (!server.bind(error)) {
    std::cerr << error << "\n";
    return 1;
  }
  if (!port_file.empty()) {
    std::ofstream(port_file + ".tmp") << server.port() << "\n";
    std::rename((port_file + ".tmp").c_str(), port_file.c_str());
  }
  spdlog::info("fake provider listening on {}:{}", host, server.port());
  // Signals are taken by one thread with sigwait: nothing async-signal-unsafe runs in a handler.
  std::thread signal_thread([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    if (sig != SIGUSR2) server.stop();
  });
  server.run();
  pthread_kill(signal_thread.native_handle(), SIGUSR2);
  signal_thread.join();
  return 0;
}
