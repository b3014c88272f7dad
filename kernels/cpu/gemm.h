// Dense GEMM on row-major matrices: C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C.
// op(X) is X or X^T (trans_a / trans_b). lda/ldb/ldc are row strides in elements of the stored
// (untransposed) matrices. beta == 0 means C is write-only (its old contents, even NaN, are ignored).
#pragma once
#include <cstdint>

#include "kernels/registry.h"

namespace ember::cpu {

template <class T>
void gemm_ref(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
              const T* B, int64_t ldb, T beta, T* C, int64_t ldc);

using SgemmFn = void (*)(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                         int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// Variants of op "gemm": "avx512", "avx2", "ref" (fastest available first).
kernels::VariantTable<SgemmFn>& sgemm_table();

// Operands already in the micro-kernel's packed layout, for callers that can write them that way
// directly (the Winograd convolution writes its transforms so, instead of sgemm copying them again):
// A as ceil(M / MR) panels of [K][MR] (rows past M zero), B as ceil(N / NR) panels of [K][NR]
// (columns past N zero), each panel 64-byte aligned. C[M,N] = A * B + beta * C, serial (callers run
// it per thread). MR, NR and the function follow the active "gemm" variant, so the Winograd kernels
// can still be compared across GEMM variants.
using SgemmPackedFn = void (*)(int64_t M, int64_t N, int64_t K, const float* Ap, const float* Bp, float beta,
                               float* C, int64_t ldc);
struct SgemmPacked {
  int64_t MR, NR;
  SgemmPackedFn fn;
};
SgemmPacked sgemm_packed();
void sgemm_packed_ref(int64_t M, int64_t N, int64_t K, const float* Ap, const float* Bp, float beta, float* C,
                      int64_t ldc);  // MR = NR = 8
constexpr int64_t kPackedRefTile = 8;

// The active float32 variant; double always uses gemm_ref.
inline void sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                  const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  sgemm_table().get()(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
template <class T>
inline void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
                 int64_t ldb, T beta, T* C, int64_t ldc) {
  if constexpr (sizeof(T) == 4)
    sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else
    gemm_ref<T>(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace ember::cpu
