// Every SGEMM variant this CPU can run, against gemm_ref (double accumulation).
// Bound: relative Frobenius error ||C_variant - C_ref|| / ||C_ref|| <= 1e-5 for float.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "kernel_test_util.h"

// The blocked driver and packers of the fast variants, compiled here with AVX2 enabled under GCC (the
// test only runs them after has_avx2()) so that the AVX-512 tile geometry can be exercised on any AVX2
// machine. Clang has no `#pragma GCC target`: there the portable packing paths are tested instead.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define EMBER_GEMM_PACK_FORCE_AVX2
#include "kernels/cpu/gemm_pack.h"
#pragma GCC pop_options
#else
#include "kernels/cpu/gemm_pack.h"
#endif

namespace {

using ember::testing::random_vector;
using ember::testing::relative_error;

using ember::cpu::gemm_ref;
using ember::cpu::sgemm;
using ember::cpu::sgemm_table;
namespace kernels = ember::kernels;

constexpr double kFloatRelTol = 1e-5;



struct GemmCase {
  bool ta, tb;
  int64_t M, N, K;
  float alpha, beta;
  int64_t pad;  // extra row stride beyond the stored width (lda > width etc.)
};

std::string describe(const std::string& variant, const GemmCase& c) {
  return variant + ": ta=" + std::to_string(c.ta) + " tb=" + std::to_string(c.tb) + " M=" + std::to_string(c.M) +
         " N=" + std::to_string(c.N) + " K=" + std::to_string(c.K) + " alpha=" + std::to_string(c.alpha) +
         " beta=" + std::to_string(c.beta) + " pad=" + std::to_string(c.pad);
}

// Runs one case on the active variant and on gemm_ref; C is poisoned with NaN when beta == 0 so that
// a variant that reads C (or leaves an element unwritten) fails.
void check_case(const std::string& variant, const GemmCase& c, std::mt19937& rng) {
  const int64_t a_rows = c.ta ? c.K : c.M, a_cols = c.ta ? c.M : c.K;
  const int64_t b_rows = c.tb ? c.N : c.K, b_cols = c.tb ? c.K : c.N;
  const int64_t lda = a_cols + c.pad, ldb = b_cols + c.pad, ldc = c.N + c.pad;
  auto A = random_vector(size_t(a_rows * lda), rng);
  auto B = random_vector(size_t(b_rows * ldb), rng);
  std::vector<float> C0 = random_vector(size_t(c.M * ldc), rng);
  if (c.beta == 0.f) C0.assign(C0.size(), std::numeric_limits<float>::quiet_NaN());
  auto got = C0, want = C0;
  sgemm(c.ta, c.tb, c.M, c.N, c.K, c.alpha, A.data(), lda, B.data(), ldb, c.beta, got.data(), ldc);
  gemm_ref<float>(c.ta, c.tb, c.M, c.N, c.K, c.alpha, A.data(), lda, B.data(), ldb, c.beta, want.data(), ldc);
  // Padding columns of C must be left untouched (NaN stays NaN, so compare bitwise-ish via isnan).
  std::vector<float> got_body, want_body;
  for (int64_t i = 0; i < c.M; ++i)
    for (int64_t j = 0; j < ldc; ++j) {
      const size_t at = size_t(i * ldc + j);
      if (j < c.N) {
        got_body.push_back(got[at]);
        want_body.push_back(want[at]);
      } else if (!(std::isnan(C0[at]) ? std::isnan(got[at]) : got[at] == C0[at])) {
        ADD_FAILURE() << describe(variant, c) << ": wrote outside the matrix at row " << i << " col " << j;
        return;
      }
    }
  EXPECT_LE(relative_error(got_body, want_body), kFloatRelTol) << describe(variant, c);
}

class GemmVariants : public ::testing::Test {
 protected:
  void TearDown() override { kernels::set_variant("gemm", ""); }
};

TEST_F(GemmVariants, TableListsAllVariantsRefLast) {
  auto names = kernels::variants("gemm");
  ASSERT_EQ(names.size(), 3u);
  EXPECT_EQ(names[0], "avx512");
  EXPECT_EQ(names[1], "avx2");
  EXPECT_EQ(names[2], "ref");
  EXPECT_EQ(kernels::has_avx512(), kernels::available_variants("gemm")[0] == "avx512");
}

TEST_F(GemmVariants, MatchReferenceOnOddShapesAllTransposes) {
  std::mt19937 rng(1234);
  const int64_t sizes[] = {1, 7, 17, 63, 129};
  for (const auto& variant : kernels::available_variants("gemm")) {
    kernels::set_variant("gemm", variant);
    for (int t = 0; t < 4; ++t)
      for (int64_t M : sizes)
        for (int64_t N : sizes)
          for (int64_t K : {int64_t(1), int64_t(17), int64_t(129)}) {
            const float beta = (M + N + K) % 3 == 0 ? 0.f : ((M + N) % 2 ? 1.f : -0.5f);
            check_case(variant, {bool(t & 1), bool(t & 2), M, N, K, 1.3f, beta, (M % 2) ? 3 : 0}, rng);
          }
  }
}

// Sizes that cross every cache block boundary (MC, KC, NC) and the parallel split.
TEST_F(GemmVariants, MatchReferenceAcrossCacheBlocks) {
  std::mt19937 rng(99);
  const GemmCase cases[] = {
      {false, false, 500, 300, 700, 1.f, 0.f, 0},  {true, false, 250, 4200, 37, 0.7f, 1.f, 5},
      {false, true, 13, 777, 520, -1.f, 2.f, 1},   {true, true, 481, 95, 263, 1.f, 0.f, 2},
      {false, false, 2, 5000, 300, 1.f, 0.5f, 0},  {false, false, 4097, 3, 65, 1.f, 0.f, 0},
  };
  for (const auto& variant : kernels::available_variants("gemm")) {
    kernels::set_variant("gemm", variant);
    for (const auto& c : cases) check_case(variant, c, rng);
  }
}

// sgemm_packed: the caller packs A and B in the active variant's panel layout; odd sizes (partial
// row and column panels), depths beyond one KC block, beta 0 (C poisoned) and not, a padded ldc.
TEST_F(GemmVariants, PackedOperandsMatchReference) {
  std::mt19937 rng(4321);
  const GemmCase cases[] = {{false, false, 1, 1, 1, 1.f, 0.f, 0},      {false, false, 13, 33, 17, 1.f, 0.f, 3},
                            {false, false, 64, 100, 263, 1.f, 1.f, 0}, {false, false, 37, 70, 700, 1.f, -0.5f, 5},
                            {false, false, 25, 17, 0, 1.f, 0.5f, 0}};
  for (const auto& variant : kernels::available_variants("gemm")) {
    kernels::set_variant("gemm", variant);
    const auto packed = ember::cpu::sgemm_packed();
    for (const auto& c : cases) {
      const int64_t MR = packed.MR, NR = packed.NR, ldc = c.N + c.pad;
      const int64_t Mp = (c.M + MR - 1) / MR * MR, Np = (c.N + NR - 1) / NR * NR;
      auto A = random_vector(size_t(c.M * c.K), rng), B = random_vector(size_t(c.K * c.N), rng);
      std::vector<float> Ap(size_t(Mp * c.K + 16), 0.f), Bp(size_t(c.K * Np + 16), 0.f);
      float *ap = ember::testing::aligned64(Ap), *bp = ember::testing::aligned64(Bp);  // 64-byte aligned panels
      for (int64_t i = 0; i < c.M; ++i)
        for (int64_t k = 0; k < c.K; ++k) ap[((i / MR) * c.K + k) * MR + i % MR] = A[size_t(i * c.K + k)];
      for (int64_t k = 0; k < c.K; ++k)
        for (int64_t j = 0; j < c.N; ++j) bp[((j / NR) * c.K + k) * NR + j % NR] = B[size_t(k * c.N + j)];
      std::vector<float> got = random_vector(size_t(c.M * ldc), rng);
      if (c.beta == 0.f) got.assign(got.size(), std::numeric_limits<float>::quiet_NaN());
      auto want = got;
      packed.fn(c.M, c.N, c.K, ap, bp, c.beta, got.data(), ldc);
      gemm_ref<float>(false, false, c.M, c.N, c.K, 1.f, A.data(), c.K, B.data(), c.N, c.beta, want.data(), ldc);
      std::vector<float> got_body, want_body;
      for (int64_t i = 0; i < c.M; ++i)
        for (int64_t j = 0; j < c.N; ++j) {
          got_body.push_back(got[size_t(i * ldc + j)]);
          want_body.push_back(want[size_t(i * ldc + j)]);
        }
      EXPECT_LE(relative_error(got_body, want_body), kFloatRelTol) << describe(variant + " packed", c);
      for (int64_t i = 0; i < c.M; ++i)
        for (int64_t j = c.N; j < ldc; ++j)
          if (!(std::isnan(want[size_t(i * ldc + j)]) ? std::isnan(got[size_t(i * ldc + j)])
                                                      : got[size_t(i * ldc + j)] == want[size_t(i * ldc + j)]))
            ADD_FAILURE() << describe(variant + " packed", c) << ": wrote past N at row " << i << " col " << j;
    }
  }
}

TEST_F(GemmVariants, BetaZeroIgnoresNaNAndAlphaZeroScalesC) {
  std::mt19937 rng(7);
  for (const auto& variant : kernels::available_variants("gemm")) {
    kernels::set_variant("gemm", variant);
    check_case(variant, {false, false, 33, 65, 0, 1.f, 0.f, 0}, rng);  // K == 0: C = 0
    check_case(variant, {false, false, 33, 65, 10, 0.f, 0.f, 0}, rng);  // alpha == 0, beta == 0: C = 0
    check_case(variant, {true, true, 33, 65, 10, 0.f, 3.f, 1}, rng);    // alpha == 0: C = beta * C
  }
}

// A plain scalar micro-kernel with the AVX-512 variant's 12x32 tile: runs the shared driver and
// packing code (everything of gemm_avx512.cpp except its intrinsics) on a CPU without AVX-512.
struct ScalarKernel12x32 {
  static constexpr int MR = 12, NR = 32;
  static void run(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float beta) {
    float acc[MR][NR] = {};
    for (int64_t k = 0; k < kc; ++k)
      for (int i = 0; i < MR; ++i)
        for (int j = 0; j < NR; ++j) acc[i][j] += a[k * MR + i] * b[k * NR + j];
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) c[i * ldc + j] = (beta == 0.f ? 0.f : beta * c[i * ldc + j]) + acc[i][j];
  }
};

TEST(GemmDriver, Avx512TileGeometryWithScalarKernel) {
  if (!kernels::has_avx2()) GTEST_SKIP() << "packing code is compiled for AVX2";
  std::mt19937 rng(11);
  const GemmCase cases[] = {{false, false, 37, 75, 19, 1.f, 0.f, 0},  {true, false, 130, 33, 200, 0.5f, 1.f, 3},
                            {false, true, 12, 32, 8, 1.f, -1.f, 0},   {true, true, 25, 97, 77, 2.f, 0.f, 1},
                            {false, false, 400, 70, 450, 1.f, 0.f, 0}};
  for (const auto& c : cases) {
    const int64_t lda = (c.ta ? c.M : c.K) + c.pad, ldb = (c.tb ? c.K : c.N) + c.pad, ldc = c.N + c.pad;
    auto A = random_vector(size_t((c.ta ? c.K : c.M) * lda), rng);
    auto B = random_vector(size_t((c.tb ? c.N : c.K) * ldb), rng);
    auto got = random_vector(size_t(c.M * ldc), rng);
    if (c.beta == 0.f) got.assign(got.size(), std::numeric_limits<float>::quiet_NaN());
    auto want = got;
    ember::cpu::gemm_detail::gemm_blocked<ScalarKernel12x32>(c.ta, c.tb, c.M, c.N, c.K, c.alpha, A.data(), lda,
                                                             B.data(), ldb, c.beta, got.data(), ldc, {48, 64, 96});
    gemm_ref<float>(c.ta, c.tb, c.M, c.N, c.K, c.alpha, A.data(), lda, B.data(), ldb, c.beta, want.data(), ldc);
    std::vector<float> g, w;
    for (int64_t i = 0; i < c.M; ++i)
      for (int64_t j = 0; j < c.N; ++j) {
        g.push_back(got[size_t(i * ldc + j)]);
        w.push_back(want[size_t(i * ldc + j)]);
      }
    EXPECT_LE(relative_error(g, w), kFloatRelTol) << describe("scalar12x32", c);
  }
}

TEST_F(GemmVariants, DoubleGemmUsesReference) {
  std::vector<double> A = {1, 2, 3, 4, 5, 6}, B = {7, 8, 9, 10, 11, 12}, C(4, 0.0);
  // Independent hand computation: [1 2 3; 4 5 6] * [7 8; 9 10; 11 12] = [58 64; 139 154].
  ember::cpu::gemm<double>(false, false, 2, 2, 3, 1.0, A.data(), 3, B.data(), 2, 0.0, C.data(), 2);
  EXPECT_EQ(C, (std::vector<double>{58, 64, 139, 154}));
}

TEST_F(GemmVariants, UnknownVariantThrows) {
  EXPECT_THROW(kernels::set_variant("gemm", "nope"), std::invalid_argument);
  if (!kernels::has_avx512()) {
    EXPECT_THROW(kernels::set_variant("gemm", "avx512"), std::runtime_error);
  }
}

}  // namespace
