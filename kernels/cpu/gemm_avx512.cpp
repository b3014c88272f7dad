// Fast SGEMM for AVX-512F (Skylake-SP, Ice Lake, Zen4 and later): 12x32 register tile driven by the
// same cache-blocked loop nest (gemm_pack.h) as the AVX2 variant.
#include <immintrin.h>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/gemm_pack.h"

namespace ember::cpu {
namespace {

// 12 rows x 32 columns = 24 zmm accumulators + 2 B vectors + 1 broadcast = 27 of the 32 zmm registers.
struct Avx512Kernel12x32 {
  static constexpr int MR = 12, NR = 32;
  static void run(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float beta) {
    // Every loop over the accumulators is unrolled by pragma so that GCC keeps `acc` in registers
    // (otherwise it lived on the stack outside the k loop: 24 zmm stores and reloads per tile).
    __m512 acc[MR][2];
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
#pragma GCC unroll 2
    for (int64_t k = 0; k < kc; ++k) {
      const __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 12
      for (int i = 0; i < MR; ++i) {
        const __m512 ai = _mm512_set1_ps(a[i]);
        acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
        acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
      }
      a += MR;
      b += NR;
    }
    if (beta == 0.f) {
#pragma GCC unroll 12
      for (int i = 0; i < MR; ++i) {
        _mm512_storeu_ps(c + i * ldc, acc[i][0]);
        _mm512_storeu_ps(c + i * ldc + 16, acc[i][1]);
      }
    } else {
      const __m512 vb = _mm512_set1_ps(beta);
#pragma GCC unroll 12
      for (int i = 0; i < MR; ++i) {
        float* ci = c + i * ldc;
        _mm512_storeu_ps(ci, _mm512_fmadd_ps(vb, _mm512_loadu_ps(ci), acc[i][0]));
        _mm512_storeu_ps(ci + 16, _mm512_fmadd_ps(vb, _mm512_loadu_ps(ci + 16), acc[i][1]));
      }
    }
  }
};

// Typical AVX-512 server core: 32-48 KiB L1d (32 x KC B panel = 32 KiB at KC=256 is too much with A
// streaming, so KC=192 -> 24 KiB), >= 1 MiB L2 for the MC x KC A block (~288 KiB).
constexpr gemm_detail::Blocking kAvx512Blocking{384, 192, 4096};

}  // namespace

void sgemm_avx512(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                  int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == 0.f) return gemm_detail::scale_c(M, N, beta, C, ldc);
  if (M * N * K <= 8 * 8 * 8 || M == 1)
    return gemm_detail::gemm_small(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  gemm_detail::gemm_blocked<Avx512Kernel12x32>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc,
                                               kAvx512Blocking);
}

SgemmPacked sgemm_packed_avx512() {
  return {Avx512Kernel12x32::MR, Avx512Kernel12x32::NR,
          [](int64_t M, int64_t N, int64_t K, const float* Ap, const float* Bp, float beta, float* C, int64_t ldc) {
            gemm_detail::gemm_prepacked<Avx512Kernel12x32>(M, N, K, Ap, Bp, beta, C, ldc, kAvx512Blocking.KC);
          }};
}

}  // namespace ember::cpu
