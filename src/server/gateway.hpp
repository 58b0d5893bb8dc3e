#pragma once

#include <memory>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "dialects/openai/chat_request.hpp"
#include "net/server.hpp"
#include "net/upstream.hpp"
#include "server/runtime.hpp"
#include "telemetry/access_log.hpp"

namespace switchyard::dialects {
struct UpstreamRequest;
}

namespace switchyard::server {

/// Strings handed from one request to the next on a loop, so that the per-request buffers
/// (patched body, upstream head, response) keep their capacity instead of going back to malloc.
class StringPool {
 public:
  /// A cleared string, with the capacity of an earlier one when there is one.
  std::string take() {
    if (free_.empty()) return {};
    std::string s = std::move(free_.back());
    free_.pop_back();
    s.clear();
    return s;
  }
  void give(std::string s) {
    if (free_.size() < 256 && s.capacity() <= 256 * 1024) free_.push_back(std::move(s));
  }

  /// A string on loan for one scope.
  struct Loan {
    StringPool& pool;
    std::string s = pool.take();
    ~Loan() { pool.give(std::move(s)); }
  };

 private:
  std::vector<std::string> free_;
};

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
  /// Why the last attempt failed: a gateway-made error, or an upstream's HTTP error (status and
  /// body), for the answer when no deployment answered.
  struct Failure {
    std::optional<core::ApiError> error;
    int status = 0;
    std::string body;
  };
  enum class Outcome {
    answered,     ///< a response (or a stream) went to the client
    next,         ///< this deployment failed before anything was sent: try the next one
    give_up,      ///< an answer not worth failing over (a 4xx): send `Failure`
    client_gone,  ///< the client left; nothing more to do
  };

  struct Chat;
  struct StreamProcessor;
  enum class Endpoint { chat, embeddings };

  /// Chat in either client dialect (`/v1/chat/completions`, `/v1/messages`).
  boost::asio::awaitable<void> chat(net::Request& request, net::ResponseWriter& writer,
                                    Exchange& ex);
  boost::asio::awaitable<void> embeddings(net::Request& request, net::ResponseWriter& writer,
                                          Exchange& ex);
  boost::asio::awaitable<void> count_tokens(net::Request& request, net::ResponseWriter& writer,
                                            Exchange& ex);
  /// Tries the route's deployments in order until one answers.
  boost::asio::awaitable<void> run_candidates(const RouteRuntime& route, Chat& chat,
                                              net::ResponseWriter& writer, Exchange& ex);
  /// One deployment: build its body, send, and relay (or translate) its answer unless it failed
  /// before the first byte.
  boost::asio::awaitable<Outcome> attempt(Chat& chat, const DeploymentRuntime& d,
                                          bool last_candidate, net::UpstreamExchange& up,
                                          net::ResponseWriter& writer, Exchange& ex,
                                          Failure& failure);
  boost::asio::awaitable<Outcome> relay_translated(Chat& chat, const DeploymentRuntime& d,
                                                   const dialects::UpstreamRequest& sent,
                                                   net::UpstreamExchange& up,
                                                   net::ResponseWriter& writer, Exchange& ex,
                                                   Failure& failure);
  boost::asio::awaitable<Outcome> relay_json(Chat& chat, const DeploymentRuntime& d,
                                             net::UpstreamExchange& up,
                                             net::ResponseWriter& writer, Exchange& ex,
                                             Failure& failure);
  boost::asio::awaitable<Outcome> relay_stream(StreamProcessor& processor,
                                               const DeploymentRuntime& d,
                                               net::UpstreamExchange& up,
                                               net::ResponseWriter& writer, Exchange& ex,
                                               Failure& failure);
  boost::asio::awaitable<void> answer_failure(net::ResponseWriter& writer, Exchange& ex,
                                              const Failure& failure);
  static void fail_attempt(Exchange& ex, Failure& failure, core::ApiError error);
  boost::asio::awaitable<void> models(net::Request& request, net::ResponseWriter& writer,
                                      Exchange& ex);
  boost::asio::awaitable<void> fail(net::ResponseWriter& writer, Exchange& ex,
                                    const core::ApiError& error);
  /// The caller's key, or nullptr after a 401 went out.
  boost::asio::awaitable<const config::KeyConfig*> authenticate(const net::Request& request,
                                                                net::ResponseWriter& writer,
                                                                Exchange& ex);
  const config::KeyConfig* find_key(const net::Request& request, Exchange& ex) const;
  /// Checks route, key permission and enabled deployments; answers and returns nullptr if any
  /// fails.
  boost::asio::awaitable<const RouteRuntime*> resolve_route(std::string_view model,
                                                            const config::KeyConfig& key,
                                                            net::ResponseWriter& writer,
                                                            Exchange& ex);
  std::string_view make_request_id(char (&out)[128]);
  void log_access(std::string_view method, std::string_view path,
                  const Exchange& ex, net::Clock::time_point received);

  net::Loop& loop_;
  std::shared_ptr<const Runtime> runtime_;
  telemetry::AccessLog& log_;
  net::UpstreamPool pool_;
  StringPool strings_;
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
