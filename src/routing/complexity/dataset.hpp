#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

/// Routing data: JSONL rows of a prompt (or messages) and per-model outcomes.
namespace switchyard::routing::complexity {

struct Row {
  std::string id;
  std::string benchmark;
  std::string category;
  std::string text;  ///< `prompt`, or the messages' contents joined by lines
  std::vector<std::pair<std::string, std::optional<double>>> outcomes;  ///< null: not measured
  std::vector<std::pair<std::string, double>> cost_usd;
  std::string strong_model, weak_model;  ///< the pair a row names, when it names one
  /// Feedback rows carry hashed features instead of text (`hash_bits` says how they were hashed).
  std::optional<std::vector<std::pair<std::uint32_t, float>>> features;
  std::uint32_t hash_bits = 0;
  bool words = false;  ///< feedback rows: hashed with words and bigrams
  std::optional<double> outcome(std::string_view model) const;
};

/// Reads `{prompt | messages, outcomes: {model: score|null}, cost_usd?, id?, benchmark?, category?,
/// contaminated?}` rows; contaminated rows are skipped. False with `error` ("line 12: ...").
bool read_rows(const std::string& path, std::vector<Row>& rows, std::string& error);

/// A deterministic split by category: part `k` of `n` (a category's FNV-1a hash mod n).
bool in_part(std::string_view category, unsigned k, unsigned n);

/// Parses "K/N" (0 <= K < N); nullopt when malformed.
std::optional<std::pair<unsigned, unsigned>> parse_part(std::string_view text);

}  // namespace switchyard::routing::complexity
