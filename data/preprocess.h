// Tabular preprocessing, fitted on the TRAIN rows only and then applied unchanged to val/test:
//  - numeric: missing -> train median, plus a 0/1 missing-indicator column (for every column that
//    had missing values in train, or for all with always_missing_indicator); then (x - mean) / std
//    with the train mean/std of the imputed values;
//  - categorical: vocabulary from train (sorted) plus an "unknown" bucket that takes levels never
//    seen in train and missing values; one-hot (default) or a single index column.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "engine/tensor.h"

namespace ember::data {

struct PreprocessOptions {
  bool one_hot = true;  // false: one float column holding the level index (unknown = #levels)
  bool standardize = true;
  bool always_missing_indicator = false;
};

class TabularPreprocessor {
 public:
  void fit(const Dataset& ds, const std::vector<int64_t>& train_rows, const PreprocessOptions& options = {});
  bool fitted() const { return fitted_; }
  int64_t num_features() const { return int64_t(names_.size()); }
  const std::vector<std::string>& feature_names() const { return names_; }

  // Writes rows.size() x num_features() floats, row-major.
  void transform(const Dataset& ds, const std::vector<int64_t>& rows, float* out) const;
  Tensor transform(const Dataset& ds, const std::vector<int64_t>& rows) const;  // float32 [rows, features]
  // Per-column summary: type, missing count in train, mean/std or levels.
  std::string report() const;

  nlohmann::json to_json() const;  // saved next to a model so inference applies the same mapping
  static TabularPreprocessor from_json(const nlohmann::json& j);

  struct Numeric {
    std::string name;
    double median = 0, mean = 0, std = 1;
    int64_t missing_in_train = 0;
    bool indicator = false;
  };
  struct Categorical {
    std::string name;
    std::vector<std::string> levels;  // sorted; unknown bucket is index levels.size()
    std::vector<int64_t> counts;      // train count per level
    int64_t missing_in_train = 0;
    int64_t index_of(const std::string& v) const;  // levels.size() when unknown or missing
  };
  const std::vector<Numeric>& numeric() const { return numeric_; }
  const std::vector<Categorical>& categorical() const { return categorical_; }

 private:
  void build_names();
  PreprocessOptions options_;
  std::vector<Numeric> numeric_;
  std::vector<Categorical> categorical_;
  std::vector<std::string> names_;
  bool fitted_ = false;
};

}  // namespace ember::data
