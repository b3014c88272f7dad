// Row-major SGEMM on cuBLAS / cuBLASLt (same contract as kernels/cpu/gemm.h). cuBLAS is
// column-major, so C[M,N] = op(A) op(B) is computed as C^T[N,M] = op(B)^T op(A)^T: the operands
// swap places and a row-major matrix is read as its column-major transpose, with no copies.
// Precision picks the compute type: FP32 exact, TF32 / BF16 tensor cores with FP32 accumulate
// (inputs stay float; cuBLAS rounds them internally).
#include <cublasLt.h>
#include <cublas_v2.h>

#include "kernels/cuda/runtime.h"

namespace ember::cuda {
namespace {

#define EMBER_CUBLAS_CHECK(call)                                                                          \
  do {                                                                                                    \
    cublasStatus_t st_ = (call);                                                                          \
    if (st_ != CUBLAS_STATUS_SUCCESS)                                                                     \
      ::ember::cuda::throw_error(std::string(#call) + " failed: " + cublasGetStatusString(st_), __FILE__, \
                                 __LINE__);                                                               \
  } while (0)

cublasHandle_t blas() {
  static cublasHandle_t handle = [] {
    cublasHandle_t h = nullptr;
    EMBER_CUBLAS_CHECK(cublasCreate(&h));
    EMBER_CUBLAS_CHECK(cublasSetStream(h, stream()));
    return h;
  }();
  return handle;
}
cublasLtHandle_t blas_lt() {
  static cublasLtHandle_t handle = [] {
    cublasLtHandle_t h = nullptr;
    EMBER_CUBLAS_CHECK(cublasLtCreate(&h));
    return h;
  }();
  return handle;
}

cublasComputeType_t compute_type(Precision p) {
  switch (p) {
    case Precision::TF32: return CUBLAS_COMPUTE_32F_FAST_TF32;
    case Precision::BF16: return CUBLAS_COMPUTE_32F_FAST_16BF;
    default: return CUBLAS_COMPUTE_32F;
  }
}

void check_dims(const char* op, int64_t M, int64_t N, int64_t K) {
  EMBER_CUDA_REQUIRE(M >= 0 && N >= 0 && K >= 0 && M <= INT32_MAX && N <= INT32_MAX && K <= INT32_MAX,
                     std::string(op) + ": bad dims M=" + std::to_string(M) + " N=" + std::to_string(N) +
                         " K=" + std::to_string(K));
}

}  // namespace

void sgemm(Precision prec, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  check_dims("sgemm (cuBLAS)", M, N, K);
  if (M == 0 || N == 0) return;
  EMBER_CUBLAS_CHECK(cublasGemmEx(blas(), trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                                  int(N), int(M), int(K), &alpha, B, CUDA_R_32F, int(ldb), A, CUDA_R_32F, int(lda),
                                  &beta, C, CUDA_R_32F, int(ldc), compute_type(prec), CUBLAS_GEMM_DEFAULT));
}

void sgemm_lt_bias(Precision prec, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A,
                   int64_t lda, const float* B, int64_t ldb, const float* bias, float* C, int64_t ldc) {
  check_dims("sgemm_lt_bias (cuBLASLt)", M, N, K);
  if (M == 0 || N == 0) return;
  // Column-major view: D[N,M] = op(B^T) op(A^T) + bias[N] broadcast along columns (the epilogue's bias
  // has one value per row of D, i.e. per column of our row-major C).
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr;
  EMBER_CUBLAS_CHECK(cublasLtMatmulDescCreate(&desc, compute_type(prec), CUDA_R_32F));
  const cublasOperation_t op_first = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, op_second = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  EMBER_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_first, sizeof(op_first)));
  EMBER_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_second, sizeof(op_second)));
  if (bias) {
    const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
    EMBER_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue)));
    EMBER_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
  }
  EMBER_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&la, CUDA_R_32F, trans_b ? K : N, trans_b ? N : K, ldb));
  EMBER_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&lb, CUDA_R_32F, trans_a ? M : K, trans_a ? K : M, lda));
  EMBER_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&lc, CUDA_R_32F, N, M, ldc));

  constexpr size_t kWorkspace = size_t(32) << 20;
  DeviceScratch<unsigned char> workspace(kWorkspace);
  cublasLtMatmulPreference_t pref = nullptr;
  EMBER_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  EMBER_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &kWorkspace,
                                                          sizeof(kWorkspace)));
  cublasLtMatmulHeuristicResult_t heuristic{};
  int found = 0;
  EMBER_CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(blas_lt(), desc, la, lb, lc, lc, pref, 1, &heuristic, &found));
  const float alpha = 1.f, beta = 0.f;
  cublasStatus_t status = CUBLAS_STATUS_NOT_SUPPORTED;
  if (found > 0)
    status = cublasLtMatmul(blas_lt(), desc, &alpha, B, la, A, lb, &beta, C, lc, C, lc, &heuristic.algo,
                            workspace.get(), kWorkspace, stream());
  cublasLtMatmulPreferenceDestroy(pref);
  cublasLtMatrixLayoutDestroy(la);
  cublasLtMatrixLayoutDestroy(lb);
  cublasLtMatrixLayoutDestroy(lc);
  cublasLtMatmulDescDestroy(desc);
  EMBER_CUDA_REQUIRE(found > 0, "sgemm_lt_bias: cuBLASLt found no algorithm for M=" + std::to_string(M) +
                                    " N=" + std::to_string(N) + " K=" + std::to_string(K));
  EMBER_CUBLAS_CHECK(status);
}

}  // namespace ember::cuda
