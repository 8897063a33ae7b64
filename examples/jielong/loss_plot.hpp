// The loss curve of a training run as an SVG picture: training loss per step
// and validation loss at each evaluation, against the step, with labelled
// axes. People would rather look at a curve than read a CSV.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

namespace jielong::cli {

struct LossRow {
  size_t step;
  double loss, val_loss;  // val_loss NaN where no evaluation ran
  double lr, tokens_per_s;
};

inline std::string loss_curve_svg(const std::vector<LossRow>& rows, const std::string& title) {
  const double W = 800, H = 480, left = 70, right = 20, top = 40, bottom = 50;
  double max_step = 1, lo = HUGE_VAL, hi = -HUGE_VAL;
  for (const LossRow& r : rows) {
    max_step = std::max(max_step, static_cast<double>(r.step));
    for (double v : {r.loss, r.val_loss})
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  }
  if (!(hi >= lo)) lo = 0, hi = 1;
  if (hi - lo < 1e-6) hi = lo + 1;
  lo = std::max(0.0, lo - 0.05 * (hi - lo));
  auto x = [&](double step) { return left + (W - left - right) * step / max_step; };
  auto y = [&](double v) { return top + (H - top - bottom) * (hi - v) / (hi - lo); };
  std::string s;
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
                "font-family=\"sans-serif\" font-size=\"12\">\n",
                W, H, W, H);
  s += buf;
  s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  std::string escaped;
  for (char c : title) escaped += c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;" : std::string(1, c);
  std::snprintf(buf, sizeof buf, "<text x=\"%.0f\" y=\"24\" font-size=\"14\">", left);
  s += buf + escaped + "</text>\n";
  // Axes and five ticks on each.
  std::snprintf(buf, sizeof buf, "<path d=\"M%.1f %.1f V%.1f H%.1f\" stroke=\"black\" fill=\"none\"/>\n", left, top,
                H - bottom, W - right);
  s += buf;
  for (int i = 0; i <= 4; ++i) {
    const double v = lo + (hi - lo) * i / 4, step = max_step * i / 4;
    std::snprintf(buf, sizeof buf, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.2f</text>\n", left - 6, y(v) + 4, v);
    s += buf;
    std::snprintf(buf, sizeof buf, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.0f</text>\n", x(step),
                  H - bottom + 18, step);
    s += buf;
  }
  std::snprintf(buf, sizeof buf, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">step</text>\n",
                (left + W - right) / 2, H - 8);
  s += buf;
  std::snprintf(buf, sizeof buf,
                "<text transform=\"translate(16 %.1f) rotate(-90)\" text-anchor=\"middle\">loss (nats/token)</text>\n",
                (top + H - bottom) / 2);
  s += buf;
  auto polyline = [&](bool validation, const char* colour, const char* name, double legend_y) {
    std::string points;
    for (const LossRow& r : rows) {
      const double v = validation ? r.val_loss : r.loss;
      if (!std::isfinite(v)) continue;
      std::snprintf(buf, sizeof buf, "%s%.1f,%.1f", points.empty() ? "" : " ", x(static_cast<double>(r.step)), y(v));
      points += buf;
    }
    s += std::string("<polyline class=\"") + name + "\" fill=\"none\" stroke=\"" + colour +
         "\" stroke-width=\"1.5\" points=\"" + points + "\"/>\n";
    std::snprintf(buf, sizeof buf,
                  "<text x=\"%.1f\" y=\"%.1f\" fill=\"%s\" text-anchor=\"end\">%s</text>\n", W - right - 4, legend_y,
                  colour, validation ? "validation" : "train");
    s += buf;
  };
  polyline(false, "#1f77b4", "train", top + 14);
  polyline(true, "#d62728", "validation", top + 30);
  s += "</svg>\n";
  return s;
}

}  // namespace jielong::cli
