// Governance in the request path (docs/governance.md): the end user and the rate limits before
// planning, the budget reservation after it, the ledger's commit gate before the end of an
// answer, and settlement into the ledger when the request ends. The rules themselves are
// pure code in governance/ and pipeline/admission; this file ties them to a request.
#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include <mutex>

#include "governance/admin_api.hpp"
#include "governance/keys.hpp"
#include "server/gateway_internal.hpp"

namespace switchyard::server {

using core::ApiError;
using core::ErrorKind;

namespace {

/// A ledger flush awaited on an event loop (fsync durability). The ledger's thread calls `fire`
/// once the spool holding the row has been flushed to disk; the waiting coroutine's handler is
/// then posted back to its loop (handlers are only ever run, and destroyed, there).
struct CommitGate {
  using Handler = net::detail::OpAwaiter<bool>::Handler;
  explicit CommitGate(net::Executor e) : executor(e) {}
  net::Executor executor;
  std::mutex mutex;
  std::optional<Handler> handler;
  std::optional<bool> result;

  void fire(bool committed) {
    std::lock_guard lock(mutex);
    result = committed;
    if (!handler) return;
    boost::asio::post(executor, [h = std::move(*handler), committed]() mutable { h(committed); });
    handler.reset();
  }
};

/// Awaits the gate: true once flushed.
auto wait_commit(const std::shared_ptr<CommitGate>& gate) {
  return boost::asio::async_initiate<const net::UseTask&, void(bool)>(
      [gate](CommitGate::Handler handler) {
        std::lock_guard lock(gate->mutex);
        if (gate->result)
          boost::asio::post(gate->executor, [h = std::move(handler), r = *gate->result]() mutable { h(r); });
        else
          gate->handler.emplace(std::move(handler));
      },
      net::use_task);
}

/// What a request would have cost on its route's reference deployment: the savings column.
std::optional<core::Money> reference_cost(const RequestContext& ex, const core::TokenUsage& usage) {
  if (!usage.known || ex.route.name.empty()) return std::nullopt;
  const RouteRuntime* route = ex.rt->find_route(ex.route.name);
  if (!route || !route->reference || !route->reference->priced()) return std::nullopt;
  return catalog::cost(*route->reference->pricing, usage, ex.accounting.arrived_unix_ms / 1000);
}

}  // namespace

std::optional<ApiError> Gateway::govern(const net::Request& request, Exchange& ex,
                                        const routing::RequestTraits& traits, std::string_view body_user) {
  governance::Governor* g = shared_.governor;
  if (!g || !ex.identity.key) return std::nullopt;
  if (!g->ledger().accepting()) {
    // The spool is full (the store unreachable for long): nothing is answered that the ledger
    // could not account for. Refused before anything is held or sent upstream.
    ex.reply.retry_after_text = "5";
    return ApiError::make(ErrorKind::unavailable,
                          "The gateway cannot record spend now (its ledger's store has been unreachable for long and "
                          "the local spool is full). Try again later.",
                          {}, "ledger_unavailable");
  }
  ex.governed.billable = true;
  std::string_view user = request.header("x-switchyard-user");
  if (user.empty()) user = body_user;
  if (user.size() > 256) {
    std::size_t cut = 256;
    while (cut > 0 && (static_cast<unsigned char>(user[cut]) & 0xC0) == 0x80) --cut;  // not inside a character
    user = user.substr(0, cut);
  }
  ex.governed.user.assign(user);
  governance::Subjects subjects = subjects_of(*ex.identity.key, ex.governed.user, ex.route.name);
  if (!g->governs(subjects)) return std::nullopt;
  ex.governed.held = std::make_unique<governance::Admission>();
  const std::int64_t tokens = traits.input_tokens + std::max<std::int64_t>(traits.max_output_tokens, 0);
  ex.governed.tokens = tokens;
  // Shared counters: rate limits are taken with the budgets, after planning, in one round trip.
  if (redis_) return std::nullopt;
  // The request's arrival time (read once for the request) is "now" for its admission.
  return check_limits(*g, subjects, tokens, ex.accounting.arrived_unix_ms, ex.identity.client, *ex.governed.held,
                      ex.governed.headers, ex.reply.retry_after_text);
}

std::optional<ApiError> Gateway::reserve_budgets(const RouteRuntime& route, Exchange& ex) {
  governance::Governor* g = shared_.governor;
  if (!ex.governed.held) return std::nullopt;  // nothing governs this request
  const routing::Decision& d = *ex.plan.decision;
  governance::Subjects subjects = subjects_of(*ex.identity.key, ex.governed.user, ex.route.name);
  const std::int64_t now = ex.accounting.arrived_unix_ms;
  // Unpriced deployments reserve nothing (their cost is unknown): counted in the ledger as
  // unpriced, and said in docs/governance.md.
  core::Money amount = plan_ceiling(route, d.plan, d.traits, now / 1000).value_or(core::Money{});
  if (auto e = server::reserve_budgets(*g, subjects, amount, now, *ex.governed.held, ex.governed.headers)) return e;
  if (ex.governed.held->hold.active()) ex.governed.reserved = amount;
  return std::nullopt;
}

net::Task<std::optional<shared::RedisReply>> Gateway::call_script(std::vector<std::string> argv) {
  shared::SharedCounters& c = *shared_.counters;
  std::optional<shared::RedisReply> reply = co_await redis_->call(argv, c.timeout());
  if (reply && reply->is_error() && reply->str.rfind("NOSCRIPT", 0) == 0) {
    // Redis restarted (or its scripts were flushed): the script goes with the call, once.
    shared::SharedCounters::as_eval(argv);
    reply = co_await redis_->call(std::move(argv), c.timeout());
  }
  if (!reply) c.mark_down(redis_->last_error());
  co_return reply;
}

net::Task<std::optional<ApiError>> Gateway::reserve_shared(const RouteRuntime& route, Exchange& ex) {
  governance::Governor& g = *shared_.governor;
  shared::SharedCounters& c = *shared_.counters;
  const routing::Decision& d = *ex.plan.decision;
  governance::Subjects subjects = subjects_of(*ex.identity.key, ex.governed.user, ex.route.name);
  const std::int64_t now = ex.accounting.arrived_unix_ms;
  const core::Money amount = plan_ceiling(route, d.plan, d.traits, now / 1000).value_or(core::Money{});
  governance::SharedHold& hold = ex.governed.held->shared;
  // The lease's name is the ledger row's id: unique, and it says which row settled it.
  c.prepare(subjects, amount, ex.governed.tokens, now, g.next_ledger_id(now), hold);
  if (hold.budgets.empty() && hold.limits.empty()) co_return std::nullopt;
  std::optional<shared::SharedRefusal> refusal;
  std::optional<shared::RedisReply> reply = co_await call_script(c.admit_command(hold));
  bool unavailable = !reply;
  if (reply) refusal = c.read_admit(hold, *reply, unavailable);
  if (unavailable) {
    if (reply) c.mark_down(c.stats().last_error);
    if (c.fails_closed(hold)) {
      c.count_fail_closed();
      ex.reply.retry_after_text = "1";
      co_return ApiError::make(
          ErrorKind::unavailable,
          "Budgets and rate limits are counted across the gateway's nodes in Redis, which cannot be reached now; "
          "a budget or limit this request is subject to is configured to refuse meanwhile (fail_closed). Try again "
          "shortly.",
          {}, "budget_unverifiable");
    }
    refusal = c.admit_locally(hold, subjects, now, *ex.governed.held);
  } else {
    c.mark_up();
    if (auto batch = c.take_reconcile()) net::spawn(loop_.io(), reconcile(std::move(*batch)));
  }
  if (refusal && refusal->limit)
    co_return limit_refused(*refusal->limit, ex.identity.client, ex.governed.headers, ex.reply.retry_after_text);
  if (refusal && refusal->budget) co_return budget_refused(*refusal->budget, ex.governed.headers);
  if (!hold.budgets.empty()) ex.governed.reserved = amount;
  co_return std::nullopt;
}

net::Task<> Gateway::reconcile(std::vector<std::string> argv) {
  std::optional<shared::RedisReply> reply = co_await call_script(std::move(argv));
  shared_.counters->reconcile_done(reply && !reply->is_error());
}

net::Task<> Gateway::settle_shared() {
  shared::SharedCounters& c = *shared_.counters;
  // A millisecond's settlements go together: one script call (one Lua invocation in Redis) for
  // all. Measured before batching (3 scopes, 16 connections): settlements cost 7 µs of the
  // gateway's CPU and 22 µs of Redis's per request.
  co_await sleep_ms(1);
  std::vector<shared::SharedCounters::Settlement> batch;
  batch.swap(settling_);
  settle_scheduled_ = false;
  ++settles_in_flight_;
  // A batch that timed out may have been applied: sent again, each settlement counts once (its
  // lease's mark). Tried for about 6 s; then the costs wait for Redis with this node's other
  // unsynced spend (and the reservations end with their leases).
  for (int attempt = 0; attempt < 7; ++attempt) {
    std::optional<shared::RedisReply> reply = co_await call_script(c.settle_command(batch));
    std::vector<governance::BudgetAlert> alerts;
    if (reply && c.read_settle(batch, *reply, alerts)) {
      for (const auto& a : alerts) shared_.governor->alert(a);
      --settles_in_flight_;
      co_return;
    }
    co_await sleep_ms(50 << attempt);
  }
  for (const auto& st : batch) c.settle_missed(st.hold, st.cost);
  --settles_in_flight_;
}

void Gateway::settle_held(RequestContext& ex, const core::AccountingRecord& r, governance::LedgerRow& row) {
  if (!ex.governed.held) return;
  governance::Governor& g = *shared_.governor;
  // Tokens used: as reported; none when nothing went upstream (refused by a budget, say);
  // unknown otherwise (the estimate taken at admission stands).
  const std::int64_t tokens = r.usage.known ? r.usage.input + r.usage.output : ex.attempts.count == 0 ? 0 : -1;
  governance::Admission& held = *ex.governed.held;
  governance::SharedHold& shared = held.shared;
  if (shared.admitted) {
    row.id = shared.lease;
    if (r.cost)
      for (std::size_t i = 0; i < shared.budgets.size(); ++i)
        row.charges.push_back({shared.budgets[i]->id, shared.period_start_ms[i]});
    shared.admitted = false;
    // After the request, off its path, with the loop's other settlements of this millisecond.
    settling_.push_back({std::move(shared), r.cost, tokens});
    if (!settle_scheduled_) {
      settle_scheduled_ = true;
      net::spawn(loop_.io(), settle_shared());
    }
    return;
  }
  if (shared.local) {
    shared_.counters->settle_locally(held, r.cost, tokens, governance::unix_now_ms(), row.charges);
    return;
  }
  // A request that got no answer costs nothing: its reservation is released (cost nullopt).
  g.settle(held, r.cost, tokens, governance::unix_now_ms(), row.charges);
}

namespace {

governance::LedgerRow ledger_row(governance::Governor& g, const RequestContext& ex, const core::AccountingRecord& r) {
  governance::LedgerRow row;
  row.id = g.next_ledger_id(r.unix_ms);
  row.request_id.assign(r.request_id);
  row.unix_ms = r.unix_ms;
  const config::KeyConfig* key = ex.identity.key;
  row.key_id = key->subject();
  row.key_name = key->name;
  row.team = key->team;
  row.user = ex.governed.user;
  row.route.assign(r.route);
  row.model.assign(r.model);
  row.deployment.assign(r.deployment);
  row.provider.assign(r.provider);
  row.dialect.assign(r.client_dialect);
  row.stream = r.stream;
  row.status = r.status;
  row.error.assign(r.error);
  if (r.error_kind) row.error_kind = core::to_string(*r.error_kind);  // as the access log names it
  row.usage = r.usage;
  row.usage_estimated = r.usage_estimated;
  row.cost = r.cost;
  row.unpriced = r.unpriced;
  if (const DeploymentRuntime* d = ex.attempts.answered_by; d && d->priced() && r.usage.known)
    if (const catalog::PriceVersion* v = d->pricing->at(r.unix_ms / 1000)) row.price_since_ms = v->since_unix_s * 1000;
  row.reference_cost = reference_cost(ex, r.usage);
  row.reserved = ex.governed.reserved;
  row.latency_ms = r.latency_ms;
  row.ttft_ms = r.ttfb_ms;
  row.attempts = ex.attempts.count;
  row.tier = r.tier;
  row.cancelled = r.client_cancelled;
  return row;
}

}  // namespace

net::Task<bool> Gateway::commit_answer(Exchange& ex) {
  governance::Governor* g = shared_.governor;
  if (!g || !ex.governed.billable || ex.governed.ledgered) co_return true;
  const auto durability = g->ledger().options().durability;
  if (durability == governance::LedgerOptions::Durability::async) co_return true;
  const core::AccountingRecord& record = settle(ex.identity.method, ex.identity.path, ex, ex.identity.received);
  governance::LedgerRow row = ledger_row(*g, ex, record);
  settle_held(ex, record, row);
  ex.governed.ledgered = true;
  bool durable;
  if (durability == governance::LedgerOptions::Durability::sync) {
    // One append to the spool, on this loop: the row is in the kernel's hands when it returns.
    durable = g->ledger().append(std::move(row));
  } else {
    // fsync: the writer thread flushes the spool for every append waiting, then posts each
    // waiting request back to its loop.
    auto gate = std::make_shared<CommitGate>(loop_.io().get_executor());
    g->ledger().append(std::move(row), [gate](bool flushed) { gate->fire(flushed); });
    durable = co_await wait_commit(gate);
  }
  if (!durable) {
    spdlog::error("{}: its ledger row could not be made durable; the end of its response is withheld",
                  ex.identity.request_id);
    ex.reply.error = "ledger_unavailable";
  }
  co_return durable;
}

void Gateway::finish_governance(Exchange& ex, const core::AccountingRecord& record) {
  governance::Governor* g = shared_.governor;
  if (!g || ex.governed.ledgered) return;
  if (!ex.governed.billable) {
    // Refused before anything was held (unknown route, bad body): no row, nothing to settle.
    return;
  }
  governance::LedgerRow row = ledger_row(*g, ex, record);
  settle_held(ex, record, row);
  ex.governed.ledgered = true;
  g->ledger().append(std::move(row));
}

net::Task<> Gateway::admin_api(net::Request& request, net::ResponseWriter& writer, Exchange& ex) {
  governance::Governor* g = shared_.governor;
  if (!g) {
    co_await fail(writer, ex,
                  ApiError::make(ErrorKind::not_found,
                                 "The admin API needs governance: add a `governance:` section to the configuration.",
                                 {}, "governance_off"));
    co_return;
  }
  // The admin credential: a bearer token whose SHA-256 is one of governance.admin_keys.
  std::string_view auth = request.header(net::http1::Known::authorization);
  std::string_view token;
  if (auth.size() > 7 && net::http1::iequals(auth.substr(0, 7), "bearer ")) token = auth.substr(7);
  const config::AdminKeyConfig* admin = nullptr;
  if (!token.empty() && token.size() <= 512) {
    const std::string hash = governance::sha256_hex(token);
    for (const auto& a : ex.rt->config().governance.admin_keys)
      if (CRYPTO_memcmp(a.sha256.data(), hash.data(), 64) == 0) admin = &a;
  }
  if (!admin) {
    // A client key is refused with 403 (it authenticates, but may not administer); anything
    // else with 401.
    std::shared_ptr<const governance::KeyDirectory> pin;
    const bool client_key =
        !token.empty() && auth_.find({auth, {}}, dialects::Dialect::openai, *ex.rt, g, pin) != nullptr;
    // if, not ?: — GCC 12 mishandles conditional temporaries in coroutines.
    ApiError refused;
    if (client_key)
      refused = ApiError::make(ErrorKind::permission,
                               "The admin API needs an admin credential (governance.admin_keys); a client key may "
                               "not use it.",
                               {}, "admin_only");
    else
      refused = ApiError::make(ErrorKind::authentication,
                               "The admin API needs an admin credential: Authorization: Bearer <admin key>.", {},
                               "invalid_admin_key");
    co_await fail(writer, ex, refused);
    co_return;
  }
  ex.identity.key_name = admin->name;
  writer.authenticated();
  governance::AdminContext ctx;
  for (const auto& r : ex.rt->routes()) ctx.routes.push_back(r.config->name);
  for (const auto& d : ex.rt->config().deployments) ctx.deployments.push_back(d.name);
  for (const auto& k : ex.rt->config().keys) ctx.static_keys.push_back(&k);
  std::string_view target = request.target();
  auto q = target.find('?');
  governance::AdminRequest r;
  r.method = request.method();
  r.path = request.path();
  r.query = q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
  r.body = request.body;
  r.actor = admin->name;
  r.max_json_depth = ex.rt->config().server.max_json_depth;
  governance::AdminResponse response = governance::handle_admin(*g, ctx, r);
  ex.reply.status = response.status;
  if (response.status >= 400) {
    ex.reply.error = "admin_error";
    ex.reply.error_kind = response.status >= 500 ? ErrorKind::unavailable : ErrorKind::invalid_request;
  }
  const net::HeaderField fields[] = {{"x-request-id", ex.identity.request_id}};
  co_await writer.send(response.status, response.content_type, response.body, fields);
}

}  // namespace switchyard::server
