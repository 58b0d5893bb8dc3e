#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "core/chat.hpp"
#include "core/error.hpp"
#include "dialects/openai/chat_request.hpp"
#include "dialects/providers.hpp"
#include "routing/planner.hpp"
#include "server/runtime.hpp"

/// The pipeline's admission steps, shared by the server and `switchyard explain`: read the
/// client's body, resolve the route it names (and whether the key may use it), read the
/// request's routing overrides, and the governance checks (rate limits and budgets: hooks the
/// governance issue fills; today they admit everything). Plain functions: a refusal is the
/// `ApiError` to render in the client's dialect.
namespace switchyard::server {

/// A chat request as the pipeline holds it: the client's body, what the fast path's
/// inspection found (OpenAI clients), and the canonical form once a step needed it — decoded
/// once, on the heap (a coroutine frame holding it would hold it for a whole stream).
struct ChatInput {
  dialects::Dialect client = dialects::Dialect::openai;
  std::string_view body;
  std::string model;  ///< the route name the client asked for
  bool stream = false;
  bool client_wants_usage = false;
  std::optional<dialects::openai::ChatRequestInfo> info;  ///< OpenAI clients
  std::unique_ptr<core::ChatRequest> canonical;           ///< decoded when a step needs it

  /// The canonical form, decoded from `body` now if not yet; the 400 when it cannot be.
  std::optional<core::ApiError> decode(std::size_t max_depth);
};

/// Reads a chat body in the client's dialect: an OpenAI body inspected without a tree (the fast
/// path), an Anthropic one decoded. The 400 to send when it is not a valid request.
std::optional<core::ApiError> read_chat(dialects::Dialect client, std::string_view body, std::size_t max_depth,
                                        ChatInput& out);

/// The route `model` names, when `key` may use it (null: no key to check, as in `explain`) and
/// it has an enabled deployment; nullptr with the refusal (404, 403 or 503) in `refused`.
const RouteRuntime* resolve_route(const Runtime& runtime, std::string_view model, const config::KeyConfig* key,
                                  core::ApiError& refused);

/// The routing overrides a request sent (`x-switchyard-policy`, `-deadline-ms`,
/// `-max-cost-usd`), as text.
struct OverrideHeaders {
  std::string_view policy, deadline_ms, max_cost_usd;
  bool any() const { return !policy.empty() || !deadline_ms.empty() || !max_cost_usd.empty(); }
};

/// Validates the overrides into `out`; the refusal when the key (null: no key to check) may not
/// override routing or a value is invalid.
std::optional<core::ApiError> read_overrides(const OverrideHeaders& headers, const config::KeyConfig* key,
                                             routing::Overrides& out);

/// Governance before planning: the key's, team's and user's rate limits and budgets. Empty
/// today (admits everything); the governance issue fills it, with the refusal (429) it returns.
std::optional<core::ApiError> check_limits(const config::KeyConfig* key, const RouteRuntime& route);

/// What a request holds of its budgets while it runs (the plan's maximum cost, reserved against
/// every scope it touches). Empty today; the governance issue fills it.
struct Reservation {
  /// Why the reservation was refused (on the heap: it is kept in the frame a stream keeps).
  std::unique_ptr<core::ApiError> refused;
};

/// Governance between plan and execution: reserves the plan's maximum cost; false with the
/// refusal (429) in `out.refused` when a budget cannot cover it. Today it reserves nothing and
/// refuses nothing. What is reserved is settled (or released) with the request's record.
bool reserve(const config::KeyConfig* key, const RouteRuntime& route, const routing::Plan& plan, Reservation& out);

}  // namespace switchyard::server
