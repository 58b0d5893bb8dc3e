#pragma once

#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

/// Cheap features of a prompt for the complexity classifier: hashed character 4-grams (and, on
/// request, word unigrams and bigrams), and dense structural measures (length, numbers, math,
/// code, answer options, compound judgements, negations). Pure and allocation-light: one pass
/// over the text per kind.
namespace switchyard::routing::complexity {

struct FeatureSpec {
  std::uint32_t hash_bits = 18;  ///< hashed features go to 2^hash_bits buckets
  // Words and bigrams carried no signal across MMLU subjects beyond the character 4-grams
  // (docs/routing-quality.md): off by default, kept for other data.
  bool words = false;
  bool bigrams = false;
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
  // Structure that carries across subjects (docs/routing-quality.md): a weaker model errs more
  // where several judgements must all be right.
  kStatements,       ///< " | " separators ("Statement 1 | ... Statement 2 | ...")
  kRomanItems,       ///< enumerated items "I.", "II)", "I and II", "III only"
  kCombinedOptions,  ///< short answer options that combine judgements ("True, False", "I and III")
  kNegations,        ///< "NOT", "EXCEPT", "LEAST", " not ", " never "
  kInference,        ///< "most likely", "probably", "best explains", "most appropriate", "would most"
  kOptionLength,     ///< mean length of the answer options
  kNumericOptions,   ///< share of answer options that are mostly digits
  kStemLength,       ///< characters before the first answer option
  kDenseCount,
};

/// A sparse vector: (index, value); an index may repeat (a repeated word, kinds sharing the
/// hashed space): a linear model simply adds them. Each hashed kind (words with bigrams, char
/// 4-grams) is scaled by 1/sqrt(its entry count). Everything is read from the last 3,000
/// characters of the text (whole words); the length measure counts all of it.
using Sparse = std::vector<std::pair<std::uint32_t, float>>;

std::uint32_t dimensions(const FeatureSpec& spec);

/// Appends the features of `text` to `out` (cleared first).
void extract(std::string_view text, const FeatureSpec& spec, Sparse& out);

}  // namespace switchyard::routing::complexity
