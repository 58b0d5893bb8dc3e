#include "routing/complexity/features.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>

namespace switchyard::routing::complexity {

namespace {

constexpr std::uint64_t kFnvOffset = 1469598103934665603ull;
constexpr std::size_t kTextWindow = 3000;  ///< characters read from the end of the text
constexpr std::uint64_t kFnvPrime = 1099511628211ull;

/// A finaliser so that nearby FNV values spread over the buckets.
std::uint64_t mix(std::uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }
// ASCII by hand: <cctype>'s functions are out-of-line calls through the locale, per character.
bool is_letter(unsigned char c) { return static_cast<unsigned char>((c | 0x20) - 'a') < 26; }
bool is_digit(unsigned char c) { return static_cast<unsigned char>(c - '0') < 10; }
bool is_word(unsigned char c) { return is_letter(c) || is_digit(c) || c >= 0x80; }

constexpr std::uint64_t fnv(std::string_view word) {
  std::uint64_t h = kFnvOffset;
  for (char c : word) h = (h ^ static_cast<unsigned char>(c)) * kFnvPrime;
  return h;
}

/// The structural measures are few against thousands of hashed entries; a larger scale lets
/// one pass of SGD weigh them (8 measured best of 1, 2, 4, 8 on held-out MMLU subjects).
constexpr float kStructureScale = 8.0f;

/// Roman-numeral item markers: "I." "II)" "III," "IV only" "I and II" (not the pronoun "I").
bool roman_item(std::string_view text, std::size_t start, std::size_t end) {
  if (end - start > 4) return false;
  if (start > 0 && text[start - 1] != ' ' && text[start - 1] != '\n' && text[start - 1] != '(') return false;
  for (std::size_t k = start; k < end; ++k)
    if (text[k] != 'I' && text[k] != 'V') return false;
  if (end >= text.size()) return false;
  char next = text[end];
  return next == '.' || next == ')' || next == ',' || text.substr(end, 5) == " only" || text.substr(end, 5) == " and ";
}

/// Scales the entries of one kind from `begin` so that the kind has unit length when every
/// entry is distinct (repeats stay as repeated entries: no sort or merge on the request path).
void add_kind(Sparse& out, std::size_t begin) {
  std::size_t n = out.size() - begin;
  if (n == 0) return;
  auto scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(n)));
  for (std::size_t i = begin; i < out.size(); ++i) out[i].second = scale;
}

}  // namespace

std::uint32_t dimensions(const FeatureSpec& spec) { return (1u << spec.hash_bits) + kDenseCount; }

void extract(std::string_view text, const FeatureSpec& spec, Sparse& out) {
  out.clear();
  // Everything is read from the last characters only (whole words): the latest turn says most
  // about what is asked, and a long conversation would otherwise cost a pass over all of it
  // (2,000 tokens: 28 -> ~14 us). The length feature still counts the whole text.
  const std::size_t full_size = text.size();
  if (text.size() > kTextWindow) {
    std::size_t cut = text.size() - kTextWindow;
    while (cut < text.size() && is_word(static_cast<unsigned char>(text[cut]))) ++cut;  // no half word
    text = text.substr(cut);
  }
  const std::uint32_t mask = (1u << spec.hash_bits) - 1;
  float dense[kDenseCount] = {};

  // Words (lower-cased runs of letters/digits) and their bigrams; structure on the way.
  std::size_t words_begin = out.size();
  std::uint64_t previous = 0;
  std::size_t words = 0, long_words = 0, digits = 0, upper = 0, letters = 0, numbers = 0;
  std::size_t option_count = 0, option_chars = 0, numeric_options = 0, first_option = text.size();
  std::size_t i = 0;
  const std::size_t n = text.size();
  while (i < n) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (!is_word(c)) {
      switch (c) {
        case '=': case '+': case '^': case '<': case '>': case '*': case '/': dense[kMathSymbols] += 1; break;
        case '$': case '\\': dense[kLatex] += 1; break;
        case '{': case '}': case ';': case '`': case '#': dense[kCodeMarkers] += 1; break;
        case '?': dense[kQuestionMarks] += 1; break;
        case '|':
          if (i > 0 && text[i - 1] == ' ' && i + 1 < n && text[i + 1] == ' ') dense[kStatements] += 1;
          break;
        case '\n': dense[kLines] += 1; break;
        default: break;
      }
      ++i;
      continue;
    }
    std::size_t start = i;
    std::uint64_t h = kFnvOffset;
    bool all_digits = true, all_upper = true;
    while (i < n && is_word(static_cast<unsigned char>(text[i]))) {
      char ch = text[i];
      if (ch >= '0' && ch <= '9') ++digits;
      else all_digits = false;
      if (ch >= 'A' && ch <= 'Z') ++upper;
      else all_upper = false;
      if (is_letter(static_cast<unsigned char>(ch))) ++letters;
      h = (h ^ static_cast<unsigned char>(lower(ch))) * kFnvPrime;
      ++i;
    }
    std::size_t len = i - start;
    ++words;
    if (len >= 9) ++long_words;
    if (all_digits) ++numbers;
    // Answer options: a single capital letter followed by '.' or ')' at a line start.
    if (len == 1 && text[start] >= 'A' && text[start] <= 'E' && i < n && (text[i] == '.' || text[i] == ')') &&
        (start == 0 || text[start - 1] == '\n')) {
      ++option_count;
      // The option's text: its length, whether it is a number, whether it combines judgements.
      std::size_t from = i + 1 < n && text[i + 1] == ' ' ? i + 2 : i + 1;
      std::size_t to = text.find('\n', from);
      if (to == std::string_view::npos) to = n;
      std::string_view option = text.substr(from, to - from);
      if (first_option > start) first_option = start;
      option_chars += option.size();
      std::size_t option_digits = 0;
      for (char ch : option) option_digits += is_digit(static_cast<unsigned char>(ch));
      if (option_digits && option_digits * 2 >= option.size()) ++numeric_options;
      if (option.size() < 30 && (option.find(", ") != std::string_view::npos ||
                                 option.find(" and ") != std::string_view::npos ||
                                 option.find(" only") != std::string_view::npos))
        dense[kCombinedOptions] += 1;
    }
    if (all_upper && len <= 4 && roman_item(text, start, i)) dense[kRomanItems] += 1;
    switch (len) {  // cues by the hash of the lower-cased word (and of the one before)
      case 3:
        if (h == fnv("not")) dense[kNegations] += 1;
        break;
      case 4:
        if (h == fnv("most") && previous == fnv("would")) dense[kInference] += 1;
        break;
      case 5:
        if (h == fnv("never") || (h == fnv("least") && all_upper)) dense[kNegations] += 1;
        break;
      case 6:
        if (h == fnv("except") && all_upper) dense[kNegations] += 1;
        if (h == fnv("likely") && previous == fnv("most")) dense[kInference] += 1;
        break;
      case 8:
        if (h == fnv("probably") || (h == fnv("explains") && previous == fnv("best"))) dense[kInference] += 1;
        break;
      case 11:
        if (h == fnv("appropriate") && previous == fnv("most")) dense[kInference] += 1;
        break;
      default:
        break;
    }
    if (spec.words) out.emplace_back(static_cast<std::uint32_t>(mix(h)) & mask, 1.0f);
    if (spec.bigrams && previous) out.emplace_back(static_cast<std::uint32_t>(mix(previous * 31 + h)) & mask, 1.0f);
    previous = h;
  }
  add_kind(out, words_begin);

  // Character 4-grams of the lower-cased text (spelling, notation, formatting).
  if (spec.char_grams && n >= 4) {
    std::size_t grams_begin = out.size();
    std::uint32_t window = 0;
    for (std::size_t k = 0; k < n; ++k) {
      window = (window << 8) | static_cast<unsigned char>(lower(text[k]));
      if (k >= 3) out.emplace_back(static_cast<std::uint32_t>(mix(window ^ 0x9e3779b97f4a7c15ull)) & mask, 1.0f);
    }
    add_kind(out, grams_begin);
  }

  dense[kLogChars] = static_cast<float>(std::log1p(static_cast<double>(full_size)) / 10.0);
  dense[kLogWords] = static_cast<float>(std::log1p(static_cast<double>(words)) / 10.0);
  dense[kDigitShare] = words ? static_cast<float>(digits) / static_cast<float>(letters + digits + 1) : 0;
  dense[kLongWords] = words ? static_cast<float>(long_words) / static_cast<float>(words) : 0;
  dense[kUpperShare] = letters ? static_cast<float>(upper) / static_cast<float>(letters) : 0;
  dense[kNumbers] = static_cast<float>(std::log1p(static_cast<double>(numbers)) / 5.0);
  dense[kOptions] = static_cast<float>(option_count);
  for (auto k : {kMathSymbols, kLatex, kCodeMarkers, kQuestionMarks, kOptions, kLines})
    dense[k] = static_cast<float>(std::log1p(static_cast<double>(dense[k])) / 5.0);
  const auto options = static_cast<double>(option_count);
  auto log1p_scaled = [](double x, double by) { return static_cast<float>(std::log1p(x) / by) * kStructureScale; };
  dense[kStatements] = log1p_scaled(dense[kStatements], 1);
  dense[kRomanItems] = log1p_scaled(dense[kRomanItems], 1);
  dense[kCombinedOptions] = dense[kCombinedOptions] / 4 * kStructureScale;
  dense[kNegations] = log1p_scaled(dense[kNegations], 1);
  dense[kInference] = std::min(1.0f, dense[kInference]) * kStructureScale;
  dense[kOptionLength] = options > 0.5 ? log1p_scaled(static_cast<double>(option_chars) / options, 5) : 0;
  dense[kNumericOptions] =
      options > 0.5 ? static_cast<float>(static_cast<double>(numeric_options) / options) * kStructureScale : 0;
  dense[kStemLength] = log1p_scaled(static_cast<double>(std::min(first_option, n)), 10);
  const std::uint32_t base = 1u << spec.hash_bits;
  for (std::uint32_t k = 0; k < kDenseCount; ++k)
    if (dense[k] != 0) out.emplace_back(base + k, dense[k]);
}

}  // namespace switchyard::routing::complexity
