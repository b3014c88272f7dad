// Minimal inline-SVG charts for the self-contained HTML report (no scripts, no network).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ember::driver::svg {

struct Series {
  std::string name;
  std::vector<double> values;
};

// Lines over x = 1..n (epochs). Non-finite values are skipped.
std::string line_chart(const std::string& title, const std::string& x_label, const std::vector<Series>& series,
                       int width = 420, int height = 260);
// Grouped bars: one group per category, one bar per series.
std::string bar_chart(const std::string& title, const std::vector<std::string>& categories,
                      const std::vector<Series>& series, int width = 520, int height = 280);
// Confusion matrix as a heat map with counts; rows are true classes.
std::string confusion_matrix(const std::string& title, const std::vector<std::string>& classes,
                             const std::vector<std::vector<int64_t>>& counts, int cell = 46);

std::string escape(const std::string& text);  // XML/HTML escaping

}  // namespace ember::driver::svg
