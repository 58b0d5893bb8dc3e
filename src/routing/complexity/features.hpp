#pragma once

#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

/// Cheap features of a prompt for the complexity classifier: hashed word unigrams and bigrams,
/// hashed character 4-grams, and a few dense structural measures (length, numbers, math, code,
/// answer options, question words). Pure and allocation-light: one pass over the text per kind.
namespace switchyard::routing::complexity {

struct FeatureSpec {
  std::uint32_t hash_bits = 16;  ///< hashed features go to 2^hash_bits buckets
  bool words = true;
  bool bigrams = true;
  bool char_grams = true;
};

/// Dense features appended after the hashed block (their indices: 2^hash_bits + i).
enum Dense : std::uint32_t {
  kLogChars,
  kLogWords,
  kDigitShare,
  kMathSymbols,
  kLatex,
  kCodeMarkers,
  kQuestionMarks,
  kOptions,       ///< "A." / "B)" style answer choices
  kLines,
  kLongWords,     ///< share of words of 9+ letters
  kUpperShare,
  kNumbers,       ///< numeric tokens
  kDenseCount,
};

/// A sparse vector: (index, value); an index may repeat (a repeated word, kinds sharing the
/// hashed space): a linear model simply adds them. Each hashed kind (words with bigrams, char
/// 4-grams of the last 3,000 characters) is scaled by 1/sqrt(its entry count).
using Sparse = std::vector<std::pair<std::uint32_t, float>>;

std::uint32_t dimensions(const FeatureSpec& spec);

/// Appends the features of `text` to `out` (cleared first).
void extract(std::string_view text, const FeatureSpec& spec, Sparse& out);

}  // namespace switchyard::routing::complexity
