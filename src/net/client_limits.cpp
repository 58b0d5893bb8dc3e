#include "net/client_limits.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string_view>

namespace switchyard::net {

namespace {

std::int64_t micros(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

}  // namespace

std::size_t AddressTable::Hash::operator()(const Address& a) const noexcept {
  return std::hash<std::string_view>{}(std::string_view(reinterpret_cast<const char*>(a.data()), a.size()));
}

AddressTable::Shard& AddressTable::shard_of(const Address& a) {
  return shards_[Hash{}(a) % shards_.size()];
}

bool AddressTable::open(const Address& address, bool enforce) {
  Shard& s = shard_of(address);
  std::lock_guard lock(s.mutex);
  Entry& e = s.entries[address];
  if (enforce && limits_.max_connections != 0 && e.connections >= limits_.max_connections) return false;
  ++e.connections;
  return true;
}

void AddressTable::release(const Address& address) {
  Shard& s = shard_of(address);
  std::lock_guard lock(s.mutex);
  auto it = s.entries.find(address);
  if (it == s.entries.end()) return;
  if (it->second.connections > 0) --it->second.connections;
  const std::int64_t now = micros(Clock::now());
  if (it->second.connections == 0 && it->second.tat_us <= now) s.entries.erase(it);
  sweep(s, now);
}

namespace {
constexpr std::int64_t kBurstUs = 1'000'000;  // one second's worth of refusals
}  // namespace

bool AddressTable::over_rate(const Address& address, Clock::time_point now) {
  if (limits_.requests_per_second == 0) return false;
  const std::int64_t now_us = micros(now);
  Shard& s = shard_of(address);
  std::lock_guard lock(s.mutex);
  auto it = s.entries.find(address);
  // Over when one more refusal would take the address past its burst.
  return it != s.entries.end() && it->second.tat_us - now_us > kBurstUs - interval_us();
}

void AddressTable::charge_refusal(const Address& address, Clock::time_point now) {
  if (limits_.requests_per_second == 0) return;
  const std::int64_t now_us = micros(now);
  Shard& s = shard_of(address);
  std::lock_guard lock(s.mutex);
  Entry& e = s.entries[address];
  e.tat_us = std::max(e.tat_us, now_us) + interval_us();
}

void AddressTable::sweep(Shard& s, std::int64_t now_us) {
  if (now_us - s.swept_us < 1'000'000 || s.entries.size() < 64) return;
  s.swept_us = now_us;
  std::erase_if(s.entries, [now_us](const auto& kv) { return kv.second.connections == 0 && kv.second.tat_us <= now_us; });
}

std::size_t AddressTable::size() {
  std::size_t n = 0;
  for (Shard& s : shards_) {
    std::lock_guard lock(s.mutex);
    n += s.entries.size();
  }
  return n;
}

bool MemoryBudget::take(std::size_t bytes) {
  if (limit_ == 0) {
    used_.fetch_add(bytes, std::memory_order_relaxed);
    return true;
  }
  std::size_t used = used_.load(std::memory_order_relaxed);
  do {
    if (used + bytes > limit_) return false;
  } while (!used_.compare_exchange_weak(used, used + bytes, std::memory_order_relaxed));
  return true;
}

std::size_t MemoryBudget::machine_default() {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page = ::sysconf(_SC_PAGE_SIZE);
  const std::size_t physical = pages > 0 && page > 0 ? static_cast<std::size_t>(pages) * static_cast<std::size_t>(page) : 0;
  return std::max<std::size_t>(physical / 8, 64u * 1024 * 1024);
}

}  // namespace switchyard::net
