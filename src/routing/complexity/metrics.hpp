#pragma once

#include <string>
#include <vector>

/// The standard router metrics (RouteLLM, arXiv 2406.18665) for a strong/weak pair.
namespace switchyard::routing::complexity {

struct PairOutcome {
  double strong_need = 0;  ///< the router's score: higher sends the prompt to the strong model first
  double weak = 0;         ///< outcome of the weak model on the prompt
  double strong = 0;       ///< outcome of the strong model
};

/// Quality as the share of prompts sent to the strong model grows from 0 to 1: prompts go to the
/// strong model in order of decreasing `strong_need` (ties in input order).
struct PairCurve {
  std::vector<double> share;    ///< k / n for k = 0..n
  std::vector<double> quality;  ///< mean outcome of the model each prompt was routed to
  std::vector<double> pgr;      ///< (quality − weak) / (strong − weak)
  double weak_quality = 0;
  double strong_quality = 0;
};

PairCurve pair_curve(const std::vector<PairOutcome>& rows);
/// Area under PGR over the share (trapezoids on the k/n grid); a random router gets about 0.5.
double apgr(const PairCurve& curve);
/// The smallest share of strong calls whose PGR reaches `target` (0.5 for CPT(50%)); 1 if never.
double cpt(const PairCurve& curve, double target);

/// An SVG line chart of PGR against the share of strong calls, with the random router's diagonal.
std::string pgr_svg(const PairCurve& curve, const std::string& title);

}  // namespace switchyard::routing::complexity

namespace switchyard::routing::complexity {

/// Many models with costs: for each prompt, each model's predicted quality, actual outcome and
/// cost.
struct MultiRow {
  std::vector<double> predicted;  ///< per model
  std::vector<double> outcome;    ///< per model
  std::vector<double> cost;       ///< per model, USD
};

struct CostPoint {
  double cost = 0;     ///< mean cost per prompt
  double quality = 0;  ///< mean outcome
  double lambda = 0;   ///< the trade-off that produced it (router points)
};

struct CostCurve {
  std::vector<CostPoint> router;  ///< by increasing cost, dominated points removed
  std::vector<CostPoint> models;  ///< each model alone
  /// Mean quality gain of the router over the straight line from the cheapest single model to the
  /// best single model, across that cost range (router quality at a budget = the best router
  /// point within it). Positive: the router beats mixing the two.
  double area_gain = 0;
};

/// Sweeps the trade-off λ: each prompt goes to argmax_m predicted_m − λ·cost_m.
CostCurve cost_curve(const std::vector<MultiRow>& rows);

/// An SVG chart of quality against cost: the router's curve and each model's point.
std::string cost_svg(const CostCurve& curve, const std::vector<std::string>& model_names, const std::string& title);

}  // namespace switchyard::routing::complexity
