// Every float conv2d variant this machine can run (forward, backward-data, backward-weight) against
// the reference kernels on random shapes: stride 1-3, padding 0-2, dilation 1-2, groups 1/2/depthwise
// (and depthwise with channel multiplier 2), 1x1 pointwise, with and without bias, batch 1-4.
// Bound: relative Frobenius error ||variant - ref|| / ||ref|| <= 1e-5 for float.
// The reference itself is checked by a hand-computed case and by adjointness of its three kernels.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cmath>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/cpu/conv2d.h"
#include "kernel_test_util.h"

namespace {

using ember::testing::random_vector;
using ember::testing::relative_error;

using ember::cpu::Conv2dShape;
namespace cpu = ember::cpu;
namespace kernels = ember::kernels;

constexpr double kFloatRelTol = 1e-5;
const float kNaN = std::numeric_limits<float>::quiet_NaN();



std::string describe(const Conv2dShape& s, bool bias) {
  std::ostringstream os;
  os << "N=" << s.N << " C=" << s.C << " H=" << s.H << " W=" << s.W << " K=" << s.K << " R=" << s.R << " S=" << s.S
     << " stride=" << s.stride_h << "," << s.stride_w << " pad=" << s.pad_h << "," << s.pad_w << " dil=" << s.dil_h
     << "," << s.dil_w << " groups=" << s.groups << " bias=" << bias;
  return os.str();
}

int64_t x_size(const Conv2dShape& s) { return s.N * s.C * s.H * s.W; }
int64_t y_size(const Conv2dShape& s) { return s.N * s.K * s.P() * s.Q(); }
int64_t w_size(const Conv2dShape& s) { return s.K * (s.C / s.groups) * s.R * s.S; }

// Random shapes covering every parameter range the kernels special-case.
std::vector<Conv2dShape> test_shapes() {
  std::mt19937 rng(2024);
  auto pick = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  std::vector<Conv2dShape> shapes;
  for (int i = 0; i < 120; ++i) {
    Conv2dShape s;
    const int kind = i % 5;  // 0,1: dense; 2: groups 2; 3: depthwise; 4: depthwise x2 multiplier
    s.N = pick(1, 4);
    s.groups = kind <= 1 ? 1 : kind == 2 ? 2 : pick(2, 6);
    const int64_t cg = kind >= 3 ? 1 : pick(1, 7), kg = kind == 3 ? 1 : kind == 4 ? 2 : pick(1, 9);
    s.C = cg * s.groups;
    s.K = kg * s.groups;
    s.R = pick(1, 3);
    s.S = pick(1, 3);
    s.stride_h = pick(1, 3);
    s.stride_w = pick(1, 3);
    s.pad_h = pick(0, 2);
    s.pad_w = pick(0, 2);
    s.dil_h = pick(1, 2);
    s.dil_w = pick(1, 2);
    if (i % 10 == 1) {  // pointwise: the no-im2col path
      s.R = s.S = s.stride_h = s.stride_w = 1;
      s.pad_h = s.pad_w = 0;
    }
    s.H = pick(1, 13);
    s.W = pick(1, 13);
    // Keep the output non-empty.
    s.H = std::max(s.H, s.dil_h * (s.R - 1) + 1 - 2 * s.pad_h);
    s.W = std::max(s.W, s.dil_w * (s.S - 1) + 1 - 2 * s.pad_w);
    shapes.push_back(s);
  }
  // Depthwise stride 1 (the padded-plane fast path, including padding beyond the filter reach).
  for (int64_t r : {1, 2, 3})
    for (int64_t pad : {0, 1, 2})
      for (int64_t dil : {1, 2}) {
        Conv2dShape d;
        d.N = 2, d.C = d.K = d.groups = 3, d.H = 9, d.W = 11, d.R = r, d.S = 4 - r;
        d.pad_h = pad, d.pad_w = 2 - pad, d.dil_h = dil, d.dil_w = 3 - dil;
        shapes.push_back(d);
      }
  // Dense 3x3 stride 1 with >= 8 channels (the Winograd variant's domain): odd and even sizes, so
  // partial 2x2 output blocks and partial 8-tile groups at the right and bottom edges, padding 0-2.
  for (int i = 0; i < 12; ++i) {
    Conv2dShape w;
    w.N = pick(1, 3), w.C = pick(8, 20), w.K = pick(8, 20), w.R = w.S = 3;
    w.pad_h = i % 3, w.pad_w = (i / 3) % 3;
    w.H = pick(3, 37), w.W = pick(3, 37);
    shapes.push_back(w);
  }
  // Few input channels, stride_w 1 (the direct variant's domain): partial 4-channel blocks (K % 4),
  // rows ending inside a 16-lane vector and inside a 6-vector block (up to 200 wide), padding beyond
  // the filter's reach, dilation, stride_h 2, and C*R*S up to the 64-tap limit (7 x 3 x 3, 1 x 8 x 8).
  for (int i = 0; i < 16; ++i) {
    Conv2dShape d;
    d.N = pick(1, 2), d.C = std::array<int64_t, 4>{1, 2, 3, 7}[size_t(i % 4)], d.K = pick(1, 11);
    d.R = pick(1, 3), d.S = pick(1, 3);
    if (i == 5) d.C = 1, d.R = d.S = 8;
    d.pad_h = pick(0, 3), d.pad_w = pick(0, 3), d.dil_h = pick(1, 2), d.dil_w = pick(1, 2);
    d.stride_h = i % 3 == 2 ? 2 : 1;
    d.H = pick(1, 9), d.W = std::array<int64_t, 8>{1, 15, 16, 17, 95, 97, 113, 200}[size_t(i % 8)];
    d.H = std::max(d.H, d.dil_h * (d.R - 1) + 1 - 2 * d.pad_h);
    d.W = std::max(d.W, d.dil_w * (d.S - 1) + 1 - 2 * d.pad_w);
    shapes.push_back(d);
  }
  // 3-tap rows with few input channels (the direct_f23 variant's domain): odd outputs per row (a
  // half-used last pair), rows ending inside a 32-output vector or exactly on one, partial 6-channel
  // blocks, any R, padding beyond the filter's reach, stride_h 2, dil_h 2.
  for (int i = 0; i < 12; ++i) {
    Conv2dShape d;
    d.N = pick(1, 2), d.C = std::array<int64_t, 4>{1, 3, 5, 7}[size_t(i % 4)], d.K = pick(1, 14);
    d.R = pick(1, 3), d.S = 3;
    d.pad_h = pick(0, 2), d.pad_w = pick(0, 3), d.dil_h = pick(1, 2);
    d.stride_h = i % 4 == 3 ? 2 : 1;
    d.H = pick(1, 9), d.W = std::array<int64_t, 6>{3, 30, 33, 62, 97, 129}[size_t(i % 6)];
    d.H = std::max(d.H, d.dil_h * (d.R - 1) + 1 - 2 * d.pad_h);
    shapes.push_back(d);
  }
  Conv2dShape chunks;  // Winograd: two tile-row chunks, the first one crossing from image 0 into 1
  chunks.N = 3, chunks.C = chunks.K = 128, chunks.H = chunks.W = 20, chunks.R = chunks.S = 3;
  chunks.pad_h = chunks.pad_w = 1;
  shapes.push_back(chunks);
  // A few larger ones: several GEMM blocks, several im2col chunks, and the image-per-thread path.
  Conv2dShape big;
  big.N = 4, big.C = 19, big.H = 29, big.W = 31, big.K = 37, big.R = big.S = 3, big.pad_h = big.pad_w = 1;
  shapes.push_back(big);
  big.N = 2, big.C = 64, big.H = big.W = 20, big.K = 70, big.stride_h = big.stride_w = 2;
  shapes.push_back(big);
  Conv2dShape dw;
  dw.N = 2, dw.C = dw.K = dw.groups = 32, dw.H = dw.W = 40, dw.R = dw.S = 3, dw.pad_h = dw.pad_w = 1;
  shapes.push_back(dw);
  return shapes;
}

class ConvVariants : public ::testing::Test {
 protected:
  void TearDown() override {
    for (const char* op : {"conv2d_fwd", "conv2d_bwd_data", "conv2d_bwd_weight", "gemm"}) kernels::set_variant(op, "");
  }
};

TEST_F(ConvVariants, TablesListFastFirstRefLast) {
  for (const char* op : {"conv2d_fwd", "conv2d_bwd_data", "conv2d_bwd_weight"}) {
    auto names = kernels::variants(op);
    ASSERT_GE(names.size(), 2u) << op;
    const std::string op_name = op;
    EXPECT_EQ(names.front(), op_name == "conv2d_bwd_data" ? "winograd" : "auto") << op;
    EXPECT_EQ(names.back(), "ref") << op;
  }
}

TEST_F(ConvVariants, ForwardMatchesReference) {
  std::mt19937 rng(1);
  for (const auto& variant : kernels::available_variants("conv2d_fwd")) {
    kernels::set_variant("conv2d_fwd", variant);
    for (const auto& s : test_shapes())
      for (bool with_bias : {false, true}) {
        auto x = random_vector<float>(x_size(s), rng), w = random_vector<float>(w_size(s), rng);
        auto b = random_vector<float>(s.K, rng);
        std::vector<float> got(size_t(y_size(s)), kNaN), want(got.size(), kNaN);
        cpu::conv2d_forward<float>(s, x.data(), w.data(), with_bias ? b.data() : nullptr, got.data());
        cpu::conv2d_forward_ref<float>(s, x.data(), w.data(), with_bias ? b.data() : nullptr, want.data());
        ASSERT_LE(relative_error(got, want), kFloatRelTol) << variant << ": " << describe(s, with_bias);
      }
  }
}

// The Winograd forward (and data gradient) writes its GEMM operands in the packed layout of whichever
// "gemm" variant is active (sgemm_packed: 12 x 32, 6 x 16 or the reference's 8 x 8 panels): K not a
// multiple of MR, tile columns not a multiple of NR, two chunks.
TEST_F(ConvVariants, WinogradUnderEveryGemmVariantMatchesReference) {
  std::mt19937 rng(11);
  Conv2dShape a, b;
  a.N = 2, a.C = 9, a.K = 13, a.H = 21, a.W = 27, a.R = a.S = 3, a.pad_h = a.pad_w = 1;
  b.N = 3, b.C = b.K = 128, b.H = b.W = 20, b.R = b.S = 3, b.pad_h = 0, b.pad_w = 2;
  for (const auto& gemm : kernels::available_variants("gemm")) {
    kernels::set_variant("gemm", gemm);
    for (const auto& s : {a, b}) {
      kernels::set_variant("conv2d_fwd", "winograd");
      auto x = random_vector<float>(x_size(s), rng), w = random_vector<float>(w_size(s), rng);
      auto bias = random_vector<float>(s.K, rng);
      std::vector<float> got(size_t(y_size(s)), kNaN), want(got.size(), kNaN);
      cpu::conv2d_forward<float>(s, x.data(), w.data(), bias.data(), got.data());
      cpu::conv2d_forward_ref<float>(s, x.data(), w.data(), bias.data(), want.data());
      EXPECT_LE(relative_error(got, want), kFloatRelTol) << "gemm " << gemm << ": " << describe(s, true);
      kernels::set_variant("conv2d_bwd_data", "winograd");
      auto dy = random_vector<float>(y_size(s), rng);
      std::vector<float> got_dx(size_t(x_size(s)), kNaN), want_dx(got_dx.size(), kNaN);
      cpu::conv2d_backward_data<float>(s, dy.data(), w.data(), got_dx.data());
      cpu::conv2d_backward_data_ref<float>(s, dy.data(), w.data(), want_dx.data());
      EXPECT_LE(relative_error(got_dx, want_dx), kFloatRelTol) << "gemm " << gemm << " dx: " << describe(s, false);
    }
  }
}

bool has_variant(const char* op, const std::string& name) {
  const auto avail = kernels::available_variants(op);
  return std::find(avail.begin(), avail.end(), name) != avail.end();
}

// The direct kernels write an output of 32 MiB or more with non-temporal stores when every row starts
// on a cache line (ember's tensors are 64-byte aligned). No shape above is that large, so this one is
// checked against the im2col variant (itself checked against the reference above) on the same inputs.
TEST_F(ConvVariants, DirectKernelsStreamingLargeOutputsMatchIm2col) {
  Conv2dShape s;  // 2 x 256 x 128 x 128 floats = 32 MiB of output; rows of 128 = 4 x 32 outputs
  s.N = 2, s.C = 3, s.H = s.W = 128, s.K = 256, s.R = s.S = 3, s.pad_h = s.pad_w = 1;
  std::mt19937 rng(4);
  auto x = random_vector<float>(x_size(s), rng), w = random_vector<float>(w_size(s), rng);
  auto b = random_vector<float>(s.K, rng);
  const auto aligned = ember::testing::aligned64;
  std::vector<float> want_buf(size_t(y_size(s)) + 16, kNaN), got_buf(want_buf.size());
  kernels::set_variant("conv2d_fwd", "im2col");
  cpu::conv2d_forward<float>(s, x.data(), w.data(), b.data(), aligned(want_buf));
  const std::vector<float> want(aligned(want_buf), aligned(want_buf) + y_size(s));
  int ran = 0;
  for (const std::string variant : {"direct", "direct_f23"}) {
    if (!has_variant("conv2d_fwd", variant)) continue;  // needs AVX-512
    kernels::set_variant("conv2d_fwd", variant);
    std::fill(got_buf.begin(), got_buf.end(), kNaN);
    cpu::conv2d_forward<float>(s, x.data(), w.data(), b.data(), aligned(got_buf));
    const std::vector<float> got(aligned(got_buf), aligned(got_buf) + y_size(s));
    EXPECT_LE(relative_error(got, want), kFloatRelTol) << variant << ": " << describe(s, true);
    ++ran;
  }
  if (ran == 0) GTEST_SKIP() << "no AVX-512 on this CPU: the direct variants are not available";
}

// The weight gradient (and bias gradient) of `variant` on shape s against im2col's, itself checked
// against the reference above: for shapes too large to run the reference on at every test.
void expect_weight_gradient_matches_im2col(const std::string& variant, const Conv2dShape& s, unsigned seed) {
  std::mt19937 rng(seed);
  auto x = random_vector<float>(x_size(s), rng), dy = random_vector<float>(y_size(s), rng);
  std::vector<float> want(size_t(w_size(s)), kNaN), got(want.size(), kNaN), want_b(size_t(s.K)), got_b(want_b.size());
  kernels::set_variant("conv2d_bwd_weight", "im2col");
  cpu::conv2d_backward_weight<float>(s, x.data(), dy.data(), want.data(), want_b.data());
  kernels::set_variant("conv2d_bwd_weight", variant);
  cpu::conv2d_backward_weight<float>(s, x.data(), dy.data(), got.data(), got_b.data());
  EXPECT_LE(relative_error(got, want), kFloatRelTol) << variant << ": " << describe(s, true);
  EXPECT_LE(relative_error(got_b, want_b), kFloatRelTol) << variant << " dbias: " << describe(s, true);
}

// The Winograd weight gradient splits the batch's tile rows into chunks of 256-512 columns spread over
// threads, each summing into its own buffer. The shapes above all fit in one chunk; this one (250-wide
// rows, so 128-tile rows with interior groups read straight from x; 64 tile rows) takes sixteen.
TEST_F(ConvVariants, WinogradWeightGradientOverSeveralChunksMatchesIm2col) {
  if (!has_variant("conv2d_bwd_weight", "winograd")) GTEST_SKIP() << "no AVX2 on this CPU";
  Conv2dShape s;
  s.N = 2, s.C = s.K = 32, s.H = 64, s.W = 250, s.R = s.S = 3, s.pad_h = s.pad_w = 1;
  expect_weight_gradient_matches_im2col("winograd", s, 5);
}

// The direct weight gradient splits the batch into 8-row tasks over threads, each summing into its own
// buffer; the small shapes above stay on one thread. This one has 10 tasks (and a masked last vector).
TEST_F(ConvVariants, DirectWeightGradientOverThreadsMatchesIm2col) {
  if (!has_variant("conv2d_bwd_weight", "direct")) GTEST_SKIP() << "no AVX-512 on this CPU";
  Conv2dShape s;
  s.N = 2, s.C = 3, s.K = 21, s.H = 40, s.W = 70, s.R = s.S = 3, s.pad_h = s.pad_w = 1;
  expect_weight_gradient_matches_im2col("direct", s, 6);
}

// The F(2,3) weight gradient likewise, on two threads: per image a task of 32 output rows and one of 8
// (rows_per_task), with E and U rows in one contiguous run (stride_h 1), then one run per output row
// (stride_h 2); an odd Q (a half-used last pair); K = 21, so a last group of one channel.
TEST_F(ConvVariants, DirectF23WeightGradientOverThreadsMatchesIm2col) {
  if (!has_variant("conv2d_bwd_weight", "direct_f23")) GTEST_SKIP() << "no AVX-512 on this CPU";
  Conv2dShape s;
  s.N = 2, s.C = 3, s.K = 21, s.H = 40, s.W = 69, s.R = s.S = 3, s.pad_h = s.pad_w = 1;
  expect_weight_gradient_matches_im2col("direct_f23", s, 7);
  s.stride_h = 2, s.H = 79;
  expect_weight_gradient_matches_im2col("direct_f23", s, 8);
}

TEST_F(ConvVariants, BackwardDataMatchesReference) {
  std::mt19937 rng(2);
  for (const auto& variant : kernels::available_variants("conv2d_bwd_data")) {
    kernels::set_variant("conv2d_bwd_data", variant);
    for (const auto& s : test_shapes()) {
      auto dy = random_vector<float>(y_size(s), rng), w = random_vector<float>(w_size(s), rng);
      std::vector<float> got(size_t(x_size(s)), kNaN), want(got.size(), kNaN);
      cpu::conv2d_backward_data<float>(s, dy.data(), w.data(), got.data());
      cpu::conv2d_backward_data_ref<float>(s, dy.data(), w.data(), want.data());
      ASSERT_LE(relative_error(got, want), kFloatRelTol) << variant << ": " << describe(s, false);
    }
  }
}

TEST_F(ConvVariants, BackwardWeightMatchesReference) {
  std::mt19937 rng(3);
  for (const auto& variant : kernels::available_variants("conv2d_bwd_weight")) {
    kernels::set_variant("conv2d_bwd_weight", variant);
    for (const auto& s : test_shapes())
      for (bool with_bias : {false, true}) {
        auto x = random_vector<float>(x_size(s), rng), dy = random_vector<float>(y_size(s), rng);
        std::vector<float> got(size_t(w_size(s)), kNaN), want(got.size(), kNaN);
        std::vector<float> got_b(size_t(s.K), kNaN), want_b(got_b.size(), kNaN);
        cpu::conv2d_backward_weight<float>(s, x.data(), dy.data(), got.data(), with_bias ? got_b.data() : nullptr);
        cpu::conv2d_backward_weight_ref<float>(s, x.data(), dy.data(), want.data(),
                                               with_bias ? want_b.data() : nullptr);
        ASSERT_LE(relative_error(got, want), kFloatRelTol) << variant << ": " << describe(s, with_bias);
        if (with_bias) {
          ASSERT_LE(relative_error(got_b, want_b), kFloatRelTol) << variant << " dbias: " << describe(s, true);
        }
      }
  }
}

// The reference on a case small enough to work out by hand: 1x1x3x3 input 1..9, 2x2 filter
// [1 0; 0 -1], stride 1, no padding -> y = [1-5, 2-6; 4-8, 5-9] = [-4 -4; -4 -4], + bias 0.5.
TEST(ConvReference, HandComputedForward) {
  Conv2dShape s;
  s.H = s.W = 3, s.R = s.S = 2;
  const std::vector<double> x = {1, 2, 3, 4, 5, 6, 7, 8, 9}, w = {1, 0, 0, -1}, b = {0.5};
  std::vector<double> y(4);
  cpu::conv2d_forward<double>(s, x.data(), w.data(), b.data(), y.data());
  EXPECT_EQ(y, (std::vector<double>{-3.5, -3.5, -3.5, -3.5}));
}

// <conv(x, w), dy> = <x, bwd_data(dy, w)> = <w, bwd_weight(x, dy)>: the three reference kernels
// are the same bilinear form, so any index slip in one of them breaks an equality.
TEST(ConvReference, ThreeKernelsAreAdjoint) {
  std::mt19937 rng(5);
  for (const auto& s : test_shapes()) {
    auto x = random_vector<double>(x_size(s), rng), w = random_vector<double>(w_size(s), rng);
    auto dy = random_vector<double>(y_size(s), rng);
    std::vector<double> y(dy.size()), dx(x.size()), dw(w.size());
    cpu::conv2d_forward_ref<double>(s, x.data(), w.data(), nullptr, y.data());
    cpu::conv2d_backward_data_ref<double>(s, dy.data(), w.data(), dx.data());
    cpu::conv2d_backward_weight_ref<double>(s, x.data(), dy.data(), dw.data(), nullptr);
    double a = 0, b = 0, c = 0;
    for (size_t i = 0; i < y.size(); ++i) a += y[i] * dy[i];
    for (size_t i = 0; i < x.size(); ++i) b += x[i] * dx[i];
    for (size_t i = 0; i < w.size(); ++i) c += w[i] * dw[i];
    EXPECT_NEAR(a, b, 1e-9 * (1 + std::abs(a))) << describe(s, false);
    EXPECT_NEAR(a, c, 1e-9 * (1 + std::abs(a))) << describe(s, false);
  }
}

}  // namespace
