// The optimizers on GPU parameters (Optimizer::update_cuda: one fused launch per group, over
// kernels/cuda/optimizer.cu) against the same optimizer on CPU copies. Sizes cross the kernel's
// 16384-element chunks; one parameter has no gradient at the first step, so at the second step it
// starts its momentum (SGD: a separate first-step launch) or has a lower step count (AdamW: a launch
// per step count). Skips without a device; written in a session without a GPU.
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/rng.h"
#include "engine/tensor.h"
#include "nn/optim.h"
#include "tests/cuda/cuda_test_util.h"

namespace ember {
namespace {

double rel_err(const Tensor& got, const Tensor& want) {
  return cuda::testing::rel_norm_err(got.to(Device::CPU).to_vector<float>(), want.to_vector<float>());
}

const std::vector<Shape> kShapes = {{5}, {3, 7}, {40001}};

std::vector<Tensor> make_params(Device device) {
  Generator gen(11);
  std::vector<Tensor> params;
  for (const Shape& s : kShapes) {
    Tensor p = Tensor::normal(s, 0, 1, gen).to(device);
    p.requires_grad_();
    params.push_back(p);
  }
  return params;
}

// Three steps with the same gradients on both devices (parameter 1 has none at step 0); the GPU
// parameters must end within `tol` of the CPU ones.
void expect_same_steps(const std::function<std::unique_ptr<Optimizer>(std::vector<Tensor>)>& make, double tol) {
  std::vector<Tensor> cpu = make_params(Device::CPU), gpu = make_params(Device::CUDA);
  auto cpu_opt = make(cpu), gpu_opt = make(gpu);
  Generator gen(5);
  for (int step = 0; step < 3; ++step) {
    cpu_opt->zero_grad();
    gpu_opt->zero_grad();
    for (size_t i = 0; i < cpu.size(); ++i) {
      if (step == 0 && i == 1) continue;
      Tensor g = Tensor::normal(kShapes[i], 0, 1, gen);
      cpu[i].set_grad(g);
      gpu[i].set_grad(g.to(Device::CUDA));
    }
    cpu_opt->step();
    gpu_opt->step();
    for (size_t i = 0; i < cpu.size(); ++i) {
      ASSERT_EQ(gpu[i].device(), Device::CUDA);
      EXPECT_LE(rel_err(gpu[i], cpu[i]), tol) << cpu_opt->kind() << " step " << step << " param " << i;
    }
  }
}

TEST(CudaOptim, SgdMomentumStepsMatchCpu) {
  EMBER_REQUIRE_CUDA();
  for (const bool nesterov : {false, true})
    expect_same_steps(
        [&](std::vector<Tensor> p) {
          return std::make_unique<SGD>(std::vector<ParamGroup>{ParamGroup{std::move(p), 0.1, 1e-3, ""}},
                                       SGDOptions{.momentum = 0.9, .nesterov = nesterov});
        },
        1e-6);
}

// AdamW (decoupled decay, in the kernel) and Adam (L2 decay added to the gradient, then the AdamW
// kernel with no decoupled decay).
TEST(CudaOptim, AdamWAndAdamStepsMatchCpu) {
  EMBER_REQUIRE_CUDA();
  for (const bool decoupled : {true, false})
    expect_same_steps(
        [decoupled](std::vector<Tensor> p) -> std::unique_ptr<Optimizer> {
          std::vector<ParamGroup> groups{ParamGroup{std::move(p), 1e-2, 0.05, ""}};
          if (decoupled) return std::make_unique<AdamW>(std::move(groups));
          return std::make_unique<Adam>(std::move(groups));
        },
        1e-6);
}

TEST(CudaOptim, AmsgradWithoutAFusedKernelNamesTheParameter) {
  EMBER_REQUIRE_CUDA();
  std::vector<Tensor> gpu = make_params(Device::CUDA);
  for (Tensor& p : gpu) p.set_grad(Tensor::zeros(p.shape(), DType::Float32, Device::CUDA));
  Adam adam({ParamGroup{gpu, 1e-3, 0.0, "body"}}, AdamOptions{.amsgrad = true});
  try {
    adam.step();
    FAIL() << "amsgrad on cuda should throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("group 'body' param 0"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("no amsgrad"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ember
