#include "core/token_estimate.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

// Real counts are o200k_base from gpt-tokenizer 4.0.0 (bench/tokens/node_modules), which is what
// both estimators are fitted to; bench/tokens/README.md has the full error tables.

namespace switchyard::core {
namespace {

struct Known {
  std::string_view text;
  std::size_t o200k;
};

constexpr Known kEnglish[] = {
    {"The quick brown fox jumps over the lazy dog.", 10},
    {"Please summarize the following article in three bullet points, focusing on the main "
     "arguments and any numbers it cites.",
     21},
    {"Which of the following best describes the function of mitochondria in eukaryotic cells?",
     18},
    {"Write a Python function that returns the n-th Fibonacci number using memoization.", 15},
    {"I would like to book a table for four people at seven o'clock tomorrow evening, "
     "preferably near the window.",
     22},
};

constexpr std::string_view kParagraph =
    "In 1969, Neil Armstrong and Buzz Aldrin landed on the Moon, while Michael Collins orbited "
    "above in the command module. Their mission, Apollo 11, fulfilled a goal set by President "
    "Kennedy in 1961: landing a man on the Moon and returning him safely to the Earth before the "
    "decade was out. The landing was watched by an estimated 650 million people, and the samples "
    "the crew brought back are still being studied today.";
constexpr std::size_t kParagraphO200k = 90;

constexpr std::string_view kChinese =
    "人工智能正在深刻地改变我们的生活和工作方式。"
    "从智能手机上的语音助手，到医院里辅助医生诊断的影像系统，"
    "人工智能技术已经渗透到社会的各个角落。";
constexpr std::size_t kChineseO200k = 46;

// A chat message with code, decoded and as it stands inside a JSON string.
constexpr std::string_view kMessage =
    "Hi! Could you look over the function below and tell me why it returns None for some "
    "inputs?\n\ndef find(items, key):\n    for i, item in enumerate(items):\n        if "
    "item[\"id\"] == key:\n            return i\n\nIt works when the key is there, but I expected "
    "-1 otherwise.";
constexpr std::size_t kMessageO200k = 63;
constexpr std::string_view kMessageJson =
    R"(Hi! Could you look over the function below and tell me why it returns None for some )"
    R"(inputs?\n\ndef find(items, key):\n    for i, item in enumerate(items):\n        if )"
    R"(item[\"id\"] == key:\n            return i\n\nIt works when the key is there, )"
    R"(but I expected -1 otherwise.)";
constexpr std::size_t kMessageJsonO200k = 72;  // of the escaped text itself

// kChinese as Python's json.dumps sends it: every character a \uXXXX escape.
std::string escaped_chinese() {
  std::string out;
  const auto* s = reinterpret_cast<const unsigned char*>(kChinese.data());
  for (std::size_t i = 0; i < kChinese.size(); i += 3) {  // all 3-byte characters
    const unsigned cp = (s[i] & 0x0Fu) << 12 | (s[i + 1] & 0x3Fu) << 6 | (s[i + 2] & 0x3Fu);
    static constexpr char kHex[] = "0123456789abcdef";
    out += "\\u";
    for (int shift = 12; shift >= 0; shift -= 4) out += kHex[cp >> shift & 0xF];
  }
  return out;
}
constexpr std::size_t kEscapedChineseO200k = 238;  // of the escaped text itself

double relative_error(std::size_t est, std::size_t real) {
  return std::abs(static_cast<double>(est) - static_cast<double>(real)) /
         static_cast<double>(real);
}

TEST(TokenEstimate, EmptyTextIsZero) {
  EXPECT_EQ(estimate_text_tokens(""), 0u);
  EXPECT_EQ(quick_text_tokens(""), 0u);
  EXPECT_EQ(quick_text_tokens(std::string_view(nullptr, 0)), 0u);
}

TEST(TokenEstimate, AnyTextIsAtLeastOneToken) {
  for (std::string_view text : {"a", " ", "\n", ".", "7", "\xE4\xB8\xAD", "\\n"}) {
    EXPECT_GE(estimate_text_tokens(text), 1u) << text;
    EXPECT_GE(quick_text_tokens(text), 1u) << text;
  }
}

TEST(TokenEstimate, KnownEnglishSentences) {
  for (const auto& [text, real] : kEnglish) {
    const auto accurate = estimate_text_tokens(text);
    const auto quick = quick_text_tokens(text);
    EXPECT_LE(std::abs(static_cast<double>(accurate) - static_cast<double>(real)),
              2 + 0.15 * static_cast<double>(real))
        << text << ": accurate " << accurate << ", o200k " << real;
    EXPECT_LE(std::abs(static_cast<double>(quick) - static_cast<double>(real)),
              3 + 0.20 * static_cast<double>(real))
        << text << ": quick " << quick << ", o200k " << real;
  }
  EXPECT_LT(relative_error(estimate_text_tokens(kParagraph), kParagraphO200k), 0.08);
  EXPECT_LT(relative_error(quick_text_tokens(kParagraph), kParagraphO200k), 0.10);
  EXPECT_LT(relative_error(estimate_text_tokens(kMessage), kMessageO200k), 0.10);
  EXPECT_LT(relative_error(quick_text_tokens(kMessage), kMessageO200k), 0.15);
}

TEST(TokenEstimate, QuickAndAccurateAgreeOnAParagraph) {
  for (std::string_view text : {kParagraph, kMessage}) {
    const auto accurate = static_cast<double>(estimate_text_tokens(text));
    const auto quick = static_cast<double>(quick_text_tokens(text));
    EXPECT_LT(std::abs(quick - accurate), 0.25 * accurate) << text;
  }
}

TEST(TokenEstimate, GrowsWithText) {
  // Appending text never lowers the quick estimate (every class count only grows); the accurate
  // one may lose a token where a piece boundary moves.
  std::size_t last_quick = 0, last_accurate = 0;
  for (std::size_t len = 0; len <= kParagraph.size(); len += 7) {
    const std::string_view prefix = kParagraph.substr(0, len);
    const auto quick = quick_text_tokens(prefix);
    const auto accurate = estimate_text_tokens(prefix);
    EXPECT_GE(quick, last_quick) << len;
    EXPECT_GE(accurate + 1, last_accurate) << len;
    last_quick = quick;
    last_accurate = accurate;
  }
  // And about linearly: k copies of a paragraph are about k times one (this also runs the quick
  // estimator past the 4 KB where its 8-bit lane counters must be flushed).
  std::string text;
  const std::string unit = std::string(kParagraph) + "\n";
  for (int copies = 1; copies <= 40; ++copies) {
    text += unit;
    const auto quick_one = static_cast<double>(quick_text_tokens(unit));
    const auto accurate_one = static_cast<double>(estimate_text_tokens(unit));
    EXPECT_NEAR(static_cast<double>(quick_text_tokens(text)), copies * quick_one, copies * 1.0)
        << copies;
    EXPECT_NEAR(static_cast<double>(estimate_text_tokens(text)), copies * accurate_one,
                copies * 1.0)
        << copies;
  }
}

TEST(TokenEstimate, QuickCountsLongRunsOfOneKind) {
  // Every byte of the same class, so that each of the quick estimator's 16 lanes counts on every
  // step: still linear past 255 steps (4 KB), where the 8-bit lanes would wrap if not flushed.
  for (std::string_view unit : {".", "7", "\n", "\xC3\xA9", "\\n", "ab "}) {
    std::string once, twice;
    for (int i = 0; i < 3000; ++i) once += unit;
    twice = once + once;
    const auto one = static_cast<double>(quick_text_tokens(once));
    EXPECT_GT(one, 300.0) << unit;
    EXPECT_NEAR(static_cast<double>(quick_text_tokens(twice)), 2 * one, 2.0) << unit;
  }
}

TEST(TokenEstimate, Chinese) {
  EXPECT_LT(relative_error(estimate_text_tokens(kChinese), kChineseO200k), 0.15);
  EXPECT_LT(relative_error(quick_text_tokens(kChinese), kChineseO200k), 0.25);
  // About a token a character or a little under, not a token a byte.
  const std::size_t characters = kChinese.size() / 3;
  for (const auto est : {estimate_text_tokens(kChinese), quick_text_tokens(kChinese)}) {
    EXPECT_GT(est, characters / 2);
    EXPECT_LT(est, characters * 6 / 5);
  }
}

TEST(TokenEstimate, JsonEscapes) {
  // The accurate estimator reads escapes as what they stand for: the raw JSON string content
  // comes to the same as the decoded text.
  EXPECT_NEAR(static_cast<double>(estimate_text_tokens(kMessageJson)),
              static_cast<double>(estimate_text_tokens(kMessage)), 2.0);
  const std::string chinese_json = escaped_chinese();
  EXPECT_NEAR(static_cast<double>(estimate_text_tokens(chinese_json)),
              static_cast<double>(estimate_text_tokens(kChinese)), 3.0);
  // The quick one counts the escaped text as it stands, which is what a whole raw request body
  // holds: close to o200k of that same text, and for \uXXXX far more than the decoded one.
  EXPECT_LT(relative_error(quick_text_tokens(kMessageJson), kMessageJsonO200k), 0.15);
  EXPECT_LT(relative_error(quick_text_tokens(chinese_json), kEscapedChineseO200k), 0.20);
  EXPECT_GT(quick_text_tokens(chinese_json), 3 * quick_text_tokens(kChinese));
  // A `\n` escape counts as the line break it stands for, about.
  EXPECT_NEAR(static_cast<double>(quick_text_tokens(kMessageJson)),
              static_cast<double>(quick_text_tokens(kMessage)), 0.15 * kMessageO200k);
}

TEST(TokenEstimate, QuickReadsOnlyItsText) {
  // Every length (the scalar path under 16 bytes, the 16-byte steps, the overlapping last step)
  // at every alignment, between bytes that would change the count if they were read.
  const std::string source = std::string(kMessage) + std::string(kChinese) + "\\n\\\"x\"";
  std::vector<char> buffer(source.size() + 64);
  std::uint32_t seed = 12345;
  for (auto& b : buffer) {
    seed = seed * 1103515245 + 12345;
    b = "A \n\\x\xE4"[(seed >> 16) % 6];
  }
  for (std::size_t len = 0; len <= 80; ++len) {
    for (std::size_t offset = 1; offset <= 17; ++offset) {
      for (std::size_t from : {std::size_t{0}, source.size() - 80, std::size_t{95}}) {
        const std::string copy = source.substr(from, len);
        std::copy(copy.begin(), copy.end(), buffer.begin() + static_cast<std::ptrdiff_t>(offset));
        EXPECT_EQ(quick_text_tokens(std::string_view(buffer.data() + offset, len)),
                  quick_text_tokens(copy))
            << "len " << len << " offset " << offset << " from " << from;
      }
    }
  }
}

}  // namespace
}  // namespace switchyard::core
