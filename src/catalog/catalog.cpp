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

bool read_rate(const YAML::Node& node, const std::string& path, core::Rate& out, Problems& problems) {
  if (!node) return false;
  auto rate = node.IsScalar() ? core::parse_rate(node.Scalar()) : std::nullopt;
  if (!rate) {
    problems.emplace_back(path, "must be a price in USD per 1M tokens (a decimal such as 0.0375, at most six "
                                "decimals), got \"" + (node.IsScalar() ? node.Scalar() : std::string("(not a scalar)")) + "\"");
    return false;
  }
  out = *rate;
  return true;
}

bool read_prices(const YAML::Node& node, const std::string& path, Prices& p, Problems& problems) {
  bool input = read_rate(node["input"], path + ".input", p.input, problems);
  bool output = read_rate(node["output"], path + ".output", p.output, problems);
  read_rate(node["cached_input"], path + ".cached_input", p.cache_read, problems);
  read_rate(node["cache_write_5m"], path + ".cache_write_5m", p.cache_write_5m, problems);
  read_rate(node["cache_write_1h"], path + ".cache_write_1h", p.cache_write_1h, problems);
  read_rate(node["reasoning"], path + ".reasoning", p.reasoning, problems);
  return input && output;
}

/// "YYYY-MM-DD" as seconds since the epoch at 00:00 UTC.
std::optional<std::int64_t> parse_date(const std::string& text) {
  int y = 0, m = 0, d = 0;
  if (text.size() != 10 || std::sscanf(text.c_str(), "%4d-%2d-%2d", &y, &m, &d) != 3 || m < 1 || m > 12 ||
      d < 1 || d > 31)
    return std::nullopt;
  // Days from civil (Howard Hinnant's algorithm).
  y -= m <= 2;
  const int era = (y >= 0 ? y : y - 399) / 400;
  const int yoe = y - era * 400;
  const int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return (static_cast<std::int64_t>(era) * 146097 + doe - 719468) * 86400;
}

std::optional<std::uint16_t> parse_clock(const std::string& text) {
  int h = 0, m = 0;
  if (text.size() != 5 || std::sscanf(text.c_str(), "%2d:%2d", &h, &m) != 2 || h < 0 || h > 24 || m < 0 ||
      m > 59 || (h == 24 && m != 0))
    return std::nullopt;
  return static_cast<std::uint16_t>(h * 60 + m);
}

}  // namespace

bool read_price_version(const YAML::Node& node, const std::string& path, PriceVersion& v, bool anthropic_writes,
                        Problems& problems) {
  if (!check_keys(node, path,
                  {"input", "output", "cached_input", "cache_write_5m", "cache_write_1h", "reasoning", "since",
                   "long_context", "off_peak"},
                  problems))
    return false;
  bool ok = read_prices(node, path, v.base, problems);
  if (!node["input"] || !node["output"]) {
    problems.emplace_back(path, "needs both input and output (USD per 1M tokens)");
    ok = false;
  }
  if (const auto& since = node["since"]) {
    auto t = since.IsScalar() ? parse_date(since.Scalar()) : std::nullopt;
    if (!t) problems.emplace_back(path + ".since", "must be a date, YYYY-MM-DD");
    else v.since_unix_s = *t;
  }
  if (const auto& lc = node["long_context"]) {
    if (check_keys(lc, path + ".long_context",
                   {"above_input_tokens", "input", "output", "cached_input", "cache_write_5m", "cache_write_1h",
                    "reasoning"},
                   problems)) {
      double above = 0;
      if (!read_number(lc["above_input_tokens"], path + ".long_context.above_input_tokens", above, 1, 1e9, problems))
        problems.emplace_back(path + ".long_context.above_input_tokens", "is required (a number of input tokens)");
      v.long_context_above = static_cast<std::int64_t>(above);
      if (!read_prices(lc, path + ".long_context", v.long_context, problems))
        problems.emplace_back(path + ".long_context", "needs both input and output (USD per 1M tokens)");
    }
  }
  if (const auto& windows = node["off_peak"]) {
    if (!windows.IsSequence()) problems.emplace_back(path + ".off_peak", "must be a list");
    for (std::size_t i = 0; windows.IsSequence() && i < windows.size(); ++i) {
      std::string wp = path + ".off_peak[" + std::to_string(i) + "]";
      if (!check_keys(windows[i], wp, {"from", "to", "percent_off"}, problems)) continue;
      OffPeak w;
      auto from = windows[i]["from"] ? parse_clock(windows[i]["from"].Scalar()) : std::nullopt;
      auto to = windows[i]["to"] ? parse_clock(windows[i]["to"].Scalar()) : std::nullopt;
      double off = -1;
      read_number(windows[i]["percent_off"], wp + ".percent_off", off, 1, 100, problems);
      if (!from) problems.emplace_back(wp + ".from", "must be a time of day in UTC, HH:MM");
      if (!to) problems.emplace_back(wp + ".to", "must be a time of day in UTC, HH:MM");
      if (!from || !to || off < 1) continue;
      w.from_minute = *from;
      w.to_minute = static_cast<std::uint16_t>(*to % 1440);
      w.percent_off = static_cast<std::uint8_t>(off);
      v.off_peak.push_back(w);
    }
  }
  if (anthropic_writes) {
    // Anthropic bills cache writes at 1.25x the input price (5-minute lifetime) and 2x (1 hour).
    for (Prices* p : {&v.base, &v.long_context}) {
      if (p->cache_write_5m < 0) p->cache_write_5m = p->input * 5 / 4;
      if (p->cache_write_1h < 0) p->cache_write_1h = p->input * 2;
    }
  }
  return ok;
}

namespace {


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
                   "capabilities", "latency", "quality", "earlier_prices"},
                  problems))
    return;
  if (node["id"]) m.id = node["id"].Scalar();
  if (node["vendor"]) m.vendor = node["vendor"].Scalar();
  read_strings(node["hosts"], path + ".hosts", m.hosts, problems);
  read_strings(node["aliases"], path + ".aliases", m.aliases, problems);
  // `price` is the version in force; `earlier_prices` the ones before it (each with its `since`),
  // so requests are billed at the prices of their day. An override replaces the whole list.
  if (node["price"] || node["earlier_prices"]) {
    const bool anthropic = m.vendor == "anthropic";
    Pricing pricing;
    if (const auto& earlier = node["earlier_prices"]) {
      if (!earlier.IsSequence()) problems.emplace_back(path + ".earlier_prices", "must be a list");
      for (std::size_t i = 0; earlier.IsSequence() && i < earlier.size(); ++i) {
        PriceVersion v;
        std::string vp = path + ".earlier_prices[" + std::to_string(i) + "]";
        if (!read_price_version(earlier[i], vp, v, anthropic, problems)) continue;
        if (!earlier[i]["since"]) problems.emplace_back(vp + ".since", "is required (YYYY-MM-DD)");
        pricing.versions.push_back(std::move(v));
      }
    }
    PriceVersion current;
    if (!node["price"]) problems.emplace_back(path + ".price", "is required with earlier_prices");
    else if (read_price_version(node["price"], path + ".price", current, anthropic, problems))
      pricing.versions.push_back(std::move(current));
    for (std::size_t i = 1; i < pricing.versions.size(); ++i)
      if (pricing.versions[i].since_unix_s <= pricing.versions[i - 1].since_unix_s)
        problems.emplace_back(path + ".price.since", "price versions must be in date order, oldest first");
    m.pricing = std::move(pricing);
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
