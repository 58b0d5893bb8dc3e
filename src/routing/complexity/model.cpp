#include "routing/complexity/model.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>

namespace switchyard::routing::complexity {

namespace {

constexpr char kMagic[8] = {'S', 'W', 'Y', 'D', 'R', 'T', 'R', '\n'};

double sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }

std::uint32_t crc32(std::string_view data) {
  std::uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char c : data) {
    crc ^= c;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

void put_u32(std::string& out, std::uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); }
void put_str(std::string& out, const std::string& s) {
  put_u32(out, static_cast<std::uint32_t>(s.size()));
  out += s;
}

/// Reads from a byte string with bounds checks.
struct Reader {
  std::string_view data;
  std::size_t pos = 0;
  bool ok = true;
  std::uint32_t u32() {
    if (pos + 4 > data.size()) {
      ok = false;
      return 0;
    }
    std::uint32_t v;
    std::memcpy(&v, data.data() + pos, 4);
    pos += 4;
    return v;
  }
  std::string str() {
    std::uint32_t n = u32();
    if (!ok || pos + n > data.size()) {
      ok = false;
      return {};
    }
    std::string s(data.substr(pos, n));
    pos += n;
    return s;
  }
};

}  // namespace

double Head::predict(const Sparse& x) const {
  double z = bias;
  for (const auto& [i, v] : x)
    if (i < weights.size()) z += static_cast<double>(weights[i]) * v;
  return sigmoid(z);
}

const Head* Model::head(std::string_view model) const {
  for (const auto& h : heads)
    if (h.model == model) return &h;
  return nullptr;
}

std::optional<double> Model::quality(std::string_view model, const Sparse& x) const {
  const Head* h = head(model);
  if (!h) return std::nullopt;
  return h->predict(x);
}

double Model::strong_gain(const Sparse& x) const {
  const Head* s = head(strong);
  const Head* w = head(weak);
  return s && w ? s->predict(x) - w->predict(x) : 0.0;
}

double Model::threshold_for_share(double share) const {
  if (calibration.size() != 101) return 0;
  double q = std::clamp(1.0 - share, 0.0, 1.0) * 100.0;
  auto lo = static_cast<std::size_t>(q);
  if (lo >= 100) return calibration[100];
  double t = q - static_cast<double>(lo);
  return calibration[lo] * (1 - t) + calibration[lo + 1] * t;
}

double Model::share_above(double score) const {
  if (calibration.size() != 101) return 0.5;
  auto it = std::upper_bound(calibration.begin(), calibration.end(), static_cast<float>(score));
  return 1.0 - static_cast<double>(it - calibration.begin()) / 101.0;
}

double Model::strong_gain(std::string_view text) const {
  thread_local Sparse x;
  extract(text, spec, x);
  return strong_gain(x);
}

bool save(const Model& m, const std::string& path, std::string& error) {
  std::string body;
  body.append(kMagic, sizeof kMagic);
  put_u32(body, Model::kVersion);
  put_u32(body, m.spec.hash_bits);
  put_u32(body, (m.spec.words ? 1u : 0u) | (m.spec.bigrams ? 2u : 0u) | (m.spec.char_grams ? 4u : 0u));
  put_str(body, m.strong);
  put_str(body, m.weak);
  put_str(body, m.trained_on);
  put_u32(body, static_cast<std::uint32_t>(m.heads.size()));
  for (const Head& h : m.heads) {
    put_str(body, h.model);
    std::uint32_t bias_bits;
    std::memcpy(&bias_bits, &h.bias, 4);
    put_u32(body, bias_bits);
    put_u32(body, static_cast<std::uint32_t>(h.weights.size()));
    body.append(reinterpret_cast<const char*>(h.weights.data()), h.weights.size() * sizeof(float));
  }
  put_u32(body, static_cast<std::uint32_t>(m.calibration.size()));
  body.append(reinterpret_cast<const char*>(m.calibration.data()), m.calibration.size() * sizeof(float));
  put_u32(body, crc32(body));
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out.write(body.data(), static_cast<std::streamsize>(body.size()))) {
    error = "cannot write " + path;
    return false;
  }
  return true;
}

std::optional<Model> load(const std::string& path, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = "cannot read " + path;
    return std::nullopt;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return parse(ss.str(), path, error);
}

std::uint32_t checksum(std::string_view bytes) { return crc32(bytes); }

std::optional<Model> parse(std::string_view data, const std::string& path, std::string& error) {
  if (data.size() < sizeof kMagic + 8 || std::memcmp(data.data(), kMagic, sizeof kMagic) != 0) {
    error = path + " is not a Switchyard router model";
    return std::nullopt;
  }
  std::uint32_t stored_crc;
  std::memcpy(&stored_crc, data.data() + data.size() - 4, 4);
  if (crc32(data.substr(0, data.size() - 4)) != stored_crc) {
    error = path + " is corrupt (checksum mismatch)";
    return std::nullopt;
  }
  Reader r{data.substr(0, data.size() - 4), sizeof kMagic};
  std::uint32_t version = r.u32();
  if (version != Model::kVersion) {
    error = path + " is a version " + std::to_string(version) + " model; this build reads version " +
            std::to_string(Model::kVersion);
    return std::nullopt;
  }
  Model m;
  m.spec.hash_bits = r.u32();
  std::uint32_t kinds = r.u32();
  m.spec.words = kinds & 1u;
  m.spec.bigrams = kinds & 2u;
  m.spec.char_grams = kinds & 4u;
  m.strong = r.str();
  m.weak = r.str();
  m.trained_on = r.str();
  std::uint32_t heads = r.u32();
  if (!r.ok || m.spec.hash_bits < 8 || m.spec.hash_bits > 24 || heads > 1024) {
    error = path + " is corrupt (inconsistent sizes)";
    return std::nullopt;
  }
  for (std::uint32_t k = 0; k < heads; ++k) {
    Head h;
    h.model = r.str();
    std::uint32_t bias_bits = r.u32();
    std::memcpy(&h.bias, &bias_bits, 4);
    std::uint32_t n = r.u32();
    if (!r.ok || n != dimensions(m.spec) || r.pos + static_cast<std::size_t>(n) * 4 > r.data.size()) {
      error = path + " is corrupt (inconsistent sizes)";
      return std::nullopt;
    }
    h.weights.resize(n);
    std::memcpy(h.weights.data(), r.data.data() + r.pos, static_cast<std::size_t>(n) * 4);
    r.pos += static_cast<std::size_t>(n) * 4;
    m.heads.push_back(std::move(h));
  }
  std::uint32_t quantiles = r.u32();
  if (!r.ok || (quantiles != 0 && quantiles != 101) || r.pos + quantiles * 4u > r.data.size()) {
    error = path + " is corrupt (inconsistent sizes)";
    return std::nullopt;
  }
  m.calibration.resize(quantiles);
  // Not with 0: memcpy's pointers must not be null even for no bytes (an empty vector's data()
  // is; found by the model fuzzer).
  if (quantiles != 0) std::memcpy(m.calibration.data(), r.data.data() + r.pos, quantiles * 4u);
  r.pos += quantiles * 4u;
  if (r.pos != r.data.size()) {
    error = path + " is corrupt (trailing bytes)";
    return std::nullopt;
  }
  return m;
}

namespace {

/// One run of AdaGrad SGD into `weights`/`bias`; `step` counts for the progress callback.
void train_run(std::vector<float>& weights, float& bias, const std::vector<Example>& examples, const TrainOptions& o,
               std::uint64_t seed, const std::function<void()>& tick) {
  std::vector<float> g2(weights.size(), 0.0f);  // AdaGrad accumulators
  double g2_bias = 0;
  std::vector<std::size_t> order(examples.size());
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(seed);
  auto predict = [&](const Sparse& x) {
    double z = bias;
    for (const auto& [i, v] : x) z += static_cast<double>(weights[i]) * v;
    return 1.0 / (1.0 + std::exp(-z));
  };
  for (int epoch = 0; epoch < o.epochs; ++epoch) {
    std::shuffle(order.begin(), order.end(), rng);
    for (std::size_t idx : order) {
      const Example& e = examples[idx];
      double g = (predict(*e.x) - e.y) * e.weight;
      for (const auto& [i, v] : *e.x) {
        double gi = g * v + o.l2 * weights[i];
        g2[i] += static_cast<float>(gi * gi);
        weights[i] -= static_cast<float>(o.learning_rate * gi / (std::sqrt(g2[i]) + 1e-8));
      }
      g2_bias += g * g;
      bias -= static_cast<float>(o.learning_rate * g / (std::sqrt(g2_bias) + 1e-8));
      tick();
    }
  }
}

}  // namespace

void train(Head& head, std::uint32_t dims, const std::vector<Example>& examples, const TrainOptions& o,
           const std::function<void(std::size_t, std::size_t)>& progress) {
  const int runs = std::max(1, o.ensemble);
  head.weights.assign(dims, 0.0f);
  head.bias = 0;
  const std::size_t steps = static_cast<std::size_t>(runs) * static_cast<std::size_t>(o.epochs) * examples.size();
  std::size_t step = 0;
  auto tick = [&] {
    if (progress && ++step % 2048 == 0) progress(step, steps);
  };
  std::vector<float> weights(dims);
  for (int run = 0; run < runs; ++run) {
    std::fill(weights.begin(), weights.end(), 0.0f);
    float bias = 0;
    train_run(weights, bias, examples, o, o.seed + static_cast<std::uint64_t>(run), tick);
    for (std::uint32_t i = 0; i < dims; ++i) head.weights[i] += weights[i] / static_cast<float>(runs);
    head.bias += bias / static_cast<float>(runs);
  }
  if (progress) progress(steps, steps);
}

void calibrate(Model& m, const std::vector<const Sparse*>& sample) {
  std::vector<float> scores;
  scores.reserve(sample.size());
  for (const Sparse* x : sample) scores.push_back(static_cast<float>(m.strong_gain(*x)));
  m.calibration.clear();
  if (scores.empty()) return;
  std::sort(scores.begin(), scores.end());
  for (int q = 0; q <= 100; ++q)
    m.calibration.push_back(scores[std::min(scores.size() - 1, scores.size() * static_cast<std::size_t>(q) / 100)]);
}

}  // namespace switchyard::routing::complexity
