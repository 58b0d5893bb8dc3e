#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <variant>

#include "config/config.hpp"
#include "core/error.hpp"
#include "routing/complexity/feedback.hpp"
#include "routing/decision.hpp"

/// The gateway's own endpoints under `/v1/switchyard/`, as plain functions: the JSON body to
/// answer with, or the refusal. (`health.hpp`: the health report.)
namespace switchyard::server::admin {

using Report = std::variant<std::string, core::ApiError>;

/// `GET /v1/switchyard/decisions?request_id=`: the decision record of a request, if still kept.
/// Admin keys read every record; other keys only their own requests'.
Report decision_report(const routing::DecisionRing& ring, std::string_view target, const config::KeyConfig& key,
                       std::int64_t now_ms);

/// Where feedback goes: the requests that await it, and the JSONL file rows are appended to
/// (one writer at a time). An empty path: feedback is off.
struct FeedbackLog {
  const std::string& path;
  routing::complexity::FeedbackStore& pending;
  std::mutex& mutex;
};

/// `POST /v1/switchyard/feedback` (`{"request_id", "score" | "thumbs"}`): a training row for a
/// complexity-routed request's answer, from the key that made it (or an admin key).
Report record_feedback(std::string_view body, const config::KeyConfig& key, FeedbackLog& log);

}  // namespace switchyard::server::admin
