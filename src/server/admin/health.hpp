#pragma once

#include <cstdint>
#include <string>

#include "server/runtime.hpp"

/// `GET /v1/switchyard/health`: the deployments' live state (circuit, error rate, latency,
/// rate-limit headroom): every deployment for an admin key, a key's own routes' otherwise.
namespace switchyard::server::admin {

/// The report's JSON body at `now` (steady milliseconds).
/// `key` null or an admin key: every deployment. Another key: only the deployments of the routes
/// it may use (what the routing of its own requests depends on; nothing of other routes).
std::string health_json(const Runtime& runtime, std::int64_t now, const config::KeyConfig* key = nullptr);

}  // namespace switchyard::server::admin
