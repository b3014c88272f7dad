// Fast SGEMM for AVX2 + FMA (Zen3 / Haswell and later): 6x16 register tile driven by the shared
// cache-blocked loop nest in gemm_pack.h.
#include <immintrin.h>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/gemm_pack.h"

namespace ember::cpu {
namespace {

// 6 rows x 16 columns = 12 ymm accumulators + 2 B vectors + 1 broadcast = 15 of the 16 ymm registers.
// Per k step: 2 loads, 6 broadcasts, 12 FMAs, so the two FMA pipes stay the bottleneck.
struct Avx2Kernel6x16 {
  static constexpr int MR = 6, NR = 16;
  static void run(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float beta) {
    __m256 acc[MR][2];
    for (int i = 0; i < MR; ++i) {
      acc[i][0] = acc[i][1] = _mm256_setzero_ps();
      _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);  // C tile is touched last:
      _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 15), _MM_HINT_T0);  // fetch it early
    }
#pragma GCC unroll 4
    for (int64_t k = 0; k < kc; ++k) {
      const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
#pragma GCC unroll 6
      for (int i = 0; i < MR; ++i) {
        const __m256 ai = _mm256_broadcast_ss(a + i);
        acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
        acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
      }
      a += MR;
      b += NR;
    }
    if (beta == 0.f) {
      for (int i = 0; i < MR; ++i) {
        _mm256_storeu_ps(c + i * ldc, acc[i][0]);
        _mm256_storeu_ps(c + i * ldc + 8, acc[i][1]);
      }
    } else {
      const __m256 vb = _mm256_set1_ps(beta);
      for (int i = 0; i < MR; ++i) {
        float* ci = c + i * ldc;
        _mm256_storeu_ps(ci, _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci), acc[i][0]));
        _mm256_storeu_ps(ci + 8, _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci + 8), acc[i][1]));
      }
    }
  }
};

// Zen3: 32 KiB L1d holds the 16 x KC B micro-panel (16 KiB at KC=256) plus streaming A; 512 KiB L2
// holds the MC x KC A block (~240 KiB); the KC x NC B block (4 MiB) sits in the shared 32 MiB L3.
constexpr gemm_detail::Blocking kAvx2Blocking{240, 256, 4080};

}  // namespace

void sgemm_avx2(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == 0.f) return gemm_detail::scale_c(M, N, beta, C, ldc);
  if (M * N * K <= 8 * 8 * 8 || M == 1)
    return gemm_detail::gemm_small(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  gemm_detail::gemm_blocked<Avx2Kernel6x16>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc,
                                            kAvx2Blocking);
}

SgemmPacked sgemm_packed_avx2() {
  return {Avx2Kernel6x16::MR, Avx2Kernel6x16::NR,
          [](int64_t M, int64_t N, int64_t K, const float* Ap, const float* Bp, float beta, float* C, int64_t ldc) {
            gemm_detail::gemm_prepacked<Avx2Kernel6x16>(M, N, K, Ap, Bp, beta, C, ldc, kAvx2Blocking.KC);
          }};
}

}  // namespace ember::cpu
