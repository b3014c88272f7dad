// predict() with flip averaging (m2.test_flip): the outputs must be the mean of the model's outputs
// on each image and on its mirror image. With a linear model f that mean equals f((x + mirror x) / 2),
// which the test computes independently by mirroring the images itself.
#include <gtest/gtest.h>

#include <numeric>

#include "apps/driver/heads.h"
#include "apps/driver/sources.h"
#include "apps/driver/trainer.h"

using namespace ember;
using namespace ember::driver;

namespace {

constexpr int64_t kN = 6, kC = 2, kH = 3, kW = 5;  // odd width: the middle column maps to itself

std::vector<HeadSpec> heads() {
  HeadSpec age;
  age.target = "age";
  age.task = data::Task::Regression;
  age.mean = 30;
  age.std = 10;
  HeadSpec sex;
  sex.target = "sex";
  sex.task = data::Task::Binary;
  sex.classes = {"f", "m"};
  return {age, sex};
}

// The mean of x and its left-right mirror, written element by element.
Tensor symmetrised(const Tensor& x) {
  Tensor out = x.clone();
  const float* s = x.data<float>();
  float* d = out.data<float>();
  for (int64_t r = 0; r < kN * kC * kH; ++r)
    for (int64_t w = 0; w < kW; ++w) d[r * kW + w] = 0.5f * (s[r * kW + w] + s[r * kW + kW - 1 - w]);
  return out;
}

Predictions run(HeadsModel& model, const Tensor& images, bool flip) {
  std::vector<int64_t> rows(kN);
  std::iota(rows.begin(), rows.end(), 0);
  Tensor age = Tensor::zeros({kN});
  Tensor sex = Tensor::from_vector(std::vector<int64_t>{0, 1, 0, 1, 0, 1}, {kN});
  TensorSource src({images}, {age, sex}, rows, 4, false, 1);  // 4 + 2: a ragged last batch too
  return predict(model, heads(), src, "test", flip);
}

}  // namespace

TEST(DriverPredict, FlipAveragingIsTheMeanOverImageAndMirror) {
  Generator gen(7);
  // Linear heads on the flattened image: f(a) + f(b) = 2 f((a + b) / 2) exactly in real arithmetic.
  HeadsModel model(std::make_shared<nn::Flatten>(), kC * kH * kW, heads(), {}, 0.0, gen);
  Tensor x = Tensor::normal({kN, kC, kH, kW}, 0, 1, gen);
  Predictions flipped = run(model, x, true);
  Predictions plain = run(model, x, false);
  Predictions reference = run(model, symmetrised(x), false);
  ASSERT_EQ(flipped.rows.size(), size_t(kN));
  double max_gap_to_plain = 0;
  for (int64_t i = 0; i < kN; ++i) {
    EXPECT_NEAR(flipped.heads[0].value[i], reference.heads[0].value[i], 1e-4) << "row " << i;
    EXPECT_NEAR(flipped.heads[1].probs[i][1], reference.heads[1].probs[i][1], 1e-5) << "row " << i;
    max_gap_to_plain = std::max(max_gap_to_plain, std::abs(flipped.heads[0].value[i] - plain.heads[0].value[i]));
  }
  EXPECT_GT(max_gap_to_plain, 1e-2) << "random images are not mirror-symmetric: averaging must change the outputs";
  EXPECT_NEAR(flipped.loss, reference.loss, 1e-5);
}

TEST(DriverPredict, FlipAveragingLeavesFeatureInputsAlone) {
  // Tabular sources (2-D inputs) have no mirror image: flip averaging must be a no-op there.
  Generator gen(8);
  HeadsModel model(nullptr, 4, heads(), {3}, 0.0, gen);
  Tensor f = Tensor::normal({kN, 4}, 0, 1, gen);
  Predictions a = run(model, f, true), b = run(model, f, false);
  for (int64_t i = 0; i < kN; ++i) EXPECT_EQ(a.heads[0].value[i], b.heads[0].value[i]);
}
