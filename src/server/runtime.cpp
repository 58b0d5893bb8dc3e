#include "server/runtime.hpp"

namespace switchyard::server {

Runtime::Runtime(config::Config config) : config_(std::move(config)), keys_(config_.keys) {
  providers_.reserve(config_.providers.size());
  for (const auto& p : config_.providers) {
    ProviderRuntime r;
    r.config = &p;
    r.origin = net::Origin(p.base_url.host, p.base_url.port, p.base_url.tls());
    std::string host = p.base_url.host.find(':') != std::string::npos ? "[" + p.base_url.host + "]"
                                                                       : p.base_url.host;
    bool default_port = p.base_url.port == (p.base_url.tls() ? 443 : 80);
    r.chat_head_prefix = "POST " + p.base_url.path + "/chat/completions HTTP/1.1\r\nHost: " + host +
                         (default_port ? "" : ":" + std::to_string(p.base_url.port)) + "\r\n";
    if (!p.api_key.empty()) r.chat_head_prefix += "Authorization: Bearer " + p.api_key + "\r\n";
    r.chat_head_prefix += "Content-Type: application/json\r\nUser-Agent: switchyard\r\n";
    providers_.push_back(std::move(r));
  }
  deployments_.reserve(config_.deployments.size());
  for (const auto& d : config_.deployments) {
    DeploymentRuntime r;
    r.config = &d;
    for (const auto& p : providers_)
      if (p.config->name == d.provider) r.provider = &p;
    deployments_.push_back(r);
  }
  routes_.reserve(config_.routes.size());
  for (const auto& route : config_.routes) {
    RouteRuntime r;
    r.config = &route;
    for (const auto& name : route.candidates)
      for (const auto& d : deployments_)
        if (d.config->name == name && d.config->enabled && d.provider && d.provider->config->enabled)
          r.candidates.push_back(&d);
    routes_.push_back(std::move(r));
  }
  for (const auto& r : routes_) route_index_.emplace(r.config->name, &r);
}

const RouteRuntime* Runtime::find_route(std::string_view name) const {
  auto it = route_index_.find(name);
  return it == route_index_.end() ? nullptr : it->second;
}

net::UpstreamOptions upstream_options(const config::UpstreamConfig& c) {
  net::UpstreamOptions o;
  o.connect_timeout = std::chrono::milliseconds(c.connect_timeout_ms);
  o.first_byte_timeout = std::chrono::milliseconds(c.first_byte_timeout_ms);
  o.total_timeout = std::chrono::milliseconds(c.total_timeout_ms);
  o.max_idle_per_host = c.max_idle_per_host;
  o.max_connections_per_host = c.max_connections_per_host;
  o.idle_ttl = std::chrono::milliseconds(c.idle_ttl_ms);
  o.dns_ttl = std::chrono::milliseconds(c.dns_cache_ttl_ms);
  o.ca_file = c.ca_file;
  return o;
}

}  // namespace switchyard::server
