#include "catalog/catalog.hpp"

#include <charconv>
#include <cstdio>
#include <cstdlib>

#include "catalog/catalog_yaml.hpp"

namespace switchyard::catalog {

extern const char kBuiltinCatalogYaml[];  // generated from data/catalog.yaml

namespace {

constexpr std::array<std::string_view, kCategoryCount> kCategoryNames = {
    "code", "math", "reasoning", "knowledge", "writing", "extraction", "chat"};

constexpr std::array<std::pair<std::string_view, std::uint32_t>, 5> kCapabilities = {{
    {"tools", kTools},
    {"vision", kVision},
    {"json_schema", kJsonSchema},
    {"reasoning", kReasoning},
    {"embeddings", kEmbeddings},
}};

bool check_keys(const YAML::Node& node, const std::string& path,
                std::initializer_list<std::string_view> allowed, Problems& problems) {
  if (!node.IsMap()) {
    problems.emplace_back(path, "must be a mapping");
    return false;
  }
  for (const auto& kv : node) {
    std::string key = kv.first.as<std::string>();
    bool known = false;
    for (auto a : allowed) known = known || key == a;
    if (!known) problems.emplace_back(path + "." + key, "unknown key");
  }
  return true;
}

bool read_number(const YAML::Node& node, const std::string& path, double& out, double min,
                 double max, Problems& problems) {
  if (!node) return false;
  if (!node.IsScalar()) {
    problems.emplace_back(path, "must be a number");
    return false;
  }
  const std::string& text = node.Scalar();
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size()) {
    problems.emplace_back(path, "must be a number, got \"" + text + "\"");
    return false;
  }
  if (v < min || v > max) {
    problems.emplace_back(path, "must be between " + std::to_string(min) + " and " + std::to_string(max));
    return false;
  }
  out = v;
  return true;
}

void read_strings(const YAML::Node& node, const std::string& path, std::vector<std::string>& out,
                  Problems& problems) {
  if (!node) return;
  if (!node.IsSequence()) {
    problems.emplace_back(path, "must be a list");
    return;
  }
  out.clear();
  for (std::size_t i = 0; i < node.size(); ++i) {
    if (!node[i].IsScalar()) problems.emplace_back(path + "[" + std::to_string(i) + "]", "must be a string");
    else out.push_back(node[i].Scalar());
  }
}

}  // namespace

std::string_view to_string(Category c) { return kCategoryNames[static_cast<int>(c)]; }

std::optional<Category> parse_category(std::string_view name) {
  for (std::size_t i = 0; i < kCategoryNames.size(); ++i)
    if (kCategoryNames[i] == name) return static_cast<Category>(i);
  return std::nullopt;
}

std::optional<std::uint32_t> parse_capability(std::string_view name) {
  for (auto [n, bit] : kCapabilities)
    if (n == name) return bit;
  return std::nullopt;
}

std::string capability_names(std::uint32_t mask) {
  std::string out;
  for (auto [n, bit] : kCapabilities) {
    if (!(mask & bit)) continue;
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

double cost_usd(const Prices& p, std::int64_t input, std::int64_t cached, std::int64_t output,
                std::int64_t reasoning) {
  cached = std::min(std::max<std::int64_t>(cached, 0), input);
  reasoning = std::min(std::max<std::int64_t>(reasoning, 0), output);
  double micro = static_cast<double>(input - cached) * p.input + static_cast<double>(cached) * p.cached() +
                 static_cast<double>(output - reasoning) * p.output +
                 static_cast<double>(reasoning) * p.reasoning_price();
  return micro / 1e6;
}

void Catalog::add(ModelInfo model) {
  auto it = index_.find(model.id);
  if (it != index_.end() && models_[it->second].id == model.id) models_[it->second] = std::move(model);
  else models_.push_back(std::move(model));
  reindex();
}

void Catalog::reindex() {
  index_.clear();
  // Aliases first, so that an id always wins over another entry's alias.
  for (std::size_t i = 0; i < models_.size(); ++i)
    for (const auto& a : models_[i].aliases) index_[a] = i;
  for (std::size_t i = 0; i < models_.size(); ++i) index_[models_[i].id] = i;
}

const ModelInfo* Catalog::find(std::string_view id) const {
  auto it = index_.find(std::string(id));
  return it == index_.end() ? nullptr : &models_[it->second];
}

void read_model(const YAML::Node& node, const std::string& path, ModelInfo& m, Problems& problems) {
  if (!check_keys(node, path,
                  {"id", "vendor", "hosts", "aliases", "price", "context_window", "max_output",
                   "capabilities", "latency", "quality"},
                  problems))
    return;
  if (node["id"]) m.id = node["id"].Scalar();
  if (node["vendor"]) m.vendor = node["vendor"].Scalar();
  read_strings(node["hosts"], path + ".hosts", m.hosts, problems);
  read_strings(node["aliases"], path + ".aliases", m.aliases, problems);
  if (const auto& p = node["price"]) {
    if (check_keys(p, path + ".price", {"input", "output", "cached_input", "reasoning"}, problems)) {
      read_number(p["input"], path + ".price.input", m.price.input, 0, 1e4, problems);
      read_number(p["output"], path + ".price.output", m.price.output, 0, 1e4, problems);
      read_number(p["cached_input"], path + ".price.cached_input", m.price.cached_input, 0, 1e4, problems);
      read_number(p["reasoning"], path + ".price.reasoning", m.price.reasoning, 0, 1e4, problems);
      m.priced = true;
    }
  }
  double v = 0;
  if (read_number(node["context_window"], path + ".context_window", v, 0, 1e9, problems))
    m.context_window = static_cast<std::int64_t>(v);
  if (read_number(node["max_output"], path + ".max_output", v, 0, 1e9, problems))
    m.max_output = static_cast<std::int64_t>(v);
  if (node["capabilities"]) {
    std::vector<std::string> names;
    read_strings(node["capabilities"], path + ".capabilities", names, problems);
    m.capabilities = 0;
    for (std::size_t i = 0; i < names.size(); ++i) {
      auto bit = parse_capability(names[i]);
      if (!bit)
        problems.emplace_back(path + ".capabilities[" + std::to_string(i) + "]",
                              "unknown capability \"" + names[i] +
                                  "\" (tools, vision, json_schema, reasoning, embeddings)");
      else m.capabilities |= *bit;
    }
  }
  if (const auto& l = node["latency"]) {
    if (check_keys(l, path + ".latency", {"ttft_ms", "tokens_per_s"}, problems)) {
      read_number(l["ttft_ms"], path + ".latency.ttft_ms", m.latency.ttft_ms, 0, 1e7, problems);
      read_number(l["tokens_per_s"], path + ".latency.tokens_per_s", m.latency.tokens_per_s, 0.001, 1e6, problems);
    }
  }
  if (const auto& q = node["quality"]) {
    if (check_keys(q, path + ".quality",
                   {"code", "math", "reasoning", "knowledge", "writing", "extraction", "chat"}, problems)) {
      // A partial override keeps the other categories; a new entry starts them at 0.5.
      if (!m.has_quality) m.quality.fill(0.5f);
      for (std::size_t i = 0; i < kCategoryCount; ++i) {
        double x = 0;
        std::string name(kCategoryNames[i]);
        if (read_number(q[name], path + ".quality." + name, x, 0, 1, problems))
          m.quality[i] = static_cast<float>(x);
      }
      m.has_quality = true;
    }
  }
}

Catalog parse_catalog(std::string_view yaml_text, Problems& problems) {
  Catalog c;
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml_text));
    if (!check_keys(root, "(catalog)", {"source", "date", "notes", "models"}, problems)) return c;
    if (root["source"]) c.source = root["source"].Scalar();
    if (root["date"]) c.date = root["date"].Scalar();
    const auto& models = root["models"];
    if (!models || !models.IsSequence()) {
      problems.emplace_back("models", "must be a list");
      return c;
    }
    for (std::size_t i = 0; i < models.size(); ++i) {
      ModelInfo m;
      std::string path = "models[" + std::to_string(i) + "]";
      read_model(models[i], path, m, problems);
      if (m.id.empty()) problems.emplace_back(path + ".id", "is required");
      else if (c.find(m.id) && c.find(m.id)->id == m.id) problems.emplace_back(path + ".id", "duplicate id \"" + m.id + "\"");
      else c.add(std::move(m));
    }
  } catch (const YAML::Exception& e) {
    problems.emplace_back("(catalog)", e.what());
  }
  return c;
}

const Catalog& builtin() {
  static const Catalog catalog = [] {
    Problems problems;
    Catalog c = parse_catalog(kBuiltinCatalogYaml, problems);
    if (!problems.empty()) {
      for (const auto& [path, message] : problems)
        std::fprintf(stderr, "built-in catalogue: %s: %s\n", path.c_str(), message.c_str());
      std::abort();
    }
    return c;
  }();
  return catalog;
}

}  // namespace switchyard::catalog
