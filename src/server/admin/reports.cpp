#include "server/admin/reports.hpp"

#include <algorithm>
#include <fstream>

#include "dialects/json_util.hpp"

namespace switchyard::server::admin {

using core::ApiError;
using core::ErrorKind;

Report decision_report(const routing::DecisionRing& ring, std::string_view target, const config::KeyConfig& key,
                       std::int64_t now_ms) {
  std::string_view query;
  if (auto q = target.find('?'); q != std::string_view::npos) query = target.substr(q + 1);
  std::string_view id;
  while (!query.empty()) {
    std::string_view pair = query.substr(0, query.find('&'));
    query.remove_prefix(std::min(query.size(), pair.size() + 1));
    if (pair.substr(0, 11) == "request_id=") id = pair.substr(11);
  }
  if (id.empty())
    return ApiError::make(ErrorKind::invalid_request, "Missing query parameter request_id.", "request_id",
                          "missing_required_parameter");
  auto found = ring.find(id, key.admin ? std::string_view{} : std::string_view(key.name), now_ms);
  if (!found)
    return ApiError::make(ErrorKind::not_found,
                          "No decision record for request " + std::string(id) +
                              " (unknown, someone else's, or no longer kept).",
                          "request_id", "decision_not_found");
  return std::move(*found);
}

Report record_feedback(std::string_view body, const config::KeyConfig& key, FeedbackLog& log) {
  if (log.path.empty())
    return ApiError::make(ErrorKind::invalid_request, "Feedback is not enabled on this gateway (server.feedback_log).",
                          {}, "feedback_disabled");
  auto parsed = dialects::parse_json(body, 8);
  if (!parsed || !parsed->is_object())
    return ApiError::make(ErrorKind::invalid_request, "We could not parse the JSON body of your request.", {},
                          "invalid_json");
  const auto& o = parsed->get_object();
  std::string request_id(dialects::str_or(o, "request_id"));
  double score = -1;
  if (const auto* s = o.if_contains("score"); s && s->is_number()) score = s->to_number<double>();
  else if (auto thumbs = dialects::str_or(o, "thumbs"); thumbs == "up" || thumbs == "down")
    score = thumbs == "up" ? 1.0 : 0.0;
  if (request_id.empty())
    return ApiError::make(ErrorKind::invalid_request, "Missing required parameter: 'request_id'.", "request_id",
                          "missing_required_parameter");
  if (!(score >= 0 && score <= 1))
    return ApiError::make(ErrorKind::invalid_request,
                          "Give 'score' (a number from 0 to 1) or 'thumbs' (\"up\" or \"down\").", "score",
                          "invalid_value");
  auto pending = log.pending.take(request_id, key.admin ? std::string_view{} : std::string_view(key.name));
  if (!pending)
    return ApiError::make(ErrorKind::not_found,
                          "No request " + request_id +
                              " awaits feedback (not routed by complexity, someone else's, already rated, or no "
                              "longer kept).",
                          "request_id", "feedback_not_found");
  std::string row = routing::complexity::feedback_row(*pending, score);
  bool written = false;
  {
    std::lock_guard lock(log.mutex);
    std::ofstream out(log.path, std::ios::app);
    written = static_cast<bool>(out << row);
  }
  if (!written)
    return ApiError::make(ErrorKind::internal, "The feedback log could not be written.", {}, "feedback_write_failed");
  return std::string(R"({"object":"switchyard.feedback","recorded":true})");
}

}  // namespace switchyard::server::admin
