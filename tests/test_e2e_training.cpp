// End to end: the engine's ops, autograd and RNG together must actually learn.
//  1. An MLP 2-64-64-2 (linear + relu) fits the classic two-arm spiral to >= 95% training accuracy.
//  2. A small CNN (conv-relu-conv-relu-global mean-linear) tells horizontal from vertical bars in
//     noisy 12x12 images with >= 95% accuracy on held-out images.
// Both use hand-written SGD with momentum (Tensor::add_/mul_), fixed seeds and a fixed step budget.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "engine/ops.h"
#include "engine/rng.h"

namespace {

using namespace ember;

// A parameter with its momentum buffer.
struct Param {
  Tensor value, velocity;
};

Param make_param(const Shape& shape, double bound, Generator& g) {
  Tensor v = Tensor::uniform(shape, -bound, bound, g);
  v.requires_grad_(true);
  return {v, Tensor::zeros(shape)};
}

// PyTorch's default init for a layer with `fan_in` inputs: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the
// bias, Kaiming-uniform (gain sqrt(2)) for the weight, which suits the relu layers here.
Param weight(const Shape& shape, int64_t fan_in, Generator& g) {
  return make_param(shape, std::sqrt(6.0 / double(fan_in)), g);
}
Param bias(int64_t n, int64_t fan_in, Generator& g) { return make_param({n}, 1.0 / std::sqrt(double(fan_in)), g); }

// v = momentum * v + grad; p -= lr * v; then clear the gradient.
void sgd_step(std::vector<Param*>& params, double lr, double momentum) {
  for (Param* p : params) {
    Tensor g = p->value.grad();
    ASSERT_TRUE(g.defined()) << "parameter " << p->value.str() << " got no gradient";
    p->velocity.mul_(momentum).add_(g);
    p->value.add_(p->velocity, -lr);
    p->value.zero_grad();
  }
}

double accuracy(const Tensor& logits, const Tensor& labels) {
  std::vector<int64_t> pred = argmax(logits, 1).to_vector<int64_t>(), y = labels.to_vector<int64_t>();
  int64_t right = 0;
  for (size_t i = 0; i < y.size(); ++i) right += pred[i] == y[i];
  return double(right) / double(y.size());
}

// Uniform integer in [0, n) from the generator.
int64_t randint(Generator& g, int64_t n) { return int64_t(g.next_u64() % uint64_t(n)); }

TEST(EndToEnd, MlpLearnsTheTwoArmSpiral) {
  constexpr int64_t kPerArm = 200, kN = 2 * kPerArm, kHidden = 64, kSteps = 400;
  Generator g(2718);
  // Two interleaved arms of 2 turns each, radius 0.1 -> 1, with Gaussian noise on the angle.
  Tensor noise = Tensor::normal({kN}, 0, 0.12, g, DType::Float64);
  std::vector<float> xy(size_t(2 * kN));
  std::vector<int64_t> label(static_cast<size_t>(kN));
  for (int64_t c = 0; c < 2; ++c)
    for (int64_t i = 0; i < kPerArm; ++i) {
      const int64_t n = c * kPerArm + i;
      const double r = 0.1 + 0.9 * double(i) / double(kPerArm - 1);
      const double theta = 4 * M_PI * r + M_PI * double(c) + noise.at({n});
      xy[size_t(2 * n)] = float(2 * r * std::cos(theta));  // x2: inputs of unit-ish scale
      xy[size_t(2 * n + 1)] = float(2 * r * std::sin(theta));
      label[size_t(n)] = c;
    }
  Tensor x = Tensor::from_vector(xy, {kN, 2}), y = Tensor::from_vector(label, {kN});

  Param w1 = weight({kHidden, 2}, 2, g), b1 = bias(kHidden, 2, g);
  Param w2 = weight({kHidden, kHidden}, kHidden, g), b2 = bias(kHidden, kHidden, g);
  Param w3 = weight({2, kHidden}, kHidden, g), b3 = bias(2, kHidden, g);
  std::vector<Param*> params = {&w1, &b1, &w2, &b2, &w3, &b3};
  auto forward = [&](const Tensor& in) {
    Tensor h = relu(linear(in, w1.value, b1.value));
    h = relu(linear(h, w2.value, b2.value));
    return linear(h, w3.value, b3.value);
  };

  double first_loss = 0, loss = 0;
  for (int64_t step = 0; step < kSteps; ++step) {
    Tensor l = cross_entropy(forward(x), y);  // full batch
    loss = l.item();
    if (step == 0) first_loss = loss;
    ASSERT_TRUE(std::isfinite(loss)) << "step " << step;
    l.backward();
    sgd_step(params, step < 300 ? 0.1 : 0.03, 0.9);
  }
  double acc;
  {
    NoGradGuard no_grad;
    acc = accuracy(forward(x), y);
  }
  EXPECT_NEAR(first_loss, std::log(2.0), 0.5);  // starts near chance
  EXPECT_LT(loss, 0.2);
  EXPECT_GE(acc, 0.95) << "final loss " << loss;
}

// 12x12 images, background noise, one bar of length 5..8 (1 px thick) at a random position;
// label 0 = horizontal, 1 = vertical.
void make_bars(int64_t n, Generator& g, Tensor& images, Tensor& labels) {
  images = Tensor::normal({n, 1, 12, 12}, 0, 0.3, g);
  std::vector<int64_t> y(static_cast<size_t>(n));
  float* px = images.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t vertical = randint(g, 2), len = 5 + randint(g, 4);
    const int64_t along = randint(g, 12 - len + 1), across = randint(g, 12);
    for (int64_t k = 0; k < len; ++k) {
      const int64_t row = vertical ? along + k : across, col = vertical ? across : along + k;
      px[i * 144 + row * 12 + col] += 1.0f;
    }
    y[size_t(i)] = vertical;
  }
  labels = Tensor::from_vector(y, {n});
}

TEST(EndToEnd, SmallCnnLearnsBarOrientation) {
  constexpr int64_t kTrain = 512, kTest = 256, kBatch = 32, kEpochs = 10, kC1 = 8, kC2 = 16;
  Generator g(31415);
  Tensor train_x, train_y, test_x, test_y;
  make_bars(kTrain, g, train_x, train_y);
  make_bars(kTest, g, test_x, test_y);

  Param c1 = weight({kC1, 1, 3, 3}, 9, g), cb1 = bias(kC1, 9, g);
  Param c2 = weight({kC2, kC1, 3, 3}, 9 * kC1, g), cb2 = bias(kC2, 9 * kC1, g);
  Param fc = make_param({2, kC2}, 1.0 / std::sqrt(double(kC2)), g), fb = bias(2, kC2, g);
  std::vector<Param*> params = {&c1, &cb1, &c2, &cb2, &fc, &fb};
  const auto same = Conv2dOptions::make(1, 1);
  auto forward = [&](const Tensor& in) {
    Tensor h = relu(conv2d(in, c1.value, cb1.value, same));
    h = relu(conv2d(h, c2.value, cb2.value, same));
    return linear(mean(h, {2, 3}), fc.value, fb.value);  // global average pool over H, W
  };

  std::vector<int64_t> y_all = train_y.to_vector<int64_t>();
  for (int64_t epoch = 0; epoch < kEpochs; ++epoch) {
    std::vector<int64_t> order = g.permutation(kTrain);
    for (int64_t start = 0; start + kBatch <= kTrain; start += kBatch) {
      // Gather the mini-batch (rows of the shuffled order) with select + concat.
      std::vector<Tensor> rows;
      std::vector<int64_t> yb;
      for (int64_t k = start; k < start + kBatch; ++k) {
        rows.push_back(train_x.slice(0, order[size_t(k)], order[size_t(k)] + 1));
        yb.push_back(y_all[size_t(order[size_t(k)])]);
      }
      Tensor loss = cross_entropy(forward(concat(rows, 0)), Tensor::from_vector(yb, {kBatch}));
      ASSERT_TRUE(std::isfinite(loss.item()));
      loss.backward();
      sgd_step(params, epoch < 6 ? 0.1 : 0.03, 0.9);
    }
  }
  NoGradGuard no_grad;
  const double train_acc = accuracy(forward(train_x), train_y), test_acc = accuracy(forward(test_x), test_y);
  EXPECT_GE(test_acc, 0.95) << "train accuracy " << train_acc;
}

}  // namespace
