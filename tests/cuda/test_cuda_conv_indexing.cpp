// The implicit-GEMM gather/scatter index math of the CUDA conv kernels, checked on the CPU: the
// kernels' own problem structs, depth split and tile staging (both engines' tile shapes, the tensor
// cores' at both slice depths, and
// thread-to-element mappings) run through a host loop (conv::host_emulate_*) and must match
// ember::cpu::conv2d_*_ref. Needs no GPU, so it runs on every CUDA build.
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <random>
#include <vector>

#include "kernels/cuda/conv2d_dispatch.h"
#include "tests/cuda/conv_test_shapes.h"
#include "tests/cuda/cuda_test_util.h"

namespace ember::cuda {
namespace {

TEST(CudaConvIndexing, HostEmulationOfImplicitGemmMatchesCpuReference) {
  uint32_t seed = 500;
  auto shapes = testing::test_shapes();
  shapes.push_back(testing::make(2, 1, 9, 8, 5, 3, 3, 1, 1));  // one input channel: the C/g == 1 case
  for (const Conv2dShape& s : shapes) {
    SCOPED_TRACE(testing::describe(s));
    const int64_t nx = s.N * s.C * s.H * s.W, ny = s.N * s.K * s.P() * s.Q(), nw = s.K * (s.C / s.groups) * s.R * s.S;
    const auto x = testing::random_floats(size_t(nx), ++seed), w = testing::random_floats(size_t(nw), ++seed);
    const auto bias = testing::random_floats(size_t(s.K), ++seed), dy = testing::random_floats(size_t(ny), ++seed);
    std::vector<float> y_ref(static_cast<size_t>(ny)), dx_ref(static_cast<size_t>(nx)), dw_ref(static_cast<size_t>(nw)),
        dbias_ref(static_cast<size_t>(s.K));
    cpu::conv2d_forward_ref<float>(s, x.data(), w.data(), bias.data(), y_ref.data());
    cpu::conv2d_backward_data_ref<float>(s, dy.data(), w.data(), dx_ref.data());
    cpu::conv2d_backward_weight_ref<float>(s, x.data(), dy.data(), dw_ref.data(), dbias_ref.data());
    const float nan = std::numeric_limits<float>::quiet_NaN();
    std::vector<float> y(size_t(ny), nan), dx(size_t(nx), nan), dw(size_t(nw), nan);
    for (conv::HostTiles tiles : {conv::HostTiles::Simt, conv::HostTiles::TensorCore, conv::HostTiles::TensorCoreShallow}) {
      SCOPED_TRACE(tiles == conv::HostTiles::Simt         ? "simt tiles"
                   : tiles == conv::HostTiles::TensorCore ? "tensor-core tiles, depth 32"
                                                          : "tensor-core tiles, depth 16");
      std::fill(y.begin(), y.end(), nan), std::fill(dx.begin(), dx.end(), nan), std::fill(dw.begin(), dw.end(), nan);
      conv::host_emulate_forward(tiles, s, x.data(), w.data(), bias.data(), y.data());
      conv::host_emulate_backward_data(tiles, s, dy.data(), w.data(), dx.data());
      conv::host_emulate_backward_weight(tiles, s, x.data(), dy.data(), dw.data());
      EXPECT_LE(testing::rel_norm_err(y, y_ref), 1e-5) << "forward";
      EXPECT_LE(testing::rel_norm_err(dx, dx_ref), 1e-5) << "backward data";
      EXPECT_LE(testing::rel_norm_err(dw, dw_ref), 1e-5) << "backward weight";
    }
    if (s.C == s.groups) {  // one input channel per group: the direct depthwise kernels run by default
      std::fill(y.begin(), y.end(), nan), std::fill(dx.begin(), dx.end(), nan), std::fill(dw.begin(), dw.end(), nan);
      conv::host_emulate_depthwise(s, x.data(), w.data(), bias.data(), dy.data(), y.data(), dx.data(), dw.data());
      EXPECT_LE(testing::rel_norm_err(y, y_ref), 1e-5) << "depthwise forward";
      EXPECT_LE(testing::rel_norm_err(dx, dx_ref), 1e-5) << "depthwise backward data";
      EXPECT_LE(testing::rel_norm_err(dw, dw_ref), 1e-5) << "depthwise backward weight";
    }
  }
}

// A long weight-gradient depth is split across blocks; the chunks must tile it exactly.
TEST(CudaConvIndexing, WeightGradientDepthSplitCoversEveryPixel) {
  const Conv2dShape s = testing::make(6, 4, 40, 40, 8, 3, 3, 1, 1);  // depth 9600: many chunks
  const int64_t nx = s.N * s.C * s.H * s.W, ny = s.N * s.K * s.P() * s.Q(), nw = s.K * s.C * s.R * s.S;
  const auto x = testing::random_floats(size_t(nx), 1), dy = testing::random_floats(size_t(ny), 2);
  std::vector<float> dw_ref(static_cast<size_t>(nw)), dw(static_cast<size_t>(nw));
  cpu::conv2d_backward_weight_ref<float>(s, x.data(), dy.data(), dw_ref.data(), nullptr);
  for (conv::HostTiles tiles : {conv::HostTiles::Simt, conv::HostTiles::TensorCore, conv::HostTiles::TensorCoreShallow}) {
    std::fill(dw.begin(), dw.end(), std::numeric_limits<float>::quiet_NaN());
    conv::host_emulate_backward_weight(tiles, s, x.data(), dy.data(), dw.data());
    EXPECT_LE(testing::rel_norm_err(dw, dw_ref), 1e-5) << "host tiles " << int(tiles);
  }
}

// The gathers split indices with a multiply-high instead of a division (fast_div.cuh): every
// divisor up to 4096 (all conv sizes and strides here) on small and boundary numerators, and
// random divisors and numerators up to 2^31 - 1, against the integer division.
TEST(CudaConvIndexing, FastDivisionMatchesIntegerDivision) {
  std::mt19937 gen(7);
  std::uniform_int_distribution<int> any(0, std::numeric_limits<int>::max());
  const auto check = [&](int d) {
    std::vector<int> xs = {0, 1, d - 1, d, d + 1, 2 * d - 1, 2 * d, std::numeric_limits<int>::max(),
                           std::numeric_limits<int>::max() - 1, std::numeric_limits<int>::max() / d * d,
                           std::numeric_limits<int>::max() / d * d - 1};
    for (int i = 0; i < 64; ++i) xs.push_back(any(gen));
    for (int x = 0; x < 300; ++x) xs.push_back(x);
    for (int x : xs)
      if (x >= 0) {
        ASSERT_EQ(conv::host_fast_div(d, x), x / d) << x << " / " << d;
      }
  };
  for (int d = 1; d <= 4096; ++d) check(d);
  for (int i = 0; i < 2000; ++i) check(std::max(1, any(gen)));
  for (int b = 1; b < 31; ++b) check(1 << b), check((1 << b) - 1), check((1 << b) + 1);
}

}  // namespace
}  // namespace ember::cuda
