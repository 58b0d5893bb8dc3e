#include "store/postgres_store.hpp"

#include <libpq-fe.h>
#include <poll.h>

#include <chrono>
#include <map>
#include <tuple>
#include <unordered_set>

#include "store/json_columns.hpp"

namespace switchyard::store {

using governance::AuditEntry;
using governance::Budget;
using governance::Key;
using governance::LedgerRow;
using governance::Limit;
using governance::StoreError;
using governance::Team;

namespace {

/// What a channel's notification says: definitions changed (the payload names the kind).
constexpr const char* kChannel = "switchyard_definitions";
/// The advisory lock that serialises migrations between nodes starting at once.
constexpr const char* kMigrationLock = "7305119260418830417";

/// Parameters of one statement, in text form (libpq's default): nullopt binds NULL.
class Params {
 public:
  Params& add(std::string_view v) {
    values_.emplace_back(v);
    return *this;
  }
  Params& add(const std::string& v) { return add(std::string_view(v)); }
  Params& add(const char* v) { return add(std::string_view(v)); }
  Params& add(std::int64_t v) {
    values_.emplace_back(std::to_string(v));
    return *this;
  }
  Params& add(int v) { return add(static_cast<std::int64_t>(v)); }
  Params& add(bool v) { return add(std::string_view(v ? "t" : "f")); }
  Params& add(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return add(std::string_view(buf));
  }
  Params& add(core::Money m) { return add(m.nanos()); }
  template <class T>
  Params& add(const std::optional<T>& v) {
    if (v) return add(*v);
    values_.emplace_back(std::nullopt);
    return *this;
  }
  std::size_t size() const { return values_.size(); }
  /// The pointers libpq reads; valid while this object is unchanged.
  std::vector<const char*> pointers() const {
    std::vector<const char*> p;
    p.reserve(values_.size());
    for (const auto& v : values_) p.push_back(v ? v->c_str() : nullptr);
    return p;
  }

 private:
  std::vector<std::optional<std::string>> values_;
};

/// A result, cleared with its scope.
class Result {
 public:
  explicit Result(PGresult* r) : r_(r) {}
  ~Result() { PQclear(r_); }
  Result(Result&& o) noexcept : r_(o.r_) { o.r_ = nullptr; }
  Result(const Result&) = delete;
  Result& operator=(const Result&) = delete;
  int rows() const { return PQntuples(r_); }
  bool null(int row, int col) const { return PQgetisnull(r_, row, col) != 0; }
  std::string text(int row, int col) const {
    return std::string(PQgetvalue(r_, row, col), static_cast<std::size_t>(PQgetlength(r_, row, col)));
  }
  std::int64_t i64(int row, int col) const { return std::strtoll(PQgetvalue(r_, row, col), nullptr, 10); }
  double f64(int row, int col) const { return std::strtod(PQgetvalue(r_, row, col), nullptr); }
  bool boolean(int row, int col) const { return PQgetvalue(r_, row, col)[0] == 't'; }
  PGresult* get() const { return r_; }

 private:
  PGresult* r_;
};


constexpr std::int64_t kDayMs = 86'400'000;
std::int64_t day_of(std::int64_t unix_ms) { return unix_ms >= 0 ? unix_ms / kDayMs : (unix_ms - kDayMs + 1) / kDayMs; }

// The schema, one migration per version. Applied in order under the advisory lock; the
// version reached is kept in `switchyard_schema`.
constexpr const char* kMigrations[] = {
    R"sql(
CREATE TABLE teams(
  id TEXT PRIMARY KEY, name TEXT NOT NULL, metadata TEXT NOT NULL, disabled BOOLEAN NOT NULL,
  created_ms BIGINT NOT NULL);
CREATE TABLE keys(
  id TEXT PRIMARY KEY, name TEXT NOT NULL, team TEXT NOT NULL, sha256 TEXT NOT NULL UNIQUE,
  prefix TEXT NOT NULL, routes TEXT NOT NULL, models TEXT NOT NULL, policy TEXT NOT NULL,
  overrides INTEGER NOT NULL, expires_ms BIGINT NOT NULL, disabled BOOLEAN NOT NULL,
  metadata TEXT NOT NULL, created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL);
CREATE TABLE budgets(
  id TEXT PRIMARY KEY, scope TEXT NOT NULL, subject TEXT NOT NULL, period TEXT NOT NULL,
  timezone TEXT NOT NULL, utc_offset_minutes INTEGER NOT NULL, limit_nanos BIGINT NOT NULL,
  alerts TEXT NOT NULL, webhook TEXT NOT NULL, hard BOOLEAN NOT NULL, created_ms BIGINT NOT NULL);
CREATE TABLE limits(
  id TEXT PRIMARY KEY, scope TEXT NOT NULL, subject TEXT NOT NULL, rpm BIGINT NOT NULL,
  tpm BIGINT NOT NULL, concurrent BIGINT NOT NULL, created_ms BIGINT NOT NULL);
CREATE TABLE audit(
  id BIGSERIAL PRIMARY KEY, unix_ms BIGINT NOT NULL, actor TEXT NOT NULL,
  action TEXT NOT NULL, object_type TEXT NOT NULL, object_id TEXT NOT NULL,
  before TEXT NOT NULL, after TEXT NOT NULL);
CREATE TABLE ledger(
  id TEXT COLLATE "C" PRIMARY KEY, request_id TEXT NOT NULL, unix_ms BIGINT NOT NULL,
  key_id TEXT NOT NULL, key_name TEXT NOT NULL, team TEXT NOT NULL, end_user TEXT NOT NULL,
  route TEXT NOT NULL, model TEXT NOT NULL, deployment TEXT NOT NULL, provider TEXT NOT NULL,
  dialect TEXT NOT NULL, stream BOOLEAN NOT NULL, status INTEGER NOT NULL, error TEXT NOT NULL,
  error_kind TEXT NOT NULL, input_tokens BIGINT NOT NULL, output_tokens BIGINT NOT NULL,
  cache_read_tokens BIGINT NOT NULL, cache_write_tokens BIGINT NOT NULL,
  cache_write_1h_tokens BIGINT NOT NULL, reasoning_tokens BIGINT NOT NULL,
  usage_known BOOLEAN NOT NULL, usage_estimated BOOLEAN NOT NULL,
  cost_nanos BIGINT, unpriced BOOLEAN NOT NULL, price_since_ms BIGINT NOT NULL,
  reference_nanos BIGINT, reserved_nanos BIGINT, latency_ms DOUBLE PRECISION NOT NULL,
  ttft_ms DOUBLE PRECISION NOT NULL, attempts INTEGER NOT NULL, tier INTEGER NOT NULL,
  cancelled BOOLEAN NOT NULL);
CREATE TABLE spend_daily(
  day BIGINT NOT NULL, key_id TEXT NOT NULL, team TEXT NOT NULL, end_user TEXT NOT NULL,
  route TEXT NOT NULL, model TEXT NOT NULL, deployment TEXT NOT NULL,
  requests BIGINT NOT NULL, errors BIGINT NOT NULL, unpriced BIGINT NOT NULL,
  input_tokens BIGINT NOT NULL, output_tokens BIGINT NOT NULL, cache_read_tokens BIGINT NOT NULL,
  cache_write_tokens BIGINT NOT NULL, reasoning_tokens BIGINT NOT NULL,
  cost_nanos BIGINT NOT NULL, reference_nanos BIGINT NOT NULL,
  PRIMARY KEY(day, key_id, team, end_user, route, model, deployment));
CREATE TABLE budget_spend(
  budget_id TEXT NOT NULL, period_start_ms BIGINT NOT NULL, spent_nanos BIGINT NOT NULL,
  PRIMARY KEY(budget_id, period_start_ms));
)sql",
};

/// The connection string with any password replaced, for messages.
std::string redacted(const std::string& conninfo) {
  PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), nullptr);
  if (!opts) return "(unparsable connection string)";
  std::string out;
  for (PQconninfoOption* o = opts; o->keyword; ++o) {
    if (!o->val || !*o->val) continue;
    std::string_view k = o->keyword;
    if (k != "host" && k != "hostaddr" && k != "port" && k != "dbname" && k != "user" && k != "sslmode") continue;
    if (!out.empty()) out += ' ';
    out += std::string(k) + "=" + o->val;
  }
  PQconninfoFree(opts);
  return out.empty() ? "(defaults)" : out;
}

}  // namespace

/// One libpq connection, re-established when it has broken (the next statement after
/// PostgreSQL came back works; the one that found it down threw).
struct PostgresStore::Connection {
  std::string conninfo;
  PGconn* pg = nullptr;
  std::mutex mutex;
  bool in_transaction = false;

  explicit Connection(std::string info) : conninfo(std::move(info)) {}
  ~Connection() {
    if (pg) PQfinish(pg);
  }

  /// Connected (reconnecting if needed); throws when PostgreSQL cannot be reached.
  PGconn* get() {
    if (pg && PQstatus(pg) == CONNECTION_OK) return pg;
    if (pg) PQfinish(pg);
    pg = PQconnectdb(conninfo.c_str());
    if (PQstatus(pg) != CONNECTION_OK) {
      std::string message = PQerrorMessage(pg);
      PQfinish(pg);
      pg = nullptr;
      while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
      throw StoreError("postgres: cannot connect to " + redacted(conninfo) + ": " + message);
    }
    // Notices (a migration's "already exists") are not errors: kept out of the log.
    PQsetNoticeProcessor(pg, [](void*, const char*) {}, nullptr);
    return pg;
  }

  /// Runs one statement; throws `StoreError` on failure. A statement outside a transaction that
  /// finds the connection broken (PostgreSQL restarted since its last use) is tried once more on
  /// a new one; inside a transaction the failure is the caller's (the transaction is gone).
  Result exec(const char* sql, const Params& params = Params{}) {
    PGconn* c = get();
    auto p = params.pointers();
    PGresult* r = PQexecParams(c, sql, static_cast<int>(p.size()), nullptr, p.data(), nullptr, nullptr, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && !in_transaction && PQstatus(c) == CONNECTION_BAD) {
      PQclear(r);
      c = get();
      r = PQexecParams(c, sql, static_cast<int>(p.size()), nullptr, p.data(), nullptr, nullptr, 0);
      st = PQresultStatus(r);
    }
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      std::string message = PQresultErrorMessage(r);
      PQclear(r);
      while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
      if (message.empty()) message = PQerrorMessage(c);
      throw StoreError("postgres: " + message);
    }
    return Result(r);
  }
  /// Several statements without parameters (a migration): PQexecParams takes one only.
  void exec_script(const char* sql) {
    PGconn* c = get();
    Result r(PQexec(c, sql));
    if (PQresultStatus(r.get()) != PGRES_COMMAND_OK && PQresultStatus(r.get()) != PGRES_TUPLES_OK)
      throw StoreError(std::string("postgres: ") + PQresultErrorMessage(r.get()));
  }
};

namespace {

/// BEGIN … COMMIT on a connection, rolled back when the scope ends without commit().
class Transaction {
 public:
  explicit Transaction(PostgresStore::Connection& c) : c_(c) {
    c_.exec("BEGIN");
    c_.in_transaction = true;
  }
  ~Transaction() {
    c_.in_transaction = false;
    if (done_ || !c_.pg) return;
    PGresult* r = PQexec(c_.pg, "ROLLBACK");
    PQclear(r);
  }
  void commit() {
    c_.exec("COMMIT");
    done_ = true;
    c_.in_transaction = false;
  }

 private:
  PostgresStore::Connection& c_;
  bool done_ = false;
};

void write_audit(PostgresStore::Connection& c, const AuditEntry& a) {
  c.exec(
      "INSERT INTO audit(unix_ms, actor, action, object_type, object_id, before, after) "
      "VALUES($1,$2,$3,$4,$5,$6,$7)",
      Params().add(a.unix_ms).add(a.actor).add(a.action).add(a.object_type).add(a.object_id).add(a.before_json).add(
          a.after_json));
  // Delivered to every listening node when this transaction commits.
  c.exec("SELECT pg_notify($1, $2)", Params().add(kChannel).add(a.object_type));
}

void migrate(PostgresStore::Connection& c) {
  Transaction tx(c);
  // Nodes starting at once queue here; the first applies, the others find it done.
  c.exec((std::string("SELECT pg_advisory_xact_lock(") + kMigrationLock + ")").c_str());
  c.exec("CREATE TABLE IF NOT EXISTS switchyard_schema(version INTEGER NOT NULL)");
  Result v = c.exec("SELECT version FROM switchyard_schema");
  std::int64_t applied = 0;
  if (v.rows() == 0) c.exec("INSERT INTO switchyard_schema(version) VALUES(0)");
  else applied = v.i64(0, 0);
  const std::int64_t known = static_cast<std::int64_t>(std::size(kMigrations));
  if (applied > known)
    throw StoreError("the database's schema (version " + std::to_string(applied) +
                     ") is newer than this build knows (" + std::to_string(known) + ")");
  for (std::int64_t i = applied; i < known; ++i) c.exec_script(kMigrations[i]);
  c.exec("UPDATE switchyard_schema SET version = $1", Params().add(known));
  tx.commit();
}

}  // namespace

int PostgresStore::schema_version() { return static_cast<int>(std::size(kMigrations)); }

PostgresStore::PostgresStore(const PostgresOptions& options)
    : options_(options),
      defs_(std::make_unique<Connection>(options.conninfo)),
      ledger_(std::make_unique<Connection>(options.conninfo)) {
  std::lock_guard lock(defs_->mutex);
  migrate(*defs_);
}

PostgresStore::~PostgresStore() { stop_watching(); }

std::string PostgresStore::describe() const { return "postgres " + redacted(options_.conninfo); }

std::vector<Team> PostgresStore::teams() {
  std::lock_guard lock(defs_->mutex);
  Result r = defs_->exec("SELECT id, name, metadata, disabled, created_ms FROM teams ORDER BY id");
  std::vector<Team> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back({r.text(i, 0), r.text(i, 1), r.text(i, 2), r.boolean(i, 3), r.i64(i, 4)});
  return out;
}

std::vector<Key> PostgresStore::keys() {
  std::lock_guard lock(defs_->mutex);
  Result r = defs_->exec(
      "SELECT id, name, team, sha256, prefix, routes, models, policy, overrides, expires_ms, disabled, "
      "metadata, created_ms, updated_ms FROM keys ORDER BY created_ms, id");
  std::vector<Key> out;
  for (int i = 0; i < r.rows(); ++i) {
    Key k;
    k.id = r.text(i, 0);
    k.name = r.text(i, 1);
    k.team = r.text(i, 2);
    k.sha256 = r.text(i, 3);
    k.prefix = r.text(i, 4);
    k.routes = parse_list(r.text(i, 5));
    k.models = parse_list(r.text(i, 6));
    k.policy = r.text(i, 7);
    k.overrides = static_cast<std::uint8_t>(r.i64(i, 8));
    k.expires_ms = r.i64(i, 9);
    k.disabled = r.boolean(i, 10);
    k.metadata_json = r.text(i, 11);
    k.created_ms = r.i64(i, 12);
    k.updated_ms = r.i64(i, 13);
    out.push_back(std::move(k));
  }
  return out;
}

std::vector<Budget> PostgresStore::budgets() {
  std::lock_guard lock(defs_->mutex);
  Result r = defs_->exec(
      "SELECT id, scope, subject, period, timezone, utc_offset_minutes, limit_nanos, alerts, webhook, hard, "
      "created_ms FROM budgets ORDER BY created_ms, id");
  std::vector<Budget> out;
  for (int i = 0; i < r.rows(); ++i) {
    Budget b;
    b.id = r.text(i, 0);
    b.scope = governance::parse_scope(r.text(i, 1)).value_or(governance::Scope::key);
    b.subject = r.text(i, 2);
    b.period = governance::parse_period(r.text(i, 3)).value_or(governance::Period::total);
    b.timezone = r.text(i, 4);
    b.utc_offset_minutes = static_cast<std::int32_t>(r.i64(i, 5));
    b.limit = core::Money::nanos(r.i64(i, 6));
    b.alert_percents = parse_ints(r.text(i, 7));
    b.webhook = r.text(i, 8);
    b.hard = r.boolean(i, 9);
    b.created_ms = r.i64(i, 10);
    out.push_back(std::move(b));
  }
  return out;
}

std::vector<Limit> PostgresStore::limits() {
  std::lock_guard lock(defs_->mutex);
  Result r = defs_->exec("SELECT id, scope, subject, rpm, tpm, concurrent, created_ms FROM limits ORDER BY created_ms, id");
  std::vector<Limit> out;
  for (int i = 0; i < r.rows(); ++i) {
    Limit l;
    l.id = r.text(i, 0);
    l.scope = governance::parse_scope(r.text(i, 1)).value_or(governance::Scope::key);
    l.subject = r.text(i, 2);
    l.rpm = r.i64(i, 3);
    l.tpm = r.i64(i, 4);
    l.concurrent = r.i64(i, 5);
    l.created_ms = r.i64(i, 6);
    out.push_back(std::move(l));
  }
  return out;
}

void PostgresStore::put_team(const Team& t, const AuditEntry& audit) {
  std::lock_guard lock(defs_->mutex);
  Transaction tx(*defs_);
  defs_->exec(
      "INSERT INTO teams(id, name, metadata, disabled, created_ms) VALUES($1,$2,$3,$4,$5) "
      "ON CONFLICT(id) DO UPDATE SET name = excluded.name, metadata = excluded.metadata, "
      "disabled = excluded.disabled, created_ms = excluded.created_ms",
      Params().add(t.id).add(t.name).add(t.metadata_json).add(t.disabled).add(t.created_ms));
  write_audit(*defs_, audit);
  tx.commit();
}

void PostgresStore::put_key(const Key& k, const AuditEntry& audit) {
  std::lock_guard lock(defs_->mutex);
  Transaction tx(*defs_);
  defs_->exec(
      "INSERT INTO keys(id, name, team, sha256, prefix, routes, models, policy, overrides, expires_ms, disabled, "
      "metadata, created_ms, updated_ms) VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14) "
      "ON CONFLICT(id) DO UPDATE SET name = excluded.name, team = excluded.team, sha256 = excluded.sha256, "
      "prefix = excluded.prefix, routes = excluded.routes, models = excluded.models, policy = excluded.policy, "
      "overrides = excluded.overrides, expires_ms = excluded.expires_ms, disabled = excluded.disabled, "
      "metadata = excluded.metadata, created_ms = excluded.created_ms, updated_ms = excluded.updated_ms",
      Params()
          .add(k.id)
          .add(k.name)
          .add(k.team)
          .add(k.sha256)
          .add(k.prefix)
          .add(json_list(k.routes))
          .add(json_list(k.models))
          .add(k.policy)
          .add(static_cast<std::int64_t>(k.overrides))
          .add(k.expires_ms)
          .add(k.disabled)
          .add(k.metadata_json)
          .add(k.created_ms)
          .add(k.updated_ms));
  write_audit(*defs_, audit);
  tx.commit();
}

void PostgresStore::put_budget(const Budget& b, const AuditEntry& audit) {
  std::lock_guard lock(defs_->mutex);
  Transaction tx(*defs_);
  defs_->exec(
      "INSERT INTO budgets(id, scope, subject, period, timezone, utc_offset_minutes, limit_nanos, alerts, webhook, "
      "hard, created_ms) VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11) "
      "ON CONFLICT(id) DO UPDATE SET scope = excluded.scope, subject = excluded.subject, period = excluded.period, "
      "timezone = excluded.timezone, utc_offset_minutes = excluded.utc_offset_minutes, "
      "limit_nanos = excluded.limit_nanos, alerts = excluded.alerts, webhook = excluded.webhook, "
      "hard = excluded.hard, created_ms = excluded.created_ms",
      Params()
          .add(b.id)
          .add(governance::to_string(b.scope))
          .add(b.subject)
          .add(governance::to_string(b.period))
          .add(b.timezone)
          .add(b.utc_offset_minutes)
          .add(b.limit)
          .add(json_ints(b.alert_percents))
          .add(b.webhook)
          .add(b.hard)
          .add(b.created_ms));
  write_audit(*defs_, audit);
  tx.commit();
}

void PostgresStore::delete_budget(const std::string& id, const AuditEntry& audit) {
  std::lock_guard lock(defs_->mutex);
  Transaction tx(*defs_);
  defs_->exec("DELETE FROM budgets WHERE id = $1", Params().add(id));
  write_audit(*defs_, audit);
  tx.commit();
}

void PostgresStore::put_limit(const Limit& l, const AuditEntry& audit) {
  std::lock_guard lock(defs_->mutex);
  Transaction tx(*defs_);
  defs_->exec(
      "INSERT INTO limits(id, scope, subject, rpm, tpm, concurrent, created_ms) VALUES($1,$2,$3,$4,$5,$6,$7) "
      "ON CONFLICT(id) DO UPDATE SET scope = excluded.scope, subject = excluded.subject, rpm = excluded.rpm, "
      "tpm = excluded.tpm, concurrent = excluded.concurrent, created_ms = excluded.created_ms",
      Params()
          .add(l.id)
          .add(governance::to_string(l.scope))
          .add(l.subject)
          .add(l.rpm)
          .add(l.tpm)
          .add(l.concurrent)
          .add(l.created_ms));
  write_audit(*defs_, audit);
  tx.commit();
}

void PostgresStore::delete_limit(const std::string& id, const AuditEntry& audit) {
  std::lock_guard lock(defs_->mutex);
  Transaction tx(*defs_);
  defs_->exec("DELETE FROM limits WHERE id = $1", Params().add(id));
  write_audit(*defs_, audit);
  tx.commit();
}

std::vector<AuditEntry> PostgresStore::audit(std::int64_t after_id, std::size_t limit) {
  std::lock_guard lock(defs_->mutex);
  Result r = defs_->exec(
      "SELECT id, unix_ms, actor, action, object_type, object_id, before, after FROM audit WHERE id > $1 "
      "ORDER BY id LIMIT $2",
      Params().add(after_id).add(static_cast<std::int64_t>(limit)));
  std::vector<AuditEntry> out;
  for (int i = 0; i < r.rows(); ++i)
    out.push_back({r.i64(i, 0), r.i64(i, 1), r.text(i, 2), r.text(i, 3), r.text(i, 4), r.text(i, 5), r.text(i, 6),
                   r.text(i, 7)});
  return out;
}

void PostgresStore::write_ledger(const std::vector<LedgerRow>& rows) {
  if (rows.empty()) return;
  std::lock_guard lock(ledger_->mutex);
  Connection& c = *ledger_;
  Transaction tx(c);
  // Multi-row inserts (a statement takes at most 65,535 parameters: 34 per row, 512 rows);
  // RETURNING says which rows were new — rows another node's replay (or this one's) already
  // wrote count nothing twice.
  constexpr std::size_t kColumns = 34, kRowsPerStatement = 512;
  std::unordered_set<std::string> inserted;
  for (std::size_t from = 0; from < rows.size(); from += kRowsPerStatement) {
    const std::size_t to = std::min(rows.size(), from + kRowsPerStatement);
    std::string sql =
        "INSERT INTO ledger(id, request_id, unix_ms, key_id, key_name, team, end_user, route, model, deployment, "
        "provider, dialect, stream, status, error, error_kind, input_tokens, output_tokens, cache_read_tokens, "
        "cache_write_tokens, cache_write_1h_tokens, reasoning_tokens, usage_known, usage_estimated, cost_nanos, "
        "unpriced, price_since_ms, reference_nanos, reserved_nanos, latency_ms, ttft_ms, attempts, tier, "
        "cancelled) VALUES";
    Params p;
    for (std::size_t i = from; i < to; ++i) {
      const LedgerRow& r = rows[i];
      const core::TokenUsage& u = r.usage;
      sql += i == from ? "(" : ",(";
      for (std::size_t k = 0; k < kColumns; ++k) {
        if (k) sql += ',';
        sql += '$';
        sql += std::to_string((i - from) * kColumns + k + 1);
      }
      sql += ')';
      p.add(r.id).add(r.request_id).add(r.unix_ms).add(r.key_id).add(r.key_name).add(r.team).add(r.user);
      p.add(r.route).add(r.model).add(r.deployment).add(r.provider).add(r.dialect).add(r.stream).add(r.status);
      p.add(r.error).add(r.error_kind).add(u.input).add(u.output).add(u.cache_read).add(u.cache_creation);
      p.add(u.cache_creation_1h).add(u.reasoning).add(u.known).add(r.usage_estimated).add(r.cost).add(r.unpriced);
      p.add(r.price_since_ms).add(r.reference_cost).add(r.reserved).add(r.latency_ms).add(r.ttft_ms);
      p.add(r.attempts).add(r.tier).add(r.cancelled);
    }
    sql += " ON CONFLICT(id) DO NOTHING RETURNING id";
    Result res = c.exec(sql.c_str(), p);
    for (int i = 0; i < res.rows(); ++i) inserted.insert(res.text(i, 0));
  }
  using RollupKey = std::tuple<std::int64_t, std::string, std::string, std::string, std::string, std::string,
                               std::string>;
  struct Sums {
    std::int64_t requests = 0, errors = 0, unpriced = 0, input = 0, output = 0, cache_read = 0, cache_write = 0,
                 reasoning = 0, cost = 0, reference = 0;
  };
  std::map<RollupKey, Sums> rollups;
  std::map<std::pair<std::string, std::int64_t>, std::int64_t> budget_spend;
  for (const LedgerRow& r : rows) {
    if (!inserted.count(r.id)) continue;
    const core::TokenUsage& u = r.usage;
    Sums& s = rollups[{day_of(r.unix_ms), r.key_id, r.team, r.user, r.route, r.model, r.deployment}];
    ++s.requests;
    s.errors += r.status >= 400 || r.status == 0;
    s.unpriced += r.unpriced;
    s.input += u.input;
    s.output += u.output;
    s.cache_read += u.cache_read;
    s.cache_write += u.cache_creation;
    s.reasoning += u.reasoning;
    const std::int64_t cost = r.cost ? r.cost->nanos() : 0;
    s.cost += cost;
    if (r.cost) s.reference += r.reference_cost ? r.reference_cost->nanos() : cost;
    if (cost != 0)
      for (const auto& ch : r.charges) budget_spend[{ch.budget_id, ch.period_start_ms}] += cost;
  }
  // Upserts in key order (the maps are sorted): two nodes' batches touching the same rollup
  // rows lock them in the same order and cannot deadlock.
  for (const auto& [k, s] : rollups)
    c.exec(
        "INSERT INTO spend_daily(day, key_id, team, end_user, route, model, deployment, requests, errors, unpriced, "
        "input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, cost_nanos, "
        "reference_nanos) VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17) "
        "ON CONFLICT(day, key_id, team, end_user, route, model, deployment) DO UPDATE SET "
        "requests = spend_daily.requests + excluded.requests, errors = spend_daily.errors + excluded.errors, "
        "unpriced = spend_daily.unpriced + excluded.unpriced, "
        "input_tokens = spend_daily.input_tokens + excluded.input_tokens, "
        "output_tokens = spend_daily.output_tokens + excluded.output_tokens, "
        "cache_read_tokens = spend_daily.cache_read_tokens + excluded.cache_read_tokens, "
        "cache_write_tokens = spend_daily.cache_write_tokens + excluded.cache_write_tokens, "
        "reasoning_tokens = spend_daily.reasoning_tokens + excluded.reasoning_tokens, "
        "cost_nanos = spend_daily.cost_nanos + excluded.cost_nanos, "
        "reference_nanos = spend_daily.reference_nanos + excluded.reference_nanos",
        Params()
            .add(std::get<0>(k))
            .add(std::get<1>(k))
            .add(std::get<2>(k))
            .add(std::get<3>(k))
            .add(std::get<4>(k))
            .add(std::get<5>(k))
            .add(std::get<6>(k))
            .add(s.requests)
            .add(s.errors)
            .add(s.unpriced)
            .add(s.input)
            .add(s.output)
            .add(s.cache_read)
            .add(s.cache_write)
            .add(s.reasoning)
            .add(s.cost)
            .add(s.reference));
  for (const auto& [k, nanos] : budget_spend)
    c.exec(
        "INSERT INTO budget_spend(budget_id, period_start_ms, spent_nanos) VALUES($1,$2,$3) "
        "ON CONFLICT(budget_id, period_start_ms) DO UPDATE SET spent_nanos = budget_spend.spent_nanos + "
        "excluded.spent_nanos",
        Params().add(k.first).add(k.second).add(nanos));
  tx.commit();
}

core::Money PostgresStore::budget_spent(const std::string& budget_id, std::int64_t period_start_ms) {
  std::lock_guard lock(defs_->mutex);
  Result r = defs_->exec("SELECT spent_nanos FROM budget_spend WHERE budget_id = $1 AND period_start_ms = $2",
                         Params().add(budget_id).add(period_start_ms));
  return core::Money::nanos(r.rows() ? r.i64(0, 0) : 0);
}

std::vector<governance::BudgetSpend> PostgresStore::budget_spends(const std::vector<std::int64_t>& starts) {
  std::vector<governance::BudgetSpend> out;
  if (starts.empty()) return out;
  std::string array = "{";
  for (std::size_t i = 0; i < starts.size(); ++i) array += (i ? "," : "") + std::to_string(starts[i]);
  array += "}";
  std::lock_guard lock(defs_->mutex);
  Result r = defs_->exec(
      "SELECT budget_id, period_start_ms, spent_nanos FROM budget_spend WHERE period_start_ms = ANY($1::bigint[])",
      Params().add(array));
  for (int i = 0; i < r.rows(); ++i) out.push_back({r.text(i, 0), r.i64(i, 1), core::Money::nanos(r.i64(i, 2))});
  return out;
}

std::vector<governance::SpendRow> PostgresStore::spend(const governance::SpendQuery& q) {
  static const std::map<std::string, std::string> kGroups = {
      {"key", "key_id"},  {"team", "team"}, {"user", "end_user"}, {"model", "model"},
      {"route", "route"}, {"deployment", "deployment"}, {"day", "day"}};
  auto g = kGroups.find(q.group_by);
  if (g == kGroups.end()) throw StoreError("unknown grouping " + q.group_by);
  std::string sql = "SELECT " + g->second +
                    "::text, SUM(requests), SUM(errors), SUM(unpriced), SUM(input_tokens), SUM(output_tokens), "
                    "SUM(cache_read_tokens), SUM(cache_write_tokens), SUM(reasoning_tokens), SUM(cost_nanos), "
                    "SUM(reference_nanos) FROM spend_daily WHERE day >= $1 AND day < $2";
  Params p;
  p.add(day_of(q.from_ms)).add(q.to_ms > 0 ? day_of(q.to_ms - 1) + 1 : INT64_MAX);
  auto filter = [&](const std::string& value, const char* column) {
    if (value.empty()) return;
    p.add(value);
    sql += std::string(" AND ") + column + " = $" + std::to_string(p.size());
  };
  filter(q.key_id, "key_id");
  filter(q.team, "team");
  filter(q.user, "end_user");
  filter(q.route, "route");
  filter(q.model, "model");
  sql += " GROUP BY 1 ORDER BY " +
         std::string(q.group_by == "day" ? "MIN(day)" : "SUM(cost_nanos) DESC, 1");
  std::lock_guard lock(defs_->mutex);
  Result r = defs_->exec(sql.c_str(), p);
  std::vector<governance::SpendRow> out;
  for (int i = 0; i < r.rows(); ++i) {
    governance::SpendRow s;
    s.group = r.text(i, 0);
    s.requests = r.i64(i, 1);
    s.errors = r.i64(i, 2);
    s.unpriced = r.i64(i, 3);
    s.usage.input = r.i64(i, 4);
    s.usage.output = r.i64(i, 5);
    s.usage.cache_read = r.i64(i, 6);
    s.usage.cache_creation = r.i64(i, 7);
    s.usage.reasoning = r.i64(i, 8);
    s.usage.known = true;
    s.cost = core::Money::nanos(r.i64(i, 9));
    s.reference_cost = core::Money::nanos(r.i64(i, 10));
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<LedgerRow> PostgresStore::ledger_rows(std::int64_t from_ms, std::int64_t to_ms, std::size_t limit,
                                                  bool newest_first) {
  const std::string sql =
      "SELECT id, request_id, unix_ms, key_id, key_name, team, end_user, route, model, deployment, provider, "
      "dialect, stream, status, error, error_kind, input_tokens, output_tokens, cache_read_tokens, "
      "cache_write_tokens, cache_write_1h_tokens, reasoning_tokens, usage_known, usage_estimated, cost_nanos, "
      "unpriced, price_since_ms, reference_nanos, reserved_nanos, latency_ms, ttft_ms, attempts, tier, cancelled "
      "FROM ledger WHERE id >= $1 AND id < $2 ORDER BY id" +
      std::string(newest_first ? " DESC" : "") + " LIMIT $3";
  // Ids begin with their time (12 hex digits of unix ms; the column sorts bytewise): a time
  // range is a range of the primary key.
  char from[24], to[24] = "~";
  std::snprintf(from, sizeof from, "%012llx", static_cast<unsigned long long>(std::max<std::int64_t>(from_ms, 0)));
  if (to_ms > 0) std::snprintf(to, sizeof to, "%012llx", static_cast<unsigned long long>(to_ms));
  std::lock_guard lock(defs_->mutex);
  Result r = defs_->exec(sql.c_str(), Params().add(from).add(to).add(static_cast<std::int64_t>(limit)));
  std::vector<LedgerRow> out;
  for (int i = 0; i < r.rows(); ++i) {
    LedgerRow x;
    x.id = r.text(i, 0);
    x.request_id = r.text(i, 1);
    x.unix_ms = r.i64(i, 2);
    x.key_id = r.text(i, 3);
    x.key_name = r.text(i, 4);
    x.team = r.text(i, 5);
    x.user = r.text(i, 6);
    x.route = r.text(i, 7);
    x.model = r.text(i, 8);
    x.deployment = r.text(i, 9);
    x.provider = r.text(i, 10);
    x.dialect = r.text(i, 11);
    x.stream = r.boolean(i, 12);
    x.status = static_cast<int>(r.i64(i, 13));
    x.error = r.text(i, 14);
    x.error_kind = r.text(i, 15);
    x.usage.input = r.i64(i, 16);
    x.usage.output = r.i64(i, 17);
    x.usage.cache_read = r.i64(i, 18);
    x.usage.cache_creation = r.i64(i, 19);
    x.usage.cache_creation_1h = r.i64(i, 20);
    x.usage.reasoning = r.i64(i, 21);
    x.usage.known = r.boolean(i, 22);
    x.usage_estimated = r.boolean(i, 23);
    if (!r.null(i, 24)) x.cost = core::Money::nanos(r.i64(i, 24));
    x.unpriced = r.boolean(i, 25);
    x.price_since_ms = r.i64(i, 26);
    if (!r.null(i, 27)) x.reference_cost = core::Money::nanos(r.i64(i, 27));
    if (!r.null(i, 28)) x.reserved = core::Money::nanos(r.i64(i, 28));
    x.latency_ms = r.f64(i, 29);
    x.ttft_ms = r.f64(i, 30);
    x.attempts = static_cast<int>(r.i64(i, 31));
    x.tier = static_cast<int>(r.i64(i, 32));
    x.cancelled = r.boolean(i, 33);
    out.push_back(std::move(x));
  }
  return out;
}

std::int64_t PostgresStore::ledger_count() {
  std::lock_guard lock(defs_->mutex);
  return defs_->exec("SELECT COUNT(*) FROM ledger").i64(0, 0);
}

void PostgresStore::watch(std::function<void()> on_change) {
  stop_watching();
  stop_ = false;
  listener_ = std::thread([this, f = std::move(on_change)]() { listen_loop(f); });
}

void PostgresStore::stop_watching() {
  stop_ = true;
  if (listener_.joinable()) listener_.join();
}

void PostgresStore::listen_loop(std::function<void()> on_change) {
  using Clock = std::chrono::steady_clock;
  Connection c(options_.conninfo);
  bool listening = false;
  auto next_refresh = Clock::now() + std::chrono::milliseconds(options_.refresh_ms);
  auto changed = [&] {
    try {
      on_change();
    } catch (...) {
      // The store failing now: the next notification or refresh tries again.
    }
  };
  while (!stop_) {
    if (!listening) {
      try {
        c.exec((std::string("LISTEN ") + kChannel).c_str());
        listening = true;
        // Whatever was announced while not listening is read now.
        changed();
        next_refresh = Clock::now() + std::chrono::milliseconds(options_.refresh_ms);
      } catch (const StoreError&) {
        // PostgreSQL unreachable: try again shortly (the stop flag is checked meanwhile).
        for (int i = 0; i < 10 && !stop_; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
        continue;
      }
    }
    // Wake at least every 100 ms to notice `stop_`.
    pollfd p{PQsocket(c.pg), POLLIN, 0};
    const int ready = ::poll(&p, 1, 100);
    bool notified = false;
    if (ready > 0) {
      if (PQconsumeInput(c.pg) == 0) {
        listening = false;  // the connection broke: reconnect and re-read everything
        PQfinish(c.pg);
        c.pg = nullptr;
        continue;
      }
      while (PGnotify* n = PQnotifies(c.pg)) {
        notified = true;
        PQfreemem(n);
      }
    }
    if (notified || Clock::now() >= next_refresh) {
      changed();
      next_refresh = Clock::now() + std::chrono::milliseconds(options_.refresh_ms);
    }
  }
}

}  // namespace switchyard::store
