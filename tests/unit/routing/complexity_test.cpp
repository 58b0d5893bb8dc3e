#include "routing/complexity/category.hpp"
#include "routing/complexity/dataset.hpp"
#include "routing/complexity/feedback.hpp"
#include "routing/complexity/features.hpp"
#include "routing/complexity/metrics.hpp"
#include "routing/complexity/model.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>

using namespace switchyard::routing::complexity;

TEST(ComplexityMetrics, HandComputedCurveApgrAndCpt) {
  // weak 0.5, strong 0.75 on four prompts; only A needs the strong model.
  std::vector<PairOutcome> rows = {
      {0.9, 0, 1},  // A
      {0.5, 1, 1},  // B
      {0.7, 0, 0},  // C
      {0.1, 1, 1},  // D
  };
  PairCurve c = pair_curve(rows);
  EXPECT_DOUBLE_EQ(c.weak_quality, 0.5);
  EXPECT_DOUBLE_EQ(c.strong_quality, 0.75);
  ASSERT_EQ(c.pgr.size(), 5u);
  EXPECT_DOUBLE_EQ(c.pgr[0], 0);
  EXPECT_DOUBLE_EQ(c.pgr[1], 1);  // A first: the whole gap at 25%
  EXPECT_DOUBLE_EQ(c.pgr[4], 1);
  EXPECT_DOUBLE_EQ(apgr(c), 0.875);  // (0+1)/2·0.25 + 3·0.25
  EXPECT_DOUBLE_EQ(cpt(c, 0.5), 0.25);
  EXPECT_DOUBLE_EQ(cpt(c, 0.8), 0.25);
  // The worst order: A last.
  for (auto& r : rows) r.strong_need = -r.strong_need;
  PairCurve worst = pair_curve(rows);
  EXPECT_DOUBLE_EQ(apgr(worst), 0.125);
  EXPECT_DOUBLE_EQ(cpt(worst, 0.5), 1.0);
  std::string svg = pgr_svg(c, "a <test> & more");
  EXPECT_NE(svg.find("<polyline"), std::string::npos);
  EXPECT_NE(svg.find("a &lt;test> &amp; more"), std::string::npos);
}

TEST(ComplexityMetrics, RandomOrderIsAboutAHalf) {
  std::vector<PairOutcome> rows;
  std::uint64_t x = 88172645463325252ull;
  auto next = [&] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return static_cast<double>(x % 1000000) / 1e6;
  };
  for (int i = 0; i < 20000; ++i) rows.push_back({next(), next() < 0.6 ? 1.0 : 0.0, next() < 0.8 ? 1.0 : 0.0});
  EXPECT_NEAR(apgr(pair_curve(rows)), 0.5, 0.03);
}

TEST(ComplexityFeatures, HashedAndDenseFeaturesAreNormalisedAndStable) {
  FeatureSpec spec;
  spec.hash_bits = 12;
  Sparse a, b;
  extract("Find the degree of Q(sqrt(2)) over Q.\nA. 0\nB. 4\nC. 2\nD. 6\nAnswer:", spec, a);
  extract("Find the degree of Q(sqrt(2)) over Q.\nA. 0\nB. 4\nC. 2\nD. 6\nAnswer:", spec, b);
  EXPECT_EQ(a, b);
  double words_sum = 0;
  float options = 0;
  std::size_t hashed = 0;
  for (auto [i, v] : a) {
    EXPECT_LT(i, dimensions(spec));
    if (i < (1u << spec.hash_bits)) {
      ++hashed;
      words_sum += v;
    }
    if (i == (1u << spec.hash_bits) + kOptions) options = v;
  }
  EXPECT_GT(hashed, 40u);
  EXPECT_GT(words_sum, 0);
  EXPECT_GT(options, 0) << "four answer options";
  Sparse empty;
  extract("", spec, empty);
  EXPECT_TRUE(empty.empty());
}

TEST(ComplexityModel, TrainsSavesLoadsAndRejectsCorruptFiles) {
  Model m;
  m.spec.hash_bits = 10;
  m.strong = "big";
  m.weak = "small";
  m.trained_on = "unit test";
  // The small model fails the hard prompts, the big one answers everything.
  Sparse easy, hard;
  extract("say hello to my friend", m.spec, easy);
  extract("prove the theorem about integrals and eigenvalues", m.spec, hard);
  std::vector<Example> big, small;
  for (int i = 0; i < 200; ++i) {
    bool is_hard = i % 2;
    big.push_back({is_hard ? &hard : &easy, 1.0f});
    small.push_back({is_hard ? &hard : &easy, is_hard ? 0.0f : 1.0f});
  }
  TrainOptions o;
  o.epochs = 5;
  m.heads.resize(2);
  m.heads[0].model = "big";
  m.heads[1].model = "small";
  train(m.heads[0], dimensions(m.spec), big, o, {});
  train(m.heads[1], dimensions(m.spec), small, o, {});
  EXPECT_GT(m.strong_gain("prove the theorem about eigenvalues"), 0.5);
  EXPECT_LT(m.strong_gain("say hello"), 0.2);
  EXPECT_FALSE(m.quality("other", easy));
  // Calibration: half the sample is hard, so "30% to the strong model" puts the threshold
  // between the easy and the hard scores.
  calibrate(m, {&easy, &hard, &easy, &hard});
  ASSERT_EQ(m.calibration.size(), 101u);
  double t = m.threshold_for_share(0.3);
  EXPECT_GT(m.strong_gain(hard), t - 1e-6);
  EXPECT_LT(m.strong_gain(easy), t);
  EXPECT_NEAR(m.share_above(m.strong_gain(easy) - 1e-3), 1.0, 0.02);

  std::string path = ::testing::TempDir() + "/model.bin";
  std::string error;
  ASSERT_TRUE(save(m, path, error)) << error;
  auto loaded = load(path, error);
  ASSERT_TRUE(loaded) << error;
  EXPECT_EQ(loaded->strong, "big");
  EXPECT_EQ(loaded->trained_on, "unit test");
  ASSERT_EQ(loaded->heads.size(), 2u);
  EXPECT_EQ(loaded->heads[1].model, "small");
  EXPECT_DOUBLE_EQ(loaded->strong_gain("say hello"), m.strong_gain("say hello"));
  EXPECT_EQ(loaded->calibration, m.calibration);

  // A flipped byte, a truncated file, another version, another kind of file: each a clear error.
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto write = [&](const std::string& b) { std::ofstream(path, std::ios::binary | std::ios::trunc) << b; };
  std::string flipped = bytes;
  flipped[100] ^= 0x40;
  write(flipped);
  EXPECT_FALSE(load(path, error));
  EXPECT_NE(error.find("corrupt"), std::string::npos) << error;
  write(bytes.substr(0, bytes.size() / 2));
  EXPECT_FALSE(load(path, error));
  EXPECT_NE(error.find("corrupt"), std::string::npos) << error;
  write("{\"not\": \"a model\"}");
  EXPECT_FALSE(load(path, error));
  EXPECT_NE(error.find("not a Switchyard router model"), std::string::npos) << error;
  EXPECT_FALSE(load(path + ".missing", error));
  EXPECT_NE(error.find("cannot read"), std::string::npos);
  // A model of another format version, with a valid checksum: refused by name.
  std::string older = bytes.substr(0, bytes.size() - 4);
  std::uint32_t one = 1;
  std::memcpy(older.data() + 8, &one, 4);  // after the 8-byte magic
  std::uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char c : older) {
    crc ^= c;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  crc = ~crc;
  older.append(reinterpret_cast<const char*>(&crc), 4);
  write(older);
  EXPECT_FALSE(load(path, error));
  EXPECT_NE(error.find("is a version 1 model; this build reads version 2"), std::string::npos) << error;
}

TEST(ComplexityModel, EnsembleIsTheMeanOfItsRunsAndWeightsScaleExamples) {
  FeatureSpec spec;
  spec.hash_bits = 10;
  Sparse a, b, c;
  extract("what is two plus two", spec, a);
  extract("derive the closed form of the recurrence", spec, b);
  extract("translate this sentence into French", spec, c);
  std::vector<Example> examples = {{&a, 1.0f}, {&b, 0.0f}, {&c, 1.0f}, {&b, 1.0f}, {&a, 0.0f}};
  TrainOptions o;
  o.ensemble = 3;
  o.seed = 7;
  Head mean;
  train(mean, dimensions(spec), examples, o, {});
  std::vector<double> sum(dimensions(spec), 0.0);
  double bias = 0;
  for (int run = 0; run < 3; ++run) {
    TrainOptions one = o;
    one.ensemble = 1;
    one.seed = o.seed + run;
    Head h;
    train(h, dimensions(spec), examples, one, {});
    for (std::size_t i = 0; i < sum.size(); ++i) sum[i] += h.weights[i] / 3.0;
    bias += h.bias / 3.0;
  }
  for (std::size_t i = 0; i < sum.size(); ++i) ASSERT_NEAR(mean.weights[i], sum[i], 1e-6) << i;
  EXPECT_NEAR(mean.bias, bias, 1e-6);
  // Different orders give different runs: the mean is not just one of them.
  TrainOptions first = o;
  first.ensemble = 1;
  Head single;
  train(single, dimensions(spec), examples, first, {});
  EXPECT_NE(single.weights, mean.weights);
  // Weight 0: the example does not move the head.
  for (auto& e : examples) e.weight = 0;
  Head still;
  train(still, dimensions(spec), examples, o, {});
  for (float w : still.weights) ASSERT_EQ(w, 0.0f);
  EXPECT_EQ(still.bias, 0.0f);
}

TEST(ComplexityFeatures, StructureOfCompoundQuestions) {
  FeatureSpec spec;
  spec.hash_bits = 12;
  auto dense = [&](const char* text) {
    Sparse x;
    extract(text, spec, x);
    std::vector<float> d(kDenseCount, 0.0f);
    for (auto [i, v] : x)
      if (i >= (1u << spec.hash_bits)) d[i - (1u << spec.hash_bits)] = v;
    return d;
  };
  auto statements = dense(
      "Statement 1 | Every group of order 4 is cyclic. Statement 2 | Every cyclic group is abelian.\n"
      "A. True, True\nB. False, False\nC. True, False\nD. False, True\nAnswer:");
  EXPECT_NEAR(statements[kStatements], std::log1p(2.0) * 8, 1e-5);
  EXPECT_NEAR(statements[kCombinedOptions], 4 / 4.0 * 8, 1e-5) << "four options combine two judgements";
  EXPECT_GT(statements[kOptionLength], 0);
  EXPECT_EQ(statements[kNumericOptions], 0);
  EXPECT_EQ(statements[kRomanItems], 0);
  EXPECT_LT(statements[kStemLength], std::log1p(200.0) / 10 * 8) << "the stem ends at option A";

  auto roman = dense(
      "Which of the following are true? I. Water boils at 100 C. II. Ice is denser than water. III. Salt lowers "
      "the freezing point.\nA. I only\nB. II and III\nC. I and III\nD. I, II and III\nAnswer:");
  EXPECT_GT(roman[kRomanItems], std::log1p(6.0) * 8 - 1e-5) << "I. II. III. and the options' numerals";
  EXPECT_NEAR(roman[kCombinedOptions], 4 / 4.0 * 8, 1e-5);
  EXPECT_EQ(dense("I think I can go. I went home, and I slept.")[kRomanItems], 0) << "the pronoun is no item";

  auto negated = dense("Which of the following is NOT a mammal? It is never a fish, EXCEPT in fables.");
  EXPECT_NEAR(negated[kNegations], std::log1p(3.0) * 8, 1e-5);
  EXPECT_EQ(dense("Notably, the knot is nothing special.")[kNegations], 0) << "words, not substrings";
  EXPECT_NEAR(dense("What would most likely happen next?")[kInference], 8, 1e-5);
  EXPECT_EQ(dense("What happens next?")[kInference], 0);

  // Only the last 3,000 characters are read (whole words); the length still counts everything.
  std::string long_text = "Statement 1 | x. Statement 2 | y. " + std::string(4000, 'z') + " What is it?";
  auto tail_only = dense(long_text.c_str());
  EXPECT_EQ(tail_only[kStatements], 0) << "the early statements are outside the window";
  EXPECT_NEAR(tail_only[kLogChars], std::log1p(static_cast<double>(long_text.size())) / 10, 1e-6);
  EXPECT_GT(tail_only[kQuestionMarks], 0);

  auto numeric = dense("What is 12 * 3?\nA. 36\nB. 38\nC. 30\nD. 1,000\nAnswer:");
  EXPECT_NEAR(numeric[kNumericOptions], 8, 1e-5);
  EXPECT_EQ(numeric[kCombinedOptions], 0);
}

TEST(ComplexityDataset, ReadsPromptsMessagesAndNullOutcomesAndSplitsByCategory) {
  std::string path = ::testing::TempDir() + "/rows.jsonl";
  std::ofstream(path) << R"({"id":"a","category":"math","prompt":"2+2?","outcomes":{"big":1,"small":0},"strong_model":"big","weak_model":"small"}
{"id":"b","category":"x","contaminated":true,"prompt":"skip","outcomes":{"big":1}}
{"id":"c","messages":[{"role":"user","content":"hi"},{"role":"user","content":[{"type":"text","text":"there"}]}],"outcomes":{"big":null,"small":1},"cost_usd":{"big":0.01}}
)";
  std::vector<Row> rows;
  std::string error;
  ASSERT_TRUE(read_rows(path, rows, error)) << error;
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].strong_model, "big");
  EXPECT_EQ(rows[0].outcome("small").value_or(-1), 0);
  EXPECT_EQ(rows[1].text, "hi\nthere");
  EXPECT_FALSE(rows[1].outcome("big")) << "null: not measured";
  EXPECT_DOUBLE_EQ(rows[1].cost_usd[0].second, 0.01);
  std::ofstream(path) << "{\"prompt\": 3, \"outcomes\": {}}\n";
  rows.clear();
  EXPECT_FALSE(read_rows(path, rows, error));
  EXPECT_NE(error.find("line 1"), std::string::npos) << error;

  EXPECT_EQ(parse_part("1/5"), std::make_pair(1u, 5u));
  EXPECT_FALSE(parse_part("5/5"));
  EXPECT_FALSE(parse_part("x"));
  int in_zero = 0;
  for (int i = 0; i < 1000; ++i) in_zero += in_part("subject_" + std::to_string(i), 0, 5);
  EXPECT_NEAR(in_zero, 200, 40);
  EXPECT_EQ(in_part("math", 2, 5), in_part("math", 2, 5));
}

TEST(ComplexityFeedback, KeptBoundedTakenOnceAndWrittenAsATrainingRow) {
  FeedbackStore store(2);
  auto pending = [](std::string id) {
    Pending p;
    p.request_id = std::move(id);
    p.key = "k";
    p.route = "auto";
    p.model = "big";
    p.tier = 1;
    p.hash_bits = 16;
    p.features = {{3, 0.5f}, {70000, 0.25f}};
    return p;
  };
  store.remember(pending("a"));
  store.remember(pending("b"));
  store.remember(pending("c"));
  EXPECT_FALSE(store.take("a", "k")) << "bounded: the oldest went";
  EXPECT_FALSE(store.take("b", "other")) << "another key";
  auto b = store.take("b", "k");
  ASSERT_TRUE(b);
  EXPECT_FALSE(store.take("b", "k")) << "taken once";
  std::string row = feedback_row(*b, 0.25);
  EXPECT_EQ(row, R"({"id":"b","route":"auto","category":"auto","tier":1,"outcomes":{"big":0.25},"hash_bits":16,"features":[[3,0.5],[70000,0.25]]})"
                 "\n");
  // The reader takes it back as a row with features.
  std::string path = ::testing::TempDir() + "/feedback.jsonl";
  std::ofstream(path) << row;
  std::vector<Row> rows;
  std::string error;
  ASSERT_TRUE(read_rows(path, rows, error)) << error;
  ASSERT_EQ(rows.size(), 1u);
  ASSERT_TRUE(rows[0].features);
  EXPECT_EQ(rows[0].features->size(), 2u);
  EXPECT_EQ(rows[0].hash_bits, 16u);
  EXPECT_FALSE(rows[0].words);
  EXPECT_DOUBLE_EQ(rows[0].outcome("big").value_or(-1), 0.25);
  // A model with word features says so in its rows, so a retrain uses the same features.
  b->words = true;
  row = feedback_row(*b, 1);
  EXPECT_NE(row.find(R"("hash_bits":16,"words":true,"features")"), std::string::npos) << row;
  std::ofstream(path) << row;
  rows.clear();
  ASSERT_TRUE(read_rows(path, rows, error)) << error;
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_TRUE(rows[0].words);
}

TEST(ComplexityMetrics, HandComputedQualityCostCurve) {
  // A costs 1 and answers prompt 1; B costs 10 and answers both. Predictions rank them right.
  std::vector<MultiRow> rows = {
      {{0.9, 0.95}, {1, 1}, {1, 10}},
      {{0.1, 0.9}, {0, 1}, {1, 10}},
  };
  CostCurve c = cost_curve(rows);
  ASSERT_EQ(c.models.size(), 2u);
  EXPECT_DOUBLE_EQ(c.models[0].cost, 1);
  EXPECT_DOUBLE_EQ(c.models[0].quality, 0.5);
  EXPECT_DOUBLE_EQ(c.models[1].cost, 10);
  ASSERT_EQ(c.router.size(), 2u) << "cheap for both; A for the easy one and B for the hard one";
  EXPECT_DOUBLE_EQ(c.router[0].cost, 1);
  EXPECT_DOUBLE_EQ(c.router[0].quality, 0.5);
  EXPECT_DOUBLE_EQ(c.router[1].cost, 5.5);
  EXPECT_DOUBLE_EQ(c.router[1].quality, 1.0);
  // Under the line until the budget reaches 5.5, above it after: the two halves cancel.
  EXPECT_NEAR(c.area_gain, 0, 0.01);
  EXPECT_NE(cost_svg(c, {"A", "B"}, "t").find("<circle"), std::string::npos);
}

TEST(ComplexityCategory, CuesPickTheTaskCategory) {
  using switchyard::catalog::Category;
  EXPECT_EQ(categorize("Write a Python function that returns the nth Fibonacci number.\n```python\ndef fib(n):").best,
            Category::code);
  EXPECT_EQ(categorize("Solve the equation 3x^2 - 12x + 9 = 0 and prove the roots are real.").best, Category::math);
  EXPECT_EQ(categorize("The trophy doesn't fit in the suitcase because _ is too big.\nA) trophy\nB) suitcase").best,
            Category::reasoning);
  EXPECT_EQ(categorize("What is the capital of Australia?").best, Category::knowledge);
  EXPECT_EQ(categorize("Write a poem about the sea at night, in four stanzas.").best, Category::writing);
  EXPECT_EQ(categorize("Summarize the following article in three key points: ...").best, Category::extraction);
  EXPECT_EQ(categorize("hello! how are you?").best, Category::chat);
  EXPECT_EQ(categorize("").best, Category::chat);
  // A test question whose answers are numbers asks for a computation; one whose answers are
  // words asks for knowledge.
  EXPECT_EQ(categorize("A meter stick moves past an observer at 0.8c. How long does it take to pass?\n"
                       "A. 1.6 ns\nB. 2.5 ns\nC. 4.2 ns\nD. 6.9 ns\nAnswer:").best,
            Category::math);
  EXPECT_EQ(categorize("Which of these rivers is the longest?\nA. Nile\nB. Danube\nC. Rhine\nD. Thames\nAnswer:").best,
            Category::knowledge);
  EXPECT_EQ(categorize("Write a function to find the largest prime factor of an integer.\n"
                       "assert largest_prime_factor(15) == 5").best,
            Category::code);
}
