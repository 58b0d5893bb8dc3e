#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "catalog/pricing.hpp"
#include "config/config.hpp"
#include "core/money.hpp"
#include "core/usage.hpp"
#include "dialects/providers.hpp"
#include "governance/governor.hpp"
#include "net/server.hpp"
#include "routing/complexity/feedback.hpp"
#include "routing/decision.hpp"
#include "server/runtime.hpp"

/// One request's state as it moves through the pipeline, in sections that each step fills:
/// who is calling (identity), where it goes (route), the plan, the attempts, what it cost
/// (accounting) and what the client is sent (reply). Settlement reads it into the accounting
/// record when the request ends.
namespace switchyard::server {

/// Upstream response headers passed on to the client (rate-limit state, retry hints): at most.
inline constexpr std::size_t kMaxPassedHeaders = 12;

/// The response's own header fields, built for one send. The gateway keeps one per loop and
/// hands it to each send; the writer copies the fields into the response head before anything
/// can suspend, so one is enough (and a stream's coroutine frames do not carry it).
struct ReplyHeaders {
  std::array<net::HeaderField, 14 + kMaxPassedHeaders + 6> fields{};
};

struct RequestContext {
  const Runtime* rt = nullptr;  ///< the runtime this request started with (pinned by the gateway)

  struct Identity {
    std::string_view request_id;  ///< in `id_storage` (no allocation per request)
    char id_storage[128];
    const config::KeyConfig* key = nullptr;
    std::string_view key_name;
    /// Holds the governance key directory a store key points into, for the request's life.
    std::shared_ptr<const governance::KeyDirectory> key_pin;
    std::string_view method, path;
    net::Clock::time_point received;
    dialects::Dialect client = dialects::Dialect::openai;  ///< the dialect errors are written in
  } identity;

  struct Route {
    std::string_view name;
    routing::Overrides overrides;
    std::string_view category;  ///< predicted task category, when the route needs one
    std::string complexity_text, tier_text;
    /// Complexity-routed requests, when feedback is on: kept for `/v1/switchyard/feedback`.
    std::unique_ptr<routing::complexity::Pending> pending;
  } route;

  struct Plan {
    std::unique_ptr<routing::Decision> decision;  ///< chat and embeddings: the routing record
    std::string_view policy;
    std::optional<net::Clock::time_point> deadline;
    std::string estimated_cost_text;
    void set_estimated_cost(double usd) {
      estimated_cost_text.clear();
      if (usd >= 0) routing::append_decimal(estimated_cost_text, usd);
    }
  } plan;

  struct Attempts {
    int count = 0;  ///< attempts sent to a deployment
    /// Streams: the first event must come by then (the route's ttft_ms from the attempt's start).
    std::optional<net::Clock::time_point> first_event_deadline;
    const DeploymentRuntime* answered_by = nullptr;  ///< the answering (or last tried) deployment
    int answered_index = -1;  ///< its position among the route's candidates
    std::string_view deployment;
    std::string_view upstream_model;
    std::string dropped;  ///< parameters dropped for the deployment that answered
    std::string clamped_max_tokens;  ///< the max_tokens sent, when the client's was lowered to the model's maximum
    double ttfb_ms = -1;
    void set_dropped(const std::vector<std::string>& names) {
      dropped.clear();
      for (const auto& n : names) {
        if (!dropped.empty()) dropped += ", ";
        dropped += n;
      }
    }
  } attempts;

  struct Accounting {
    std::int64_t arrived_unix_ms = 0;  ///< when it arrived: the day and hour whose prices bill it
    core::TokenUsage usage;           ///< of the answer; `known` false until read
    bool usage_estimated = false;     ///< counted here: the provider reports none
    bool priced = false;              ///< `cost` has been worked out
    std::optional<core::Money> cost;
    std::string cost_text;
  } accounting;

  /// What governance holds of the request (docs/governance.md).
  struct Governed {
    std::string user;  ///< the end user it names (`x-switchyard-user`, OpenAI `user`, Anthropic metadata.user_id)
    /// Its place in the rate limits and its budget reservation (null: nothing held).
    std::unique_ptr<governance::Admission> held;
    std::optional<core::Money> reserved;  ///< the maximum cost reserved against its budgets
    std::int64_t tokens = 0;  ///< the token estimate taken from token limits (input + output ceiling)
    bool billable = false;  ///< a model request of a known key: it gets a ledger row
    bool ledgered = false;  ///< its row is queued (and governance settled) already
    /// A rate-limit or budget refusal's headers (retry-after aside).
    std::vector<std::pair<std::string, std::string>> headers;
  } governed;

  struct Reply {
    int status = 0;
    std::string error;  ///< short code of what went wrong
    std::optional<core::ErrorKind> error_kind;
    bool stream = false;
    /// Upstream headers passed on: views into the live upstream response, or into
    /// `passed_copies` once that is gone.
    std::array<net::HeaderField, kMaxPassedHeaders> passed{};
    std::size_t passed_count = 0;
    std::vector<std::string> passed_copies;
    std::string retry_after_text, attempts_text;

    /// Copies the passed headers, for a response sent after the upstream exchange ended.
    void keep_passed_headers();
  } reply;

  /// What the answer's tokens cost at the answering deployment's prices: the one price
  /// function, read by the cost header and by the accounting record, priced once (call it when
  /// the usage is final). nullopt: no usage, or unpriced.
  const std::optional<core::Money>& cost() {
    if (!accounting.priced) {
      accounting.priced = true;
      const DeploymentRuntime* d = attempts.answered_by;
      if (accounting.usage.known && d && d->priced())
        accounting.cost = catalog::cost(*d->pricing, accounting.usage, accounting.arrived_unix_ms / 1000);
    }
    return accounting.cost;
  }
  /// The cost header of a JSON answer (a stream's head goes out before its usage is known).
  void set_cost_header() {
    accounting.cost_text.clear();
    if (const auto& c = cost()) c->append_decimal(accounting.cost_text);
  }

  /// The response's header fields, written into `scratch`: valid until its next use.
  std::span<const net::HeaderField> headers(ReplyHeaders& scratch);
};

}  // namespace switchyard::server
