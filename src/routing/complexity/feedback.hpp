#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "routing/complexity/features.hpp"

/// The classifier's closed loop: what a complexity-routed request was (its features, the model
/// that answered, its tier) is kept for a while, so that feedback on it (a thumbs up or down, an
/// evaluator's 0–1) can be written as a training row for `switchyard router train`. The prompt
/// text itself is never kept: only its hashed features.
namespace switchyard::routing::complexity {

struct Pending {
  std::string request_id;
  std::string key;    ///< the client key's name: feedback is accepted from the same key
  std::string route;
  std::string model;  ///< the catalogue model (or upstream model) that answered
  int tier = -1;
  double score = 0;   ///< the classifier's score
  std::uint32_t hash_bits = 0;
  bool words = false;  ///< the features include hashed words and bigrams (a `--words` model)
  Sparse features;
};

/// The last `capacity` complexity-routed requests, by request id. Thread-safe.
class FeedbackStore {
 public:
  explicit FeedbackStore(std::size_t capacity) : capacity_(capacity) {}
  void remember(Pending p);
  /// Removes and returns the request's record (feedback is taken once).
  std::optional<Pending> take(std::string_view request_id, std::string_view key);

 private:
  std::mutex mutex_;
  std::size_t capacity_;
  std::deque<std::string> order_;
  std::unordered_map<std::string, Pending> pending_;
};

/// The training row for feedback `score` (0..1) on `p`, one JSON line:
/// `{"id","route","category":route,"tier","outcomes":{model:score},"hash_bits",["words":true,]"features":[[i,v],...]}`.
std::string feedback_row(const Pending& p, double score);

}  // namespace switchyard::routing::complexity
