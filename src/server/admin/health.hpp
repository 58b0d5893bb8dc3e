#pragma once

#include <cstdint>
#include <string>

#include "server/runtime.hpp"

/// `GET /v1/switchyard/health`: every deployment's live state (circuit, error rate, latency,
/// rate-limit headroom), for any valid key.
namespace switchyard::server::admin {

/// The report's JSON body at `now` (steady milliseconds).
std::string health_json(const Runtime& runtime, std::int64_t now);

}  // namespace switchyard::server::admin
