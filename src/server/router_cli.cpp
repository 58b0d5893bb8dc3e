#include "server/router_cli.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <optional>
#include <random>

#include "routing/complexity/dataset.hpp"
#include "routing/complexity/metrics.hpp"
#include "routing/complexity/model.hpp"
#include "server/config_load.hpp"
#include "server/runtime.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <map>

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

/// Trains heads for the pair (or every model) on the rows `use` accepts. nullopt (message
/// printed) when nothing can be trained. `quiet`: no per-head lines (cross-validation).
std::optional<cx::Model> build_model(const RouterCliOptions& o, const Loaded& data,
                                     const std::function<bool(const cx::Row&)>& use, bool quiet,
                                     std::size_t& used_rows) {
  cx::Model model;
  model.spec.hash_bits = o.hash_bits;
  model.spec.words = model.spec.bigrams = o.words;
  model.strong = data.strong;
  model.weak = data.weak;
  // The models to learn: the pair, or every model the data has outcomes for.
  std::vector<std::string> names = {data.strong, data.weak};
  if (o.all_models)
    for (const auto& r : data.rows)
      for (const auto& [name, value] : r.outcomes)
        if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  std::vector<const cx::Row*> used;
  for (const auto& r : data.rows)
    if (use(r)) used.push_back(&r);
  used_rows = used.size();
  std::vector<cx::Sparse> features(used.size());
  Progress featuring("features");
  for (std::size_t i = 0; i < used.size(); ++i) {
    if (used[i]->features) {
      // A feedback row: hashed when it was served, with the bits of the model that served it.
      if (used[i]->hash_bits != model.spec.hash_bits) {
        std::fprintf(stderr, "row %s was hashed with %u bits; train with --hash-bits %u\n", used[i]->id.c_str(),
                     used[i]->hash_bits, used[i]->hash_bits);
        return std::nullopt;
      }
      if (used[i]->words != model.spec.words) {
        std::fprintf(stderr, "row %s was hashed %s words; train %s --words\n", used[i]->id.c_str(),
                     used[i]->words ? "with" : "without", used[i]->words ? "with" : "without");
        return std::nullopt;
      }
      features[i] = *used[i]->features;
    } else {
      cx::extract(used[i]->text, model.spec, features[i]);
    }
    featuring(i + 1, used.size());
  }
  cx::TrainOptions options;
  options.epochs = o.epochs;
  options.learning_rate = o.learning_rate;
  options.ensemble = o.ensemble;
  options.seed = o.seed;
  // Each category weighs as much as the mean category (when asked): no large category dominates.
  std::map<std::string, double> per_category;
  for (const cx::Row* r : used) per_category[r->category] += 1;
  const double mean_category = static_cast<double>(used.size()) / static_cast<double>(per_category.size());
  auto weight_of = [&](const cx::Row& r) {
    return o.balance ? static_cast<float>(std::pow(mean_category / per_category[r.category], o.balance)) : 1.0f;
  };
  for (const auto& name : names) {
    std::vector<cx::Example> examples;
    for (std::size_t i = 0; i < used.size(); ++i)
      if (auto y = used[i]->outcome(name)) examples.push_back({&features[i], static_cast<float>(*y), weight_of(*used[i])});
    if (examples.empty()) {
      // Feedback rows rate only the model that answered: a model without outcomes gets no head.
      std::fprintf(stderr, "no outcomes of %s in the training rows: no head for it\n", name.c_str());
      continue;
    }
    cx::Head head;
    head.model = name;
    Progress progress(("training " + name).c_str());
    cx::train(head, cx::dimensions(model.spec), examples, options,
              [&](std::size_t d, std::size_t t) { progress(d, t); });
    model.heads.push_back(std::move(head));
    if (!quiet) std::printf("  %s: %zu rows\n", name.c_str(), examples.size());
  }
  if (model.heads.empty()) {
    std::fprintf(stderr, "nothing to train: no outcomes of any model named\n");
    return std::nullopt;
  }
  std::vector<const cx::Sparse*> sample;
  for (const auto& f : features) sample.push_back(&f);
  cx::calibrate(model, sample);
  return model;
}

/// The model's scores for the pair on the rows `evaluated` accepts (rows without both outcomes
/// skipped); false (message printed) when the model lacks a head of the pair.
bool score_pair(const cx::Model& model, const Loaded& data, const std::function<bool(const cx::Row&)>& evaluated,
                std::vector<cx::PairOutcome>& out) {
  Progress progress("scoring");
  cx::Sparse x;
  for (std::size_t i = 0; i < data.rows.size(); ++i) {
    const auto& r = data.rows[i];
    progress(i + 1, data.rows.size());
    if (!evaluated(r)) continue;
    auto s = r.outcome(data.strong), w = r.outcome(data.weak);
    if (!s || !w) continue;
    cx::extract(r.text, model.spec, x);
    auto qs = model.quality(data.strong, x), qw = model.quality(data.weak, x);
    if (!qs || !qw) {
      std::fprintf(stderr, "the model has no head for %s\n", (!qs ? data.strong : data.weak).c_str());
      return false;
    }
    out.push_back({*qs - *qw, *w, *s});
  }
  return true;
}

/// A path's file name: plot titles stay the same wherever the files are (a temp folder).
std::string name_of(const std::string& path) { return path.substr(path.find_last_of('/') + 1); }

/// APGR of a random order, averaged over 20 draws.
double random_apgr(std::vector<cx::PairOutcome> rows, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> uniform(0, 1);
  double sum = 0;
  for (int k = 0; k < 20; ++k) {
    for (auto& r : rows) r.strong_need = uniform(rng);
    sum += cx::apgr(cx::pair_curve(rows)) / 20;
  }
  return sum;
}

}  // namespace

int router_train(const RouterCliOptions& o) {
  bool ok = true;
  auto holdout = holdout_of(o, ok);
  if (!ok) return 2;
  Loaded data;
  if (!load_rows(o, data, o.strong, o.weak)) return 1;
  auto held_out = [&](const cx::Row& r) {
    return (holdout && cx::in_part(r.category, holdout->first, holdout->second)) ||
           (!o.holdout_category.empty() && r.category == o.holdout_category);
  };
  std::size_t used = 0;
  auto model = build_model(o, data, [&](const cx::Row& r) { return !held_out(r); }, false, used);
  if (!model) return 1;
  model->trained_on = o.data + " (" + std::to_string(used) + " rows" +
                      (holdout ? ", categories of part " + o.holdout + " held out" : std::string()) +
                      (o.holdout_category.empty() ? std::string() : ", " + o.holdout_category + " held out") + ")";
  std::string error;
  if (!cx::save(*model, o.model, error)) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 1;
  }
  std::printf("trained %zu head(s) on %zu rows (%zu held out); pair %s / %s -> %s\n", model->heads.size(), used,
              data.rows.size() - used, data.strong.c_str(), data.weak.c_str(), o.model.c_str());
  return 0;
}

int router_cv(const RouterCliOptions& o) {
  if (o.folds < 2) {
    std::fprintf(stderr, "--folds must be at least 2\n");
    return 2;
  }
  Loaded data;
  if (!load_rows(o, data, o.strong, o.weak)) return 1;
  // The split: by category (held-out subjects or benchmarks), or by row id (in-distribution:
  // what the features can learn of the data at all).
  const bool by_row = o.split == "row";
  auto part_of = [&](const cx::Row& r, unsigned k) {
    return cx::in_part(by_row ? std::string_view(r.id) : std::string_view(r.category), k, o.folds);
  };
  std::printf("%s: %s in %u parts; train on the others, score the part; %s (strong) / %s (weak)\n\n",
              o.data.c_str(), by_row ? "rows" : "categories", o.folds, data.strong.c_str(), data.weak.c_str());
  std::printf("| part | categories | rows | weak | strong | APGR | CPT(50%%) | CPT(80%%) | random APGR |\n");
  std::printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
  std::vector<cx::PairOutcome> pooled;
  double apgr_sum = 0, apgr_weighted = 0;
  unsigned parts = 0;
  for (unsigned k = 0; k < o.folds; ++k) {
    std::vector<std::string> categories;
    for (const auto& r : data.rows)
      if (part_of(r, k) && std::find(categories.begin(), categories.end(), r.category) == categories.end())
        categories.push_back(r.category);
    if (categories.empty()) continue;
    std::size_t used = 0;
    auto model = build_model(o, data, [&](const cx::Row& r) { return !part_of(r, k); }, true, used);
    if (!model) return 1;
    std::vector<cx::PairOutcome> scored;
    if (!score_pair(*model, data, [&](const cx::Row& r) { return part_of(r, k); }, scored)) return 1;
    if (scored.empty()) continue;
    cx::PairCurve curve = cx::pair_curve(scored);
    double a = cx::apgr(curve);
    apgr_sum += a;
    apgr_weighted += a * static_cast<double>(scored.size());
    ++parts;
    std::printf("| %u | %zu | %zu | %.3f | %.3f | %.3f | %.1f%% | %.1f%% | %.3f |\n", k, categories.size(),
                scored.size(), curve.weak_quality, curve.strong_quality, a, 100 * cx::cpt(curve, 0.5),
                100 * cx::cpt(curve, 0.8), random_apgr(scored, o.seed));
    std::fflush(stdout);
    pooled.insert(pooled.end(), scored.begin(), scored.end());
  }
  if (pooled.empty()) {
    std::fprintf(stderr, "no rows to evaluate\n");
    return 1;
  }
  cx::PairCurve curve = cx::pair_curve(pooled);
  std::printf("| **pooled** | | %zu | %.3f | %.3f | **%.3f** | %.1f%% | %.1f%% | %.3f |\n", pooled.size(),
              curve.weak_quality, curve.strong_quality, cx::apgr(curve), 100 * cx::cpt(curve, 0.5),
              100 * cx::cpt(curve, 0.8), random_apgr(pooled, o.seed));
  std::printf("\nmean APGR over the %u parts %.3f (rows-weighted %.3f); pooled: every row scored by the model "
              "that did not see %s\n",
              parts, apgr_sum / parts, apgr_weighted / static_cast<double>(pooled.size()),
              by_row ? "it" : "its category");
  if (!o.svg.empty()) {
    std::ofstream(o.svg) << cx::pgr_svg(curve, "PGR, categories held out (" + std::to_string(o.folds) +
                                                  " parts, pooled): " + name_of(o.data));
    std::printf("curve written to %s\n", o.svg.c_str());
  }
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
  // The rows evaluated: the held-out part, when one is named.
  auto evaluated = [&](const cx::Row& r) {
    return (!holdout || cx::in_part(r.category, holdout->first, holdout->second)) &&
           (o.holdout_category.empty() || r.category == o.holdout_category);
  };
  std::vector<cx::PairOutcome> scored;
  if (!score_pair(*model, data, evaluated, scored)) return 1;
  if (scored.empty()) {
    std::fprintf(stderr, "no rows to evaluate\n");
    return 1;
  }
  cx::PairCurve curve = cx::pair_curve(scored);
  std::string part = holdout ? " of held-out part " + o.holdout
                     : o.holdout_category.empty() ? std::string() : " of held-out " + o.holdout_category;
  std::printf("%zu rows%s: %s (weak) %.3f, %s (strong) %.3f\n", scored.size(), part.c_str(), data.weak.c_str(),
              curve.weak_quality, data.strong.c_str(), curve.strong_quality);
  std::printf("APGR %.3f  CPT(50%%) %.1f%%  CPT(80%%) %.1f%%   (random router: APGR %.3f)\n",
              cx::apgr(curve), 100 * cx::cpt(curve, 0.5), 100 * cx::cpt(curve, 0.8), random_apgr(scored, o.seed));
  if (model->heads.size() > 2) {
    // Many models: the quality–cost curve of routing each prompt to argmax predicted − λ·cost.
    std::vector<std::string> names;
    for (const auto& h : model->heads) names.push_back(h.model);
    std::vector<double> mean_cost(names.size(), 0), cost_rows(names.size(), 0);
    for (const auto& r : data.rows)
      for (const auto& [name, usd] : r.cost_usd)
        for (std::size_t m = 0; m < names.size(); ++m)
          if (names[m] == name) {
            mean_cost[m] += usd;
            cost_rows[m] += 1;
          }
    for (std::size_t m = 0; m < names.size(); ++m) mean_cost[m] = cost_rows[m] ? mean_cost[m] / cost_rows[m] : 0;
    std::vector<cx::MultiRow> multi;
    for (const auto& r : data.rows) {
      if (!evaluated(r)) continue;
      cx::MultiRow row;
      thread_local cx::Sparse x;
      cx::extract(r.text, model->spec, x);
      bool complete = true;
      for (std::size_t m = 0; m < names.size() && complete; ++m) {
        auto outcome = r.outcome(names[m]);
        if (!outcome) complete = false;
        else {
          row.outcome.push_back(*outcome);
          row.predicted.push_back(model->heads[m].predict(x));
          double usd = mean_cost[m];
          for (const auto& [name, c] : r.cost_usd)
            if (name == names[m]) usd = c;
          row.cost.push_back(usd);
        }
      }
      if (complete) multi.push_back(std::move(row));
    }
    if (!multi.empty()) {
      cx::CostCurve cc = cx::cost_curve(multi);
      std::printf("\n%zu models on %zu rows with every outcome: quality and mean cost per prompt\n", names.size(),
                  multi.size());
      for (std::size_t m = 0; m < names.size(); ++m)
        std::printf("  %-40s %.3f  $%.6f\n", names[m].c_str(), cc.models[m].quality, cc.models[m].cost);
      std::printf("router frontier (%zu points):", cc.router.size());
      for (std::size_t k = 0; k < cc.router.size(); k += std::max<std::size_t>(1, cc.router.size() / 6))
        std::printf("  %.3f@$%.6f", cc.router[k].quality, cc.router[k].cost);
      std::printf("\narea gain over the cheapest-to-best line: %+.4f (mean quality across that cost range)\n",
                  cc.area_gain);
      if (!o.cost_svg.empty()) {
        std::ofstream(o.cost_svg) << cx::cost_svg(cc, names, "Quality against cost: " + name_of(o.data));
        std::printf("quality-cost curve written to %s\n", o.cost_svg.c_str());
      }
    }
  }
  if (!o.svg.empty()) {
    std::ofstream(o.svg) << cx::pgr_svg(curve, "PGR of " + name_of(o.model) + " on " + name_of(o.data) +
                                                  (holdout ? " (held-out part " + o.holdout + ")" : std::string()));
    std::printf("curve written to %s\n", o.svg.c_str());
  }
  return 0;
}

}  // namespace switchyard::server

namespace switchyard::server {

int router_savings(const std::string& config_path, const std::string& log_path) {
  config::LoadResult loaded = server::load_config_file(config_path);
  if (!loaded.ok()) {
    std::fprintf(stderr, "%s", config::format_problems(loaded.problems).c_str());
    return 1;
  }
  Runtime runtime(std::move(loaded.config), nullptr);
  // The strongest deployment of each route: its strongest complexity tier's first priced
  // candidate, else the priced candidate with the best quality prior for the route's category.
  struct Strongest {
    const DeploymentRuntime* deployment = nullptr;
    double requests = 0, unpriced = 0;
    core::Money actual, strongest;
  };
  std::map<std::string, Strongest> routes;
  for (const auto& route : runtime.routes()) {
    Strongest s;
    const auto& cc = route.config->complexity;
    for (const DeploymentRuntime* d : route.candidates) {
      if (!d->priced()) continue;
      bool in_top_tier = cc && std::find(cc->tiers.back().begin(), cc->tiers.back().end(), d->config->name) !=
                                   cc->tiers.back().end();
      auto quality = [&](const DeploymentRuntime* x) {
        return x->model ? x->model->quality_of(route.config->policy.category) : 0.5f;
      };
      if (cc) {
        if (in_top_tier && !s.deployment) s.deployment = d;
      } else if (!s.deployment || quality(d) > quality(s.deployment)) {
        s.deployment = d;
      }
    }
    routes[route.config->name] = s;
  }
  std::ifstream in(log_path);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", log_path.c_str());
    return 1;
  }
  std::string line;
  std::size_t lines = 0, used = 0;
  while (std::getline(in, line)) {
    ++lines;
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(line, ec);
    if (ec || !v.is_object()) continue;
    const auto& o = v.as_object();
    const auto* type = o.if_contains("type");
    const auto* route = o.if_contains("route");
    const auto* prompt = o.if_contains("prompt_tokens");
    const auto* completion = o.if_contains("completion_tokens");
    if (!type || !type->is_string() || type->as_string() != "access" || !route || !route->is_string() || !prompt ||
        !completion)
      continue;
    auto it = routes.find(std::string(route->as_string()));
    if (it == routes.end()) continue;
    Strongest& s = it->second;
    auto number = [&](const char* key) {
      const auto* x = o.if_contains(key);
      return x && x->is_number() ? x->to_number<double>() : 0.0;
    };
    auto tokens = [&](const char* key) { return static_cast<std::int64_t>(number(key)); };
    const auto* cost = o.if_contains("cost_usd");
    ++used;
    s.requests += 1;
    if (!cost || !cost->is_number()) {
      s.unpriced += 1;
      continue;
    }
    // The log's costs have at most nine decimals: exact in nano-dollars.
    s.actual += core::Money::nanos(std::llround(cost->to_number<double>() * 1e9));
    if (s.deployment) {
      core::TokenUsage u;
      u.known = true;
      u.input = tokens("prompt_tokens");
      u.output = tokens("completion_tokens");
      u.cache_read = tokens("cached_tokens");
      u.cache_creation = tokens("cache_write_tokens");
      u.cache_creation_1h = tokens("cache_write_1h_tokens");
      u.reasoning = tokens("reasoning_tokens");
      const std::int64_t at_s = tokens("ts") / 1000;
      s.strongest += catalog::cost(*s.deployment->pricing, u, at_s).value_or(core::Money{});
    }
  }
  std::printf("%s: %zu lines, %zu requests with usage\n\n", log_path.c_str(), lines, used);
  std::printf("| route | requests | cost USD | all to the strongest | at | saved USD | saved %% |\n");
  std::printf("| --- | ---: | ---: | ---: | --- | ---: | ---: |\n");
  core::Money total_actual, total_strongest;
  for (const auto& [name, s] : routes) {
    if (s.requests == 0) continue;
    total_actual += s.actual;
    total_strongest += s.strongest;
    core::Money saved = s.strongest - s.actual;
    std::printf("| %s | %.0f%s | %s | %s | %s | %s | %.1f%% |\n", name.c_str(), s.requests,
                s.unpriced ? (" (" + std::to_string(static_cast<long>(s.unpriced)) + " unpriced)").c_str() : "",
                s.actual.to_string().c_str(), s.strongest.to_string().c_str(),
                s.deployment ? s.deployment->config->name.c_str() : "-", saved.to_string().c_str(),
                s.strongest.nanos() > 0 ? 100 * saved.usd() / s.strongest.usd() : 0.0);
  }
  core::Money saved = total_strongest - total_actual;
  std::printf("| **all** | | %s | %s | | %s | %.1f%% |\n", total_actual.to_string().c_str(),
              total_strongest.to_string().c_str(), saved.to_string().c_str(),
              total_strongest.nanos() > 0 ? 100 * saved.usd() / total_strongest.usd() : 0.0);
  return 0;
}

}  // namespace switchyard::server
