#include "routing/complexity/metrics.hpp"

#include <algorithm>
#include <cstdio>
#include <numeric>

namespace switchyard::routing::complexity {

namespace {

void append_escaped(std::string& svg, std::string_view text) {
  for (char ch : text) {
    if (ch == '<') svg += "&lt;";
    else if (ch == '&') svg += "&amp;";
    else svg += ch;
  }
}

/// The document head, a white background and the title.
void open_svg(std::string& svg, double width, double height, double left, std::string_view title) {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" font-family=\"sans-serif\" "
                "font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
                "<text x=\"%.0f\" y=\"24\" font-size=\"14\">",
                width, height, left);
  svg += buf;
  append_escaped(svg, title);
  svg += "</text>\n";
}

}  // namespace

PairCurve pair_curve(const std::vector<PairOutcome>& rows) {
  PairCurve c;
  const std::size_t n = rows.size();
  if (n == 0) return c;
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return rows[a].strong_need > rows[b].strong_need; });
  double weak_sum = 0, strong_sum = 0;
  for (const auto& r : rows) {
    weak_sum += r.weak;
    strong_sum += r.strong;
  }
  c.weak_quality = weak_sum / static_cast<double>(n);
  c.strong_quality = strong_sum / static_cast<double>(n);
  const double gap = c.strong_quality - c.weak_quality;
  double sum = weak_sum;  // everything to the weak model
  for (std::size_t k = 0; k <= n; ++k) {
    if (k > 0) {
      const auto& r = rows[order[k - 1]];
      sum += r.strong - r.weak;
    }
    double q = sum / static_cast<double>(n);
    c.share.push_back(static_cast<double>(k) / static_cast<double>(n));
    c.quality.push_back(q);
    c.pgr.push_back(gap != 0 ? (q - c.weak_quality) / gap : 0.0);
  }
  return c;
}

double apgr(const PairCurve& c) {
  double area = 0;
  for (std::size_t k = 1; k < c.share.size(); ++k)
    area += (c.share[k] - c.share[k - 1]) * (c.pgr[k] + c.pgr[k - 1]) / 2;
  return area;
}

double cpt(const PairCurve& c, double target) {
  for (std::size_t k = 0; k < c.share.size(); ++k)
    if (c.pgr[k] >= target) return c.share[k];
  return 1.0;
}

std::string pgr_svg(const PairCurve& c, const std::string& title) {
  constexpr double W = 640, H = 480, L = 60, B = 50, T = 40, R = 20;
  auto x = [&](double s) { return L + s * (W - L - R); };
  auto y = [&](double p) { return H - B - std::clamp(p, -0.2, 1.2) / 1.2 * (H - B - T); };
  std::string svg;
  char buf[512];  // the axis labels and diagonal, written at once, take ~270 bytes
  open_svg(svg, W, H, L, title);
  for (int k = 0; k <= 10; ++k) {  // grid and axis labels
    double v = k / 10.0;
    std::snprintf(buf, sizeof buf,
                  "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>"
                  "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.0f%%</text>\n",
                  x(v), y(0), x(v), y(1), x(v), H - B + 18, v * 100);
    svg += buf;
    std::snprintf(buf, sizeof buf,
                  "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>"
                  "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.1f</text>\n",
                  x(0), y(v), x(1), y(v), L - 6, y(v) + 4, v);
    svg += buf;
  }
  std::snprintf(buf, sizeof buf,
                "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">share of calls to the strong model</text>\n"
                "<text x=\"16\" y=\"%.1f\" transform=\"rotate(-90 16 %.1f)\" text-anchor=\"middle\">PGR</text>\n"
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#999\" stroke-dasharray=\"4 4\"/>\n",
                (L + W - R) / 2, H - 12, (T + H - B) / 2, (T + H - B) / 2, x(0), y(0), x(1), y(1));
  svg += buf;
  svg += "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" points=\"";
  // At most ~600 points: the curve is smooth at that resolution.
  std::size_t step = std::max<std::size_t>(1, c.share.size() / 600);
  for (std::size_t k = 0; k < c.share.size(); k += step) {
    std::snprintf(buf, sizeof buf, "%.1f,%.1f ", x(c.share[k]), y(c.pgr[k]));
    svg += buf;
  }
  if (!c.share.empty()) {
    std::snprintf(buf, sizeof buf, "%.1f,%.1f", x(c.share.back()), y(c.pgr.back()));
    svg += buf;
  }
  svg += "\"/>\n</svg>\n";
  return svg;
}

}  // namespace switchyard::routing::complexity

namespace switchyard::routing::complexity {

CostCurve cost_curve(const std::vector<MultiRow>& rows) {
  CostCurve c;
  if (rows.empty()) return c;
  const std::size_t models = rows.front().outcome.size();
  const double n = static_cast<double>(rows.size());
  for (std::size_t m = 0; m < models; ++m) {
    CostPoint p;
    for (const auto& r : rows) {
      p.cost += r.cost[m] / n;
      p.quality += r.outcome[m] / n;
    }
    c.models.push_back(p);
  }
  // λ from 0 (quality only) up through a log grid to where only cost matters.
  std::vector<double> lambdas = {0};
  for (double l = 1e-3; l <= 1e7; l *= 1.25) lambdas.push_back(l);
  std::vector<CostPoint> points;
  for (double lambda : lambdas) {
    CostPoint p;
    p.lambda = lambda;
    for (const auto& r : rows) {
      std::size_t best = 0;
      double best_value = -1e300;
      for (std::size_t m = 0; m < models; ++m) {
        double v = r.predicted[m] - lambda * r.cost[m];
        if (v > best_value) {
          best_value = v;
          best = m;
        }
      }
      p.cost += r.cost[best] / n;
      p.quality += r.outcome[best] / n;
    }
    points.push_back(p);
  }
  // The frontier: by cost, keeping only points better than every cheaper one.
  std::sort(points.begin(), points.end(), [](const CostPoint& a, const CostPoint& b) {
    return a.cost != b.cost ? a.cost < b.cost : a.quality > b.quality;
  });
  for (const auto& p : points)
    if (c.router.empty() || p.quality > c.router.back().quality) c.router.push_back(p);
  // The line from the cheapest model to the best one.
  const CostPoint* cheap = &c.models[0];
  const CostPoint* best = &c.models[0];
  for (const auto& p : c.models) {
    if (p.cost < cheap->cost) cheap = &p;
    if (p.quality > best->quality) best = &p;
  }
  if (best->cost > cheap->cost) {
    const int steps = 200;
    double sum = 0;
    for (int k = 0; k <= steps; ++k) {
      double budget = cheap->cost + (best->cost - cheap->cost) * k / steps;
      double line = cheap->quality + (best->quality - cheap->quality) * k / steps;
      double router = 0;
      bool any = false;
      for (const auto& p : c.router)
        if (p.cost <= budget + 1e-15) {
          router = p.quality;  // the frontier rises with cost
          any = true;
        }
      if (!any) router = cheap->quality;
      sum += router - line;
    }
    c.area_gain = sum / (steps + 1);
  }
  return c;
}

std::string cost_svg(const CostCurve& c, const std::vector<std::string>& names, const std::string& title) {
  constexpr double W = 720, H = 480, L = 70, B = 50, T = 40, R = 180;
  double cmax = 0, qmin = 1, qmax = 0;
  for (const auto& p : c.models) {
    cmax = std::max(cmax, p.cost);
    qmin = std::min(qmin, p.quality);
    qmax = std::max(qmax, p.quality);
  }
  for (const auto& p : c.router) {
    cmax = std::max(cmax, p.cost);
    qmin = std::min(qmin, p.quality);
    qmax = std::max(qmax, p.quality);
  }
  if (cmax <= 0) cmax = 1;
  if (qmax <= qmin) qmax = qmin + 1;
  auto x = [&](double v) { return L + v / cmax * (W - L - R); };
  auto y = [&](double q) { return H - B - (q - qmin) / (qmax - qmin) * (H - B - T); };
  std::string svg;
  char buf[320];
  open_svg(svg, W, H, L, title);
  for (int k = 0; k <= 5; ++k) {
    double cv = cmax * k / 5, qv = qmin + (qmax - qmin) * k / 5;
    std::snprintf(buf, sizeof buf,
                  "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">$%.5f</text>"
                  "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.3f</text>\n",
                  x(cv), H - B + 18, cv, L - 6, y(qv) + 4, qv);
    svg += buf;
  }
  std::snprintf(buf, sizeof buf,
                "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">mean cost per prompt (USD)</text>\n"
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>\n"
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>\n",
                (L + W - R) / 2, H - 12, L, H - B, W - R, H - B, L, H - B, L, T);
  svg += buf;
  svg += "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" points=\"";
  for (const auto& p : c.router) {
    std::snprintf(buf, sizeof buf, "%.1f,%.1f ", x(p.cost), y(p.quality));
    svg += buf;
  }
  svg += "\"/>\n";
  for (std::size_t m = 0; m < c.models.size(); ++m) {
    std::snprintf(buf, sizeof buf, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"#d62728\"/>\n", x(c.models[m].cost),
                  y(c.models[m].quality));
    svg += buf;
    std::snprintf(buf, sizeof buf, "<text x=\"%.1f\" y=\"%.1f\">", x(c.models[m].cost) + 6, y(c.models[m].quality) + 4);
    svg += buf;
    if (m < names.size()) append_escaped(svg, names[m]);
    svg += "</text>\n";
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace switchyard::routing::complexity
