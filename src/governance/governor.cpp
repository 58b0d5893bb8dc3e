#include "governance/governor.hpp"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <cstring>

namespace switchyard::governance {

namespace {
constexpr char kHex[] = "0123456789abcdef";

void random_bytes(unsigned char* out, int n) {
  if (RAND_bytes(out, n) != 1) throw std::runtime_error("the system's random generator failed");
}
}  // namespace

KeyDirectory::KeyDirectory(const std::vector<Key>& keys, const std::vector<Team>& teams) {
  std::unordered_map<std::string_view, bool> team_disabled;
  for (const Team& t : teams) {
    team_disabled[t.id] = t.disabled;
    if (t.disabled) disabled_teams_.insert(t.id);
  }
  for (const Key& k : keys) {
    config::KeyConfig c;
    c.name = k.name;
    c.sha256 = k.sha256;
    c.routes = k.routes;
    c.models = k.models;
    c.overrides = k.overrides;
    c.id = k.id;
    c.team = k.team;
    c.policy = k.policy;
    c.expires_ms = k.expires_ms;
    auto t = team_disabled.find(k.team);
    c.disabled = k.disabled || (t != team_disabled.end() && t->second);
    by_prefix_[k.sha256.substr(0, 16)].push_back(std::move(c));
    ++count_;
  }
}

const config::KeyConfig* KeyDirectory::find_hash(std::string_view sha256_hex) const {
  if (sha256_hex.size() != 64) return nullptr;
  auto it = by_prefix_.find(std::string(sha256_hex.substr(0, 16)));
  if (it == by_prefix_.end()) return nullptr;
  for (const config::KeyConfig& k : it->second)
    if (k.sha256.size() == 64 && CRYPTO_memcmp(k.sha256.data(), sha256_hex.data(), 64) == 0) return &k;
  return nullptr;
}

Governor::Governor(std::unique_ptr<Store> store, LedgerOptions ledger, Ledger::OnError on_error, AlertSink on_alert)
    : store_(std::move(store)),
      ledger_(*store_, ledger, std::move(on_error)),
      on_alert_(std::move(on_alert)),
      budgets_([this](const std::string& id, std::int64_t start) { return store_->budget_spent(id, start); }) {
  unsigned char tag[4];
  random_bytes(tag, sizeof tag);
  for (unsigned char b : tag) {
    node_tag_ += kHex[b >> 4];
    node_tag_ += kHex[b & 15];
  }
  reload();
  // A store shared with other nodes says when they changed a definition.
  store_->watch([this] { reload(); });
}

Governor::~Governor() {
  store_->stop_watching();
  ledger_.stop();
}

Definitions::Definitions(std::vector<Budget> b, std::vector<Limit> l) : budgets(std::move(b)), limits(std::move(l)) {
  for (std::size_t i = 0; i < budgets.size(); ++i)
    budgets_by_subject[subject_key(budgets[i].scope, budgets[i].subject)].push_back(i);
  for (std::size_t i = 0; i < limits.size(); ++i)
    limits_by_subject[subject_key(limits[i].scope, limits[i].subject)].push_back(i);
}

void Definitions::match(const Subjects& s, std::vector<const Budget*>& budgets_out,
                        std::vector<const Limit*>& limits_out) const {
  for (std::size_t i = 0; i < kScopes; ++i) {
    if (s.of[i].empty()) continue;
    const std::string_view key = subject_key_view(static_cast<Scope>(i), s.of[i]);
    if (auto it = budgets_by_subject.find(key); it != budgets_by_subject.end())
      for (std::size_t k : it->second) budgets_out.push_back(&budgets[k]);
    if (auto it = limits_by_subject.find(key); it != limits_by_subject.end())
      for (std::size_t k : it->second) limits_out.push_back(&limits[k]);
  }
}

void Governor::reload() {
  auto directory = std::make_shared<const KeyDirectory>(store_->keys(), store_->teams());
  const std::int64_t now = unix_now_ms();
  std::vector<Budget> budgets = store_->budgets();
  std::vector<Limit> limits = store_->limits();
  budgets_.set(budgets, now);
  limits_.set(limits);
  auto definitions = std::make_shared<const Definitions>(std::move(budgets), std::move(limits));
  std::function<void()> told;
  {
    std::lock_guard lock(directory_mutex_);
    directory_ = std::move(directory);
    definitions_ = std::move(definitions);
    told = on_reload_;
  }
  generation_.fetch_add(1, std::memory_order_release);
  if (told) told();
}

std::shared_ptr<const KeyDirectory> Governor::directory() const {
  std::lock_guard lock(directory_mutex_);
  return directory_;
}

std::vector<BudgetBook::View> Governor::budget_views(std::int64_t now_ms) {
  std::vector<BudgetBook::View> views = budgets_.view(now_ms);
  if (!shared_view_) return views;
  for (auto& v : views)
    if (!shared_view_(v.budget, v.period_start_ms, v.spent, v.reserved)) {
      v.spent = store_->budget_spent(v.budget.id, v.period_start_ms);
      v.reserved = core::Money{};
    }
  return views;
}

std::shared_ptr<const Definitions> Governor::definitions() const {
  std::lock_guard lock(directory_mutex_);
  return definitions_;
}

void Governor::on_reload(std::function<void()> f) {
  std::lock_guard lock(directory_mutex_);
  on_reload_ = std::move(f);
}

void Governor::settle(Admission& held, std::optional<core::Money> cost, std::int64_t tokens, std::int64_t now_ms,
                      std::vector<BudgetCharge>& charges) {
  limits_.settle(held.ticket, tokens, now_ms);
  if (!held.hold.active()) return;
  std::vector<BudgetAlert> alerts;
  budgets_.settle(held.hold, cost, now_ms, alerts, charges);
  if (on_alert_)
    for (const auto& a : alerts) on_alert_(a);
}

std::string Governor::new_id(std::string_view prefix) {
  unsigned char b[8];
  random_bytes(b, sizeof b);
  std::string id(prefix);
  for (unsigned char c : b) {
    id += kHex[c >> 4];
    id += kHex[c & 15];
  }
  return id;
}

std::string Governor::new_secret() {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  unsigned char b[48];
  random_bytes(b, sizeof b);
  std::string s = "sk-sy-";
  // 62 letters: bytes at or above 248 would bias; 48 draws of ~5.95 bits are ample even so,
  // but the rejection keeps every character uniform.
  for (unsigned char c : b) {
    while (c >= 248) random_bytes(&c, 1);
    s += kAlphabet[c % 62];
  }
  return s;
}

std::string Governor::next_ledger_id(std::int64_t unix_ms) {
  // 12 hex digits of milliseconds first: ids sort by time (the ledger's B-tree appends).
  std::string id(26, '0');
  auto hex = [&](std::size_t at, std::size_t digits, std::uint64_t v) {
    for (std::size_t i = 0; i < digits; ++i) id[at + digits - 1 - i] = kHex[(v >> (4 * i)) & 15];
  };
  hex(0, 12, static_cast<std::uint64_t>(unix_ms));
  id.replace(12, 8, node_tag_);
  hex(20, 6, ledger_seq_.fetch_add(1, std::memory_order_relaxed));
  return id;
}

}  // namespace switchyard::governance
