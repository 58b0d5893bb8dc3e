#include "routing/complexity/feedback.hpp"

#include <charconv>

#include "core/error.hpp"

namespace switchyard::routing::complexity {

void FeedbackStore::remember(Pending p) {
  if (capacity_ == 0) return;
  std::lock_guard lock(mutex_);
  std::string id = p.request_id;
  auto [it, inserted] = pending_.insert_or_assign(id, std::move(p));
  if (inserted) order_.push_back(std::move(id));
  while (order_.size() > capacity_) {
    pending_.erase(order_.front());
    order_.pop_front();
  }
}

std::optional<Pending> FeedbackStore::take(std::string_view request_id, std::string_view key) {
  std::lock_guard lock(mutex_);
  auto it = pending_.find(std::string(request_id));
  if (it == pending_.end() || (!key.empty() && it->second.key != key)) return std::nullopt;
  Pending p = std::move(it->second);
  pending_.erase(it);  // its id stays in order_ until it ages out; erase of a missing key is a no-op
  return p;
}

std::string feedback_row(const Pending& p, double score) {
  std::string out = "{\"id\":";
  core::append_json_string(out, p.request_id);
  out += ",\"route\":";
  core::append_json_string(out, p.route);
  out += ",\"category\":";
  core::append_json_string(out, p.route);
  out += ",\"tier\":" + std::to_string(p.tier);
  out += ",\"outcomes\":{";
  core::append_json_string(out, p.model);
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, score);
  out += ':';
  out.append(buf, end);
  out += "},\"hash_bits\":" + std::to_string(p.hash_bits);
  if (p.words) out += ",\"words\":true";
  out += ",\"features\":[";
  bool first = true;
  for (const auto& [i, v] : p.features) {
    if (!first) out += ',';
    first = false;
    out += '[';
    auto r1 = std::to_chars(buf, buf + sizeof buf, i);
    out.append(buf, r1.ptr);
    out += ',';
    auto r2 = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r2.ptr);
    out += ']';
  }
  out += "]}\n";
  return out;
}

}  // namespace switchyard::routing::complexity
