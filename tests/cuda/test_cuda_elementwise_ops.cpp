// The elementwise and reduction ops through autograd on the GPU (engine/ops/cuda_elementwise.cpp)
// against the same expressions on the CPU: broadcasting add/sub/mul/div (whose backward sums over
// the broadcast dims on the GPU too), scalar operands, neg, sum and mean over dims, argmax, a
// permuted (non-contiguous) input, and a scaled loss. Skips without a device; written in a session
// without a GPU.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "engine/rng.h"
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

}  // namespace
}  // namespace ember
