#include "shared/counters.hpp"

#include <hiredis/hiredis.h>
#include <openssl/sha.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace switchyard::shared {

using core::Money;
using governance::Budget;
using governance::BudgetRefusal;
using governance::Limit;
using governance::LimitKind;
using governance::LimitRefusal;
using governance::SharedHold;

namespace {

// The scripts run atomically in Redis: nothing else runs between their reads and writes, on any
// node. Time is Redis's own (TIME), so nodes' clocks do not matter to leases and rate limits.
// Money is integer nano-dollars; Lua's numbers are doubles, exact up to 2^53 nano-dollars
// (about $9 million per budget and period: the admin API refuses larger limits).

// KEYS: per budget its counter (hash: s spent, r reserved, l:<lease> each lease's amount, a
// alerts raised) and its leases (zset: lease -> expiry); per limit its state (hash: q and t,
// the request and token GCRA's theoretical arrival times) and its requests in flight (zset);
// then the registry of nodes (zset: node -> last seen); last, Redis's epoch (a name made when
// the key is missing: a Redis that lost its data has a new one).
// ARGV: lease, lease_ms, budgets, limits, amount, tokens, node, register ("1": once a second);
// per budget limit, hard, seed, ttl_ms; per limit rpm, tpm, concurrent.
// Returns {1, nodes, epoch, remaining per budget...} admitted; {0, "budget", i, spent, reserved} or
// {0, kind, j, allowed, remaining, retry_after_ms, reset_ms} refused.
constexpr const char* kAdmitScript = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local id, lease = ARGV[1], tonumber(ARGV[2])
local nb, nl = tonumber(ARGV[3]), tonumber(ARGV[4])
local amount, tokens = tonumber(ARGV[5]), tonumber(ARGV[6])
local a = 9
-- This node is serving (a refusal counts too): registered before anything is checked, once a
-- second at most (ARGV[8] = '1': the node's first admission of the second).
local nodes = KEYS[#KEYS - 1]
if ARGV[8] == '1' then
  redis.call('ZADD', nodes, now, ARGV[7])
  redis.call('ZREMRANGEBYSCORE', nodes, '-inf', now - 10000)
  redis.call('PEXPIRE', nodes, 60000)
end
local rem, ttls = {}, {}
for i = 1, nb do
  local h, z = KEYS[2 * i - 1], KEYS[2 * i]
  local limit, hard, seed, ttl = tonumber(ARGV[a]), ARGV[a + 1] == '1', ARGV[a + 2], ARGV[a + 3]
  a = a + 4
  ttls[i] = ttl
  if redis.call('EXISTS', h) == 0 then
    redis.call('HSET', h, 's', seed, 'r', '0')
    redis.call('PEXPIRE', h, ttl)
  end
  local gone = redis.call('ZRANGEBYSCORE', z, '-inf', now)
  for _, m in ipairs(gone) do
    local held = redis.call('HGET', h, 'l:' .. m)
    if held then
      redis.call('HINCRBY', h, 'r', -tonumber(held))
      redis.call('HDEL', h, 'l:' .. m)
    end
  end
  if #gone > 0 then redis.call('ZREMRANGEBYSCORE', z, '-inf', now) end
  local s = tonumber(redis.call('HGET', h, 's') or '0')
  local r = tonumber(redis.call('HGET', h, 'r') or '0')
  if hard and s + r + amount > limit then
    return {0, 'budget', i, string.format('%.0f', s), string.format('%.0f', r)}
  end
  rem[i] = string.format('%.0f', limit - s - r - amount)
end
local function gcra(tat, rate, units)
  local interval = 60000 / rate
  tat = math.max(tat, now)
  local nxt = tat + units * interval
  local allowed_at = nxt - 60000
  if units > rate or now < allowed_at then
    local retry = 60000
    if units <= rate then retry = math.ceil(allowed_at - now) end
    return nil, math.floor((now + 60000 - tat) / interval), retry, math.ceil(tat - now)
  end
  return nxt, math.floor((now + 60000 - nxt) / interval), 0, math.ceil(nxt - now)
end
local q, tk, conc = {}, {}, {}
local b = 2 * nb
for j = 1, nl do
  local h, z = KEYS[b + 2 * j - 1], KEYS[b + 2 * j]
  local rpm, tpm, c = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  a = a + 3
  conc[j] = c
  if c > 0 then
    redis.call('ZREMRANGEBYSCORE', z, '-inf', now)
    if redis.call('ZCARD', z) >= c then return {0, 'concurrent', j, c, 0, 1000, 1000} end
  end
  if rpm > 0 then
    local nxt, left, retry, reset = gcra(tonumber(redis.call('HGET', h, 'q') or '0'), rpm, 1)
    if not nxt then return {0, 'requests', j, rpm, left, retry, reset} end
    q[j] = nxt
  end
  if tpm > 0 and tokens > 0 then
    local nxt, left, retry, reset = gcra(tonumber(redis.call('HGET', h, 't') or '0'), tpm, tokens)
    if not nxt then return {0, 'tokens', j, tpm, left, retry, reset} end
    tk[j] = nxt
  end
end
for i = 1, nb do
  local h, z = KEYS[2 * i - 1], KEYS[2 * i]
  redis.call('HINCRBY', h, 'r', ARGV[5])
  redis.call('HSET', h, 'l:' .. id, ARGV[5])
  redis.call('ZADD', z, now + lease, id)
  redis.call('PEXPIRE', z, ttls[i])
end
for j = 1, nl do
  local h, z = KEYS[b + 2 * j - 1], KEYS[b + 2 * j]
  if q[j] then redis.call('HSET', h, 'q', string.format('%.3f', q[j])) end
  if tk[j] then redis.call('HSET', h, 't', string.format('%.3f', tk[j])) end
  redis.call('PEXPIRE', h, 3600000)
  if conc[j] > 0 then
    redis.call('ZADD', z, now + lease, id)
    redis.call('PEXPIRE', z, lease)
  end
end
local epoch = redis.call('GET', KEYS[#KEYS])
if not epoch then
  epoch = ARGV[7] .. ':' .. now
  redis.call('SET', KEYS[#KEYS], epoch)
end
local out = {1, redis.call('ZCARD', nodes), epoch}
for i = 1, nb do out[#out + 1] = rem[i] end
return out
)lua";

// Settlements, many in one call (a loop's settlements of the last millisecond). KEYS: per
// settlement its budgets' counters and leases, its limits' states and requests in flight, then
// its lease's settlement mark; last, Redis's epoch. ARGV: mark_ttl_ms, then per settlement:
// lease, budgets, limits, cost ("" none), token correction, the epoch it was admitted in; per
// budget its alert thresholds ("bit:nanos,..."); per limit its tpm. A settlement admitted before
// Redis lost its data (another epoch) adds no cost: the counters were made again from the
// ledger, which holds the request already (a settlement retried across a Redis restart counted
// it twice). Returns per settlement {0} when it was settled already, else {1, per budget:
// spent after ("-1": no counter), alert bits newly raised}.
constexpr const char* kSettleScript = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = ARGV[1]
local current = redis.call('GET', KEYS[#KEYS])
local all = {}
local k, a = 1, 2
while a <= #ARGV do
  local id, nb, nl, cost, delta = ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), ARGV[a + 3], tonumber(ARGV[a + 4])
  if ARGV[a + 5] ~= current then cost = '' end
  a = a + 6
  local mark = KEYS[k + 2 * (nb + nl)]
  local out = {0}
  if redis.call('SET', mark, '1', 'NX', 'PX', ttl) then
    out = {1}
    for i = 1, nb do
      local h, z = KEYS[k], KEYS[k + 1]
      k = k + 2
      local thresholds = ARGV[a]
      a = a + 1
      local held = redis.call('HGET', h, 'l:' .. id)
      if held then
        redis.call('HINCRBY', h, 'r', -tonumber(held))
        redis.call('HDEL', h, 'l:' .. id)
        redis.call('ZREM', z, id)
      end
      local spent, raised = '-1', 0
      if cost ~= '' and redis.call('EXISTS', h) == 1 then
        local s = redis.call('HINCRBY', h, 's', cost)
        spent = string.format('%.0f', s)
        if thresholds ~= '' then
          local bits = tonumber(redis.call('HGET', h, 'a') or '0')
          local now_bits = bits
          for bit, th in string.gmatch(thresholds, '(%d+):(%d+)') do
            local v = 2 ^ tonumber(bit)
            if s >= tonumber(th) and math.floor(now_bits / v) % 2 == 0 then now_bits = now_bits + v end
          end
          if now_bits ~= bits then
            redis.call('HSET', h, 'a', string.format('%.0f', now_bits))
            raised = now_bits - bits
          end
        end
      end
      out[#out + 1] = spent
      out[#out + 1] = string.format('%.0f', raised)
    end
    for j = 1, nl do
      local h, z = KEYS[k], KEYS[k + 1]
      k = k + 2
      local tpm = tonumber(ARGV[a])
      a = a + 1
      redis.call('ZREM', z, id)
      if tpm > 0 and delta ~= 0 then
        local tat = tonumber(redis.call('HGET', h, 't') or '0')
        if delta > 0 then tat = math.max(tat, now) + delta * 60000 / tpm else tat = math.max(tat + delta * 60000 / tpm, 0) end
        redis.call('HSET', h, 't', string.format('%.3f', tat))
      end
    end
  else
    k = k + 2 * (nb + nl)
    a = a + nb + nl
  end
  k = k + 1
  all[#all + 1] = out
end
return all
)lua";

// KEYS: Redis's epoch, then per cost its lease's settlement mark and its counters. ARGV:
// mark_ttl_ms, the epoch the costs were made in, then per cost the cost and how many counters.
// A cost whose lease was settled already (its settlement did reach Redis after all) counts
// nothing; a counter Redis no longer has is left alone; and when Redis lost its data since (a
// new epoch) nothing is added: its counters were made again from the ledger, which holds it.
constexpr const char* kReconcileScript = R"lua(
if redis.call('GET', KEYS[1]) ~= ARGV[2] then return 2 end
local k, a = 2, 3
while a <= #ARGV do
  local cost, n = ARGV[a], tonumber(ARGV[a + 1])
  a = a + 2
  local fresh = redis.call('SET', KEYS[k], '1', 'NX', 'PX', ARGV[1])
  for i = 1, n do
    local c = KEYS[k + i]
    if fresh and redis.call('EXISTS', c) == 1 then redis.call('HINCRBY', c, 's', cost) end
  end
  k = k + n + 1
end
return 1
)lua";

std::string sha1_hex(const char* text) {
  unsigned char d[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(text), std::strlen(text), d);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : d) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

/// The time a budget's counter is kept: its period and a day (a total budget: a year, renewed
/// with every admission).
std::int64_t counter_ttl_ms(const Budget& b, std::int64_t period_end_ms, std::int64_t now_ms) {
  constexpr std::int64_t kDay = 86'400'000;
  if (b.period == governance::Period::total) return 365 * kDay;
  return std::max<std::int64_t>(period_end_ms - now_ms, 0) + kDay;
}

/// A budget's alert thresholds for the settlement script: "bit:nanos" per percentage (the same
/// bits as BudgetBook's: bit i for alert_percents[i], bit 31 for the limit itself).
std::string thresholds(const Budget& b) {
  std::string out;
  const auto& percents = b.alert_percents;
  for (std::size_t i = 0; i < percents.size() && i < 31; ++i) {
    // spent >= limit * percent / 100 in integers: the smallest such spend.
    const __int128 num = static_cast<__int128>(b.limit.nanos()) * percents[i];
    const std::int64_t th = static_cast<std::int64_t>((num + 99) / 100);
    if (!out.empty()) out += ',';
    out += std::to_string(i) + ":" + std::to_string(th);
  }
  const bool listed_100 = std::any_of(percents.begin(), percents.end(), [](int p) { return p >= 100; });
  if (!listed_100) {
    if (!out.empty()) out += ',';
    out += "31:" + std::to_string(b.limit.nanos());
  }
  return out;
}

Money money_of(const RedisReply& r) { return Money::nanos(r.as_int(0)); }

}  // namespace

SharedCounters::SharedCounters(const config::RedisConfig& config, governance::Governor& governor)
    : config_(config),
      governor_(governor),
      node_(governance::Governor::new_id("node_")),
      admit_sha_(sha1_hex(kAdmitScript)),
      settle_sha_(sha1_hex(kSettleScript)),
      reconcile_sha_(sha1_hex(kReconcileScript)) {
  refresh_seeds();
  governor_.on_reload([this] {
    std::lock_guard lock(seed_mutex_);
    seed_wake_.notify_one();
  });
  seeder_ = std::thread([this] { seed_loop(); });
  governor_.set_shared_view([this](const Budget& b, std::int64_t start, Money& spent, Money& reserved) {
    return read_budget(b, start, spent, reserved);
  });
}

bool SharedCounters::read_budget(const Budget& b, std::int64_t period_start_ms, Money& spent, Money& reserved) {
  std::lock_guard lock(admin_mutex_);
  auto command = [&](std::vector<std::string> argv) -> redisReply* {
    std::vector<const char*> p;
    std::vector<std::size_t> n;
    for (const auto& a : argv) {
      p.push_back(a.data());
      n.push_back(a.size());
    }
    return static_cast<redisReply*>(redisCommandArgv(admin_redis_, static_cast<int>(p.size()), p.data(), n.data()));
  };
  if (admin_redis_ && admin_redis_->err) {
    redisFree(admin_redis_);
    admin_redis_ = nullptr;
  }
  if (!admin_redis_) {
    // hiredis's blocking client has no TLS here: with TLS the admin API reports the ledger's figure.
    if (config_.tls) return false;
    // The admin API runs on an event loop: while Redis is unreachable, one connection attempt a
    // second at most (a list of budgets would otherwise wait a timeout for each).
    const auto now = std::chrono::steady_clock::now();
    if (now - admin_failed_at_ < std::chrono::seconds(1)) return false;
    timeval tv{0, static_cast<suseconds_t>(std::min<std::uint32_t>(config_.timeout_ms, 999) * 1000)};
    admin_redis_ = redisConnectWithTimeout(config_.host.c_str(), config_.port, tv);
    if (!admin_redis_ || admin_redis_->err) {
      if (admin_redis_) redisFree(admin_redis_);
      admin_redis_ = nullptr;
      admin_failed_at_ = now;
      return false;
    }
    redisSetTimeout(admin_redis_, tv);
    std::vector<std::vector<std::string>> setup;
    if (!config_.password.empty())
      setup.push_back(config_.username.empty() ? std::vector<std::string>{"AUTH", config_.password}
                                               : std::vector<std::string>{"AUTH", config_.username, config_.password});
    if (config_.database) setup.push_back({"SELECT", std::to_string(config_.database)});
    for (auto& c : setup) {
      redisReply* r = command(c);
      const bool ok = r && r->type != REDIS_REPLY_ERROR;
      if (r) freeReplyObject(r);
      if (!ok) {
        redisFree(admin_redis_);
        admin_redis_ = nullptr;
        return false;
      }
    }
  }
  redisReply* r = command({"HMGET", budget_key(b.id, period_start_ms), "s", "r"});
  if (!r) {
    admin_failed_at_ = std::chrono::steady_clock::now();  // timed out or broke: reconnect later
    return false;
  }
  bool found = false;
  if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[0]->type == REDIS_REPLY_STRING) {
    spent = Money::nanos(std::strtoll(r->element[0]->str, nullptr, 10));
    reserved = r->element[1]->type == REDIS_REPLY_STRING ? Money::nanos(std::strtoll(r->element[1]->str, nullptr, 10))
                                                         : Money{};
    found = true;
  }
  freeReplyObject(r);
  return found;
}

SharedCounters::~SharedCounters() {
  governor_.set_shared_view({});
  if (admin_redis_) redisFree(admin_redis_);
  governor_.on_reload({});
  {
    std::lock_guard lock(seed_mutex_);
    stopping_ = true;
  }
  seed_wake_.notify_one();
  seeder_.join();
}

RedisEndpoint SharedCounters::endpoint(const std::string& ca_file) const {
  RedisEndpoint e;
  e.host = config_.host;
  e.port = config_.port;
  e.username = config_.username;
  e.password = config_.password;
  e.database = config_.database;
  e.tls = config_.tls;
  e.ca_file = ca_file;
  return e;
}

void SharedCounters::seed_loop() {
  std::unique_lock lock(seed_mutex_);
  while (!stopping_) {
    // Once a second, or at once after a change of definitions.
    seed_wake_.wait_for(lock, std::chrono::seconds(1));
    if (stopping_) break;
    lock.unlock();
    refresh_seeds();
    lock.lock();
  }
}

void SharedCounters::refresh_seeds() {
  auto defs = governor_.definitions();
  if (!defs) return;
  const std::int64_t now = governance::unix_now_ms();
  std::map<std::string, Money> next;
  std::vector<std::int64_t> starts;
  for (const Budget& b : defs->budgets) {
    const governance::PeriodBounds p = governance::period_bounds(b.period, b.utc_offset_minutes, now);
    next[budget_key(b.id, p.start_ms)] = Money{};  // nothing in the ledger yet: 0
    if (std::find(starts.begin(), starts.end(), p.start_ms) == starts.end()) starts.push_back(p.start_ms);
  }
  try {
    // One query for every budget (their periods start at a handful of times).
    for (const governance::BudgetSpend& s : governor_.store().budget_spends(starts))
      if (auto it = next.find(budget_key(s.budget_id, s.period_start_ms)); it != next.end())
        it->second = s.spent;
  } catch (const std::exception&) {
    return;  // the store is down: the seeds known stay
  }
  std::lock_guard lock(mutex_);
  seeds_ = std::move(next);
}

std::string SharedCounters::budget_key(std::string_view budget_id, std::int64_t period_start_ms) const {
  return config_.key_prefix + "budget:" + std::string(budget_id) + ":" + std::to_string(period_start_ms);
}

std::string SharedCounters::limit_key(const Limit& l) const { return config_.key_prefix + "limit:" + l.id; }

void SharedCounters::prepare(const governance::Subjects& subjects, Money amount, std::int64_t tokens,
                             std::int64_t now_ms, std::string lease, SharedHold& hold) {
  hold.defs = governor_.definitions();
  hold.budgets.clear();
  hold.limits.clear();
  if (!hold.defs) return;
  hold.defs->match(subjects, hold.budgets, hold.limits);
  hold.period_start_ms.clear();
  hold.period_end_ms.clear();
  for (const Budget* b : hold.budgets) {
    const governance::PeriodBounds p = governance::period_bounds(b->period, b->utc_offset_minutes, now_ms);
    hold.period_start_ms.push_back(p.start_ms);
    hold.period_end_ms.push_back(p.end_ms);
  }
  hold.amount = amount;
  hold.tokens = tokens;
  hold.lease = std::move(lease);
}

std::vector<std::string> SharedCounters::admit_command(const SharedHold& hold) {
  const std::size_t nb = hold.budgets.size(), nl = hold.limits.size();
  std::vector<std::string> argv;
  argv.reserve(3 + 2 * (nb + nl) + 2 + 8 + 4 * nb + 3 * nl);
  argv.emplace_back("EVALSHA");
  argv.push_back(admit_sha_);
  argv.push_back(std::to_string(2 * (nb + nl) + 2));
  for (std::size_t i = 0; i < nb; ++i) {
    std::string k = budget_key(hold.budgets[i]->id, hold.period_start_ms[i]);
    argv.push_back(k);
    argv.push_back(k + ":leases");
  }
  for (const Limit* l : hold.limits) {
    std::string k = limit_key(*l);
    argv.push_back(k);
    argv.push_back(k + ":inflight");
  }
  argv.push_back(config_.key_prefix + "nodes");
  argv.push_back(config_.key_prefix + "epoch");
  argv.push_back(hold.lease);
  argv.push_back(std::to_string(config_.lease_ms));
  argv.push_back(std::to_string(nb));
  argv.push_back(std::to_string(nl));
  argv.push_back(std::to_string(hold.amount.nanos()));
  argv.push_back(std::to_string(hold.tokens));
  argv.push_back(node_);
  const std::int64_t now = governance::unix_now_ms();
  // The registry of nodes is written once a second per node, not at every admission (4 of the
  // script's commands: measured, the Redis CPU of an admission at 3 scopes).
  std::int64_t last = registered_ms_.load(std::memory_order_relaxed);
  const bool announce = now - last >= 1000 && registered_ms_.compare_exchange_strong(last, now);
  argv.push_back(announce ? "1" : "0");
  std::lock_guard lock(mutex_);
  for (std::size_t i = 0; i < nb; ++i) {
    const Budget& b = *hold.budgets[i];
    argv.push_back(std::to_string(b.limit.nanos()));
    argv.push_back(b.hard ? "1" : "0");
    auto seed = seeds_.find(argv[3 + 2 * i]);  // the counter's key, pushed above
    argv.push_back(std::to_string(seed == seeds_.end() ? 0 : seed->second.nanos()));
    argv.push_back(std::to_string(counter_ttl_ms(b, hold.period_end_ms[i], now)));
  }
  for (const Limit* l : hold.limits) {
    argv.push_back(std::to_string(l->rpm));
    argv.push_back(std::to_string(l->tpm));
    argv.push_back(std::to_string(l->concurrent));
  }
  return argv;
}

std::optional<SharedRefusal> SharedCounters::read_admit(SharedHold& hold, const RedisReply& reply, bool& unavailable) {
  unavailable = false;
  const auto& e = reply.elements;
  if (reply.type != RedisReply::Type::array || e.size() < 2) {
    unavailable = true;
    std::lock_guard lock(mutex_);
    stats_.last_error = reply.is_error() ? "the admission script failed: " + reply.str : "unexpected reply";
    return std::nullopt;
  }
  if (e[0].as_int() == 1) {
    hold.admitted = true;
    if (e.size() > 2) hold.epoch = e[2].str;
    std::lock_guard lock(mutex_);
    stats_.nodes = std::max<std::int64_t>(e[1].as_int(1), 1);
    if (e.size() > 2 && epoch_ != e[2].str) epoch_ = e[2].str;
    for (std::size_t i = 0; i < hold.budgets.size() && i + 3 < e.size(); ++i)
      remaining_[hold.budgets[i]->id] = money_of(e[i + 3]);
    return std::nullopt;
  }
  SharedRefusal r;
  const std::string& kind = e[1].str;
  const std::size_t index = static_cast<std::size_t>(e.size() > 2 ? e[2].as_int(1) : 1) - 1;
  if (kind == "budget" && index < hold.budgets.size() && e.size() >= 5) {
    const Budget& b = *hold.budgets[index];
    r.budget = BudgetRefusal{b, money_of(e[3]), money_of(e[4]), hold.amount,
                             b.period == governance::Period::total ? 0 : hold.period_end_ms[index]};
    std::lock_guard lock(mutex_);
    remaining_[b.id] = b.limit - money_of(e[3]) - money_of(e[4]);
  } else if (index < hold.limits.size() && e.size() >= 7) {
    LimitRefusal l;
    l.limit = *hold.limits[index];
    l.kind = kind == "tokens" ? LimitKind::tokens : kind == "concurrent" ? LimitKind::concurrent : LimitKind::requests;
    l.allowed = e[3].as_int();
    l.remaining = std::max<std::int64_t>(e[4].as_int(), 0);
    l.retry_after_ms = e[5].as_int();
    l.reset_ms = e[6].as_int();
    r.limit = std::move(l);
  } else {
    unavailable = true;
    return std::nullopt;
  }
  return r;
}

std::vector<std::string> SharedCounters::settle_command(const std::vector<Settlement>& batch) {
  std::vector<std::string> keys, args{std::to_string(static_cast<std::int64_t>(config_.lease_ms) + 60'000)};
  for (const Settlement& st : batch) {
    const SharedHold& hold = st.hold;
    for (std::size_t i = 0; i < hold.budgets.size(); ++i) {
      std::string k = budget_key(hold.budgets[i]->id, hold.period_start_ms[i]);
      keys.push_back(k);
      keys.push_back(k + ":leases");
    }
    for (const Limit* l : hold.limits) {
      std::string k = limit_key(*l);
      keys.push_back(k);
      keys.push_back(k + ":inflight");
    }
    keys.push_back(config_.key_prefix + "settled:" + hold.lease);
    args.push_back(hold.lease);
    args.push_back(std::to_string(hold.budgets.size()));
    args.push_back(std::to_string(hold.limits.size()));
    args.push_back(st.cost ? std::to_string(st.cost->nanos()) : std::string());
    // Tokens: the estimate taken is corrected to what was used (unknown: it stands).
    args.push_back(std::to_string(st.tokens >= 0 ? st.tokens - hold.tokens : 0));
    args.push_back(hold.epoch);
    for (const Budget* b : hold.budgets) args.push_back(thresholds(*b));
    for (const Limit* l : hold.limits) args.push_back(std::to_string(l->tpm));
  }
  keys.push_back(config_.key_prefix + "epoch");
  std::vector<std::string> argv{"EVALSHA", settle_sha_, std::to_string(keys.size())};
  argv.reserve(3 + keys.size() + args.size());
  argv.insert(argv.end(), std::make_move_iterator(keys.begin()), std::make_move_iterator(keys.end()));
  argv.insert(argv.end(), std::make_move_iterator(args.begin()), std::make_move_iterator(args.end()));
  return argv;
}

bool SharedCounters::read_settle(const std::vector<Settlement>& batch, const RedisReply& reply,
                                 std::vector<governance::BudgetAlert>& alerts) {
  if (reply.type != RedisReply::Type::array || reply.elements.size() != batch.size()) return false;
  for (std::size_t n = 0; n < batch.size(); ++n) {
    const SharedHold& hold = batch[n].hold;
    const auto& e = reply.elements[n].elements;
    if (e.empty() || e[0].as_int() != 1) continue;  // settled already (a retry)
    for (std::size_t i = 0; i < hold.budgets.size() && 2 + 2 * i < e.size(); ++i) {
      const std::int64_t spent = e[1 + 2 * i].as_int(-1);
      const std::int64_t raised = e[2 + 2 * i].as_int(0);
      if (spent < 0 || raised == 0) continue;
      const Budget& b = *hold.budgets[i];
      for (std::size_t bit = 0; bit < 32; ++bit) {
        if (!(raised & (std::int64_t{1} << bit))) continue;
        const int percent = bit == 31 ? 100 : b.alert_percents[bit];
        alerts.push_back({b, percent, Money::nanos(spent), hold.period_start_ms[i]});
      }
    }
  }
  return true;
}

void SharedCounters::settle_missed(const SharedHold& hold, std::optional<Money> cost) {
  std::lock_guard lock(mutex_);
  ++stats_.missed_settlements;
  add_unsynced(hold, cost);
}

void SharedCounters::add_unsynced(const SharedHold& hold, std::optional<Money> cost) {
  // Under mutex_.
  if (!cost || cost->nanos() == 0 || hold.budgets.empty()) return;
  // The epoch the cost belongs to: its admission's when Redis admitted it, else the one this node
  // knew while it booked the cost on its own.
  Unsynced u{hold.lease, *cost, {}, hold.admitted && !hold.epoch.empty() ? hold.epoch : epoch_};
  for (std::size_t i = 0; i < hold.budgets.size(); ++i)
    u.counters.push_back(budget_key(hold.budgets[i]->id, hold.period_start_ms[i]));
  unsynced_.push_back(std::move(u));
  has_unsynced_ = true;
}

bool SharedCounters::fails_closed(const SharedHold& hold) const {
  auto closed = [&](governance::Scope s) {
    return config_.on_unavailable[static_cast<std::size_t>(s)] == config::Unavailable::fail_closed;
  };
  return std::any_of(hold.budgets.begin(), hold.budgets.end(), [&](const Budget* b) { return closed(b->scope); }) ||
         std::any_of(hold.limits.begin(), hold.limits.end(), [&](const Limit* l) { return closed(l->scope); });
}

void SharedCounters::count_fail_closed() {
  std::lock_guard lock(mutex_);
  ++stats_.fail_closed_refusals;
}

void SharedCounters::build_fallback(std::int64_t now_ms) {
  // Under mutex_. This node's share of each budget: what was left of it when Redis last
  // answered (else what the ledger says is left), divided among the nodes that were serving.
  auto defs = governor_.definitions();
  auto books = std::make_shared<governance::FallbackBooks>();
  const std::int64_t n = std::max<std::int64_t>(stats_.nodes, 1);
  std::vector<Budget> budgets;
  if (defs)
    for (Budget b : defs->budgets) {
      Money left;
      if (auto it = remaining_.find(b.id); it != remaining_.end()) {
        left = it->second;
      } else {
        const governance::PeriodBounds p = governance::period_bounds(b.period, b.utc_offset_minutes, now_ms);
        auto seed = seeds_.find(budget_key(b.id, p.start_ms));
        left = b.limit - (seed == seeds_.end() ? Money{} : seed->second);
      }
      b.limit = Money::nanos(std::max<std::int64_t>(left.nanos(), 0) / n);
      b.alert_percents.clear();  // alerts are raised from the shared counters only
      budgets.push_back(std::move(b));
    }
  books->budgets.set(budgets, now_ms);
  std::vector<Limit> limits;
  if (defs)
    for (Limit l : defs->limits) {
      // At least one of each: a limit smaller than the number of nodes is exceeded by at most
      // one per node (docs/scaling.md).
      if (l.rpm > 0) l.rpm = std::max<std::int64_t>(l.rpm / n, 1);
      if (l.tpm > 0) l.tpm = std::max<std::int64_t>(l.tpm / n, 1);
      if (l.concurrent > 0) l.concurrent = std::max<std::int64_t>(l.concurrent / n, 1);
      limits.push_back(std::move(l));
    }
  books->limits.set(limits);
  fallback_ = std::move(books);
}

std::optional<SharedRefusal> SharedCounters::admit_locally(SharedHold& hold, const governance::Subjects& subjects,
                                                           std::int64_t now_ms, governance::Admission& held) {
  std::shared_ptr<governance::FallbackBooks> books;
  {
    std::lock_guard lock(mutex_);
    if (!fallback_) build_fallback(now_ms);
    books = fallback_;
  }
  SharedRefusal r;
  if (auto l = books->limits.take(subjects, hold.tokens, now_ms, held.ticket)) {
    r.limit = std::move(*l);
  } else if (auto b = books->budgets.reserve(subjects, hold.amount, now_ms, held.hold)) {
    books->limits.settle(held.ticket, 0, now_ms);
    r.budget = std::move(*b);
  } else {
    hold.local = books;
    std::lock_guard lock(mutex_);
    ++stats_.fail_open_admissions;
    return std::nullopt;
  }
  std::lock_guard lock(mutex_);
  ++stats_.fail_open_refusals;
  return r;
}

void SharedCounters::settle_locally(governance::Admission& held, std::optional<Money> cost, std::int64_t tokens,
                                    std::int64_t now_ms, std::vector<governance::BudgetCharge>& charges) {
  SharedHold& hold = held.shared;
  if (!hold.local) return;
  hold.local->limits.settle(held.ticket, tokens, now_ms);
  std::vector<governance::BudgetAlert> ignored;
  std::vector<governance::BudgetCharge> local_charges;
  hold.local->budgets.settle(held.hold, cost, now_ms, ignored, local_charges);
  hold.local.reset();
  // The ledger row counts against the real budgets (their ids are the same).
  for (std::size_t i = 0; i < hold.budgets.size(); ++i)
    if (cost) charges.push_back({hold.budgets[i]->id, hold.period_start_ms[i]});
  std::lock_guard lock(mutex_);
  add_unsynced(hold, cost);
}

void SharedCounters::mark_up() {
  if (redis_up_.load(std::memory_order_relaxed)) return;  // the common case: no lock
  std::lock_guard lock(mutex_);
  if (!stats_.redis_up) {
    stats_.redis_up = true;
    redis_up_ = true;
    fallback_.reset();  // the next outage takes its shares afresh
    spdlog::warn("governance: redis is reachable again: budgets and limits are shared again ({} admissions on this "
                 "node's share, {} refused fail_closed meanwhile)",
                 stats_.fail_open_admissions, stats_.fail_closed_refusals);
  }
}

void SharedCounters::mark_down(const std::string& why) {
  std::lock_guard lock(mutex_);
  ++stats_.unavailable_calls;
  stats_.last_error = why;
  if (stats_.redis_up) {
    stats_.redis_up = false;
    redis_up_ = false;
    ++stats_.unavailable_events;
    spdlog::error("governance: redis cannot be reached ({}): each scope's on_unavailable applies until it is back",
                  why);
  }
}

std::optional<std::vector<std::string>> SharedCounters::take_reconcile() {
  if (!has_unsynced_.load(std::memory_order_relaxed)) return std::nullopt;
  std::lock_guard lock(mutex_);
  if (!stats_.redis_up || reconcile_in_flight_) return std::nullopt;
  if (reconciling_.empty()) {
    if (unsynced_.empty()) {
      has_unsynced_ = false;
      return std::nullopt;
    }
    // A batch of one epoch, at most 500 costs.
    const std::string epoch = unsynced_.front().epoch;
    auto end = std::find_if(unsynced_.begin(), unsynced_.end(), [&](const Unsynced& u) { return u.epoch != epoch; });
    if (end - unsynced_.begin() > 500) end = unsynced_.begin() + 500;
    reconciling_.assign(std::make_move_iterator(unsynced_.begin()), std::make_move_iterator(end));
    unsynced_.erase(unsynced_.begin(), end);
  }
  reconcile_in_flight_ = true;
  std::vector<std::string> keys{config_.key_prefix + "epoch"}, args{std::to_string(config_.lease_ms + 60'000),
                                                                    reconciling_.front().epoch};
  for (const Unsynced& u : reconciling_) {
    keys.push_back(config_.key_prefix + "settled:" + u.lease);
    keys.insert(keys.end(), u.counters.begin(), u.counters.end());
    args.push_back(std::to_string(u.cost.nanos()));
    args.push_back(std::to_string(u.counters.size()));
  }
  std::vector<std::string> argv{"EVALSHA", reconcile_sha_, std::to_string(keys.size())};
  argv.insert(argv.end(), std::make_move_iterator(keys.begin()), std::make_move_iterator(keys.end()));
  argv.insert(argv.end(), std::make_move_iterator(args.begin()), std::make_move_iterator(args.end()));
  return argv;
}

void SharedCounters::reconcile_done(bool applied) {
  std::lock_guard lock(mutex_);
  reconcile_in_flight_ = false;
  if (!applied) return;  // the same batch next time: each cost counts once (its lease's mark)
  ++stats_.reconciliations;
  reconciling_.clear();
  has_unsynced_ = !unsynced_.empty();
}

void SharedCounters::as_eval(std::vector<std::string>& argv) {
  if (argv.size() < 2 || argv[0] != "EVALSHA") return;
  static const std::string admit = sha1_hex(kAdmitScript), settle = sha1_hex(kSettleScript),
                           reconcile = sha1_hex(kReconcileScript);
  const char* text = argv[1] == admit ? kAdmitScript : argv[1] == settle ? kSettleScript
                     : argv[1] == reconcile                              ? kReconcileScript
                                                                         : nullptr;
  if (!text) return;
  argv[0] = "EVAL";
  argv[1] = text;
}

SharedCounters::Stats SharedCounters::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

}  // namespace switchyard::shared
