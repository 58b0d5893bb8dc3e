#include "core/token_estimate.hpp"

#include <array>
#include <cstdint>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

// The estimate follows what o200k_base does to text before BPE: its pre-tokenizer regex cuts
// text into pieces (a word with the space or single punctuation mark before it, up to three
// digits, a run of punctuation, a run of white space) and BPE never merges across pieces. So the
// token count is the sum over pieces, and a piece's expected token count depends mostly on its
// shape: a lowercase word of up to six letters is almost always one token, a capitalised or
// all-caps word of the same length is not. The per-shape costs below are the mean real
// o200k_base token counts of such pieces in MMLU prompts (bench/tokens/README.md has the
// method); non-English letters are charged per character. Costs are fractional and summed in
// fixed point, so a text of many 1.06-token words is not rounded piece by piece.

namespace switchyard::core {
namespace {

using Cost = std::uint64_t;  // 64 bits: a run of millions of marks must not wrap
constexpr int kFracBits = 8;
constexpr Cost fx(double tokens) { return static_cast<Cost>(tokens * (1 << kFracBits) + 0.5); }

// Character kinds, ordered so that the groups the pre-tokenizer cares about are ranges.
enum Kind : std::uint8_t {
  k_lower,         // a-z
  k_upper,         // A-Z
  k_latin,         // accented Latin letter: often splits the word's tokens
  k_alphabet,      // other 2-byte letters (Greek, Cyrillic, Hebrew, Arabic): cheaper in o200k
  k_cjk,           // Han, kana, Hangul: roughly a token a character whatever the context
  k_other_letter,  // other 3-byte letters: Indic, Thai, Ethiopic, ...
  k_digit,
  k_space,    // space, tab, NBSP: merges into the next word
  k_newline,  // \n, \r
  k_punct,    // ASCII punctuation and controls, non-letter symbols
  k_emoji,    // 4-byte symbols: often 2-3 tokens each
  k_slow,     // table only: backslash or non-ASCII lead byte, decoded out of line
  k_end,      // past the end of the text
};

constexpr bool is_letter(Kind k) { return k <= k_other_letter; }
constexpr bool is_space(Kind k) { return k == k_space || k == k_newline; }
constexpr bool is_punct(Kind k) { return k == k_punct || k == k_emoji; }

constexpr std::array<Kind, 256> kByteKind = [] {
  std::array<Kind, 256> t{};
  for (int b = 0; b < 256; ++b) {
    Kind k = k_punct;
    if (b >= 'a' && b <= 'z') k = k_lower;
    else if (b >= 'A' && b <= 'Z') k = k_upper;
    else if (b >= '0' && b <= '9') k = k_digit;
    else if (b == ' ' || b == '\t' || b == '\v' || b == '\f') k = k_space;
    else if (b == '\n' || b == '\r') k = k_newline;
    else if (b == '\\' || b >= 0x80) k = k_slow;
    t[static_cast<std::size_t>(b)] = k;
  }
  return t;
}();

struct Char {
  Kind kind;
  std::uint32_t len;  // bytes
};

Kind kind_of_code_point(std::uint32_t cp) {
  if (cp < 0x80) return kByteKind[cp] == k_slow ? k_punct : kByteKind[cp];
  if (cp < 0xC0) return cp == 0xA0 ? k_space : k_punct;  // Latin-1 symbols; NBSP
  if (cp < 0x250) return cp == 0xD7 || cp == 0xF7 ? k_punct : k_latin;
  if (cp < 0x370) return k_latin;  // IPA, modifier letters, combining accents
  if (cp < 0x800) return k_alphabet;
  if (cp < 0x1E00) return k_other_letter;
  if (cp < 0x2000) return k_latin;  // Latin Extended Additional (Vietnamese), Greek Extended
  if (cp < 0x2C00) return k_punct;  // punctuation, symbols, arrows, maths, box drawing
  if (cp < 0x2E00) return k_other_letter;
  if (cp < 0x2E80) return k_punct;
  if (cp < 0x3000) return k_cjk;  // radicals
  if (cp < 0x3040) return cp == 0x3000 ? k_space : k_punct;  // CJK punctuation: 。、「」
  if (cp < 0xA000) return k_cjk;
  if (cp < 0xAC00) return k_other_letter;
  if (cp < 0xD7B0) return k_cjk;     // Hangul syllables
  if (cp < 0xF900) return k_punct;   // surrogates, private use
  if (cp < 0xFB00) return k_cjk;     // compatibility ideographs
  if (cp < 0xFE00) return k_other_letter;  // presentation forms
  if (cp < 0xFF21) return k_punct;   // variation selectors, fullwidth punctuation: ，！（）
  if (cp < 0xFF5B) return cp < 0xFF3B || cp > 0xFF40 ? k_latin : k_punct;  // fullwidth A-Z a-z
  if (cp >= 0xFF66 && cp < 0xFFA0) return k_cjk;  // halfwidth katakana
  return k_punct;
}

constexpr int hex_value(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = static_cast<unsigned char>(c | 0x20);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// The code unit of a \uXXXX escape at s[i], or -1 if there is none.
int escaped_code_point(const unsigned char* s, std::size_t i, std::size_t n) {
  if (i > n || n - i < 6 || s[i] != '\\' || s[i + 1] != 'u') return -1;
  int cp = 0;
  for (std::size_t j = i + 2; j < i + 6; ++j) {
    int h = hex_value(s[j]);
    if (h < 0) return -1;
    cp = cp << 4 | h;
  }
  return cp;
}

// Backslash (a JSON escape counts as the character it stands for: the gateway estimates from
// raw JSON string content too) and multi-byte UTF-8. Malformed UTF-8 counts as punctuation.
Char decode_slow(const unsigned char* s, std::size_t i, std::size_t n) {
  const unsigned char b = s[i];
  const std::size_t avail = n - i;
  if (b == '\\') {
    if (avail < 2) return {k_punct, 1};
    switch (s[i + 1]) {
      case 'n':
      case 'r': return {k_newline, 2};
      case 't': return {k_space, 2};
      case '"':
      case '\\':
      case '/': return {k_punct, 2};
      case 'u': {
        int cp = escaped_code_point(s, i, n);
        if (cp < 0) return {k_punct, 1};
        if (cp >= 0xD800 && cp < 0xDC00) {  // a surrogate pair is one astral character
          int low = escaped_code_point(s, i + 6, n);
          return {k_emoji, low >= 0xDC00 && low < 0xE000 ? 12u : 6u};
        }
        return {kind_of_code_point(static_cast<std::uint32_t>(cp)), 6};
      }
      default: return {k_punct, 1};
    }
  }
  if (b < 0xC2) return {k_punct, 1};  // stray continuation byte or overlong lead
  if (b < 0xE0) {
    if (avail < 2) return {k_punct, 1};
    return {kind_of_code_point((b & 0x1Fu) << 6 | (s[i + 1] & 0x3Fu)), 2};
  }
  if (b < 0xF0) {
    if (avail < 3) return {k_punct, static_cast<std::uint32_t>(avail)};
    return {kind_of_code_point((b & 0x0Fu) << 12 | (s[i + 1] & 0x3Fu) << 6 | (s[i + 2] & 0x3Fu)),
            3};
  }
  if (b < 0xF5) {
    if (avail < 4) return {k_punct, static_cast<std::uint32_t>(avail)};
    std::uint32_t cp = (b & 0x07u) << 18 | (s[i + 1] & 0x3Fu) << 12;
    return {cp >= 0x20000 && cp < 0x40000 ? k_cjk : k_emoji, 4};  // CJK extensions or emoji
  }
  return {k_punct, 1};
}

inline Char decode(const unsigned char* s, std::size_t i, std::size_t n) {
  if (i >= n) return {k_end, 0};
  Kind k = kByteKind[s[i]];
  if (k != k_slow) [[likely]] return {k, 1};
  return decode_slow(s, i, n);
}

// Word pieces by shape: led by a space or nothing, or by one punctuation mark ("(the", ".get",
// "_name"), which the mark joins; lowercase, capitalised or all caps.
enum WordShape : std::uint8_t { w_lower, w_capital, w_upper, w_punct_lower, w_punct_capital };

// Mean o200k_base tokens of a word piece by shape and letter count (column 0 = one letter).
// Beyond the measured lengths each further letter adds kLongWordSlope.
constexpr std::size_t kMeasuredLengths = 16;
constexpr double kWordTokens[5][kMeasuredLengths] = {
  // " the", "word": lowercase
  {1.00, 1.00, 1.00, 1.00, 1.01, 1.03, 1.06, 1.09, 1.12, 1.21, 1.25, 1.40, 1.47, 1.63, 1.90, 2.05},
  // " The", "Word": capitalised (and "HTTPServer")
  {1.00, 1.01, 1.01, 1.05, 1.07, 1.09, 1.33, 1.38, 1.54, 1.82, 2.00, 2.03, 2.24, 2.44, 2.75, 3.00},
  // " HTTP": all caps
  {1.00, 1.00, 1.23, 1.69, 1.78, 1.94, 2.00, 2.19, 2.50, 2.80, 3.10, 3.40, 3.70, 4.00, 4.30, 4.60},
  // "(the", ".get", "_name"
  {1.00, 1.04, 1.06, 1.12, 1.16, 1.32, 1.50, 1.68, 1.85, 2.10, 2.30, 2.50, 2.70, 2.90, 3.10, 3.30},
  // "(The", "\"HTTP"
  {1.09, 1.35, 1.45, 1.80, 2.10, 2.40, 2.50, 2.55, 2.65, 3.00, 3.20, 3.40, 3.60, 3.80, 4.00, 4.20},
};
constexpr double kLongWordSlope = 0.35;

// kWordTokens in fixed point, indexed by the letter count itself (0 letters: a word of only
// CJK or other per-character letters) and extended so that the lookup needs no branch below
// kWordLengths letters.
constexpr std::size_t kWordLengths = 32;
constexpr auto kWordCost = [] {
  std::array<std::array<Cost, kWordLengths>, 5> t{};
  for (std::size_t shape = 0; shape < 5; ++shape)
    for (std::size_t len = 1; len < kWordLengths; ++len)
      t[shape][len] = fx(len <= kMeasuredLengths
                             ? kWordTokens[shape][len - 1]
                             : kWordTokens[shape][kMeasuredLengths - 1] +
                                   static_cast<double>(len - kMeasuredLengths) * kLongWordSlope);
  return t;
}();

// Letters outside ASCII: what a non-ASCII letter adds to its word; CJK and other scripts per
// character on their own.
constexpr Cost kLatinLetter = fx(0.35);
constexpr Cost kAlphabetLetter = fx(0.08);
constexpr Cost kCjkLetter = fx(0.66);
constexpr Cost kOtherLetter = fx(0.5);

// o200k keeps English contractions in the word piece: "'s"/"'d" usually add a token, "'t",
// "'m", "'re", "'ve", "'ll" rarely do (" don't" is one token).
constexpr Cost kContractionS = fx(0.65);
constexpr Cost kContractionT = fx(0.1);

// Punctuation runs ("));", "\",", "...") by character count; a run of one repeated mark
// ("-----", "====") is nearly one token whatever its length.
constexpr std::array<Cost, 8> kPunctRun = {fx(1.00), fx(1.05), fx(1.20), fx(1.40),
                                           fx(1.60), fx(1.80), fx(2.00), fx(2.20)};
constexpr Cost kPunctRunSlope = fx(0.2);
constexpr Cost kRepeatedRunBase = fx(1.0);
constexpr Cost kRepeatedRunSlope = fx(1.0 / 16);
constexpr Cost kEmoji = fx(1.0);  // on top of its share of the run

constexpr Cost kDigitGroup = fx(1.0);   // digits go in pieces of up to three
constexpr Cost kNewlineRun = fx(1.0);   // "\n", "\n\n", " \n" alike
constexpr Cost kSpaceRun = fx(1.0);     // spaces not merged into a word: indentation, " 42"

inline Cost word_cost(WordShape shape, std::size_t letters) {
  if (letters < kWordLengths) [[likely]] return kWordCost[shape][letters];
  return kWordCost[shape][kWordLengths - 1] + fx(kLongWordSlope) * (letters - (kWordLengths - 1));
}

inline bool ascii_letter_at(const unsigned char* s, std::size_t i, std::size_t n) {
  return i < n && kByteKind[s[i]] <= k_upper;
}

// Length of a contraction suffix ("'s", "'ll") at s[i], 0 if none; its cost in `cost`.
inline std::size_t contraction_at(const unsigned char* s, std::size_t i, std::size_t n,
                                  Cost& cost) {
  if (i + 1 >= n || s[i] != '\'') return 0;
  const unsigned char a = static_cast<unsigned char>(s[i + 1] | 0x20);
  if ((a == 's' || a == 'd' || a == 't' || a == 'm') && !ascii_letter_at(s, i + 2, n)) {
    cost = a == 's' || a == 'd' ? kContractionS : kContractionT;
    return 2;
  }
  if (i + 2 < n) {
    const unsigned char b = static_cast<unsigned char>(s[i + 2] | 0x20);
    if (((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) &&
        !ascii_letter_at(s, i + 3, n)) {
      cost = kContractionT;
      return 3;
    }
  }
  return 0;
}

struct Word {
  std::size_t letters = 0;  // ASCII and 2-byte letters: what the length tables count
  std::size_t upper = 0;
  Cost extra = 0;  // non-ASCII letters, priced per character
};

#if defined(__SSE2__)
// Lowercase and uppercase bitmaps of 64 bytes of text. Consecutive words are measured from
// these registers rather than with a load each: in prose the load → compare → movemask chain
// per word was what the whole estimate waited on.
struct LetterWindow {
  bool loaded = false;
  std::size_t start = 0;
  std::uint64_t lower = 0;
  std::uint64_t upper = 0;

  void load(const unsigned char* s, std::size_t at) {
    loaded = true;
    start = at;
    lower = upper = 0;
    // Signed compares: bytes >= 0x80 are negative, so never in a letter range.
    const __m128i before_a = _mm_set1_epi8('a' - 1), after_z = _mm_set1_epi8('z' + 1);
    const __m128i before_A = _mm_set1_epi8('A' - 1), after_Z = _mm_set1_epi8('Z' + 1);
    for (int k = 0; k < 4; ++k) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + at + 16 * k));
      const auto lo = static_cast<std::uint16_t>(_mm_movemask_epi8(
          _mm_and_si128(_mm_cmpgt_epi8(v, before_a), _mm_cmplt_epi8(v, after_z))));
      const auto up = static_cast<std::uint16_t>(_mm_movemask_epi8(
          _mm_and_si128(_mm_cmpgt_epi8(v, before_A), _mm_cmplt_epi8(v, after_Z))));
      lower |= std::uint64_t{lo} << (16 * k);
      upper |= std::uint64_t{up} << (16 * k);
    }
  }
};
#else
struct LetterWindow {};
#endif

// The rest of a word from s[i] on, character by character: non-ASCII letters and escapes.
std::size_t continue_word(const unsigned char* s, std::size_t i, std::size_t n, Word& w,
                          bool after_lower) {
  for (Char c = decode(s, i, n); is_letter(c.kind); c = decode(s, i, n)) {
    switch (c.kind) {
      case k_lower: after_lower = true, ++w.letters; break;
      case k_upper:
        if (after_lower) return i;
        ++w.upper, ++w.letters;
        break;
      case k_latin: after_lower = true, ++w.letters, w.extra += kLatinLetter; break;
      case k_alphabet: after_lower = true, ++w.letters, w.extra += kAlphabetLetter; break;
      case k_cjk: after_lower = true, w.extra += kCjkLetter; break;
      default: after_lower = true, w.extra += kOtherLetter; break;
    }
    i += c.len;
  }
  return i;
}

// The word piece starting at s[i] (a letter); returns its end. o200k's word pattern is
// uppercase* lowercase+, so a piece ends at a lower→upper step ("camelCase" is two pieces).
std::size_t scan_word(const unsigned char* s, std::size_t i, std::size_t n, Word& w,
                      [[maybe_unused]] LetterWindow& window) {
  const std::size_t start = i;
#if defined(__SSE2__)
  // Most words are ASCII and end inside the window: no loop to mispredict, no load to wait for.
  // Bits shifted in past the window's end read as "neither case", so a word that runs past it
  // finds no end here and the window moves to it (once: a 64-letter word goes the slow way).
  if (i + 64 <= n) {
    if (!window.loaded || i < window.start || i - window.start > 48) window.load(s, i);
    for (int attempt = 0; attempt < 2; ++attempt) {
      const auto offset = static_cast<unsigned>(i - window.start);
      const std::uint64_t not_upper = ~window.upper >> offset;
      if (not_upper != 0) {
        const auto u = static_cast<unsigned>(__builtin_ctzll(not_upper));
        const std::uint64_t not_lower = ~window.lower >> (offset + u);  // offset + u < 64
        if (not_lower != 0) {
          const auto l = static_cast<unsigned>(__builtin_ctzll(not_lower));
          i += u + l;
          w.upper = u;
          w.letters = u + l;
          if (kByteKind[s[i]] != k_slow) return i;
          return continue_word(s, i, n, w, l > 0);
        }
      }
      if (offset == 0) break;
      window.load(s, i);
    }
  }
  // Shorter texts and their last 64 bytes: one 16-byte load finds the end of most words.
  if (i + 16 <= n) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i));
    const auto in_range = [&v](char lo, char hi) {
      return static_cast<unsigned>(_mm_movemask_epi8(_mm_and_si128(
          _mm_cmpgt_epi8(v, _mm_set1_epi8(static_cast<char>(lo - 1))),
          _mm_cmplt_epi8(v, _mm_set1_epi8(static_cast<char>(hi + 1))))));
    };
    const unsigned lower = in_range('a', 'z');
    const unsigned upper = in_range('A', 'Z');
    const auto u = static_cast<unsigned>(__builtin_ctz(~upper));  // <= 16: bit 16 is clear
    const auto l = static_cast<unsigned>(__builtin_ctz(~lower >> u));
    if (u + l < 16) {
      i += u + l;
      w.upper = u;
      w.letters = u + l;
      if (kByteKind[s[i]] != k_slow) return i;
      return continue_word(s, i, n, w, l > 0);
    }
  }
#endif
  while (i < n && kByteKind[s[i]] == k_upper) ++i;
  w.upper = i - start;
  const std::size_t lower_start = i;
  while (i < n && kByteKind[s[i]] == k_lower) ++i;
  w.letters = i - start;
  if (i >= n || kByteKind[s[i]] != k_slow) return i;
  return continue_word(s, i, n, w, i > lower_start);
}

}  // namespace

std::size_t estimate_text_tokens(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  Cost total = 0;
  std::size_t i = 0;
  bool punct_lead = false;  // the next word starts with the one punctuation mark before it
  bool space_lead = false;  // the next punctuation run starts with the space before it
  LetterWindow window;

  while (i < n) {
    // " word": the space is part of the word's first token.
    if (s[i] == ' ' && i + 1 < n && kByteKind[s[i + 1]] <= k_upper) ++i;
    Char c = decode(s, i, n);

    if (is_letter(c.kind)) {
      // Words separated by single spaces, the bulk of prose, stay in this loop.
      for (;;) {
        Word w;
        i = scan_word(s, i, n, w, window);
        const WordShape shape = punct_lead ? (w.upper ? w_punct_capital : w_punct_lower)
                                : w.upper == 0 ? w_lower
                                : w.upper == w.letters && w.letters > 1 ? w_upper
                                                                        : w_capital;
        total += word_cost(shape, w.letters) + w.extra;
        if (punct_lead && w.letters == 0) total += kPunctRun[0];  // "「中": the mark stays apart
        punct_lead = false;
        if (i < n && s[i] == '\'') {
          Cost cost = 0;
          i += contraction_at(s, i, n, cost);
          total += cost;
        }
        if (i + 1 < n && s[i] == ' ' && kByteKind[s[i + 1]] <= k_upper) {
          ++i;
          continue;
        }
        // "word, word" and "word. Word": a lone mark, then the space joins the next word.
        if (i + 2 < n && kByteKind[s[i]] == k_punct && s[i + 1] == ' ' &&
            kByteKind[s[i + 2]] <= k_upper) {
          total += kPunctRun[0];
          i += 2;
          continue;
        }
        break;
      }
    } else if (c.kind == k_digit) {
      std::size_t digits = 0;
      do {
        ++digits;
        i += c.len;
        c = decode(s, i, n);
      } while (c.kind == k_digit);
      total += (digits + 2) / 3 * kDigitGroup;
    } else if (is_space(c.kind)) {
      bool newline = false;
      std::size_t tail = 0;  // white space after the last line break
      do {
        if (c.kind == k_newline) newline = true, tail = 0;
        else ++tail;
        i += c.len;
        c = decode(s, i, n);
      } while (is_space(c.kind));
      if (newline) total += kNewlineRun;
      if (tail > 0) {
        // The last space joins a following word or punctuation run; the rest is one piece.
        if (is_letter(c.kind) || is_punct(c.kind)) {
          if (tail > 1) total += kSpaceRun;
          space_lead = is_punct(c.kind);
        } else {
          total += kSpaceRun;
        }
      }
    } else {  // punctuation
      const unsigned char first = s[i];
      std::size_t marks = 0;
      Cost extra = 0;
      bool repeated = true;
      do {
        ++marks;
        if (c.kind == k_emoji) extra += kEmoji;
        repeated = repeated && c.len == 1 && s[i] == first;
        i += c.len;
        c = decode(s, i, n);
      } while (is_punct(c.kind));
      bool newline = false;  // o200k keeps line breaks after punctuation in its piece: "):\n"
      while (c.kind == k_newline) {
        newline = true;
        i += c.len;
        c = decode(s, i, n);
      }
      if (marks == 1 && extra == 0 && !space_lead && !newline && is_letter(c.kind)) {
        punct_lead = true;  // priced with the word
      } else if (repeated && marks >= 3) {
        total += kRepeatedRunBase + marks * kRepeatedRunSlope;
      } else {
        total += (marks <= kPunctRun.size() ? kPunctRun[marks - 1]
                                            : kPunctRun.back() + (marks - kPunctRun.size()) *
                                                                     kPunctRunSlope) +
                 extra;
      }
      space_lead = false;
    }
  }

  const auto tokens = static_cast<std::size_t>((total + (Cost{1} << (kFracBits - 1))) >> kFracBits);
  return tokens == 0 && n > 0 ? 1 : tokens;
}

// quick_text_tokens: no pieces, no decoding, only counts of byte classes, each of which SSE2
// gets from one or two compares over 16 bytes, summed in 8-bit lanes:
//
//   marks    ASCII 0x21-0x60: punctuation, digits, capitals (signed b > 0x20 and not b > 0x60)
//   starts   a byte > 0x20 after one that is not: the start of a run of non-space ASCII, about
//            one per word (signed compares: bytes >= 0x80 count as space here)
//   trailing UTF-8 continuation bytes 0x80-0xBF: one per accented letter, two per CJK character
//   breaks   '\n', and a lowercase letter after a backslash (the `\n`, `\t`, `\u` of raw JSON)
//
// Tokens = kQuickBase + kQuickByte·bytes + Σ weight·count, in 1/1024 tokens. The classes are
// what bench/tokens found best for o200k_base within about 1.5 instructions a byte: letter-word
// starts, digit groups, punctuation runs and capitalised words each need compares on the
// previous byte too, and bought less accuracy per instruction than these. The weights are a
// least-absolute-relative-error fit on prompts, code, JSON, other languages and chat request
// bodies that are not in the error tables (`node bench/tokens/compare.mjs --quick-fit`; the
// README has the command).
namespace {

constexpr int kQuickFracBits = 10;
constexpr std::uint64_t kQuickBase = 385;      // 0.376
constexpr std::uint64_t kQuickByte = 74;       // 0.073
constexpr std::uint64_t kQuickMark = 615;      // 0.601
constexpr std::uint64_t kQuickStart = 592;     // 0.578
constexpr std::uint64_t kQuickTrailing = 277;  // 0.271
constexpr std::uint64_t kQuickBreak = 574;     // 0.561

// The same sum a byte at a time, for short texts and machines without SSE2: what a byte weighs
// on its own (a byte, and a mark, trailing byte or line break), and what it adds after the byte
// before (a run start, or a letter after a backslash), from two tables.
enum QuickClass : std::uint8_t {
  q_space,      // <= 0x20 as a signed byte: white space, controls, and all of 0x80-0xFF
  q_text,       // ASCII 0x21-0x60 but the backslash
  q_backslash,
  q_above_60,   // ASCII 0x61-0x7F: lowercase, {|}~
};

constexpr std::array<QuickClass, 256> kQuickClass = [] {
  std::array<QuickClass, 256> t{};
  for (int b = 0; b < 256; ++b) {
    const int sb = b < 0x80 ? b : b - 0x100;
    t[static_cast<std::size_t>(b)] = sb <= 0x20 ? q_space
                                     : b == '\\' ? q_backslash
                                     : sb > 0x60   ? q_above_60
                                                   : q_text;
  }
  return t;
}();

// What a byte adds to the sum, in 1/1024 tokens: [class of the byte before][byte].
constexpr auto kQuickWeight = [] {
  std::array<std::array<std::uint16_t, 256>, 4> t{};
  for (int prev = 0; prev < 4; ++prev) {
    for (int b = 0; b < 256; ++b) {
      const int sb = b < 0x80 ? b : b - 0x100;
      const QuickClass cls = kQuickClass[static_cast<std::size_t>(b)];
      std::uint64_t w = kQuickByte;
      if (sb > 0x20 && sb <= 0x60) w += kQuickMark;
      if (sb < -64) w += kQuickTrailing;
      if (b == '\n') w += kQuickBreak;
      if (cls != q_space && prev == q_space) w += kQuickStart;
      if (cls == q_above_60 && prev == q_backslash) w += kQuickBreak;
      t[static_cast<std::size_t>(prev)][static_cast<std::size_t>(b)] =
          static_cast<std::uint16_t>(w);
    }
  }
  return t;
}();

std::uint64_t quick_weigh_scalar(const unsigned char* s, std::size_t n) {
  std::uint64_t total = 0;
  QuickClass prev = q_space;
  for (std::size_t i = 0; i < n; ++i) {
    total += kQuickWeight[prev][s[i]];
    prev = kQuickClass[s[i]];
  }
  return total;
}

#if defined(__SSE2__)
struct QuickCounts {
  std::uint64_t marks = 0;
  std::uint64_t starts = 0;
  std::uint64_t trailing = 0;
  std::uint64_t breaks = 0;
};

// 8-bit lane counters: flushed into 64-bit sums at least every 255 steps.
struct QuickLanes {
  __m128i marks, starts, trailing, breaks;
};

inline __attribute__((always_inline)) void quick_step(__m128i cur, __m128i prev, QuickLanes& a) {
  const __m128i above_space = _mm_cmpgt_epi8(cur, _mm_set1_epi8(0x20));
  const __m128i above_60 = _mm_cmpgt_epi8(cur, _mm_set1_epi8(0x60));
  const __m128i trailing = _mm_cmplt_epi8(cur, _mm_set1_epi8(-64));
  const __m128i newline = _mm_cmpeq_epi8(cur, _mm_set1_epi8('\n'));
  const __m128i prev_above_space = _mm_cmpgt_epi8(prev, _mm_set1_epi8(0x20));
  const __m128i prev_backslash = _mm_cmpeq_epi8(prev, _mm_set1_epi8('\\'));
  // Compare masks are -1 per byte: subtracting counts.
  a.marks = _mm_add_epi8(_mm_sub_epi8(a.marks, above_space), above_60);
  a.starts = _mm_sub_epi8(a.starts, _mm_andnot_si128(prev_above_space, above_space));
  a.trailing = _mm_sub_epi8(a.trailing, trailing);
  const __m128i escaped_letter = _mm_and_si128(prev_backslash, above_60);
  a.breaks = _mm_sub_epi8(a.breaks, _mm_or_si128(newline, escaped_letter));
#if defined(__GNUC__)
  // Keeps GCC 12 from interleaving the unrolled steps, which runs it out of xmm registers
  // (measured with callgrind on bench/tokens' samples: 1.76 instructions a byte without, 1.42
  // with).
  asm("" : "+x"(a.marks), "+x"(a.starts), "+x"(a.trailing), "+x"(a.breaks));
#endif
}

inline std::uint64_t quick_sum(__m128i lanes) {  // two 64-bit lanes from _mm_sad_epu8
  return static_cast<std::uint64_t>(_mm_cvtsi128_si64(lanes)) +
         static_cast<std::uint64_t>(_mm_cvtsi128_si64(_mm_unpackhi_epi64(lanes, lanes)));
}

// 16 zero bytes then 16 0xFF: loading at kKeepLast + r keeps the last r bytes of 16.
alignas(16) constexpr unsigned char kKeepLast[32] = {
    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};

inline __m128i quick_load(const unsigned char* p) {
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
}

// Adds the lanes' counts to 64-bit sums (two per register) and clears them.
inline void quick_flush(QuickLanes& lanes, QuickLanes& sums) {
  const __m128i zero = _mm_setzero_si128();
  sums.marks = _mm_add_epi64(sums.marks, _mm_sad_epu8(lanes.marks, zero));
  sums.starts = _mm_add_epi64(sums.starts, _mm_sad_epu8(lanes.starts, zero));
  sums.trailing = _mm_add_epi64(sums.trailing, _mm_sad_epu8(lanes.trailing, zero));
  sums.breaks = _mm_add_epi64(sums.breaks, _mm_sad_epu8(lanes.breaks, zero));
  lanes = QuickLanes{zero, zero, zero, zero};
}

// n >= 16.
void quick_count_sse2(const unsigned char* s, std::size_t n, QuickCounts& c) {
  const __m128i zero = _mm_setzero_si128();
  QuickLanes a{zero, zero, zero, zero};
  QuickLanes sums{zero, zero, zero, zero};

  // The first 16 bytes: nothing before them (a zero byte, which counts as space).
  const __m128i first = quick_load(s);
  quick_step(first, _mm_slli_si128(first, 1), a);
  const unsigned char* p = s + 16;
  std::size_t steps = (n - 16) / 16;
  for (;;) {
    // At most 1 + 252 + 1 steps between flushes: no lane passes 255.
    const std::size_t chunk = steps < 252 ? steps : 252;
    steps -= chunk;
    for (std::size_t k = chunk / 4; k > 0; --k, p += 64) {
      quick_step(quick_load(p), quick_load(p - 1), a);
      quick_step(quick_load(p + 16), quick_load(p + 15), a);
      quick_step(quick_load(p + 32), quick_load(p + 31), a);
      quick_step(quick_load(p + 48), quick_load(p + 47), a);
    }
    for (std::size_t k = chunk % 4; k > 0; --k, p += 16)
      quick_step(quick_load(p), quick_load(p - 1), a);
    if (steps == 0) break;
    quick_flush(a, sums);
  }
  // The last n % 16 bytes: the 16 that end the text, those already counted set to zero (a zero
  // byte counts for nothing, and the byte before the first kept one is the real one).
  if (const auto rest = static_cast<std::size_t>(s + n - p); rest > 0) {
    const __m128i keep = quick_load(kKeepLast + rest);
    quick_step(_mm_and_si128(quick_load(s + n - 16), keep), quick_load(s + n - 17), a);
  }
  quick_flush(a, sums);
  c.marks = quick_sum(sums.marks);
  c.starts = quick_sum(sums.starts);
  c.trailing = quick_sum(sums.trailing);
  c.breaks = quick_sum(sums.breaks);
}
#endif

}  // namespace

std::size_t quick_text_tokens(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  if (n == 0) return 0;
  std::uint64_t total = kQuickBase;
#if defined(__SSE2__)
  if (n >= 16) {
    QuickCounts c;
    quick_count_sse2(s, n, c);
    total += kQuickByte * n + kQuickMark * c.marks + kQuickStart * c.starts +
             kQuickTrailing * c.trailing + kQuickBreak * c.breaks;
  } else {
    total += quick_weigh_scalar(s, n);
  }
#else
  total += quick_weigh_scalar(s, n);
#endif
  const auto tokens = static_cast<std::size_t>(
      (total + (std::uint64_t{1} << (kQuickFracBits - 1))) >> kQuickFracBits);
  return tokens > 0 ? tokens : 1;
}

}  // namespace switchyard::core
