// The elementwise and reduction ops through autograd on the GPU (engine/ops/cuda_elementwise.cpp)
// against the same expressions on the CPU: broadcasting add/sub/mul/div (whose backward sums over
// the broadcast dims on the GPU too), scalar operands, neg, sum and mean over dims, argmax, a
// permuted (non-contiguous) input, a scaled loss, the math ops (exp, log, sqrt, abs, sign, sigmoid,
// tanh, pow), softmax, log_softmax and max (with its gradient), matmul, pad2d, concat, adaptive
// average pooling, the regression losses and BCE, and gradient clipping. Skips without a device;
// written in sessions without a GPU.
#include <gtest/gtest.h>

#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "engine/rng.h"
#include "nn/optim.h"
#include "tests/cuda/cuda_test_util.h"

namespace ember {
namespace {

double rel_err(const Tensor& got, const Tensor& want) {
  return cuda::testing::rel_norm_err(got.to(Device::CPU).to_vector<float>(), want.to_vector<float>());
}

// f on CPU leaves and on their CUDA copies: outputs and every input's gradient must agree.
void expect_same_on_gpu(const std::string& what, const std::vector<Tensor>& inputs,
                        const std::function<Tensor(const std::vector<Tensor>&)>& f) {
  std::vector<Tensor> leaves[2];
  Tensor out[2];
  for (int d = 0; d < 2; ++d) {
    const Device dev = d == 0 ? Device::CPU : Device::CUDA;
    for (const Tensor& x : inputs) {
      Tensor leaf = x.to(dev).detach();
      leaf.requires_grad_();
      leaves[d].push_back(leaf);
    }
    out[d] = f(leaves[d]);
    ASSERT_EQ(out[d].device(), dev) << what;
    sum(out[d]).backward();
  }
  EXPECT_EQ(out[1].shape(), out[0].shape()) << what;
  EXPECT_LE(rel_err(out[1], out[0]), 1e-6) << what << ": output";
  for (size_t i = 0; i < inputs.size(); ++i) {
    ASSERT_TRUE(leaves[1][i].grad().defined()) << what << ": input " << i << " has no gradient";
    EXPECT_EQ(leaves[1][i].grad().device(), Device::CUDA) << what;
    EXPECT_LE(rel_err(leaves[1][i].grad(), leaves[0][i].grad()), 1e-6) << what << ": gradient of input " << i;
  }
}

TEST(CudaElementwise, BroadcastingArithmeticAndItsGradientsMatchCpu) {
  EMBER_REQUIRE_CUDA();
  Generator gen(21);
  const Tensor a = Tensor::normal({2, 3, 4}, 0, 1, gen), b = Tensor::normal({3, 1}, 0, 1, gen);
  const Tensor away_from_zero = Tensor::uniform({3, 1}, 0.5, 2, gen);
  expect_same_on_gpu("add", {a, b}, [](const auto& v) { return v[0] + v[1]; });
  expect_same_on_gpu("sub", {a, b}, [](const auto& v) { return v[0] - v[1]; });
  expect_same_on_gpu("mul", {a, b}, [](const auto& v) { return v[0] * v[1]; });
  expect_same_on_gpu("div", {a, away_from_zero}, [](const auto& v) { return v[0] / v[1]; });
  expect_same_on_gpu("scalars and neg", {a}, [](const auto& v) { return -((v[0] * 2.5 - 1.0) / 4.0 + 0.5); });
}

TEST(CudaElementwise, SumMeanAndArgmaxMatchCpu) {
  EMBER_REQUIRE_CUDA();
  Generator gen(22);
  const Tensor x = Tensor::normal({3, 5, 4, 2}, 0, 1, gen);
  expect_same_on_gpu("sum over 1, 3", {x}, [](const auto& v) { return sum(v[0], {1, 3}, false) * v[0].shape()[0]; });
  expect_same_on_gpu("sum keepdim", {x}, [](const auto& v) { return sum(v[0], {-1, 0}, true); });
  expect_same_on_gpu("mean", {x}, [](const auto& v) { return mean(v[0], {2}, false); });
  expect_same_on_gpu("sum of a permuted view", {x}, [](const auto& v) { return sum(v[0].permute({2, 0, 3, 1}), {3}, false); });
  for (const bool keepdim : {false, true}) {
    const Tensor want = argmax(x, 1, keepdim), got = argmax(x.to(Device::CUDA), 1, keepdim);
    ASSERT_EQ(got.device(), Device::CUDA);
    EXPECT_EQ(got.shape(), want.shape());
    EXPECT_EQ(got.to(Device::CPU).to_vector<int64_t>(), want.to_vector<int64_t>()) << "keepdim " << keepdim;
  }
}

// Scaling a loss (gradient accumulation, averaging over micro-batches) runs on the GPU.
TEST(CudaElementwise, ScaledCrossEntropyMatchesCpu) {
  EMBER_REQUIRE_CUDA();
  Generator gen(23);
  const Tensor logits = Tensor::normal({6, 4}, 0, 1, gen);
  const Tensor target = Tensor::from_vector(std::vector<int64_t>{0, 3, 1, 2, 3, 0}, {6});
  expect_same_on_gpu("cross_entropy * 0.25", {logits}, [&](const auto& v) {
    return cross_entropy(v[0], target.to(v[0].device())) * 0.25;
  });
}

// exp, log, sqrt, abs, sigmoid and tanh: the kernel forward and composed.h's backward (whose formulas
// tests/test_composed_ops.cpp checks on the CPU); relu6, clamp and leaky_relu (composed.h); sign,
// which needs no gradient.
TEST(CudaElementwise, MathOpsAndTheirGradientsMatchCpu) {
  EMBER_REQUIRE_CUDA();
  Generator gen(24);
  const Tensor x = Tensor::normal({4, 33}, 0, 1.5, gen), positive = Tensor::uniform({4, 33}, 0.2, 3, gen);
  expect_same_on_gpu("exp", {x}, [](const auto& v) { return exp(v[0]); });
  expect_same_on_gpu("log", {positive}, [](const auto& v) { return log(v[0]); });
  expect_same_on_gpu("sqrt", {positive}, [](const auto& v) { return sqrt(v[0]); });
  expect_same_on_gpu("abs", {x}, [](const auto& v) { return abs(v[0]); });
  expect_same_on_gpu("sigmoid", {x}, [](const auto& v) { return sigmoid(v[0]); });
  expect_same_on_gpu("tanh", {x}, [](const auto& v) { return tanh(v[0]); });
  const Tensor wide = Tensor::uniform({4, 33}, -3, 9, gen);
  expect_same_on_gpu("relu6", {wide}, [](const auto& v) { return relu6(v[0]); });
  expect_same_on_gpu("clamp", {wide}, [](const auto& v) { return clamp(v[0], -1.25, 2.5); });
  expect_same_on_gpu("leaky_relu", {wide}, [](const auto& v) { return leaky_relu(v[0], 0.07); });
  // pow: integer exponents on both signs, fractional and negative ones on positive inputs, and 0.
  expect_same_on_gpu("pow 3", {x}, [](const auto& v) { return pow(v[0], 3.0); });
  expect_same_on_gpu("pow 2.5", {positive}, [](const auto& v) { return pow(v[0], 2.5); });
  expect_same_on_gpu("pow -1.5", {positive}, [](const auto& v) { return pow(v[0], -1.5); });
  expect_same_on_gpu("pow 0", {x}, [](const auto& v) { return pow(v[0], 0.0) * v[0]; });
  const Tensor s = sign(x.to(Device::CUDA));
  ASSERT_EQ(s.device(), Device::CUDA);
  EXPECT_EQ(s.to(Device::CPU).to_vector<float>(), sign(x).to_vector<float>());
}

// softmax and log_softmax (composed.h on the GPU), and max: its values, which shift them, and its
// gradient, scattered to each row's first maximum.
TEST(CudaElementwise, SoftmaxLogSoftmaxAndMaxMatchCpu) {
  EMBER_REQUIRE_CUDA();
  Generator gen(27);
  const Tensor x = Tensor::normal({5, 9, 3}, 0, 3, gen);
  for (int64_t dim : {0, 1, 2}) {
    expect_same_on_gpu("softmax", {x}, [dim](const auto& v) { return softmax(v[0], dim) * v[0]; });
    expect_same_on_gpu("log_softmax", {x}, [dim](const auto& v) { return log_softmax(v[0], dim); });
    const Tensor got = max(x.to(Device::CUDA), dim, true);
    ASSERT_EQ(got.device(), Device::CUDA);
    EXPECT_LE(rel_err(got, max(x, dim, true)), 0.0) << "max over dim " << dim;
    // A weighted sum of the maxima, so each scattered gradient value is distinct.
    const Tensor weights = Tensor::normal(max(x, dim, false).shape(), 0, 1, gen);
    expect_same_on_gpu("max backward", {x, weights}, [dim](const auto& v) { return max(v[0], dim, false) * v[1]; });
  }
}

// matmul through cuBLAS (fp32): plain, transposed views (passed as cuBLAS flags), batched, and a 2-D
// operand shared across a batch (whose gradient sums over it).
TEST(CudaElementwise, MatmulAndItsGradientsMatchCpu) {
  EMBER_REQUIRE_CUDA();
  Generator gen(29);
  const Tensor a = Tensor::normal({5, 7}, 0, 1, gen), b = Tensor::normal({7, 3}, 0, 1, gen);
  const Tensor a3 = Tensor::normal({4, 5, 7}, 0, 1, gen), b3 = Tensor::normal({4, 7, 3}, 0, 1, gen);
  expect_same_on_gpu("matmul", {a, b}, [](const auto& v) { return matmul(v[0], v[1]); });
  expect_same_on_gpu("matmul of transposed views", {a.t().contiguous(), b.t().contiguous()},
                     [](const auto& v) { return matmul(v[0].t(), v[1].t()); });
  expect_same_on_gpu("batched", {a3, b3}, [](const auto& v) { return matmul(v[0], v[1]); });
  expect_same_on_gpu("batched x shared", {a3, b}, [](const auto& v) { return matmul(v[0], v[1]); });
  expect_same_on_gpu("shared x batched", {a, b3}, [](const auto& v) { return matmul(v[0], v[1]); });
  expect_same_on_gpu("permuted batch", {a3.permute({1, 0, 2}).contiguous(), b3},
                     [](const auto& v) { return matmul(v[0].permute({1, 0, 2}), v[1]); });
}

// pad2d (zeros, then a strided copy into the interior) and concat (copies into slices), and their
// gradients (slices of the gradient, made contiguous by the strided copy).
TEST(CudaElementwise, Pad2dConcatAndTheirGradientsMatchCpu) {
  EMBER_REQUIRE_CUDA();
  Generator gen(28);
  const Tensor x = Tensor::normal({2, 3, 5, 4}, 0, 1, gen), weights = Tensor::normal({2, 3, 8, 7}, 0, 1, gen);
  expect_same_on_gpu("pad2d", {x, weights}, [](const auto& v) { return pad2d(v[0], 1, 2, 0, 3) * v[1]; });
  expect_same_on_gpu("pad2d of a permuted view", {x, weights.permute({0, 1, 3, 2})},
                     [](const auto& v) { return pad2d(v[0].permute({0, 1, 3, 2}), 0, 3, 1, 2) * v[1]; });
  const Tensor y = Tensor::normal({2, 6, 5, 4}, 0, 1, gen), w9 = Tensor::normal({2, 9, 5, 4}, 0, 1, gen);
  expect_same_on_gpu("concat along channels", {x, y, w9}, [](const auto& v) { return concat({v[0], v[1]}, 1) * v[2]; });
  const Tensor w10 = Tensor::normal({2, 3, 10, 4}, 0, 1, gen);
  expect_same_on_gpu("concat of a permuted view along rows", {x, x.permute({0, 2, 1, 3}).contiguous(), w10},
                     [](const auto& v) { return concat({v[0], v[1].permute({0, 2, 1, 3})}, 2) * v[2]; });
}

// adaptive_avg_pool2d to sizes other than 1x1 and the input's own (adaptive_pool.cu), through autograd.
TEST(CudaElementwise, AdaptiveAveragePoolingMatchesCpu) {
  EMBER_REQUIRE_CUDA();
  Generator gen(30);
  const Tensor x = Tensor::normal({2, 3, 7, 5}, 0, 1, gen);
  const Tensor down = Tensor::normal({2, 3, 3, 2}, 0, 1, gen), up = Tensor::normal({2, 3, 9, 9}, 0, 1, gen);
  expect_same_on_gpu("adaptive 7x5 -> 3x2", {x, down}, [](const auto& v) { return adaptive_avg_pool2d(v[0], 3, 2) * v[1]; });
  expect_same_on_gpu("adaptive 7x5 -> 9x9", {x, up}, [](const auto& v) { return adaptive_avg_pool2d(v[0], 9, 9) * v[1]; });
}

// The regression losses and BCE-with-logits run their composed.h forms on the GPU.
TEST(CudaElementwise, RegressionLossesAndBceMatchCpu) {
  EMBER_REQUIRE_CUDA();
  Generator gen(25);
  const Tensor pred = Tensor::normal({8, 3}, 0, 2, gen), target = Tensor::normal({8, 3}, 0, 2, gen);
  const Tensor prob = Tensor::uniform({8, 3}, 0, 1, gen), pos_weight = Tensor::uniform({3}, 0.5, 3, gen);
  for (Reduction r : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
    expect_same_on_gpu("mse", {pred, target}, [r](const auto& v) { return mse_loss(v[0], v[1], r); });
    expect_same_on_gpu("l1", {pred, target}, [r](const auto& v) { return l1_loss(v[0], v[1], r); });
    expect_same_on_gpu("smooth_l1", {pred, target}, [r](const auto& v) { return smooth_l1_loss(v[0], v[1], 1.0, r); });
    expect_same_on_gpu("bce", {pred, prob, pos_weight},
                       [r](const auto& v) { return binary_cross_entropy_with_logits(v[0], v[1], v[2], r); });
  }
}

// clip_grad_norm_ over CUDA gradients (norms 1, 2, 3 and inf) scales them like the CPU version.
TEST(CudaElementwise, ClipGradNormMatchesCpu) {
  EMBER_REQUIRE_CUDA();
  Generator gen(26);
  const Tensor w = Tensor::normal({5, 7}, 0, 1, gen), b = Tensor::normal({7}, 0, 1, gen);
  for (double norm_type : {1.0, 2.0, 3.0, std::numeric_limits<double>::infinity()}) {
    double total[2];
    std::vector<Tensor> grads[2];
    for (int d = 0; d < 2; ++d) {
      const Device dev = d == 0 ? Device::CPU : Device::CUDA;
      Tensor pw = w.to(dev).detach(), pb = b.to(dev).detach();
      pw.requires_grad_(), pb.requires_grad_();
      sum((pw * pw) * 3.0).backward();  // gradients 6 w and 1: a norm well above max_norm
      sum(pb).backward();
      total[d] = clip_grad_norm_({pw, pb}, 0.5, norm_type);
      grads[d] = {pw.grad(), pb.grad()};
    }
    EXPECT_NEAR(total[1], total[0], 1e-5 * total[0]) << "norm " << norm_type;
    for (int i = 0; i < 2; ++i) {
      EXPECT_EQ(grads[1][i].device(), Device::CUDA);
      EXPECT_LE(rel_err(grads[1][i], grads[0][i]), 1e-6) << "norm " << norm_type << ", gradient " << i;
    }
  }
}

}  // namespace
}  // namespace ember
