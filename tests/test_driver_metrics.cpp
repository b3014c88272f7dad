// Metrics of the experiment driver against independent brute-force computations.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "apps/driver/metrics.h"

using namespace ember::driver;

namespace {
// AUC as the probability that a random positive outranks a random negative (ties count half):
// an O(n^2) definition, independent of the rank formula under test.
double auc_pairs(const std::vector<int>& pos, const std::vector<double>& s) {
  double wins = 0, pairs = 0;
  for (size_t i = 0; i < s.size(); ++i)
    for (size_t j = 0; j < s.size(); ++j)
      if (pos[i] && !pos[j]) {
        pairs += 1;
        wins += s[i] > s[j] ? 1 : s[i] == s[j] ? 0.5 : 0;
      }
  return wins / pairs;
}
}  // namespace

TEST(DriverMetrics, RocAucMatchesPairCountingWithTies) {
  std::mt19937 rng(3);
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<int> pos(57);
    std::vector<double> s(57);
    for (size_t i = 0; i < pos.size(); ++i) {
      pos[i] = rng() % 3 == 0;
      s[i] = double(rng() % 10) / 10.0;  // many ties
    }
    pos[0] = 1;
    pos[1] = 0;
    EXPECT_NEAR(roc_auc(pos, s), auc_pairs(pos, s), 1e-12);
  }
  EXPECT_EQ(roc_auc({1, 1}, {0.2, 0.3}), -1);  // one class only: undefined
}

TEST(DriverMetrics, ClassificationCountsMatchBruteForce) {
  std::mt19937 rng(5);
  const int C = 4;
  std::vector<int64_t> y(200), p(200);
  for (size_t i = 0; i < y.size(); ++i) {
    y[i] = rng() % C;
    p[i] = rng() % 3 == 0 ? y[i] : int64_t(rng() % C);
  }
  auto m = classification_metrics(y, p, {}, C);
  int64_t correct = 0;
  for (size_t i = 0; i < y.size(); ++i) correct += y[i] == p[i];
  EXPECT_DOUBLE_EQ(m.accuracy, double(correct) / 200.0);
  double bal = 0;
  for (int c = 0; c < C; ++c) {
    int64_t tp = 0, fp = 0, fn = 0;
    for (size_t i = 0; i < y.size(); ++i) {
      tp += y[i] == c && p[i] == c;
      fp += y[i] != c && p[i] == c;
      fn += y[i] == c && p[i] != c;
    }
    EXPECT_EQ(m.confusion[c][c], tp);
    EXPECT_DOUBLE_EQ(m.precision[c], double(tp) / double(tp + fp));
    EXPECT_DOUBLE_EQ(m.recall[c], double(tp) / double(tp + fn));
    bal += double(tp) / double(tp + fn);
  }
  EXPECT_DOUBLE_EQ(m.balanced_accuracy, bal / C);
  EXPECT_EQ(m.roc_auc, -1);
}

TEST(DriverMetrics, RegressionMetrics) {
  std::vector<double> y = {1, 2, 3, 4}, p = {1.5, 2, 2, 5};
  auto m = regression_metrics(y, p);
  EXPECT_DOUBLE_EQ(m.mae, (0.5 + 0 + 1 + 1) / 4);
  EXPECT_DOUBLE_EQ(m.rmse, std::sqrt((0.25 + 0 + 1 + 1) / 4));
  EXPECT_DOUBLE_EQ(m.r2, 1 - 2.25 / 5.0);
}

TEST(DriverMetrics, AgeBandsAndBadLabels) {
  EXPECT_EQ(age_band(0), "0-9");
  EXPECT_EQ(age_band(29.9), "20-29");
  EXPECT_EQ(age_band(85), "70+");
  EXPECT_EQ(age_band(NAN), "unknown");
  EXPECT_THROW(classification_metrics({0, 3}, {0, 1}, {}, 2), std::invalid_argument);
}
