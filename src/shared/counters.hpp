#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "config/config.hpp"
#include "governance/governor.hpp"
#include "shared/redis_client.hpp"

struct redisContext;

/// Budgets and rate limits counted once for every node, in Redis (docs/scaling.md). An
/// admission is one script that checks and reserves every budget and limit a request touches,
/// all or nothing; its settlement is another, idempotent by the request's lease. A reservation
/// is a lease: a node that dies holding it gives it back when the lease ends. What a budget has
/// spent comes from the ledger (PostgreSQL) whenever Redis has no counter for its period (a
/// first use, or a Redis that lost its data).
///
/// While Redis cannot be reached, each scope does what it is configured to: `fail_closed`
/// refuses (503 budget_unverifiable); `fail_open` admits against this node's share — what was
/// left of each budget when the node last heard from Redis, and each rate limit, divided by the
/// number of nodes that were serving — so the nodes together stay within the total (the bound is
/// in docs/scaling.md). What was spent meanwhile is added to Redis's counters when it is back.
///
/// This object is the node's (thread-safe); the Redis connections are the event loops' own
/// (`RedisClient`). It builds the commands and reads the replies; the loops send them.
namespace switchyard::shared {

/// Why an admission was refused by the shared counters.
struct SharedRefusal {
  std::optional<governance::BudgetRefusal> budget;
  std::optional<governance::LimitRefusal> limit;
};

class SharedCounters {
 public:
  SharedCounters(const config::RedisConfig& config, governance::Governor& governor);
  ~SharedCounters();
  SharedCounters(const SharedCounters&) = delete;
  SharedCounters& operator=(const SharedCounters&) = delete;

  const config::RedisConfig& config() const { return config_; }
  RedisEndpoint endpoint(const std::string& ca_file) const;
  std::chrono::milliseconds timeout() const { return std::chrono::milliseconds(config_.timeout_ms); }

  /// Fills `hold` with what applies to `subjects` (nothing applies: `hold.budgets` and
  /// `hold.limits` stay empty and there is nothing to do).
  void prepare(const governance::Subjects& subjects, core::Money amount, std::int64_t tokens, std::int64_t now_ms,
               std::string lease, governance::SharedHold& hold);

  /// The admission script's command for `hold`.
  std::vector<std::string> admit_command(const governance::SharedHold& hold);
  /// Reads its reply: nullopt when admitted (`hold.admitted` set), else the refusal. A reply
  /// that is not the script's (an error) counts as Redis being unavailable: `unavailable` is set.
  std::optional<SharedRefusal> read_admit(governance::SharedHold& hold, const RedisReply& reply, bool& unavailable);

  /// Settlements of one loop, sent together: each request's hold, the cost actually billed
  /// (nullopt: none) and the tokens actually used (< 0: unknown).
  struct Settlement {
    governance::SharedHold hold;
    std::optional<core::Money> cost;
    std::int64_t tokens = -1;
  };
  /// The settlement script's command for a batch.
  std::vector<std::string> settle_command(const std::vector<Settlement>& batch);
  /// Reads its reply: alerts crossed (raised by the one node whose settlement crossed them).
  /// false when the reply is not the script's (the batch is to be sent again).
  bool read_settle(const std::vector<Settlement>& batch, const RedisReply& reply,
                   std::vector<governance::BudgetAlert>& alerts);
  /// A settlement that could not reach Redis: its cost is added to the counters when Redis is
  /// back (the reservation itself ends with its lease).
  void settle_missed(const governance::SharedHold& hold, std::optional<core::Money> cost);

  // While Redis is unreachable.
  /// Whether a scope this request touches is `fail_closed`.
  bool fails_closed(const governance::SharedHold& hold) const;
  void count_fail_closed();
  /// Admits against this node's share (`hold.local` set when admitted).
  std::optional<SharedRefusal> admit_locally(governance::SharedHold& hold, const governance::Subjects& subjects,
                                             std::int64_t now_ms, governance::Admission& held);
  /// Settles a local admission (its cost is kept for Redis's counters).
  void settle_locally(governance::Admission& held, std::optional<core::Money> cost, std::int64_t tokens,
                      std::int64_t now_ms, std::vector<governance::BudgetCharge>& charges);

  /// Told by the loops: Redis answered / did not.
  void mark_up();
  void mark_down(const std::string& why);
  /// The command that adds to Redis what was spent without it, when there is something to add
  /// (and Redis is up); then `reconcile_done(true)` once Redis applied it, `(false)` to try the
  /// same batch again later.
  std::optional<std::vector<std::string>> take_reconcile();
  void reconcile_done(bool applied);
  /// A script's command sent as EVAL with its text (Redis answered NOSCRIPT: it was restarted or
  /// its scripts flushed since the script was last loaded).
  static void as_eval(std::vector<std::string>& argv);

  /// A budget's counter as Redis holds it (a blocking read, for the admin API): false when Redis
  /// cannot be reached or has no counter for the period.
  bool read_budget(const governance::Budget& b, std::int64_t period_start_ms, core::Money& spent,
                   core::Money& reserved);

  struct Stats {
    bool redis_up = true;
    std::uint64_t unavailable_events = 0;  ///< times Redis went from answering to not
    std::uint64_t unavailable_calls = 0;   ///< admissions or settlements that got no answer
    std::uint64_t fail_open_admissions = 0, fail_open_refusals = 0, fail_closed_refusals = 0;
    std::uint64_t reconciliations = 0;
    std::uint64_t missed_settlements = 0;
    std::int64_t nodes = 1;  ///< nodes serving in the last 10 s, as Redis last said
    std::string last_error;
  };
  Stats stats() const;

 private:
  void refresh_seeds();
  void seed_loop();
  void build_fallback(std::int64_t now_ms);
  void add_unsynced(const governance::SharedHold& hold, std::optional<core::Money> cost);
  /// A budget's counter in Redis for one period (also what the seeds are keyed by).
  std::string budget_key(std::string_view budget_id, std::int64_t period_start_ms) const;
  std::string limit_key(const governance::Limit& l) const;

  config::RedisConfig config_;
  governance::Governor& governor_;
  std::string node_;  ///< this node's name in the registry of nodes serving
  std::string admit_sha_, settle_sha_, reconcile_sha_;

  mutable std::mutex mutex_;
  Stats stats_;
  /// Per budget and period (by its counter's key): what the ledger says it spent (the seed of a counter
  /// Redis does not have), refreshed in the background.
  std::map<std::string, core::Money> seeds_;
  /// Per budget: what was left of it when Redis last answered an admission (the fail-open share
  /// is computed from it).
  std::map<std::string, core::Money> remaining_;
  /// A settled cost not in Redis's counters yet (admitted on this node's share, or its
  /// settlement never reached Redis): added when Redis is back, once per lease (its settlement
  /// mark), to every counter it belongs to — unless Redis lost its data since (another epoch).
  struct Unsynced {
    std::string lease;
    core::Money cost;
    std::vector<std::string> counters;
    std::string epoch;
  };
  std::vector<Unsynced> unsynced_;
  std::vector<Unsynced> reconciling_;  ///< the batch on its way (kept until Redis answers)
  bool reconcile_in_flight_ = false;
  std::string epoch_;  ///< Redis's epoch as its last answer said
  std::atomic<bool> has_unsynced_{false};
  std::atomic<bool> redis_up_{true};
  std::atomic<std::int64_t> registered_ms_{0};  ///< when this node last wrote itself in the registry
  /// This node's books while Redis is unreachable (made at the outage's first admission).
  std::shared_ptr<governance::FallbackBooks> fallback_;

  std::mutex admin_mutex_;
  ::redisContext* admin_redis_ = nullptr;  ///< the admin API's blocking connection
  std::chrono::steady_clock::time_point admin_failed_at_{};
  std::mutex seed_mutex_;
  std::condition_variable seed_wake_;
  bool stopping_ = false;
  std::thread seeder_;
};

}  // namespace switchyard::shared
