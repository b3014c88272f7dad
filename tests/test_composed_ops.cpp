// The device-agnostic op forms the GPU runs where it has no kernel of its own (engine/ops/composed.h),
// checked on the CPU in float64 against the fused CPU ops: the unary backward formulas against the
// CPU ops' autograd, and the regression losses and BCE-with-logits (values and every gradient, each
// reduction) against loss.cpp's one-pass loops, softmax and log_softmax against softmax.cpp's,
// clamp, relu6 and leaky_relu against unary.cpp's.
// Also sign(), which the abs backward uses, and pow's backward.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "engine/ops/composed.h"
#include "tests/gradcheck.h"

namespace ember {
namespace {

using testing::rand64;

double max_abs_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  const auto va = a.to_vector<double>(), vb = b.to_vector<double>();
  double m = 0;
  for (size_t i = 0; i < va.size() && i < vb.size(); ++i) m = std::max(m, std::abs(va[i] - vb[i]));
  return m;
}

TEST(ComposedOps, UnaryBackwardFormulasMatchTheCpuDerivatives) {
  struct Case {
    const char* name;
    composed::Unary op;
    Tensor (*f)(const Tensor&);
    double lo, hi;  // inputs: positive for log and sqrt; abs is drawn on both sides of 0
  };
  const Case cases[] = {{"exp", composed::Unary::Exp, &exp, -2, 2},         {"log", composed::Unary::Log, &log, 0.2, 3},
                        {"sqrt", composed::Unary::Sqrt, &sqrt, 0.2, 3},     {"abs", composed::Unary::Abs, &abs, -2, 2},
                        {"sigmoid", composed::Unary::Sigmoid, &sigmoid, -4, 4}, {"tanh", composed::Unary::Tanh, &tanh, -3, 3}};
  uint64_t seed = 1;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Tensor x = rand64({3, 7}, ++seed, c.lo, c.hi);
    x.requires_grad_();
    const Tensor g = rand64({3, 7}, ++seed);
    Tensor y = c.f(x);
    y.backward(g);
    const Tensor composed_grad = composed::unary_backward(c.op, g, x.detach(), y.detach());
    EXPECT_LE(max_abs_diff(composed_grad, x.grad()), 1e-12);
  }
}

// pow's backward (the GPU's) against the CPU op's derivative: integer exponents on both signs,
// fractional ones on positive inputs, and exponent 0 (gradient 0, also at x = 0).
TEST(ComposedOps, PowBackwardMatchesTheCpuDerivative) {
  struct Case {
    double exponent, lo, hi;
  };
  uint64_t seed = 40;
  for (const Case c : {Case{3, -2, 2}, Case{2, -2, 2}, Case{2.5, 0.2, 3}, Case{-1.5, 0.2, 3}, Case{0, -1, 1}}) {
    SCOPED_TRACE(c.exponent);
    Tensor x = rand64({4, 5}, ++seed, c.lo, c.hi);
    if (c.exponent == 0) x = x * 0.0;  // all zeros: 0 * 0^-1 would be NaN
    x = x.detach();
    x.requires_grad_();
    const Tensor g = rand64({4, 5}, ++seed);
    pow(x, c.exponent).backward(g);
    EXPECT_LE(max_abs_diff(composed::pow_backward(g, x.detach(), c.exponent), x.grad()), 1e-12);
  }
}

TEST(ComposedOps, SignIsMinusZeroOrPlusOneAndNeedsNoGrad) {
  Tensor x = Tensor::from_vector(std::vector<double>{-2.5, 0.0, 3.0, -0.0, 1e-300}, {5});
  x.requires_grad_();
  const Tensor s = sign(x);
  EXPECT_EQ(s.to_vector<double>(), (std::vector<double>{-1, 0, 1, 0, 1}));
  EXPECT_FALSE(s.requires_grad());
}

// The fused loss and its composed form on the same float64 leaves: values and all gradients.
void expect_same_loss(const std::string& what, const std::vector<Tensor>& inputs,
                      const std::function<Tensor(const std::vector<Tensor>&)>& fused,
                      const std::function<Tensor(const std::vector<Tensor>&)>& composed_form) {
  SCOPED_TRACE(what);
  std::vector<Tensor> leaves[2];
  Tensor out[2];
  const auto forms = {fused, composed_form};
  int k = 0;
  for (const auto& f : forms) {
    for (const Tensor& x : inputs) {
      Tensor leaf = x.detach().clone();
      leaf.requires_grad_();
      leaves[k].push_back(leaf);
    }
    out[k] = f(leaves[k]);
    const Tensor w = rand64(out[k].shape(), 99);  // weights every output element (Reduction::None)
    sum(out[k] * w).backward();
    ++k;
  }
  EXPECT_LE(max_abs_diff(out[1], out[0]), 1e-12) << "value";
  for (size_t i = 0; i < inputs.size(); ++i) {
    ASSERT_TRUE(leaves[0][i].grad().defined() && leaves[1][i].grad().defined()) << "input " << i;
    EXPECT_LE(max_abs_diff(leaves[1][i].grad(), leaves[0][i].grad()), 1e-12) << "gradient of input " << i;
  }
}

TEST(ComposedOps, RegressionLossesMatchTheFusedCpuLosses) {
  const Tensor pred = rand64({4, 5}, 10, -2, 2), target = rand64({4, 5}, 11, -2, 2);
  for (Reduction r : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
    const std::string red = r == Reduction::Mean ? " mean" : r == Reduction::Sum ? " sum" : " none";
    expect_same_loss("mse" + red, {pred, target}, [r](const auto& v) { return mse_loss(v[0], v[1], r); },
                     [r](const auto& v) { return composed::mse_loss(v[0], v[1], r); });
    expect_same_loss("l1" + red, {pred, target}, [r](const auto& v) { return l1_loss(v[0], v[1], r); },
                     [r](const auto& v) { return composed::l1_loss(v[0], v[1], r); });
    for (double beta : {0.0, 0.7, 1.5}) {  // differences of up to 4: both branches of smooth L1
      expect_same_loss("smooth_l1 beta " + std::to_string(beta) + red, {pred, target},
                       [r, beta](const auto& v) { return smooth_l1_loss(v[0], v[1], beta, r); },
                       [r, beta](const auto& v) { return composed::smooth_l1_loss(v[0], v[1], beta, r); });
    }
  }
}

TEST(ComposedOps, BceWithLogitsMatchesTheFusedCpuLoss) {
  const Tensor logits = rand64({4, 3}, 20, -6, 6), target = rand64({4, 3}, 21, 0, 1);
  const Tensor pos_weight = rand64({3}, 22, 0.5, 3);  // broadcast over the batch
  for (Reduction r : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
    const std::string red = r == Reduction::Mean ? " mean" : r == Reduction::Sum ? " sum" : " none";
    expect_same_loss("bce" + red, {logits, target},
                     [r](const auto& v) { return binary_cross_entropy_with_logits(v[0], v[1], Tensor(), r); },
                     [r](const auto& v) { return composed::binary_cross_entropy_with_logits(v[0], v[1], Tensor(), r); });
    expect_same_loss("bce pos_weight" + red, {logits, target, pos_weight},
                     [r](const auto& v) { return binary_cross_entropy_with_logits(v[0], v[1], v[2], r); },
                     [r](const auto& v) { return composed::binary_cross_entropy_with_logits(v[0], v[1], v[2], r); });
  }
}

TEST(ComposedOps, ClampRelu6AndLeakyReluMatchTheCpuOps) {
  const Tensor x = rand64({6, 7}, 40, -3, 9);  // no input exactly at a kink (0, 6, the clamp bounds)
  expect_same_loss("relu6", {x}, [](const auto& v) { return relu6(v[0]); },
                   [](const auto& v) { return composed::clamp(v[0], 0, 6); });
  expect_same_loss("clamp", {x}, [](const auto& v) { return clamp(v[0], -1.25, 2.5); },
                   [](const auto& v) { return composed::clamp(v[0], -1.25, 2.5); });
  expect_same_loss("leaky_relu", {x}, [](const auto& v) { return leaky_relu(v[0], 0.07); },
                   [](const auto& v) { return composed::leaky_relu(v[0], 0.07); });
}

TEST(ComposedOps, SoftmaxAndLogSoftmaxMatchTheFusedCpuOps) {
  // Rows with large offsets: without the max shift exp would overflow.
  const Tensor x = rand64({3, 4, 5}, 30, -3, 3) + rand64({3, 4, 1}, 31, 700, 800);
  for (int64_t dim : {0, 1, -1}) {
    SCOPED_TRACE("dim " + std::to_string(dim));
    expect_same_loss("softmax", {x}, [dim](const auto& v) { return softmax(v[0], dim); },
                     [dim](const auto& v) { return composed::softmax(v[0], dim < 0 ? dim + 3 : dim, false); });
    expect_same_loss("log_softmax", {x}, [dim](const auto& v) { return log_softmax(v[0], dim); },
                     [dim](const auto& v) { return composed::softmax(v[0], dim < 0 ? dim + 3 : dim, true); });
  }
}

}  // namespace
}  // namespace ember
