#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "routing/complexity/features.hpp"

/// The complexity classifier: logistic regression over `features.hpp`, predicting the
/// probability that the weak model's answer is as good as the strong model's. Its file format
/// is versioned and checksummed.
namespace switchyard::routing::complexity {

struct Model {
  static constexpr std::uint32_t kVersion = 1;
  FeatureSpec spec;
  float bias = 0;
  std::vector<float> weights;  ///< dimensions(spec)
  std::string strong;          ///< the model names it was trained for
  std::string weak;
  std::string trained_on;      ///< data description (file, rows, held-out part)

  /// P(weak is as good as strong) for a feature vector / a text.
  double p_weak_ok(const Sparse& x) const;
  double p_weak_ok(std::string_view text) const;
};

/// Writes `m` to `path`; false with `error` set on failure.
bool save(const Model& m, const std::string& path, std::string& error);
/// Reads a model; nullopt with a clear `error` for a missing, foreign, newer or corrupt file.
std::optional<Model> load(const std::string& path, std::string& error);

/// One training example.
struct Example {
  Sparse x;
  float y = 0;  ///< 1: the weak model was as good as the strong one
  float weight = 1;
};

struct TrainOptions {
  int epochs = 8;
  double learning_rate = 0.1;  ///< AdaGrad base rate
  double l2 = 1e-6;
  std::uint64_t seed = 1;
  bool balance = true;         ///< weigh classes equally
};

/// Logistic regression by AdaGrad SGD, examples shuffled each epoch with a fixed seed.
/// `progress(done, total)` is called every few thousand steps (may be empty).
void train(Model& m, const std::vector<Example>& examples, const TrainOptions& options,
           const std::function<void(std::size_t, std::size_t)>& progress);

}  // namespace switchyard::routing::complexity
