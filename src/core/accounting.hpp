#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/money.hpp"
#include "core/usage.hpp"

namespace switchyard::core {

/// One upstream attempt as the record keeps it.
struct AttemptOutcome {
  std::string_view deployment;
  std::string_view outcome;  ///< "ok", "http_503", "first_byte_timeout", "skipped: circuit open", ...
  int status = 0;       ///< the upstream's HTTP status; 0 when none
  double ms = 0;
  bool hedge = false;
};

/// What one finished request came to: made once, when the request ends (answered, refused,
/// failed, or the client gone), and never changed after. The access log and the decision ring
/// read it; the ledger, metrics and dashboard will. It holds no key, no credential and no
/// content.
///
/// Its text fields are views into the request and the configuration it ran under, valid while
/// the request is settled: the gateway fills one record per event loop again for each request
/// (no allocation once warm), and a consumer that keeps a record beyond its settlement copies
/// what it keeps (as a ledger row would).
struct AccountingRecord {
  std::string_view request_id;
  std::int64_t unix_ms = 0;  ///< when the request arrived
  std::string_view method;
  std::string_view path;
  std::string_view client_dialect;  ///< "openai" or "anthropic": the API the client spoke
  std::string_view key;             ///< the key's name
  std::string_view route;
  std::string_view model;       ///< the upstream model of the deployment that answered (or last tried)
  std::string_view deployment;
  std::string_view provider;
  bool stream = false;

  TokenUsage usage;              ///< `usage.known` false: no usage (no answer, or none reported)
  bool usage_estimated = false;  ///< counted by the gateway: the provider reports none (Gemini embeddings)
  /// What the tokens cost at the deployment's prices in effect when the request arrived;
  /// nullopt when there is no usage or the deployment is unpriced (`unpriced` tells which).
  std::optional<Money> cost;
  bool unpriced = false;
  std::optional<Money> estimated_cost;  ///< the plan's estimate for its first choice

  double latency_ms = 0;        ///< from the request's arrival to its end
  double ttfb_ms = -1;          ///< the answering attempt's time to the upstream's response head
  std::vector<AttemptOutcome> attempts;
  bool hedged = false;
  std::string_view policy;      ///< the objective the plan applied
  std::string plan;             ///< deployments in plan order, "a>b>c"
  std::string excluded;         ///< "c:capability,d:circuit_open" (at most 8, then "+N")
  double complexity = -1;       ///< the classifier's score; < 0 when not scored
  int tier = -1;                ///< the complexity tier chosen; -1 when none
  std::string_view category;    ///< predicted task category, when the route needed one

  int status = 0;          ///< what the client was sent (499: it left before an answer)
  std::string_view error;  ///< short error code when the request failed
  std::optional<ErrorKind> error_kind;  ///< and its kind (the table in core/error.hpp)
  bool client_cancelled = false;
};

}  // namespace switchyard::core
