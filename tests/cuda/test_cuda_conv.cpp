// Every conv variant (ember_simt FP32, ember_tc TF32/BF16 at slice depths 32 and 16, cuDNN; depthwise
// shapes under both depthwise variants, direct and gemm) against the CPU reference
// ember::cpu::conv2d_*_ref, forward / data gradient / weight gradient, on hand-picked awkward
// shapes (odd sizes, stride, padding, dilation, groups, depthwise) plus seeded random ones.
// Outputs are NaN-poisoned before each run so unwritten elements fail the comparison.
#include <gtest/gtest.h>

#include <string>

#include "kernels/cpu/conv2d.h"
#include "kernels/cuda/conv2d_dispatch.h"
#include "kernels/registry.h"
#include "tests/cuda/conv_test_shapes.h"
#include "tests/cuda/cuda_test_util.h"

namespace ember::cuda {
namespace {
using testing::DeviceArray;
using testing::describe;
using testing::make;
using testing::rel_norm_err;
using testing::test_shapes;

struct Variant {
  ConvAlgo algo;
  Precision prec;
  const char* tc_depth = "";  // ember_tc's slice depth variant ("k32", "k16"), "" for the others
};
std::vector<Variant> variants_to_test() {
  std::vector<Variant> v = {{ConvAlgo::EmberSimt, Precision::FP32}};
  for (const char* depth : {"k32", "k16"})
    for (Precision p : {Precision::TF32, Precision::BF16}) v.push_back({ConvAlgo::EmberTensorCore, p, depth});
  if (cudnn_available())
    for (Precision p : {Precision::FP32, Precision::TF32, Precision::BF16}) v.push_back({ConvAlgo::Cudnn, p});
  return v;
}

struct ConvData {
  Conv2dShape s;
  std::vector<float> x, w, bias, dy;
  std::vector<float> y_ref, dx_ref, dw_ref, dbias_ref;
  explicit ConvData(const Conv2dShape& shape, uint32_t seed) : s(shape) {
    const int64_t nx = s.N * s.C * s.H * s.W, ny = s.N * s.K * s.P() * s.Q(), nw = s.K * (s.C / s.groups) * s.R * s.S;
    x = testing::random_floats(size_t(nx), seed);
    w = testing::random_floats(size_t(nw), seed + 1);
    bias = testing::random_floats(size_t(s.K), seed + 2);
    dy = testing::random_floats(size_t(ny), seed + 3);
    y_ref.resize(size_t(ny)), dx_ref.resize(size_t(nx)), dw_ref.resize(size_t(nw)), dbias_ref.resize(size_t(s.K));
    cpu::conv2d_forward_ref<float>(s, x.data(), w.data(), bias.data(), y_ref.data());
    cpu::conv2d_backward_data_ref<float>(s, dy.data(), w.data(), dx_ref.data());
    cpu::conv2d_backward_weight_ref<float>(s, x.data(), dy.data(), dw_ref.data(), dbias_ref.data());
  }
};

TEST(CudaConv, EveryVariantMatchesCpuReference) {
  EMBER_REQUIRE_CUDA();
  uint32_t seed = 1;
  for (const Conv2dShape& s : test_shapes()) {
    const ConvData d(s, seed += 10);
    DeviceArray<float> x(d.x), w(d.w), bias(d.bias), dy(d.dy);
    DeviceArray<float> y(d.y_ref.size()), dx(d.dx_ref.size()), dw(d.dw_ref.size()), dbias(d.dbias_ref.size());
    const bool depthwise = s.C == s.groups;
    for (const char* dw_variant : {"direct", "gemm"}) {
      if (!depthwise && std::string(dw_variant) == "gemm") continue;  // the choice only matters for C / groups == 1
      kernels::set_variant("depthwise", dw_variant);
      for (const Variant& v : variants_to_test()) {
        SCOPED_TRACE(describe(s) + " variant " + conv_algo_name(v.algo) + "/" + precision_name(v.prec) + " " +
                     v.tc_depth + (depthwise ? std::string(" depthwise ") + dw_variant : ""));
        kernels::set_variant("conv_tc_depth", v.tc_depth);
        const double tol = testing::tolerance(v.prec);
        y.poison(), dx.poison(), dw.poison(), dbias.poison();
        conv2d_forward(v.algo, v.prec, s, x.get(), w.get(), bias.get(), y.get());
        conv2d_backward_data(v.algo, v.prec, s, dy.get(), w.get(), dx.get());
        conv2d_backward_weight(v.algo, v.prec, s, x.get(), dy.get(), dw.get(), dbias.get());
        EXPECT_LE(rel_norm_err(y.download(), d.y_ref), tol) << "forward";
        EXPECT_LE(rel_norm_err(dx.download(), d.dx_ref), tol) << "backward data";
        EXPECT_LE(rel_norm_err(dw.download(), d.dw_ref), tol) << "backward weight";
        EXPECT_LE(rel_norm_err(dbias.download(), d.dbias_ref), 1e-5) << "bias gradient (always FP32)";
      }
    }
    kernels::set_variant("depthwise", "");
    kernels::set_variant("conv_tc_depth", "");
  }
}

// ember vs cuDNN at the same precision on a VGG-like layer too large for the CPU reference loop.
TEST(CudaConv, EmberMatchesCudnnOnVggLayer) {
  EMBER_REQUIRE_CUDA();
  if (!cudnn_available()) GTEST_SKIP() << "built without cuDNN";
  const Conv2dShape s = make(8, 64, 56, 56, 128, 3, 3, 1, 1);
  const size_t nx = size_t(s.N * s.C * s.H * s.W), ny = size_t(s.N * s.K * s.P() * s.Q()),
               nw = size_t(s.K * s.C * s.R * s.S);
  DeviceArray<float> x(testing::random_floats(nx, 5)), w(testing::random_floats(nw, 6)), dy(testing::random_floats(ny, 7));
  DeviceArray<float> y_ref(ny), dx_ref(nx), dw_ref(nw), y(ny), dx(nx), dw(nw);
  conv2d_forward(ConvAlgo::Cudnn, Precision::FP32, s, x.get(), w.get(), nullptr, y_ref.get());
  conv2d_backward_data(ConvAlgo::Cudnn, Precision::FP32, s, dy.get(), w.get(), dx_ref.get());
  conv2d_backward_weight(ConvAlgo::Cudnn, Precision::FP32, s, x.get(), dy.get(), dw_ref.get(), nullptr);
  const auto yr = y_ref.download(), dxr = dx_ref.download(), dwr = dw_ref.download();
  for (const Variant& v : {Variant{ConvAlgo::EmberSimt, Precision::FP32}, Variant{ConvAlgo::EmberTensorCore, Precision::TF32},
                           Variant{ConvAlgo::EmberTensorCore, Precision::BF16}}) {
    SCOPED_TRACE(std::string(conv_algo_name(v.algo)) + "/" + precision_name(v.prec));
    const double tol = testing::tolerance(v.prec);
    y.poison(), dx.poison(), dw.poison();
    conv2d_forward(v.algo, v.prec, s, x.get(), w.get(), nullptr, y.get());
    conv2d_backward_data(v.algo, v.prec, s, dy.get(), w.get(), dx.get());
    conv2d_backward_weight(v.algo, v.prec, s, x.get(), dy.get(), dw.get(), nullptr);
    EXPECT_LE(rel_norm_err(y.download(), yr), tol);
    EXPECT_LE(rel_norm_err(dx.download(), dxr), tol);
    EXPECT_LE(rel_norm_err(dw.download(), dwr), tol);
  }
}

TEST(CudaConv, BadShapesThrowNamingTheShape) {
  EMBER_REQUIRE_CUDA();
  Conv2dShape s = make(1, 6, 8, 8, 4, 3, 3, 1, 1, 1, 4);  // C=6 not divisible by 4 groups
  try {
    conv2d_forward(ConvAlgo::EmberSimt, Precision::FP32, s, nullptr, nullptr, nullptr, nullptr);
    FAIL() << "expected std::runtime_error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("groups=4"), std::string::npos) << e.what();
  }
}

TEST(CudaConv, EnvironmentSelectsAlgorithmAndPrecision) {
  EMBER_REQUIRE_CUDA();
  const auto ops = cuda_variant_ops();
  EXPECT_EQ(ops, (std::vector<std::string>{"conv", "depthwise", "conv_tc_depth", "pool", "bn", "bn_slice"}));
  set_conv_precision("bf16");
  EXPECT_EQ(active_conv_precision(), Precision::BF16);
  set_conv_precision("");
  EXPECT_THROW(set_conv_precision("fp8"), std::invalid_argument);
  kernels::set_variant("conv", "ember_simt");
  EXPECT_EQ(active_conv_algo(), ConvAlgo::EmberSimt);
  kernels::set_variant("conv", "");
  EXPECT_EQ(conv::tc_slice_depth(), 32);  // the default
  kernels::set_variant("conv_tc_depth", "k16");
  EXPECT_EQ(conv::tc_slice_depth(), 16);
  kernels::set_variant("conv_tc_depth", "");
  EXPECT_TRUE(conv::depthwise_direct());  // the default
  kernels::set_variant("depthwise", "gemm");
  EXPECT_FALSE(conv::depthwise_direct());
  kernels::set_variant("depthwise", "");
}

}  // namespace
}  // namespace ember::cuda
