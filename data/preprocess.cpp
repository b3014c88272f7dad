#include "data/preprocess.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>

#include "engine/error.h"

namespace ember::data {

int64_t TabularPreprocessor::Categorical::index_of(const std::string& v) const {
  auto it = std::lower_bound(levels.begin(), levels.end(), v);
  return (it != levels.end() && *it == v && !v.empty()) ? int64_t(it - levels.begin()) : int64_t(levels.size());
}

void TabularPreprocessor::fit(const Dataset& ds, const std::vector<int64_t>& train_rows, const PreprocessOptions& o) {
  EMBER_CHECK(!train_rows.empty() || (ds.numeric.empty() && ds.categorical.empty()),
              "TabularPreprocessor::fit: no train rows for ", ds.table_path());
  options_ = o;
  numeric_.clear();
  categorical_.clear();
  for (size_t f = 0; f < ds.numeric.size(); ++f) {
    Numeric col;
    col.name = ds.config.numeric_features[f];
    std::vector<double> present;
    for (int64_t r : train_rows) {
      const double v = ds.numeric[f][r];
      if (std::isnan(v)) ++col.missing_in_train;
      else present.push_back(v);
    }
    if (!present.empty()) {
      std::sort(present.begin(), present.end());
      const size_t m = present.size() / 2;
      col.median = present.size() % 2 ? present[m] : 0.5 * (present[m - 1] + present[m]);
    }
    // Mean/std of the imputed column, the values the model will actually see.
    double sum = 0, sq = 0;
    const double n = double(train_rows.size());
    for (int64_t r : train_rows) {
      const double v = std::isnan(ds.numeric[f][r]) ? col.median : ds.numeric[f][r];
      sum += v;
      sq += v * v;
    }
    col.mean = sum / n;
    const double var = std::max(0.0, sq / n - col.mean * col.mean);
    col.std = var > 1e-24 ? std::sqrt(var) : 1.0;  // a constant column stays centred, not divided by 0
    col.indicator = o.always_missing_indicator || col.missing_in_train > 0;
    numeric_.push_back(col);
  }
  for (size_t f = 0; f < ds.categorical.size(); ++f) {
    Categorical col;
    col.name = ds.config.categorical_features[f];
    std::map<std::string, int64_t> counts;
    for (int64_t r : train_rows) {
      const std::string& v = ds.categorical[f][r];
      if (v.empty()) ++col.missing_in_train;
      else ++counts[v];
    }
    for (auto& [level, count] : counts) {
      col.levels.push_back(level);
      col.counts.push_back(count);
    }
    categorical_.push_back(col);
  }
  build_names();
  fitted_ = true;
}

void TabularPreprocessor::build_names() {
  names_.clear();
  for (const auto& c : numeric_) {
    names_.push_back(c.name);
    if (c.indicator) names_.push_back(c.name + "_missing");
  }
  for (const auto& c : categorical_) {
    if (!options_.one_hot) {
      names_.push_back(c.name + "_index");
      continue;
    }
    for (const auto& l : c.levels) names_.push_back(c.name + "=" + l);
    names_.push_back(c.name + "=<unknown>");
  }
}

void TabularPreprocessor::transform(const Dataset& ds, const std::vector<int64_t>& rows, float* out) const {
  EMBER_CHECK(fitted_, "TabularPreprocessor::transform before fit");
  EMBER_CHECK(ds.numeric.size() == numeric_.size() && ds.categorical.size() == categorical_.size(),
              "TabularPreprocessor: dataset ", ds.table_path(), " has ", ds.numeric.size(), " numeric and ",
              ds.categorical.size(), " categorical columns, the preprocessor was fitted on ", numeric_.size(), " and ",
              categorical_.size());
  const int64_t width = num_features();
  for (size_t i = 0; i < rows.size(); ++i) {
    float* o = out + int64_t(i) * width;
    const int64_t r = rows[i];
    EMBER_CHECK(r >= 0 && r < ds.size(), "TabularPreprocessor::transform: row ", r, " out of range");
    for (size_t f = 0; f < numeric_.size(); ++f) {
      const Numeric& c = numeric_[f];
      const double raw = ds.numeric[f][r];
      const bool missing = std::isnan(raw);
      double v = missing ? c.median : raw;
      if (options_.standardize) v = (v - c.mean) / c.std;
      *o++ = float(v);
      if (c.indicator) *o++ = missing ? 1.0f : 0.0f;
    }
    for (size_t f = 0; f < categorical_.size(); ++f) {
      const Categorical& c = categorical_[f];
      const int64_t idx = c.index_of(ds.categorical[f][r]);
      if (!options_.one_hot) {
        *o++ = float(idx);
        continue;
      }
      const int64_t k = int64_t(c.levels.size()) + 1;
      for (int64_t j = 0; j < k; ++j) o[j] = j == idx ? 1.0f : 0.0f;
      o += k;
    }
  }
}

Tensor TabularPreprocessor::transform(const Dataset& ds, const std::vector<int64_t>& rows) const {
  Tensor t = Tensor::empty({int64_t(rows.size()), num_features()});
  if (t.numel() > 0) transform(ds, rows, t.data<float>());
  return t;
}

std::string TabularPreprocessor::report() const {
  std::ostringstream os;
  os << "tabular features: " << num_features() << " columns after encoding\n";
  for (const auto& c : numeric_)
    os << "  " << c.name << ": numeric, missing in train " << c.missing_in_train << ", median " << c.median
       << ", mean " << c.mean << ", std " << c.std << (c.indicator ? ", +missing indicator" : "") << "\n";
  for (const auto& c : categorical_) {
    os << "  " << c.name << ": categorical, missing in train " << c.missing_in_train << ", " << c.levels.size()
       << " levels + unknown:";
    for (size_t i = 0; i < c.levels.size(); ++i) os << " " << c.levels[i] << "(" << c.counts[i] << ")";
    os << "\n";
  }
  return os.str();
}

nlohmann::json TabularPreprocessor::to_json() const {
  nlohmann::json j;
  j["one_hot"] = options_.one_hot;
  j["standardize"] = options_.standardize;
  j["always_missing_indicator"] = options_.always_missing_indicator;
  for (const auto& c : numeric_)
    j["numeric"].push_back({{"name", c.name}, {"median", c.median}, {"mean", c.mean}, {"std", c.std},
                            {"missing_in_train", c.missing_in_train}, {"indicator", c.indicator}});
  for (const auto& c : categorical_)
    j["categorical"].push_back(
        {{"name", c.name}, {"levels", c.levels}, {"counts", c.counts}, {"missing_in_train", c.missing_in_train}});
  return j;
}

TabularPreprocessor TabularPreprocessor::from_json(const nlohmann::json& j) {
  TabularPreprocessor p;
  p.options_.one_hot = j.value("one_hot", true);
  p.options_.standardize = j.value("standardize", true);
  p.options_.always_missing_indicator = j.value("always_missing_indicator", false);
  for (const auto& c : j.value("numeric", nlohmann::json::array()))
    p.numeric_.push_back({c.at("name"), c.at("median"), c.at("mean"), c.at("std"), c.at("missing_in_train"),
                          c.at("indicator")});
  for (const auto& c : j.value("categorical", nlohmann::json::array())) {
    Categorical col{c.at("name"), c.at("levels"), c.at("counts"), c.at("missing_in_train")};
    EMBER_CHECK(std::is_sorted(col.levels.begin(), col.levels.end()), "preprocessor JSON: levels of '", col.name,
                "' must be sorted");
    p.categorical_.push_back(col);
  }
  p.build_names();
  p.fitted_ = true;
  return p;
}

}  // namespace ember::data
