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
#include "governance/governor.hpp"
#include "server/runtime.hpp"

/// The pipeline's admission steps, shared by the server and `switchyard explain`: read the
/// client's body, resolve the route it names (and whether the key may use it), read the
/// request's routing overrides, and governance (rate limits before planning, budgets after).
/// Plain functions: a refusal is the `ApiError` to render in the client's dialect.
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

/// Whether a key restricted to some models (`KeyConfig::models`) may reach this deployment:
/// its upstream model, its catalogue model or its name is listed.
bool key_may_reach(const config::KeyConfig& key, const DeploymentRuntime& d);

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

/// The subjects governance knows a request by: its key (id, or a static key's name), the key's
/// team, the end user it names, and its route.
governance::Subjects subjects_of(const config::KeyConfig& key, std::string_view user, std::string_view route);

/// Headers of a governance refusal, besides `retry-after` (which goes in `retry_after`).
using RefusalHeaders = std::vector<std::pair<std::string, std::string>>;

/// Rate limits before planning: the request and its token estimate taken from every limit that
/// applies (into `held`), or the 429 to send — in the client's dialect, with `retry-after` and
/// the rate-limit headers its SDK backs off by (OpenAI's `x-ratelimit-*`, Anthropic's
/// `anthropic-ratelimit-*`).
std::optional<core::ApiError> check_limits(governance::Governor& governor, const governance::Subjects& subjects,
                                           std::int64_t tokens, std::int64_t now_ms, dialects::Dialect client,
                                           governance::Admission& held, RefusalHeaders& headers,
                                           std::string& retry_after);

/// A rate limit's refusal as the client's SDK reads it (the 429, its headers).
core::ApiError limit_refused(const governance::LimitRefusal& r, dialects::Dialect client, RefusalHeaders& headers,
                             std::string& retry_after);
/// A budget's refusal: the 429 `budget_exceeded`.
core::ApiError budget_refused(const governance::BudgetRefusal& r, RefusalHeaders& headers);

/// The most the plan can cost: every deployment it may try priced at its ceiling for this
/// request (`governance::max_cost`: the token estimate with a margin, the output bound — the
/// request's max tokens, else the model's maximum output), the dearest taken. nullopt when no
/// deployment of the plan is priced.
std::optional<core::Money> plan_ceiling(const RouteRuntime& route, const routing::Plan& plan,
                                        const routing::RequestTraits& traits, std::int64_t unix_s);

/// Budgets between plan and execution: `amount` reserved against every budget that applies
/// (into `held`), or the 429 `budget_exceeded` naming the budget and when it resets — marked
/// not to be retried (`x-should-retry: false`: the SDKs would otherwise wait and try again).
std::optional<core::ApiError> reserve_budgets(governance::Governor& governor, const governance::Subjects& subjects,
                                              core::Money amount, std::int64_t now_ms, governance::Admission& held,
                                              RefusalHeaders& headers);

}  // namespace switchyard::server
