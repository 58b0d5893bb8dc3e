#include "server/alerts.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include "config/config.hpp"
#include "governance/admin_api.hpp"

namespace switchyard::server {

namespace http = boost::beast::http;
namespace json = boost::json;

namespace {

std::int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// One POST, bounded to 5 s; the status, or the error.
std::string post(const std::string& url, const std::string& body, const std::string& ca_file, int& status) {
  config::Url u;
  std::string error;
  if (!config::parse_url(url, u, error)) return error;
  namespace asio = boost::asio;
  asio::io_context io;
  http::request<http::string_body> req{http::verb::post, u.path.empty() ? "/" : u.path, 11};
  req.set(http::field::host, u.host);
  req.set(http::field::content_type, "application/json");
  req.set(http::field::user_agent, "switchyard-alerts");
  req.body() = body;
  req.prepare_payload();
  http::response<http::string_body> res;
  boost::beast::flat_buffer buffer;
  boost::system::error_code ec;
  asio::ip::tcp::resolver resolver(io);
  auto endpoints = resolver.resolve(u.host, std::to_string(u.port), ec);
  if (ec) return ec.message();
  if (u.tls()) {
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    ctx.set_default_verify_paths();
    if (!ca_file.empty()) ctx.load_verify_file(ca_file, ec);
    ctx.set_verify_mode(asio::ssl::verify_peer);
    boost::beast::ssl_stream<boost::beast::tcp_stream> stream(io, ctx);
    SSL_set_tlsext_host_name(stream.native_handle(), u.host.c_str());
    stream.set_verify_callback(asio::ssl::host_name_verification(u.host));
    boost::beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(5));
    boost::beast::get_lowest_layer(stream).connect(endpoints, ec);
    if (!ec) stream.handshake(asio::ssl::stream_base::client, ec);
    if (!ec) http::write(stream, req, ec);
    if (!ec) http::read(stream, buffer, res, ec);
  } else {
    boost::beast::tcp_stream stream(io);
    stream.expires_after(std::chrono::seconds(5));
    stream.connect(endpoints, ec);
    if (!ec) http::write(stream, req, ec);
    if (!ec) http::read(stream, buffer, res, ec);
  }
  if (ec) return ec.message();
  status = res.result_int();
  return {};
}

}  // namespace

AlertNotifier::AlertNotifier(std::string ca_file, std::size_t max_queued)
    : ca_file_(std::move(ca_file)), max_queued_(max_queued), thread_([this] { run(); }) {}

AlertNotifier::~AlertNotifier() { stop(); }

std::string AlertNotifier::payload(const governance::BudgetAlert& a) {
  const governance::Budget& b = a.budget;
  std::string text = "Switchyard: budget " + b.id + " (" + std::string(governance::to_string(b.scope)) + " " +
                     b.subject + ", " + std::string(governance::to_string(b.period)) + ") has reached " +
                     std::to_string(a.percent) + "% of $" + b.limit.to_string() + ": $" + a.spent.to_string() +
                     " spent" + (b.hard && a.percent >= 100 ? "; requests that do not fit are refused." : ".");
  json::object o{{"type", "budget_alert"},
                 {"text", text},
                 {"budget",
                  json::object{{"id", b.id},
                               {"scope", governance::to_string(b.scope)},
                               {"subject", b.subject},
                               {"period", governance::to_string(b.period)},
                               {"limit_usd", b.limit.to_string()},
                               {"hard", b.hard}}},
                 {"percent", a.percent},
                 {"spent_usd", a.spent.to_string()},
                 {"period_start", b.period == governance::Period::total ? json::value(nullptr)
                                                                        : json::value(governance::rfc3339(a.period_start_ms))},
                 {"at", governance::rfc3339(governance::unix_now_ms())}};
  return json::serialize(o);
}

void AlertNotifier::notify(const governance::BudgetAlert& a) {
  spdlog::warn("budget {} ({} {}, {}): {}% of ${} reached, ${} spent", a.budget.id, governance::to_string(a.budget.scope),
               a.budget.subject, governance::to_string(a.budget.period), a.percent, a.budget.limit.to_string(),
               a.spent.to_string());
  if (a.budget.webhook.empty()) return;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    if (queue_.size() >= max_queued_) {
      ++stats_.dropped;
      return;
    }
    queue_.push_back({a.budget.webhook, payload(a)});
  }
  wake_.notify_one();
}

void AlertNotifier::stop(std::int64_t deadline_ms) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) {
      if (!thread_.joinable()) return;
    }
    stopping_ = true;
    stop_by_ms_ = steady_ms() + deadline_ms;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

AlertNotifier::Stats AlertNotifier::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void AlertNotifier::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty() || (stopping_ && steady_ms() >= stop_by_ms_)) {
      stats_.dropped += queue_.size();
      return;
    }
    Item item = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    int status = 0;
    std::string error = post(item.url, item.body, ca_file_, status);
    if (error.empty() && status >= 400) error = "HTTP " + std::to_string(status);
    if (!error.empty()) spdlog::warn("budget alert webhook {}: {}", item.url, error);
    lock.lock();
    if (error.empty()) ++stats_.sent;
    else ++stats_.failed;
  }
}

}  // namespace switchyard::server
