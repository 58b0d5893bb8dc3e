#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "governance/store.hpp"

struct sqlite3;

/// Governance's store embedded in the process: one SQLite file in WAL mode (readers never wait
/// for the ledger's writer). No server to install; the default for one node.
namespace switchyard::store {

struct SqliteOptions {
  std::string path;  ///< the database file (created with its schema when missing)
  /// true: every ledger commit is fsynced (a row survives a power cut, not only `kill -9`);
  /// false: committed to the WAL file in the OS's hands (survives the process dying).
  bool fsync = false;
};

class SqliteStore : public governance::Store {
 public:
  /// Opens (or creates) the database and applies the schema's migrations; throws
  /// `governance::StoreError` when it cannot.
  explicit SqliteStore(const SqliteOptions& options);
  ~SqliteStore() override;

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
  std::string describe() const override { return "sqlite " + path_; }

 private:
  /// One connection per use: definitions and reports (callers' threads) and the ledger's
  /// writer thread, each behind its own lock, so a report never waits for a ledger batch.
  struct Connection {
    sqlite3* db = nullptr;
    std::mutex mutex;
  };
  Connection defs_, ledger_;
  std::string path_;
};

}  // namespace switchyard::store
