#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "governance/store.hpp"

/// Governance's store shared by many nodes: PostgreSQL through libpq. The same tables and
/// rules as the SQLite store (docs/governance.md), with three things only a shared store needs:
/// migrations that several nodes starting at once apply exactly once (under an advisory lock),
/// ledger batches from several nodes' spools landing without duplicates (the row id is the
/// key: `ON CONFLICT DO NOTHING`, rollups counted only for rows inserted), and a change made on
/// one node announced to the others (`NOTIFY switchyard_definitions` in the change's own
/// transaction; `watch` LISTENs for it).
namespace switchyard::store {

struct PostgresOptions {
  std::string conninfo;  ///< a libpq connection string or URI
  /// `watch`: a full re-read this often even without a notification (a LISTEN connection that
  /// broke loses what was sent meanwhile).
  std::uint32_t refresh_ms = 30000;
};

class PostgresStore : public governance::Store {
 public:
  /// Connects and applies the schema's migrations; throws `governance::StoreError` when it
  /// cannot (the message never carries the password).
  explicit PostgresStore(const PostgresOptions& options);
  ~PostgresStore() override;

  std::vector<governance::Team> teams() override;
  std::vector<governance::Key> keys() override;
  std::vector<governance::Budget> budgets() override;
  std::vector<governance::Limit> limits() override;
  void put_team(const governance::Team& t, const governance::AuditEntry& audit) override;
  void put_key(const governance::Key& k, const governance::AuditEntry& audit) override;
  void put_budget(const governance::Budget& b, const governance::AuditEntry& audit) override;
  void delete_budget(const std::string& id, const governance::AuditEntry& audit) override;
  void put_limit(const governance::Limit& l, const governance::AuditEntry& audit) override;
  void delete_limit(const std::string& id, const governance::AuditEntry& audit) override;
  std::vector<governance::AuditEntry> audit(std::int64_t after_id, std::size_t limit) override;

  void write_ledger(const std::vector<governance::LedgerRow>& rows) override;
  core::Money budget_spent(const std::string& budget_id, std::int64_t period_start_ms) override;
  std::vector<governance::BudgetSpend> budget_spends(const std::vector<std::int64_t>& period_starts_ms) override;
  std::vector<governance::SpendRow> spend(const governance::SpendQuery& q) override;
  std::vector<governance::LedgerRow> ledger_rows(std::int64_t from_ms, std::int64_t to_ms, std::size_t limit,
                                                 bool newest_first = false) override;
  std::int64_t ledger_count() override;

  void watch(std::function<void()> on_change) override;
  void stop_watching() override;
  std::string describe() const override;

  /// The schema version this build applies (`switchyard admin migrate` reports it).
  static int schema_version();

  struct Connection;

 private:
  void listen_loop(std::function<void()> on_change);

  PostgresOptions options_;
  /// One connection per use, each behind its own lock: definitions and reports (callers'
  /// threads), and the ledger's writer thread — a report never waits for a ledger batch.
  std::unique_ptr<Connection> defs_, ledger_;
  std::thread listener_;
  std::atomic<bool> stop_{false};
};

}  // namespace switchyard::store
