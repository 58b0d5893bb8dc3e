#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "routing/complexity/features.hpp"

/// The complexity classifier: one logistic-regression head per model over `features.hpp`, each
/// predicting the probability that its model answers a prompt well. For a strong/weak pair the
/// router's score is the predicted gain of the strong model, P(strong) − P(weak); with more tiers,
/// each tier's predicted quality. The file format is versioned and checksummed.
namespace switchyard::routing::complexity {

struct Head {
  std::string model;
  float bias = 0;
  std::vector<float> weights;  ///< dimensions(spec)
  double predict(const Sparse& x) const;
};

struct Model {
  static constexpr std::uint32_t kVersion = 2;  ///< 2: structural features (kStatements..)
  FeatureSpec spec;
  std::vector<Head> heads;
  std::string trained_on;  ///< data description (file, rows, held-out part)
  std::string strong;      ///< the default pair for `eval` and two-tier routes
  std::string weak;
  /// Quantiles of `strong_gain` over the training prompts, at 0%, 1%, ..., 100%: the threshold
  /// that sends a given share of traffic to the strong side is read from them.
  std::vector<float> calibration;

  /// The score above which about `share` (0..1) of the calibration prompts lie.
  double threshold_for_share(double share) const;
  /// The share of calibration prompts scoring above `score` (0..1).
  double share_above(double score) const;

  const Head* head(std::string_view model) const;
  /// Predicted quality of `model` on the features; nullopt when the model has no head.
  std::optional<double> quality(std::string_view model, const Sparse& x) const;
  /// P(strong) − P(weak) for the model's default pair (0 when a head is missing).
  double strong_gain(const Sparse& x) const;
  double strong_gain(std::string_view text) const;
};

/// Writes `m` to `path`; false with `error` set on failure.
bool save(const Model& m, const std::string& path, std::string& error);
/// Reads a model; nullopt with a clear `error` for a missing, foreign, newer or corrupt file.
std::optional<Model> load(const std::string& path, std::string& error);
/// A model from the bytes of a model file (`path` names it in errors); the same checks as `load`.
std::optional<Model> parse(std::string_view bytes, const std::string& path, std::string& error);
/// The checksum a model file ends with (CRC-32 of the bytes before it).
std::uint32_t checksum(std::string_view bytes);

/// One training example for one head.
struct Example {
  const Sparse* x = nullptr;
  float y = 0;  ///< the model's outcome on the prompt, 0..1
  float weight = 1;  ///< scales the example's gradient
};

struct TrainOptions {
  int epochs = 1;               ///< more passes memorise the training prompts (measured)
  double learning_rate = 0.02;  ///< AdaGrad base rate (chosen on the held-out folds)
  /// Runs averaged: each run sees the examples in another order (seed, seed+1, ...) and the
  /// head is the mean of their weights. One pass of SGD depends much on the order; the mean
  /// does not (measured: docs/routing-quality.md). Costs training time only.
  int ensemble = 40;
  double l2 = 1e-6;
  std::uint64_t seed = 1;
};

/// Logistic regression by AdaGrad SGD, examples shuffled each epoch with a fixed seed; the mean
/// of `options.ensemble` such runs.
/// `progress(done, total)` is called every few thousand steps (may be empty).
void train(Head& head, std::uint32_t dims, const std::vector<Example>& examples, const TrainOptions& options,
           const std::function<void(std::size_t, std::size_t)>& progress);

/// Fills `m.calibration` from the model's scores on `sample` (the training prompts).
void calibrate(Model& m, const std::vector<const Sparse*>& sample);

}  // namespace switchyard::routing::complexity
