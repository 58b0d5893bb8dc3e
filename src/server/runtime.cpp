#include "server/runtime.hpp"

#include <algorithm>

#include "core/error.hpp"
#include "dialects/openai/chat_request.hpp"

namespace switchyard::server {

Runtime::Runtime(config::Config config, health::Registry* health, governance::QuotaRegistry* quotas)
    : config_(std::move(config)), health_(health), catalog_(catalog::builtin()), keys_(config_.keys) {
  for (const auto& m : config_.models) catalog_.add(m);
  providers_.reserve(config_.providers.size());
  for (const auto& p : config_.providers) {
    ProviderRuntime r;
    r.config = &p;
    r.type = dialects::find_provider_type(p.type);
    r.origin = net::Origin(p.base_url.host, p.base_url.port, p.base_url.tls());
    std::string host = p.base_url.host.find(':') != std::string::npos ? "[" + p.base_url.host + "]"
                                                                       : p.base_url.host;
    bool default_port = p.base_url.port == (p.base_url.tls() ? 443 : 80);
    r.header_lines = "Host: " + host + (default_port ? "" : ":" + std::to_string(p.base_url.port)) + "\r\n";
    if (!p.api_key.empty()) {
      switch (r.type->auth) {
        case dialects::Auth::bearer: r.header_lines += "Authorization: Bearer " + p.api_key + "\r\n"; break;
        case dialects::Auth::api_key: r.header_lines += "api-key: " + p.api_key + "\r\n"; break;
        case dialects::Auth::x_api_key: r.header_lines += "x-api-key: " + p.api_key + "\r\n"; break;
        case dialects::Auth::x_goog_api_key: r.header_lines += "x-goog-api-key: " + p.api_key + "\r\n"; break;
      }
    }
    if (r.type->dialect == dialects::Dialect::anthropic)
      r.header_lines += "anthropic-version: " + p.api_version + "\r\n";
    r.header_lines += "Content-Type: application/json\r\nUser-Agent: switchyard\r\n";
    for (auto name : r.type->rejected) r.rejected_params |= dialects::openai::param_bit(name);
    for (auto rename : r.type->renamed) r.rejected_params |= dialects::openai::param_bit(rename.from);
    providers_.push_back(std::move(r));
  }
  deployments_.reserve(config_.deployments.size());
  for (const auto& d : config_.deployments) {
    DeploymentRuntime r;
    r.config = &d;
    for (const auto& p : providers_)
      if (p.config->name == d.provider) r.provider = &p;
    if (r.provider) {
      const auto& base = r.provider->config->base_url.path;
      auto line = [&](const std::string& target) {
        return "POST " + target + " HTTP/1.1\r\n" + r.provider->header_lines;
      };
      if (r.provider->type->azure_paths) {
        std::string prefix = base + "/openai/deployments/" + d.model;
        std::string version = "?api-version=" + r.provider->config->api_version;
        r.chat_head = line(prefix + "/chat/completions" + version);
        r.stream_head = r.chat_head;
        r.embeddings_head = line(prefix + "/embeddings" + version);
        // Azure's Responses API (the v1 path: no api-version; `model` is the deployment's name).
        r.responses_head = line(base + "/openai/v1/responses");
      } else {
        switch (r.provider->dialect()) {
          case dialects::Dialect::openai:
            r.chat_head = line(base + "/chat/completions");
            r.stream_head = r.chat_head;
            r.embeddings_head = line(base + "/embeddings");
            break;
          case dialects::Dialect::anthropic:
            r.chat_head = line(base + "/messages");
            r.stream_head = r.chat_head;
            break;
          case dialects::Dialect::gemini:
            r.chat_head = line(base + "/models/" + d.model + ":generateContent");
            r.stream_head = line(base + "/models/" + d.model + ":streamGenerateContent?alt=sse");
            r.embeddings_head = line(base + "/models/" + d.model + ":batchEmbedContents");
            break;
          case dialects::Dialect::responses: break;  // no provider type speaks only it
        }
        // OpenAI's own API (and Azure's, above) takes the Responses API as it is (the
        // pass-through); OpenAI-compatible vendors get it translated to chat completions.
        if (r.provider->type->name == "openai") r.responses_head = line(base + "/responses");
      }
    }
    core::append_json_string(r.model_json, d.model);
    r.model = catalog_.find(d.catalog_model.empty() ? d.model : d.catalog_model);
    if (d.price) r.pricing = &*d.price;
    else if (r.model) r.pricing = &r.model->pricing;
    if (health_) r.health = &health_->get(d.name);
    if (quotas && (d.rpm > 0 || d.tpm > 0)) {
      r.quota = &quotas->get(d.name);
      r.quota->set(d.rpm, d.tpm);
    } else if (quotas) {
      quotas->get(d.name).set(0, 0);  // a quota removed by a reload
    }
    deployments_.push_back(std::move(r));
  }
  routes_.reserve(config_.routes.size());
  for (const auto& route : config_.routes) {
    RouteRuntime r;
    r.config = &route;
    for (const auto& name : route.candidates)
      for (const auto& d : deployments_)
        if (d.config->name == name && d.config->enabled && d.provider && d.provider->config->enabled)
          r.candidates.push_back(&d);
    // The reference: named, or the candidate whose current prompt + completion price is highest.
    std::int64_t dearest = -1;
    for (const auto& d : deployments_) {
      const bool named = route.reference.empty()
                             ? std::find(route.candidates.begin(), route.candidates.end(), d.config->name) !=
                                   route.candidates.end()
                             : d.config->name == route.reference;
      if (!named || !d.priced()) continue;
      const catalog::Prices& p = d.pricing->current();
      if (p.input + p.output > dearest) {
        dearest = p.input + p.output;
        r.reference = &d;
      }
    }
    r.table.name = route.name;
    r.table.rules = &route;
    std::vector<std::string_view> models;
    for (const DeploymentRuntime* d : r.candidates) {
      routing::Candidate c;
      c.deployment = d->config->name;
      c.provider = d->provider->config->name;
      c.provider_type = d->provider->type->name;
      c.region = d->config->region;
      c.model = d->model;
      c.model_id = d->model ? std::string_view(d->model->id) : std::string_view(d->config->model);
      c.price = d->priced() ? d->pricing->current() : catalog::Prices{};
      c.priced = d->priced();
      c.weight = d->config->weight;
      auto it = std::find(models.begin(), models.end(), c.model_id);
      c.group = static_cast<std::uint16_t>(it - models.begin());
      if (it == models.end()) models.push_back(c.model_id);
      r.table.candidates.push_back(c);
    }
    r.table.groups = static_cast<std::uint16_t>(models.size());
    for (const DeploymentRuntime* d : r.candidates) r.has_quotas = r.has_quotas || d->quota;
    routing::prepare_route(r.table);
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
  o.idle_timeout = std::chrono::milliseconds(c.idle_timeout_ms);
  o.max_idle_per_host = c.max_idle_per_host;
  o.max_connections_per_host = c.max_connections_per_host;
  o.idle_ttl = std::chrono::milliseconds(c.idle_ttl_ms);
  o.dns_ttl = std::chrono::milliseconds(c.dns_cache_ttl_ms);
  o.ca_file = c.ca_file;
  return o;
}

health::BreakerOptions breaker_options(const config::HealthConfig& c) {
  health::BreakerOptions o;
  o.window_ms = c.window_ms;
  o.min_requests = c.min_requests;
  o.error_rate = c.error_rate;
  o.consecutive_failures = c.consecutive_failures;
  o.cooldown_ms = c.cooldown_ms;
  o.max_cooldown_ms = c.max_cooldown_ms;
  o.rate_limit_cooldown_ms = c.rate_limit_cooldown_ms;
  o.misconfigured_cooldown_ms = c.misconfigured_cooldown_ms;
  return o;
}

}  // namespace switchyard::server
