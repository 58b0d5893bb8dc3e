#pragma once

#include <memory>
#include <random>
#include <string>
#include <unordered_map>

#include "net/server.hpp"
#include "net/upstream.hpp"
#include "server/runtime.hpp"
#include "telemetry/access_log.hpp"

namespace switchyard::server {

/// The gateway's request handler for one event loop: routes, auth, the OpenAI fast path,
/// failover and the access log. Owns the loop's upstream pool.
class Gateway final : public net::Handler {
 public:
  Gateway(net::Loop& loop, std::shared_ptr<const Runtime> runtime, telemetry::AccessLog& log);

  boost::asio::awaitable<void> handle(net::Request request, net::ResponseWriter& writer) override;
  void on_drain() override;
  void on_refused(const net::http1::RequestHead* head, const core::ApiError& error,
                  net::Clock::time_point received) override;

 private:
  struct Exchange;
  boost::asio::awaitable<void> chat_completions(net::Request& request, net::ResponseWriter& writer,
                                                Exchange& ex);
  boost::asio::awaitable<void> models(net::Request& request, net::ResponseWriter& writer,
                                      Exchange& ex);
  boost::asio::awaitable<void> fail(net::ResponseWriter& writer, Exchange& ex,
                                    const core::ApiError& error);
  const config::KeyConfig* authenticate(const net::Request& request, Exchange& ex,
                                        core::ApiError& error) const;
  std::string make_request_id();
  void log_access(std::string_view method, std::string_view path,
                  const Exchange& ex, net::Clock::time_point received);

  net::Loop& loop_;
  std::shared_ptr<const Runtime> runtime_;
  telemetry::AccessLog& log_;
  net::UpstreamPool pool_;
  /// Bearer tokens already checked on this loop → their key (saves a SHA-256 per request).
  struct TokenHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  mutable std::unordered_map<std::string, const config::KeyConfig*, TokenHash, std::equal_to<>>
      key_cache_;
  std::mt19937_64 rng_;
  std::uint64_t counter_ = 0;
};

}  // namespace switchyard::server
