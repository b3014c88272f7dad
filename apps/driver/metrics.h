// Evaluation metrics for the experiment driver: classification (accuracy, balanced accuracy,
// per-class precision/recall/F1, ROC AUC, confusion matrix) and regression (MAE, RMSE, R^2),
// plus breakdowns by subgroup (class, age band, sex, race, ...).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ember::driver {

struct ClassificationMetrics {
  int64_t n = 0, num_classes = 0;
  double accuracy = 0, balanced_accuracy = 0;
  double macro_precision = 0, macro_recall = 0, macro_f1 = 0;
  double roc_auc = -1;  // binary: AUC of P(class 1); multiclass: macro one-vs-rest; -1 when undefined
  std::vector<double> precision, recall, f1;
  std::vector<int64_t> support;
  std::vector<std::vector<int64_t>> confusion;  // [true][predicted]
};

struct RegressionMetrics {
  int64_t n = 0;
  double mae = 0, rmse = 0, r2 = 0;
};

// probs: n rows of num_classes probabilities (may be empty: AUC is then -1).
ClassificationMetrics classification_metrics(const std::vector<int64_t>& y_true, const std::vector<int64_t>& y_pred,
                                             const std::vector<std::vector<double>>& probs, int64_t num_classes);
RegressionMetrics regression_metrics(const std::vector<double>& y_true, const std::vector<double>& y_pred);

// Area under the ROC curve by the rank statistic (Mann-Whitney U), ties counted half.
// Returns -1 when only one class is present.
double roc_auc(const std::vector<int>& positive, const std::vector<double>& score);

nlohmann::json to_json(const ClassificationMetrics& m, const std::vector<std::string>& class_names = {});
nlohmann::json to_json(const RegressionMetrics& m);

// Age bands used for every breakdown: 0-9, 10-19, ..., 70+ (labels like "20-29").
std::string age_band(double age);

// Groups row indices by a label per row ("female", "20-29", ...), keeping first-seen order sorted.
std::map<std::string, std::vector<int64_t>> group_rows(const std::vector<std::string>& labels);

}  // namespace ember::driver
