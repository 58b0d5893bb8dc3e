#pragma once

#include <string>

/// `switchyard router train|eval|cv|savings`: the complexity classifier's offline tools.
namespace switchyard::server {

struct RouterCliOptions {
  std::string data;
  std::string model;     ///< output (train) or input (eval)
  std::string strong;    ///< default: the data's strong_model, or the model file's
  std::string weak;
  std::string holdout;   ///< "K/N": categories of part K are held out (train skips, eval uses them)
  std::string holdout_category;  ///< one category held out the same way (a whole benchmark)
  std::string svg;       ///< eval: write the PGR curve here
  std::string cost_svg;  ///< eval, models with 3+ heads: write the quality–cost curve here
  int epochs = 1;
  double learning_rate = 0.02;
  bool all_models = false;  ///< train: a head for every model with outcomes, not just the pair
  unsigned hash_bits = 18;
  bool words = false;       ///< train: hashed words and word bigrams besides character 4-grams
  int ensemble = 40;        ///< train: SGD runs averaged (each in another order)
  /// train: weight rows by (mean category size / their category's)^balance, so that no large
  /// category dominates what carries over to unseen ones (measured: docs/routing-quality.md)
  double balance = 1;
  unsigned folds = 5;       ///< cv: parts the categories (or rows) are split into
  std::string split = "category";  ///< cv: "category" (held out) or "row" (in-distribution)
  unsigned long long seed = 1;
};

int router_train(const RouterCliOptions& o);
int router_eval(const RouterCliOptions& o);
/// Cross-validation by category: for each of `folds` parts, train on the others and score the
/// part; prints each part's metrics and those of all held-out scores pooled.
int router_cv(const RouterCliOptions& o);
/// What the traffic in an access log cost, against sending all of it to each route's strongest
/// deployment (its strongest complexity tier, else its best quality prior).
int router_savings(const std::string& config_path, const std::string& log_path);

}  // namespace switchyard::server
