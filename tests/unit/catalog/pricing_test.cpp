// Each provider's real usage shape, decoded by its dialect and priced from the built-in
// catalogue, to the nano-dollar (every expected figure is worked out by hand from the
// vendor's published prices in the comment above it).
#include <gtest/gtest.h>

#include "catalog/catalog.hpp"
#include "catalog/catalog_yaml.hpp"
#include "dialects/openai/usage.hpp"
#include "dialects/translate.hpp"

namespace {

using namespace switchyard;
using core::Money;
using dialects::Dialect;

// 2025-11-25 12:00:00 UTC and other instants, in seconds.
constexpr std::int64_t kNoonNov25 = 1764072000;
constexpr std::int64_t kMar1At17 = 1740848400;    // 2025-03-01 17:00 UTC: DeepSeek off-peak
constexpr std::int64_t kMar1At12 = 1740830400;    // 2025-03-01 12:00 UTC: peak
constexpr std::int64_t kSep10 = 1757505600;       // 2025-09-10 12:00 UTC: V3.1 prices

core::TokenUsage decode(Dialect upstream, const std::string& body) {
  core::TokenUsage usage;
  dialects::UpstreamRequest sent;
  Dialect client = upstream == Dialect::openai ? Dialect::anthropic : Dialect::openai;
  auto out = dialects::translate_response(client, upstream, body, sent, {}, usage);
  EXPECT_TRUE(std::holds_alternative<std::string>(out)) << body;
  EXPECT_TRUE(usage.known);
  return usage;
}

Money price(const char* model, const core::TokenUsage& u, std::int64_t at = kNoonNov25) {
  const catalog::ModelInfo* m = catalog::builtin().find(model);
  EXPECT_NE(m, nullptr) << model;
  auto c = catalog::cost(m->pricing, u, at);
  EXPECT_TRUE(c.has_value()) << model;
  return c.value_or(Money::nanos(-1));
}

TEST(Pricing, OpenAICachedInputIsPartOfPromptTokens) {
  // gpt-4o: $2.50 input, $1.25 cached, $10 output per 1M.
  // 86 uncached x 2.50 + 1920 cached x 1.25 + 300 x 10 = 215 + 2400 + 3000 = $0.005615.
  auto u = decode(Dialect::openai, R"({"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o",
    "choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],
    "usage":{"prompt_tokens":2006,"completion_tokens":300,"total_tokens":2306,
             "prompt_tokens_details":{"cached_tokens":1920,"audio_tokens":0},
             "completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0}}})");
  EXPECT_EQ(u.cache_read, 1920);
  EXPECT_EQ(price("gpt-4o", u), Money::nanos(5'615'000));

  // The fast path reads the same body with its own reader: the same canonical usage.
  auto fast = dialects::openai::probe_usage(R"({"usage":{"prompt_tokens":2006,"completion_tokens":300,
    "total_tokens":2306,"prompt_tokens_details":{"cached_tokens":1920}}})", false);
  ASSERT_TRUE(fast.usage);
  EXPECT_EQ(price("gpt-4o", dialects::openai::to_canonical(*fast.usage)), Money::nanos(5'615'000));
}

TEST(Pricing, OpenAIReasoningTokensBillAsOutput) {
  // o4-mini: $1.10 input, $4.40 output; 384 of the 500 completion tokens were reasoning.
  // 1000 x 1.10 + 500 x 4.40 = 1100 + 2200 = $0.0033.
  auto u = decode(Dialect::openai, R"({"id":"c","object":"chat.completion","created":1,"model":"o4-mini",
    "choices":[{"index":0,"message":{"role":"assistant","content":"x"},"finish_reason":"stop"}],
    "usage":{"prompt_tokens":1000,"completion_tokens":500,"total_tokens":1500,
             "completion_tokens_details":{"reasoning_tokens":384}}})");
  EXPECT_EQ(u.reasoning, 384);
  EXPECT_EQ(price("o4-mini", u), Money::nanos(3'300'000));
}

TEST(Pricing, AnthropicCacheWritesByLifetimeAndReadsAtATenth) {
  // claude-sonnet-4-5: $3 input, $15 output; writes 1.25x (5 min) = $3.75 and 2x (1 h) = $6;
  // reads $0.30. input_tokens excludes the cache: 50 + 2000 written + 10000 read = 12050 in all.
  // 50 x 3 + 1500 x 3.75 + 500 x 6 + 10000 x 0.30 + 400 x 15
  //   = 150 + 5625 + 3000 + 3000 + 6000 = $0.017775.
  auto u = decode(Dialect::anthropic, R"({"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5",
    "content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","stop_sequence":null,
    "usage":{"input_tokens":50,"cache_creation_input_tokens":2000,"cache_read_input_tokens":10000,
             "cache_creation":{"ephemeral_5m_input_tokens":1500,"ephemeral_1h_input_tokens":500},
             "output_tokens":400}})");
  EXPECT_EQ(u.input, 12050);
  EXPECT_EQ(u.cache_creation, 2000);
  EXPECT_EQ(u.cache_creation_1h, 500);
  EXPECT_EQ(price("claude-sonnet-4-5", u), Money::nanos(17'775'000));

  // Without the lifetime split every write is a 5-minute one:
  // 50 x 3 + 2000 x 3.75 + 10000 x 0.30 + 400 x 15 = 150 + 7500 + 3000 + 6000 = $0.01665.
  u.cache_creation_1h = 0;
  EXPECT_EQ(price("claude-sonnet-4-5", u), Money::nanos(16'650'000));
}

TEST(Pricing, AnthropicLongContextTier) {
  // claude-sonnet-4-5 over 200K input tokens: $6 input, $22.50 output, reads $0.60.
  // 150000 x 6 + 60000 x 0.60 + 1000 x 22.50 = 900000 + 36000 + 22500 = $0.9585.
  core::TokenUsage u;
  u.known = true;
  u.input = 210000;
  u.cache_read = 60000;
  u.output = 1000;
  EXPECT_EQ(price("claude-sonnet-4-5", u), Money::nanos(958'500'000));
  u.input = 200000;  // at the threshold: the base tier, 140000 x 3 + 60000 x 0.3 + 1000 x 15
  EXPECT_EQ(price("claude-sonnet-4-5", u), Money::nanos(453'000'000));
}

TEST(Pricing, GeminiThoughtsAreOutsideCandidatesAndCachedInsidePrompt) {
  // gemini-2.5-pro: $1.25 input, $0.125 cached, $10 output (thoughts bill as output).
  // (12000 - 8000) x 1.25 + 8000 x 0.125 + (800 + 1200) x 10 = 5000 + 1000 + 20000 = $0.026.
  auto u = decode(Dialect::gemini, R"({"candidates":[{"content":{"role":"model","parts":[{"text":"hi"}]},
    "finishReason":"STOP","index":0}],
    "usageMetadata":{"promptTokenCount":12000,"candidatesTokenCount":800,"totalTokenCount":22000,
                     "cachedContentTokenCount":8000,"thoughtsTokenCount":1200},"modelVersion":"gemini-2.5-pro"})");
  EXPECT_EQ(u.output, 2000);
  EXPECT_EQ(u.reasoning, 1200);
  EXPECT_EQ(price("gemini-2.5-pro", u), Money::nanos(26'000'000));
}

TEST(Pricing, GeminiLongContextTier) {
  // gemini-2.5-pro over 200K prompt tokens: $2.50 input, $15 output.
  // 250000 x 2.50 + 1000 x 15 = 625000 + 15000 = $0.64.
  auto u = decode(Dialect::gemini, R"({"candidates":[{"content":{"role":"model","parts":[{"text":"x"}]},
    "finishReason":"STOP","index":0}],
    "usageMetadata":{"promptTokenCount":250000,"candidatesTokenCount":1000,"totalTokenCount":251000}})");
  EXPECT_EQ(price("gemini-2.5-pro", u), Money::nanos(640'000'000));
}

TEST(Pricing, DeepSeekCacheHitsAndTheDayOfTheRequest) {
  const std::string body = R"({"id":"x","object":"chat.completion","created":1,"model":"deepseek-chat",
    "choices":[{"index":0,"message":{"role":"assistant","content":"x"},"finish_reason":"stop"}],
    "usage":{"prompt_tokens":1000,"completion_tokens":200,"total_tokens":1200,
             "prompt_cache_hit_tokens":600,"prompt_cache_miss_tokens":400}})";
  auto u = decode(Dialect::openai, body);
  EXPECT_EQ(u.cache_read, 600);
  // Since 2025-09-29: $0.28 miss, $0.028 hit, $0.42 output.
  // 400 x 0.28 + 600 x 0.028 + 200 x 0.42 = 112 + 16.8 + 84 = $0.0002128.
  EXPECT_EQ(price("deepseek-chat", u), Money::nanos(212'800));
  // 2025-09-10, V3.1: $0.56 miss, $0.07 hit, $1.68 output: 224 + 42 + 336 = $0.000602.
  EXPECT_EQ(price("deepseek-chat", u, kSep10), Money::nanos(602'000));
  // 2025-03-01, V3 at peak: $0.27, $0.07, $1.10: 108 + 42 + 220 = $0.00037; off-peak (17:00 UTC)
  // half of it.
  EXPECT_EQ(price("deepseek-chat", u, kMar1At12), Money::nanos(370'000));
  EXPECT_EQ(price("deepseek-chat", u, kMar1At17), Money::nanos(185'000));
  // deepseek-reasoner off-peak was 75% off: (400 x 0.55 + 600 x 0.14 + 200 x 2.19) / 4
  //   = (220 + 84 + 438) / 4 = $0.0001855.
  EXPECT_EQ(price("deepseek-reasoner", u, kMar1At17), Money::nanos(185'500));
  // Before the earliest version the model had no known price.
  const catalog::ModelInfo* m = catalog::builtin().find("deepseek-chat");
  EXPECT_FALSE(catalog::cost(m->pricing, u, kMar1At17 - 365 * 86400));
}

TEST(Pricing, UnpricedIsNotZero) {
  catalog::Pricing none;
  core::TokenUsage u;
  u.known = true;
  u.input = 1000;
  EXPECT_FALSE(catalog::cost(none, u, kNoonNov25));
  catalog::Problems problems;
  catalog::Catalog c = catalog::parse_catalog("models:\n  - {id: local-llama, vendor: meta}\n", problems);
  ASSERT_TRUE(problems.empty());
  EXPECT_FALSE(c.find("local-llama")->pricing.priced());
}

TEST(Pricing, PriceEntriesAreCheckedWithTheirPaths) {
  catalog::Problems problems;
  catalog::parse_catalog(R"(models:
  - id: m
    price: {input: 1e-3, output: 2, since: "yesterday",
            off_peak: [{from: "25:00", to: "01:00", percent_off: 50}]}
)",
                         problems);
  std::string text;
  for (const auto& [path, message] : problems) text += path + ": " + message + "\n";
  EXPECT_NE(text.find("models[0].price.input: must be a price"), std::string::npos) << text;
  EXPECT_NE(text.find("models[0].price.since: must be a date"), std::string::npos) << text;
  EXPECT_NE(text.find("models[0].price.off_peak[0].from: must be a time of day"), std::string::npos) << text;
}

TEST(Pricing, TheSumIsExactAndRoundedOnceHalfUp) {
  // $0.0015 per 1M is 1,500 pico-dollars a token: 1.5 nano-dollars for one, rounded up to 2;
  // $0.001499 rounds down to 1. Two kinds of 0.5 nano-dollar each make 1 exactly (a per-kind
  // rounding would make 2).
  catalog::PriceVersion v;
  v.base = {1'500, 0};
  core::TokenUsage u;
  u.known = true;
  u.input = 1;
  EXPECT_EQ(catalog::cost(v, u, 0), Money::nanos(2));
  v.base = {1'499, 0};
  EXPECT_EQ(catalog::cost(v, u, 0), Money::nanos(1));
  v.base = {500, 500};
  u.output = 1;
  EXPECT_EQ(catalog::cost(v, u, 0), Money::nanos(1));
}

TEST(Pricing, SmallRequestsAreExactToTheNanoDollar) {
  // One gpt-4o-mini input token at $0.15 per 1M is 150 nano-dollars.
  core::TokenUsage u;
  u.known = true;
  u.input = 1;
  EXPECT_EQ(price("gpt-4o-mini", u), Money::nanos(150));
  // One gpt-5-nano cache read at $0.005 per 1M: 5 nano-dollars; 3 of them, 15.
  u.cache_read = 1;
  EXPECT_EQ(price("gpt-5-nano", u), Money::nanos(5));
  u.input = u.cache_read = 3;
  EXPECT_EQ(price("gpt-5-nano", u), Money::nanos(15));
  // One gemini-2.0-flash-lite token at $0.075: 75; a thousand of them, exactly $0.000075.
  u = {};
  u.known = true;
  u.input = 1000;
  EXPECT_EQ(price("gemini-2.0-flash-lite", u), Money::nanos(75'000));
}

}  // namespace
