#include "apps/driver/svg.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace ember::driver::svg {
namespace {

const char* kPalette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"};
const char* color(size_t i) { return kPalette[i % 8]; }

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, std::abs(v) >= 100 ? "%.0f" : std::abs(v) >= 1 ? "%.2f" : "%.3f", v);
  return buf;
}

// The smallest 1, 2, 2.5 or 5 times a power of ten at or above v, so bar axes end on a round number
// (metrics in [0, 1] get a 0..1 axis instead of one that ends at the tallest bar).
double nice_ceiling(double v) {
  if (!(v > 0) || !std::isfinite(v)) return 1;
  const double p = std::pow(10.0, std::floor(std::log10(v)));
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (m * p >= v * (1 - 1e-9)) return m * p;
  return 10 * p;
}

void legend(std::ostringstream& os, const std::vector<Series>& series, int x, int y) {
  for (size_t i = 0; i < series.size(); ++i) {
    int yy = y + int(i) * 14;
    os << "<rect x='" << x << "' y='" << yy - 8 << "' width='10' height='10' fill='" << color(i) << "'/>"
       << "<text x='" << x + 14 << "' y='" << yy + 1 << "' font-size='10'>" << escape(series[i].name) << "</text>";
  }
}

}  // namespace

std::string escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '&': o += "&amp;"; break;
      case '\'': o += "&#39;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string line_chart(const std::string& title, const std::string& x_label, const std::vector<Series>& series,
                       int width, int height) {
  const int left = 48, right = 110, top = 24, bottom = 32;
  const int pw = width - left - right, ph = height - top - bottom;
  double lo = INFINITY, hi = -INFINITY;
  size_t n = 0;
  for (auto& s : series) {
    n = std::max(n, s.values.size());
    for (double v : s.values)
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  }
  if (!std::isfinite(lo)) lo = 0, hi = 1;
  if (hi - lo < 1e-12) hi = lo + 1;
  auto X = [&](size_t i) { return left + (n > 1 ? double(i) / double(n - 1) : 0.5) * pw; };
  auto Y = [&](double v) { return top + (1 - (v - lo) / (hi - lo)) * ph; };
  std::ostringstream os;
  os << "<svg class='chart line-chart' xmlns='http://www.w3.org/2000/svg' width='" << width << "' height='" << height
     << "' viewBox='0 0 " << width << ' ' << height << "'>"
     << "<text x='" << width / 2 << "' y='14' text-anchor='middle' font-size='12' font-weight='bold'>" << escape(title)
     << "</text><rect x='" << left << "' y='" << top << "' width='" << pw << "' height='" << ph
     << "' fill='none' stroke='#999'/>";
  for (int t = 0; t <= 4; ++t) {
    double v = lo + (hi - lo) * t / 4.0;
    os << "<text x='" << left - 4 << "' y='" << Y(v) + 3 << "' text-anchor='end' font-size='9'>" << fmt(v) << "</text>";
  }
  os << "<text x='" << left + pw / 2 << "' y='" << height - 6 << "' text-anchor='middle' font-size='10'>"
     << escape(x_label) << " (1.." << n << ")</text>";
  for (size_t s = 0; s < series.size(); ++s) {
    std::ostringstream pts;
    for (size_t i = 0; i < series[s].values.size(); ++i)
      if (std::isfinite(series[s].values[i])) pts << X(i) << ',' << Y(series[s].values[i]) << ' ';
    os << "<polyline fill='none' stroke-width='2' stroke='" << color(s) << "' points='" << pts.str() << "'/>";
  }
  legend(os, series, left + pw + 8, top + 10);
  os << "</svg>";
  return os.str();
}

std::string bar_chart(const std::string& title, const std::vector<std::string>& cats, const std::vector<Series>& series,
                      int width, int height) {
  const int left = 48, right = 110, top = 24;
  const int pw = width - left - right;
  const double group_w = cats.empty() ? pw : double(pw) / double(cats.size());
  // Category labels that do not fit under their group (many subgroups, long names such as
  // "lower extremity (n=69)") are drawn slanted, and the chart grows downwards to hold them.
  size_t longest = 0;
  for (auto& c : cats) longest = std::max(longest, c.size());
  const double char_w = 5.0;  // about the width of one 9 px sans-serif character
  const bool slanted = double(longest) * char_w > group_w * 0.95;
  const int label_h = slanted ? int(double(longest) * char_w * 0.62) + 10 : 0;
  const int bottom = 48 + label_h;
  height += label_h;
  const int ph = height - top - bottom;
  double hi = 0;
  for (auto& s : series)
    for (double v : s.values)
      if (std::isfinite(v)) hi = std::max(hi, v);
  hi = nice_ceiling(hi);
  const double bar_w = group_w * 0.8 / double(std::max<size_t>(series.size(), 1));
  std::ostringstream os;
  os << "<svg class='chart bar-chart' xmlns='http://www.w3.org/2000/svg' width='" << width << "' height='" << height
     << "' viewBox='0 0 " << width << ' ' << height << "'>"
     << "<text x='" << width / 2 << "' y='14' text-anchor='middle' font-size='12' font-weight='bold'>" << escape(title)
     << "</text><line x1='" << left << "' y1='" << top + ph << "' x2='" << left + pw << "' y2='" << top + ph
     << "' stroke='#999'/>";
  for (int t = 0; t <= 4; ++t)
    os << "<text x='" << left - 4 << "' y='" << top + ph - ph * t / 4 + 3 << "' text-anchor='end' font-size='9'>"
       << fmt(hi * t / 4) << "</text>";
  for (size_t c = 0; c < cats.size(); ++c) {
    double gx = left + group_w * double(c) + group_w * 0.1;
    for (size_t s = 0; s < series.size(); ++s) {
      double v = c < series[s].values.size() ? series[s].values[c] : NAN;
      if (!std::isfinite(v)) continue;
      double h = std::max(0.0, v) / hi * ph;
      os << "<rect class='bar' x='" << gx + bar_w * double(s) << "' y='" << top + ph - h << "' width='" << bar_w
         << "' height='" << h << "' fill='" << color(s) << "'><title>" << escape(series[s].name) << " " << escape(cats[c])
         << ": " << fmt(v) << "</title></rect>";
    }
    const double lx = left + group_w * (double(c) + 0.5), ly = top + ph + 14;
    if (slanted)
      os << "<text x='" << lx << "' y='" << ly - 4 << "' text-anchor='end' font-size='9' transform='rotate(-45 " << lx
         << ' ' << ly - 4 << ")'>" << escape(cats[c]) << "</text>";
    else
      os << "<text x='" << lx << "' y='" << ly << "' text-anchor='middle' font-size='9'>" << escape(cats[c]) << "</text>";
  }
  legend(os, series, left + pw + 8, top + 10);
  os << "</svg>";
  return os.str();
}

std::string confusion_matrix(const std::string& title, const std::vector<std::string>& classes,
                             const std::vector<std::vector<int64_t>>& counts, int cell) {
  const size_t C = counts.size();
  const int left = 90, top = 40;
  const int width = left + int(C) * cell + 20, height = top + int(C) * cell + 40;
  int64_t hi = 1;
  for (auto& row : counts)
    for (auto v : row) hi = std::max(hi, v);
  std::ostringstream os;
  os << "<svg class='chart confusion' xmlns='http://www.w3.org/2000/svg' width='" << width << "' height='" << height
     << "' viewBox='0 0 " << width << ' ' << height << "'>"
     << "<text x='" << width / 2 << "' y='14' text-anchor='middle' font-size='12' font-weight='bold'>" << escape(title)
     << "</text><text x='" << left + int(C) * cell / 2 << "' y='30' text-anchor='middle' font-size='10'>predicted</text>";
  for (size_t r = 0; r < C; ++r) {
    std::string name = r < classes.size() ? classes[r] : std::to_string(r);
    os << "<text x='" << left - 4 << "' y='" << top + int(r) * cell + cell / 2 + 3
       << "' text-anchor='end' font-size='10'>" << escape(name) << "</text>";
    os << "<text x='" << left + int(r) * cell + cell / 2 << "' y='" << top + int(C) * cell + 14
       << "' text-anchor='middle' font-size='10'>" << escape(name) << "</text>";
    for (size_t c = 0; c < C; ++c) {
      double t = double(counts[r][c]) / double(hi);
      int shade = int(255 - 180 * t);
      os << "<rect class='cell' x='" << left + int(c) * cell << "' y='" << top + int(r) * cell << "' width='" << cell
         << "' height='" << cell << "' fill='rgb(" << shade << ',' << shade << ",255)' stroke='#fff'/>"
         << "<text x='" << left + int(c) * cell + cell / 2 << "' y='" << top + int(r) * cell + cell / 2 + 4
         << "' text-anchor='middle' font-size='11'>" << counts[r][c] << "</text>";
    }
  }
  os << "</svg>";
  return os.str();
}

}  // namespace ember::driver::svg
