#include "apps/driver/metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

namespace ember::driver {

double roc_auc(const std::vector<int>& positive, const std::vector<double>& score) {
  if (positive.size() != score.size()) throw std::invalid_argument("roc_auc: labels and scores differ in length");
  const size_t n = score.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return score[a] < score[b]; });
  // Average ranks (1-based) over runs of tied scores.
  std::vector<double> rank(n);
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j + 1 < n && score[order[j + 1]] == score[order[i]]) ++j;
    double avg = (double(i) + double(j)) / 2.0 + 1.0;
    for (size_t k = i; k <= j; ++k) rank[order[k]] = avg;
    i = j + 1;
  }
  double n_pos = 0, rank_sum = 0;
  for (size_t i = 0; i < n; ++i)
    if (positive[i]) {
      n_pos += 1;
      rank_sum += rank[i];
    }
  const double n_neg = double(n) - n_pos;
  if (n_pos == 0 || n_neg == 0) return -1;
  return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg);
}

ClassificationMetrics classification_metrics(const std::vector<int64_t>& y_true, const std::vector<int64_t>& y_pred,
                                             const std::vector<std::vector<double>>& probs, int64_t C) {
  if (y_true.size() != y_pred.size())
    throw std::invalid_argument("classification_metrics: " + std::to_string(y_true.size()) + " labels but " +
                                std::to_string(y_pred.size()) + " predictions");
  ClassificationMetrics m;
  m.n = int64_t(y_true.size());
  m.num_classes = C;
  m.confusion.assign(size_t(C), std::vector<int64_t>(size_t(C), 0));
  int64_t correct = 0;
  for (size_t i = 0; i < y_true.size(); ++i) {
    if (y_true[i] < 0 || y_true[i] >= C || y_pred[i] < 0 || y_pred[i] >= C)
      throw std::invalid_argument("classification_metrics: row " + std::to_string(i) + " has a label outside [0, " +
                                  std::to_string(C) + ")");
    m.confusion[size_t(y_true[i])][size_t(y_pred[i])]++;
    correct += y_true[i] == y_pred[i];
  }
  m.accuracy = m.n ? double(correct) / double(m.n) : 0;
  int64_t present = 0;
  for (int64_t c = 0; c < C; ++c) {
    int64_t tp = m.confusion[c][c], fn = 0, fp = 0;
    for (int64_t k = 0; k < C; ++k)
      if (k != c) {
        fn += m.confusion[c][k];
        fp += m.confusion[k][c];
      }
    double p = tp + fp ? double(tp) / double(tp + fp) : 0, r = tp + fn ? double(tp) / double(tp + fn) : 0;
    m.precision.push_back(p);
    m.recall.push_back(r);
    m.f1.push_back(p + r > 0 ? 2 * p * r / (p + r) : 0);
    m.support.push_back(tp + fn);
    if (tp + fn > 0) {  // balanced accuracy and macro scores average over the classes present
      ++present;
      m.balanced_accuracy += r;
      m.macro_precision += p;
      m.macro_recall += r;
      m.macro_f1 += m.f1.back();
    }
  }
  if (present) {
    m.balanced_accuracy /= double(present);
    m.macro_precision /= double(present);
    m.macro_recall /= double(present);
    m.macro_f1 /= double(present);
  }
  if (!probs.empty()) {
    std::vector<double> aucs;
    for (int64_t c = (C == 2 ? 1 : 0); c < C; ++c) {
      std::vector<int> pos(y_true.size());
      std::vector<double> score(y_true.size());
      for (size_t i = 0; i < y_true.size(); ++i) {
        pos[i] = y_true[i] == c;
        score[i] = probs[i][size_t(c)];
      }
      double a = roc_auc(pos, score);
      if (a >= 0) aucs.push_back(a);
    }
    if (!aucs.empty()) m.roc_auc = std::accumulate(aucs.begin(), aucs.end(), 0.0) / double(aucs.size());
  }
  return m;
}

RegressionMetrics regression_metrics(const std::vector<double>& y, const std::vector<double>& p) {
  if (y.size() != p.size()) throw std::invalid_argument("regression_metrics: targets and predictions differ in length");
  RegressionMetrics m;
  m.n = int64_t(y.size());
  if (y.empty()) return m;
  double mean = std::accumulate(y.begin(), y.end(), 0.0) / double(y.size());
  double abs_sum = 0, sq_sum = 0, tot = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    abs_sum += std::abs(y[i] - p[i]);
    sq_sum += (y[i] - p[i]) * (y[i] - p[i]);
    tot += (y[i] - mean) * (y[i] - mean);
  }
  m.mae = abs_sum / double(y.size());
  m.rmse = std::sqrt(sq_sum / double(y.size()));
  m.r2 = tot > 0 ? 1.0 - sq_sum / tot : 0.0;
  return m;
}

nlohmann::json to_json(const ClassificationMetrics& m, const std::vector<std::string>& names) {
  nlohmann::json j = {{"n", m.n},
                      {"accuracy", m.accuracy},
                      {"balanced_accuracy", m.balanced_accuracy},
                      {"macro_precision", m.macro_precision},
                      {"macro_recall", m.macro_recall},
                      {"macro_f1", m.macro_f1},
                      {"confusion", m.confusion}};
  if (m.roc_auc >= 0) j["roc_auc"] = m.roc_auc;
  nlohmann::json per = nlohmann::json::array();
  for (int64_t c = 0; c < m.num_classes; ++c)
    per.push_back({{"class", c < int64_t(names.size()) ? names[c] : std::to_string(c)},
                   {"precision", m.precision[c]},
                   {"recall", m.recall[c]},
                   {"f1", m.f1[c]},
                   {"support", m.support[c]}});
  j["per_class"] = per;
  return j;
}

nlohmann::json to_json(const RegressionMetrics& m) {
  return {{"n", m.n}, {"mae", m.mae}, {"rmse", m.rmse}, {"r2", m.r2}};
}

std::string age_band(double age) {
  if (!std::isfinite(age)) return "unknown";
  int band = std::clamp(int(age) / 10, 0, 7);
  return band == 7 ? "70+" : std::to_string(band * 10) + "-" + std::to_string(band * 10 + 9);
}

std::map<std::string, std::vector<int64_t>> group_rows(const std::vector<std::string>& labels) {
  std::map<std::string, std::vector<int64_t>> g;
  for (size_t i = 0; i < labels.size(); ++i) g[labels[i]].push_back(int64_t(i));
  return g;
}

}  // namespace ember::driver
