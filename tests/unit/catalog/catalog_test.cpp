#include "catalog/catalog.hpp"
#include "config/config.hpp"

#include <gtest/gtest.h>

#include <set>

using namespace switchyard;
using namespace switchyard::catalog;

TEST(Catalog, BuiltInDataIsCompleteAndDated) {
  const Catalog& c = builtin();
  EXPECT_FALSE(c.source.empty());
  EXPECT_EQ(c.date.size(), 10u) << "an ISO date";
  std::set<std::string> vendors;
  int chat_models = 0;
  for (const auto& m : c.models()) {
    SCOPED_TRACE(m.id);
    vendors.insert(m.vendor);
    EXPECT_TRUE(m.pricing.priced());
    EXPECT_FALSE(m.hosts.empty());
    if (m.capabilities & kEmbeddings) continue;
    ++chat_models;
    EXPECT_GT(m.pricing.current().output, 0);
    EXPECT_GT(m.context_window, 0);
    EXPECT_GE(m.max_output, 0);  // 0 where the vendor publishes no separate output limit
    EXPECT_TRUE(m.has_quality);
    for (float q : m.quality) EXPECT_TRUE(q > 0 && q <= 1);
  }
  EXPECT_GE(c.models().size(), 40u);
  EXPECT_GE(chat_models, 35);
  for (const char* v : {"openai", "anthropic", "google", "deepseek", "mistral", "xai", "meta", "qwen"})
    EXPECT_TRUE(vendors.count(v)) << v;
}

TEST(Catalog, FindsByIdAndAlias) {
  Problems problems;
  Catalog c = parse_catalog(R"(
source: test
date: "2025-01-01"
models:
  - id: m1
    vendor: openai
    hosts: [openai]
    aliases: [m1-2024-01-01]
    price: {input: 1, output: 2, cached_input: 0.5}
    context_window: 1000
    max_output: 100
    capabilities: [tools, vision]
    latency: {ttft_ms: 300, tokens_per_s: 90}
    quality: {code: 0.5, math: 0.5, reasoning: 0.5, knowledge: 0.5, writing: 0.5, extraction: 0.5, chat: 0.7}
)", problems);
  ASSERT_TRUE(problems.empty());
  ASSERT_NE(c.find("m1-2024-01-01"), nullptr);
  EXPECT_EQ(c.find("m1-2024-01-01")->id, "m1");
  EXPECT_EQ(c.find("m1")->capabilities, kTools | kVision);
  EXPECT_FLOAT_EQ(c.find("m1")->quality_of(Category::chat), 0.7f);
  EXPECT_EQ(c.find("m2"), nullptr);
}

TEST(Catalog, StrictParsingNamesEveryProblem) {
  Problems problems;
  parse_catalog(R"(
date: "2025-01-01"
models:
  - id: m1
    price: {input: cheap, output: 2}
    capabilities: [telepathy]
    colour: blue
  - vendor: x
)", problems);
  std::set<std::string> paths;
  for (auto& [p, m] : problems) paths.insert(p);
  EXPECT_TRUE(paths.count("models[0].price.input"));
  EXPECT_TRUE(paths.count("models[0].capabilities[0]"));
  EXPECT_TRUE(paths.count("models[0].colour"));
  EXPECT_TRUE(paths.count("models[1].id"));
}

TEST(Catalog, ConfigOverridesFieldsAndAddsModels) {
  const char* yaml = R"(
models:
  - id: gpt-4o-mini
    price: {input: 0.1, output: 0.5}
  - id: my-local-model
    vendor: meta
    hosts: [vllm]
    context_window: 8192
    capabilities: [tools]
providers:
  local:
    base_url: http://127.0.0.1:9
deployments:
  a:
    provider: local
    model: served-name
    catalog_model: my-local-model
  b:
    provider: local
    model: gpt-4o-mini
  c:
    provider: local
    model: mystery
    price: {input: 1, output: 2}
routes:
  auto:
    candidates: [a, b, c]
keys:
  - name: k
    sha256: 2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae
)";
  auto r = config::load_config_text(yaml, {});
  ASSERT_TRUE(r.ok()) << config::format_problems(r.problems);
  ASSERT_EQ(r.config.models.size(), 2u);
  const auto& over = r.config.models[0];
  EXPECT_EQ(over.pricing.current().input, 100000) << "$0.1 per 1M, read exactly";
  EXPECT_EQ(over.context_window, builtin().find("gpt-4o-mini")->context_window) << "other fields kept";
  EXPECT_EQ(r.config.models[1].context_window, 8192);
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_EQ(r.warnings[0].path, "deployments.c.model");
}
