// Tabular preprocessing is fitted on train rows only: medians, means, stds and vocabularies come
// from train; values never seen in train go to the unknown bucket. Expected numbers are computed
// by hand in the test, not taken from the code under test.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "data/preprocess.h"

using namespace ember::data;
using ::testing::HasSubstr;

namespace {
const double NaN = std::nan("");

// Rows 0..3 are train, rows 4..5 test.
Dataset make_dataset() {
  Dataset ds;
  ds.config.numeric_features = {"x"};
  ds.config.categorical_features = {"c"};
  ds.numeric = {{1, 2, 3, NaN, 100, NaN}};
  ds.categorical = {{"a", "b", "a", "", "z", "a"}};
  for (int i = 0; i < 6; ++i) ds.ids.push_back("r" + std::to_string(i));
  ds.build_index();
  return ds;
}
}  // namespace

TEST(DataPreprocess, FittedOnTrainOnly) {
  Dataset ds = make_dataset();
  TabularPreprocessor p;
  p.fit(ds, {0, 1, 2, 3});
  // Columns: x, x_missing, c=a, c=b, c=<unknown>.
  ASSERT_EQ(p.feature_names(), (std::vector<std::string>{"x", "x_missing", "c=a", "c=b", "c=<unknown>"}));
  // Train x = {1, 2, 3, missing}: median 2; imputed {1, 2, 3, 2}: mean 2, std sqrt(0.5).
  const double mean = 2.0, stdv = std::sqrt(0.5);
  EXPECT_DOUBLE_EQ(p.numeric()[0].median, 2.0);
  EXPECT_DOUBLE_EQ(p.numeric()[0].mean, mean);
  EXPECT_NEAR(p.numeric()[0].std, stdv, 1e-12);
  std::vector<float> out(6 * 5);
  p.transform(ds, {0, 1, 2, 3, 4, 5}, out.data());
  auto row = [&](int r) { return std::vector<float>(out.begin() + r * 5, out.begin() + r * 5 + 5); };
  auto one_hot_part = [&](int r) { return std::vector<float>(out.begin() + r * 5 + 2, out.begin() + r * 5 + 5); };
  EXPECT_NEAR(row(0)[0], (1 - mean) / stdv, 1e-6);
  EXPECT_EQ(row(3)[1], 1.0f);                                  // missing indicator
  EXPECT_NEAR(row(3)[0], 0.0, 1e-6);                           // median imputed, then standardised
  EXPECT_NEAR(row(4)[0], float((100 - mean) / stdv), 1e-3);    // test value does not move the mean
  EXPECT_EQ(row(0), (std::vector<float>{row(0)[0], 0, 1, 0, 0}));
  EXPECT_EQ(row(1)[3], 1.0f);
  // "z" only occurs in test, "" is missing: both map to the unknown bucket.
  EXPECT_EQ(one_hot_part(4), (std::vector<float>{0, 0, 1}));
  EXPECT_EQ(one_hot_part(3), (std::vector<float>{0, 0, 1}));

  // Fitting on all rows instead would change the statistics (guards against fitting on the wrong rows).
  TabularPreprocessor all;
  all.fit(ds, {0, 1, 2, 3, 4, 5});
  EXPECT_GT(all.numeric()[0].mean, 10.0);
  EXPECT_EQ(all.categorical()[0].levels.size(), 3u);
}

TEST(DataPreprocess, IndexEncodingReportAndJsonRoundTrip) {
  Dataset ds = make_dataset();
  TabularPreprocessor p;
  p.fit(ds, {0, 1, 2, 3}, {.one_hot = false, .standardize = false});
  ember::Tensor t = p.transform(ds, {4, 5});
  ASSERT_EQ(t.shape(), (ember::Shape{2, 3}));
  EXPECT_EQ(t.at({0, 0}), 100.0);
  EXPECT_EQ(t.at({1, 0}), 2.0);  // median, unstandardised
  EXPECT_EQ(t.at({0, 2}), 2.0);  // unknown index = number of levels
  EXPECT_EQ(t.at({1, 2}), 0.0);  // "a"
  const std::string report = p.report();
  EXPECT_THAT(report, HasSubstr("x: numeric, missing in train 1"));
  EXPECT_THAT(report, HasSubstr("c: categorical, missing in train 1, 2 levels"));
  TabularPreprocessor q = TabularPreprocessor::from_json(p.to_json());
  EXPECT_EQ(q.transform(ds, {0, 1, 2, 3, 4, 5}).to_vector<float>(), p.transform(ds, {0, 1, 2, 3, 4, 5}).to_vector<float>());
}
