// Reference GEMM: the definition, in plain loops. Accumulates in double so that it can serve as the
// yardstick the fast float variants are tested against.
#include "kernels/cpu/gemm.h"

namespace ember::cpu {

template <class T>
void gemm_ref(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
              const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      double sum = 0;
      for (int64_t k = 0; k < K; ++k) {
        const T a = trans_a ? A[k * lda + i] : A[i * lda + k];
        const T b = trans_b ? B[j * ldb + k] : B[k * ldb + j];
        sum += double(a) * double(b);
      }
      T& c = C[i * ldc + j];
      // beta == 0 must not read C: its old content may be uninitialised or NaN.
      c = beta == T(0) ? T(alpha * sum) : T(alpha * sum + beta * double(c));
    }
  }
}

// The packed layout read element by element (MR = NR = 8), summed in double like gemm_ref.
void sgemm_packed_ref(int64_t M, int64_t N, int64_t K, const float* Ap, const float* Bp, float beta, float* C,
                      int64_t ldc) {
  constexpr int64_t R = kPackedRefTile;
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double sum = 0;
      for (int64_t k = 0; k < K; ++k)
        sum += double(Ap[((i / R) * K + k) * R + i % R]) * double(Bp[((j / R) * K + k) * R + j % R]);
      float& c = C[i * ldc + j];
      c = beta == 0.f ? float(sum) : float(sum + double(beta) * double(c));
    }
}

template void gemm_ref<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*,
                              int64_t, float, float*, int64_t);
template void gemm_ref<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t, const double*,
                               int64_t, double, double*, int64_t);

}  // namespace ember::cpu
