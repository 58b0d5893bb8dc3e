#include "server/router_cli.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>

#include "routing/complexity/dataset.hpp"
#include "routing/complexity/metrics.hpp"
#include "routing/complexity/model.hpp"

namespace switchyard::server {

namespace cx = routing::complexity;

namespace {

/// A progress bar on standard error, drawn only on a terminal and at most every 100 ms.
class Progress {
 public:
  explicit Progress(const char* what) : what_(what), tty_(isatty(STDERR_FILENO)) {}
  void operator()(std::size_t done, std::size_t total) {
    if (!tty_ || total == 0) return;
    auto now = std::chrono::steady_clock::now();
    if (done < total && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    int filled = static_cast<int>(30.0 * static_cast<double>(done) / static_cast<double>(total));
    std::fprintf(stderr, "\r%s [%-30.*s] %3.0f%%", what_, filled, "==============================",
                 100.0 * static_cast<double>(done) / static_cast<double>(total));
    if (done >= total) std::fputc('\n', stderr);
  }

 private:
  const char* what_;
  bool tty_;
  std::chrono::steady_clock::time_point last_{};
};

struct Loaded {
  std::vector<cx::Row> rows;
  std::string strong, weak;
};

bool load_rows(const RouterCliOptions& o, Loaded& out, std::string strong, std::string weak) {
  std::string error;
  if (!cx::read_rows(o.data, out.rows, error)) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return false;
  }
  if (out.rows.empty()) {
    std::fprintf(stderr, "%s: no rows\n", o.data.c_str());
    return false;
  }
  if (strong.empty()) strong = out.rows.front().strong_model;
  if (weak.empty()) weak = out.rows.front().weak_model;
  if (strong.empty() || weak.empty()) {
    std::fprintf(stderr, "name the pair with --strong and --weak (the data does not)\n");
    return false;
  }
  out.strong = strong;
  out.weak = weak;
  return true;
}

std::optional<std::pair<unsigned, unsigned>> holdout_of(const RouterCliOptions& o, bool& ok) {
  ok = true;
  if (o.holdout.empty()) return std::nullopt;
  auto part = cx::parse_part(o.holdout);
  if (!part) {
    std::fprintf(stderr, "--holdout must be K/N with 0 <= K < N, got \"%s\"\n", o.holdout.c_str());
    ok = false;
  }
  return part;
}

}  // namespace

int router_train(const RouterCliOptions& o) {
  bool ok = true;
  auto holdout = holdout_of(o, ok);
  if (!ok) return 2;
  Loaded data;
  if (!load_rows(o, data, o.strong, o.weak)) return 1;
  cx::Model model;
  model.spec.hash_bits = o.hash_bits;
  model.strong = data.strong;
  model.weak = data.weak;
  std::vector<cx::Example> examples;
  std::size_t skipped_holdout = 0, skipped_missing = 0;
  for (const auto& r : data.rows) {
    if (holdout && cx::in_part(r.category, holdout->first, holdout->second)) {
      ++skipped_holdout;
      continue;
    }
    auto s = r.outcome(data.strong), w = r.outcome(data.weak);
    if (!s || !w) {
      ++skipped_missing;
      continue;
    }
    cx::Example e;
    cx::extract(r.text, model.spec, e.x);
    e.y = *w >= *s ? 1.0f : 0.0f;
    examples.push_back(std::move(e));
  }
  if (examples.empty()) {
    std::fprintf(stderr, "no training rows with outcomes of both %s and %s\n", data.strong.c_str(),
                 data.weak.c_str());
    return 1;
  }
  model.trained_on = o.data + " (" + std::to_string(examples.size()) + " rows" +
                     (holdout ? ", categories of part " + o.holdout + " held out" : std::string()) + ")";
  cx::TrainOptions options;
  options.epochs = o.epochs;
  options.seed = o.seed;
  Progress progress("training");
  cx::train(model, examples, options, [&](std::size_t d, std::size_t t) { progress(d, t); });
  std::string error;
  if (!cx::save(model, o.model, error)) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 1;
  }
  std::printf("trained on %zu rows (%zu held out, %zu without both outcomes): %s vs %s -> %s\n",
              examples.size(), skipped_holdout, skipped_missing, data.strong.c_str(), data.weak.c_str(),
              o.model.c_str());
  return 0;
}

int router_eval(const RouterCliOptions& o) {
  bool ok = true;
  auto holdout = holdout_of(o, ok);
  if (!ok) return 2;
  std::string error;
  auto model = cx::load(o.model, error);
  if (!model) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 1;
  }
  Loaded data;
  if (!load_rows(o, data, o.strong.empty() ? model->strong : o.strong, o.weak.empty() ? model->weak : o.weak))
    return 1;
  std::vector<cx::PairOutcome> scored, random;
  std::mt19937_64 rng(o.seed);
  std::uniform_real_distribution<double> uniform(0, 1);
  Progress progress("scoring");
  for (std::size_t i = 0; i < data.rows.size(); ++i) {
    const auto& r = data.rows[i];
    progress(i + 1, data.rows.size());
    if (holdout && !cx::in_part(r.category, holdout->first, holdout->second)) continue;
    auto s = r.outcome(data.strong), w = r.outcome(data.weak);
    if (!s || !w) continue;
    double need = 1.0 - model->p_weak_ok(r.text);
    scored.push_back({need, *w, *s});
    random.push_back({uniform(rng), *w, *s});
  }
  if (scored.empty()) {
    std::fprintf(stderr, "no rows to evaluate\n");
    return 1;
  }
  cx::PairCurve curve = cx::pair_curve(scored);
  // The random router, averaged over 20 draws.
  double random_apgr = 0;
  for (int k = 0; k < 20; ++k) {
    for (auto& r : random) r.strong_need = uniform(rng);
    random_apgr += cx::apgr(cx::pair_curve(random)) / 20;
  }
  std::printf("%zu rows%s: %s (weak) %.3f, %s (strong) %.3f\n", scored.size(),
              holdout ? (" of held-out part " + o.holdout).c_str() : "", data.weak.c_str(),
              curve.weak_quality, data.strong.c_str(), curve.strong_quality);
  std::printf("APGR %.3f  CPT(50%%) %.1f%%  CPT(80%%) %.1f%%   (random router: APGR %.3f)\n",
              cx::apgr(curve), 100 * cx::cpt(curve, 0.5), 100 * cx::cpt(curve, 0.8), random_apgr);
  if (!o.svg.empty()) {
    std::ofstream(o.svg) << cx::pgr_svg(curve, "PGR of " + o.model + " on " + o.data +
                                                  (holdout ? " (held-out part " + o.holdout + ")" : std::string()));
    std::printf("curve written to %s\n", o.svg.c_str());
  }
  return 0;
}

}  // namespace switchyard::server
