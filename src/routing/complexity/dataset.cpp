#include "routing/complexity/dataset.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <charconv>
#include <fstream>

namespace switchyard::routing::complexity {

namespace json = boost::json;

std::optional<double> Row::outcome(std::string_view model) const {
  for (const auto& [name, value] : outcomes)
    if (name == model) return value;
  return std::nullopt;
}

bool read_rows(const std::string& path, std::vector<Row>& rows, std::string& error) {
  std::ifstream in(path);
  if (!in) {
    error = "cannot read " + path;
    return false;
  }
  std::string line;
  std::size_t number = 0;
  auto fail = [&](const std::string& why) {
    error = path + ": line " + std::to_string(number) + ": " + why;
    return false;
  };
  while (std::getline(in, line)) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    boost::system::error_code ec;
    json::value v = json::parse(line, ec);
    if (ec || !v.is_object()) return fail("not a JSON object");
    const json::object& o = v.as_object();
    if (const auto* c = o.if_contains("contaminated"); c && c->is_bool() && c->as_bool()) continue;
    Row r;
    auto str = [&](const char* key) -> std::string {
      const auto* x = o.if_contains(key);
      return x && x->is_string() ? std::string(x->as_string()) : std::string();
    };
    r.id = str("id");
    r.benchmark = str("benchmark");
    r.category = str("category");
    r.strong_model = str("strong_model");
    r.weak_model = str("weak_model");
    if (const auto* p = o.if_contains("prompt"); p && p->is_string()) {
      r.text = std::string(p->as_string());
    } else if (const auto* m = o.if_contains("messages"); m && m->is_array()) {
      for (const auto& msg : m->as_array()) {
        if (!msg.is_object()) continue;
        const auto* content = msg.as_object().if_contains("content");
        if (content && content->is_string()) {
          if (!r.text.empty()) r.text += '\n';
          r.text += content->as_string();
        } else if (content && content->is_array()) {
          for (const auto& part : content->as_array())
            if (part.is_object())
              if (const auto* t = part.as_object().if_contains("text"); t && t->is_string()) {
                if (!r.text.empty()) r.text += '\n';
                r.text += t->as_string();
              }
        }
      }
    } else if (const auto* f = o.if_contains("features"); f && f->is_array()) {
      const auto* bits = o.if_contains("hash_bits");
      if (!bits || !bits->is_int64()) return fail("\"features\" needs \"hash_bits\"");
      r.hash_bits = static_cast<std::uint32_t>(bits->as_int64());
      if (const auto* w = o.if_contains("words")) {
        if (!w->is_bool()) return fail("\"words\" must be true or false");
        r.words = w->as_bool();
      }
      r.features.emplace();
      for (const auto& pair : f->as_array()) {
        if (!pair.is_array() || pair.as_array().size() != 2 || !pair.as_array()[0].is_int64() ||
            !pair.as_array()[1].is_number())
          return fail("\"features\" must be [[index, value], ...]");
        r.features->emplace_back(static_cast<std::uint32_t>(pair.as_array()[0].as_int64()),
                                 pair.as_array()[1].to_number<float>());
      }
    } else {
      return fail("needs \"prompt\" (a string), \"messages\" (an array) or \"features\" (feedback rows)");
    }
    const auto* outcomes = o.if_contains("outcomes");
    if (!outcomes || !outcomes->is_object()) return fail("needs \"outcomes\": {model: score}");
    for (const auto& [model, score] : outcomes->as_object()) {
      if (score.is_null()) r.outcomes.emplace_back(model, std::nullopt);
      else if (score.is_number()) r.outcomes.emplace_back(model, score.to_number<double>());
      else return fail("outcome of " + std::string(model) + " is not a number or null");
    }
    if (const auto* costs = o.if_contains("cost_usd"); costs && costs->is_object())
      for (const auto& [model, usd] : costs->as_object())
        if (usd.is_number()) r.cost_usd.emplace_back(model, usd.to_number<double>());
    rows.push_back(std::move(r));
  }
  return true;
}

bool in_part(std::string_view category, unsigned k, unsigned n) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : category) h = (h ^ c) * 1099511628211ull;
  return n > 0 && h % n == k;
}

std::optional<std::pair<unsigned, unsigned>> parse_part(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  unsigned k = 0, n = 0;
  auto [p1, e1] = std::from_chars(text.data(), text.data() + slash, k);
  auto [p2, e2] = std::from_chars(text.data() + slash + 1, text.data() + text.size(), n);
  if (e1 != std::errc{} || e2 != std::errc{} || p1 != text.data() + slash ||
      p2 != text.data() + text.size() || n == 0 || k >= n)
    return std::nullopt;
  return std::make_pair(k, n);
}

}  // namespace switchyard::routing::complexity
