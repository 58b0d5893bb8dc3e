// Routing decision cost: health snapshots + plan, per request, with 10 and 200 deployments;
// p50/p99 over many decisions (Google Benchmark reports means only). Also the cost of writing
// the decision record as JSON, which the gateway does once per request.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "catalog/catalog.hpp"
#include "health/registry.hpp"
#include "routing/decision.hpp"
#include "routing/planner.hpp"
#include "core/token_estimate.hpp"
#include "routing/complexity/model.hpp"

using namespace switchyard;

namespace {

struct Setup {
  routing::RouteRules config;
  routing::RouteTable table;
  std::vector<std::string> names;
  health::Registry registry;
  std::vector<health::DeploymentHealth*> health;
};

void build(Setup& s, std::size_t deployments, routing::Objective objective, routing::Strategy strategy) {
  const auto& models = catalog::builtin().models();
  std::vector<const catalog::ModelInfo*> chat;
  for (const auto& m : models)
    if (!(m.capabilities & catalog::kEmbeddings)) chat.push_back(&m);
  s.config.policy.objective = objective;
  s.config.strategy = strategy;
  s.names.reserve(deployments);
  for (std::size_t i = 0; i < deployments; ++i) s.names.push_back("deployment-" + std::to_string(i));
  std::vector<std::string_view> ids;
  for (std::size_t i = 0; i < deployments; ++i) {
    const catalog::ModelInfo* m = chat[i % chat.size()];
    routing::Candidate c;
    c.deployment = s.names[i];
    c.provider = "provider";
    c.provider_type = "openai";
    c.region = i % 2 ? "eu" : "us";
    c.model = m;
    c.model_id = m->id;
    c.price = m->pricing.current();
    c.priced = true;
    auto it = std::find(ids.begin(), ids.end(), c.model_id);
    c.group = static_cast<std::uint16_t>(it - ids.begin());
    if (it == ids.end()) ids.push_back(c.model_id);
    s.table.candidates.push_back(c);
    health::DeploymentHealth& h = s.registry.get(s.names[i]);
    // Live statistics on most deployments, a few open circuits.
    if (i % 5) h.observe_latency(200.0 + static_cast<double>(i % 37) * 10, 40.0 + static_cast<double>(i % 13) * 5);
    if (i % 17 == 3)
      for (int k = 0; k < 3; ++k) h.record(health::Outcome::server_error, health::steady_now_ms());
    s.health.push_back(&h);
  }
  s.table.groups = static_cast<std::uint16_t>(ids.size());
  s.table.name = "bench";
  s.table.rules = &s.config;
  routing::prepare_route(s.table);
}

struct Figures {
  double p50, p99, mean;
};

Figures percentiles(std::vector<double>& ns) {
  std::sort(ns.begin(), ns.end());
  double sum = 0;
  for (double x : ns) sum += x;
  return {ns[ns.size() / 2] / 1000.0, ns[ns.size() * 99 / 100] / 1000.0, sum / static_cast<double>(ns.size()) / 1000.0};
}

void run(std::size_t deployments, routing::Objective objective, routing::Strategy strategy, int iterations) {
  Setup s;
  build(s, deployments, objective, strategy);
  routing::RequestTraits traits{1200, 0, catalog::kTools};
  routing::Overrides overrides;
  std::vector<health::Snapshot> snapshots(deployments);
  routing::Plan plan;
  std::vector<double> decide_ns, record_ns;
  decide_ns.reserve(iterations);
  record_ns.reserve(iterations);
  std::uint64_t seed = 1;
  std::size_t sink = 0;
  double snap_ns = 0;
  for (int i = 0; i < iterations; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    std::int64_t now = health::steady_now_ms();
    for (std::size_t k = 0; k < deployments; ++k) snapshots[k] = s.health[k]->read(now);
    auto ta = std::chrono::steady_clock::now();
    snap_ns += std::chrono::duration<double, std::nano>(ta - t0).count();
    routing::PlanContext ctx{now, ++seed, 0.02};
    routing::make_plan(s.table, traits, overrides, snapshots, ctx, plan);
    auto t1 = std::chrono::steady_clock::now();
    if (std::getenv("NO_RECORD")) {
      decide_ns.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count());
      record_ns.push_back(0);
      continue;
    }
    // What the gateway does per request: the record moves into the ring; JSON is written
    // only when someone asks for it (measured here as the lookup cost).
    routing::Decision d;
    d.request_id = "req_bench";
    d.route = "bench";
    d.traits = traits;
    d.table = &s.table;
    d.plan = plan;
    std::string json = routing::decision_json(d, now);
    auto t2 = std::chrono::steady_clock::now();
    sink += plan.order.size() + json.size();
    decide_ns.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count());
    record_ns.push_back(std::chrono::duration<double, std::nano>(t2 - t1).count());
  }
  Figures d = percentiles(decide_ns), r = percentiles(record_ns);
  std::printf("| %3zu | %-8s | %-16s | %6.2f | %6.2f | %6.2f | %7.2f | %7.2f |\n", deployments,
              std::string(routing::to_string(objective)).c_str(), std::string(routing::to_string(strategy)).c_str(),
              d.p50, d.p99, d.mean, r.p50, r.p99);
  if (sink == 42) std::puts("");
  if (std::getenv("NO_RECORD")) std::printf("    (health snapshots: %.2f µs mean)\n", snap_ns / iterations / 1000);
}

}  // namespace

/// The complexity classifier's decision on a ~2,000-token conversation: features + two heads.
void classifier(int iterations) {
  namespace cx = routing::complexity;
  cx::Model m;
  m.strong = "strong";
  m.weak = "weak";
  std::uint64_t x = 1;
  for (const char* name : {"strong", "weak"}) {
    cx::Head h;
    h.model = name;
    h.weights.resize(cx::dimensions(m.spec));
    for (auto& w : h.weights) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      w = static_cast<float>(static_cast<std::int64_t>(x >> 33) % 2000 - 1000) / 1000.0f;
    }
    m.heads.push_back(std::move(h));
  }
  std::string text;
  const char* turns[] = {
      "Can you explain how the gradient of a loss function with respect to the weights is computed in "
      "back-propagation, step by step, for a two-layer network with a ReLU activation? ",
      "Sure. Start from the output: the derivative of the loss with respect to the logits is (p - y) for "
      "softmax with cross-entropy; multiply by the activations of the hidden layer to get dL/dW2. ",
      "Now write that in NumPy, with shapes annotated, and check it numerically: ```python\nimport numpy "
      "as np\nW1 = np.random.randn(64, 32)\n``` and tell me why the check can fail for ReLU at 0. ",
  };
  for (int i = 0; core::estimate_text_tokens(text) < 2000; ++i) text += turns[i % 3];
  std::vector<double> ns;
  ns.reserve(iterations);
  double sink = 0;
  for (int i = 0; i < iterations; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    sink += m.strong_gain(text);
    auto t1 = std::chrono::steady_clock::now();
    ns.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count());
  }
  Figures f = percentiles(ns);
  std::printf("\nComplexity classifier on a %zu-character, ~%zu-token conversation (features + 2 heads): "
              "p50 %.1f µs, p99 %.1f µs, mean %.1f µs%s\n",
              text.size(), core::estimate_text_tokens(text), f.p50, f.p99, f.mean, sink == 1e300 ? " " : "");
}

int main(int argc, char** argv) {
  int iterations = argc > 1 ? std::atoi(argv[1]) : 100000;
  std::printf("Routing decision (health snapshots + plan) per request, and writing one decision record as JSON (on lookup only), µs, %d runs\n\n",
              iterations);
  std::printf("| deployments | objective | strategy | decide p50 | decide p99 | decide mean | record JSON p50 | record JSON p99 |\n");
  std::printf("| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |\n");
  for (std::size_t n : {10, 200}) {
    run(n, routing::Objective::ordered, routing::Strategy::priority, iterations);
    run(n, routing::Objective::cost, routing::Strategy::lowest_cost, iterations);
    run(n, routing::Objective::latency, routing::Strategy::least_latency, iterations);
    run(n, routing::Objective::balanced, routing::Strategy::weighted, iterations);
    if (std::getenv("MORE")) {
      run(n, routing::Objective::balanced, routing::Strategy::priority, iterations);
      run(n, routing::Objective::cost, routing::Strategy::weighted, iterations);
    }
  }
  classifier(std::max(1000, iterations / 10));
  return 0;
}
