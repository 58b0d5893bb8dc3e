#include "server/router_cli.hpp"

#include <unistd.h>

#include <algorithm>
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
  // The models to learn: the pair, or every model the data has outcomes for.
  std::vector<std::string> names = {data.strong, data.weak};
  if (o.all_models)
    for (const auto& r : data.rows)
      for (const auto& [name, value] : r.outcomes)
        if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  std::vector<cx::Sparse> features;
  std::vector<const cx::Row*> used;
  std::size_t held_out = 0;
  for (const auto& r : data.rows) {
    if ((holdout && cx::in_part(r.category, holdout->first, holdout->second)) ||
        (!o.holdout_category.empty() && r.category == o.holdout_category)) {
      ++held_out;
      continue;
    }
    used.push_back(&r);
  }
  features.resize(used.size());
  Progress featuring("features");
  for (std::size_t i = 0; i < used.size(); ++i) {
    cx::extract(used[i]->text, model.spec, features[i]);
    featuring(i + 1, used.size());
  }
  cx::TrainOptions options;
  options.epochs = o.epochs;
  options.seed = o.seed;
  for (const auto& name : names) {
    std::vector<cx::Example> examples;
    for (std::size_t i = 0; i < used.size(); ++i)
      if (auto y = used[i]->outcome(name)) examples.push_back({&features[i], static_cast<float>(*y)});
    if (examples.empty()) {
      std::fprintf(stderr, "no outcomes of %s in the training rows\n", name.c_str());
      return 1;
    }
    cx::Head head;
    head.model = name;
    Progress progress(("training " + name).c_str());
    cx::train(head, cx::dimensions(model.spec), examples, options,
              [&](std::size_t d, std::size_t t) { progress(d, t); });
    model.heads.push_back(std::move(head));
    std::printf("  %s: %zu rows\n", name.c_str(), examples.size());
  }
  {
    std::vector<const cx::Sparse*> sample;
    for (const auto& f : features) sample.push_back(&f);
    cx::calibrate(model, sample);
  }
  model.trained_on = o.data + " (" + std::to_string(used.size()) + " rows" +
                     (holdout ? ", categories of part " + o.holdout + " held out" : std::string()) +
                     (o.holdout_category.empty() ? std::string() : ", " + o.holdout_category + " held out") + ")";
  std::string error;
  if (!cx::save(model, o.model, error)) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 1;
  }
  std::printf("trained %zu head(s) on %zu rows (%zu held out); pair %s / %s -> %s\n", model.heads.size(),
              used.size(), held_out, data.strong.c_str(), data.weak.c_str(), o.model.c_str());
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
    if (!o.holdout_category.empty() && r.category != o.holdout_category) continue;
    auto s = r.outcome(data.strong), w = r.outcome(data.weak);
    if (!s || !w) continue;
    thread_local cx::Sparse x;
    cx::extract(r.text, model->spec, x);
    auto qs = model->quality(data.strong, x), qw = model->quality(data.weak, x);
    if (!qs || !qw) {
      std::fprintf(stderr, "the model has no head for %s\n", (!qs ? data.strong : data.weak).c_str());
      return 1;
    }
    double need = *qs - *qw;
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
  std::string part = holdout ? " of held-out part " + o.holdout
                     : o.holdout_category.empty() ? std::string() : " of held-out " + o.holdout_category;
  std::printf("%zu rows%s: %s (weak) %.3f, %s (strong) %.3f\n", scored.size(), part.c_str(), data.weak.c_str(),
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
