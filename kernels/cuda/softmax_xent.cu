// Fused softmax + cross-entropy over logits[N, C] (one block per row; the probabilities are never
// stored). Forward writes each row's log-sum-exp, weighted loss and weight, then a second kernel
// sums rows in a fixed order (deterministic) into the mean loss. Backward recomputes
// softmax = exp(x - lse) on the fly.
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/runtime.h"

namespace ember::cuda {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ bool row_ignored(int64_t t, int64_t ignore_index) { return t == ignore_index; }

__global__ void __launch_bounds__(kThreads) xent_rows_kernel(int64_t C, const float* __restrict__ logits,
                                                             const int64_t* __restrict__ targets,
                                                             const float* __restrict__ weights, int64_t ignore_index,
                                                             float* __restrict__ row_lse,
                                                             float* __restrict__ row_loss,
                                                             float* __restrict__ row_weight, int* bad_target) {
  const int64_t row = blockIdx.x;
  const float* x = logits + row * C;
  float m = -INFINITY;
  for (int64_t j = threadIdx.x; j < C; j += blockDim.x) m = fmaxf(m, x[j]);
  m = block_max(m);
  float sum = 0.f;
  for (int64_t j = threadIdx.x; j < C; j += blockDim.x) sum += expf(x[j] - m);
  sum = block_sum(sum);
  if (threadIdx.x == 0) {
    const float lse = m + logf(sum);
    row_lse[row] = lse;
    const int64_t t = targets[row];
    if (row_ignored(t, ignore_index)) {
      row_loss[row] = 0.f, row_weight[row] = 0.f;
    } else if (t < 0 || t >= C) {
      atomicExch(bad_target, 1);  // reported by the host after the launch
      row_loss[row] = 0.f, row_weight[row] = 0.f;
    } else {
      const float w = weights ? weights[t] : 1.f;
      row_loss[row] = w * (lse - x[t]);
      row_weight[row] = w;
    }
  }
}

__global__ void __launch_bounds__(1024) xent_total_kernel(int64_t N, const float* __restrict__ row_loss,
                                                          const float* __restrict__ row_weight, float* loss,
                                                          float* total_weight) {
  float l = 0.f, w = 0.f;
  for (int64_t i = threadIdx.x; i < N; i += blockDim.x) l += row_loss[i], w += row_weight[i];
  l = block_sum(l);
  w = block_sum(w);
  if (threadIdx.x == 0) {
    *total_weight = w;
    *loss = w > 0.f ? l / w : NAN;  // every row ignored: PyTorch also returns NaN (0/0)
  }
}

__global__ void __launch_bounds__(kThreads) xent_backward_kernel(int64_t C, const float* __restrict__ logits,
                                                                 const int64_t* __restrict__ targets,
                                                                 const float* __restrict__ weights,
                                                                 int64_t ignore_index, const float* __restrict__ row_lse,
                                                                 const float* __restrict__ total_weight,
                                                                 const float* __restrict__ dloss,
                                                                 float* __restrict__ dlogits) {
  const int64_t row = blockIdx.x, t = targets[row];
  float* out = dlogits + row * C;
  const bool ignored = row_ignored(t, ignore_index) || t < 0 || t >= C;
  const float scale = ignored ? 0.f : (weights ? weights[t] : 1.f) * (dloss ? *dloss : 1.f) / *total_weight;
  const float* x = logits + row * C;
  const float lse = row_lse[row];
  for (int64_t j = threadIdx.x; j < C; j += blockDim.x) {
    const float softmax = expf(x[j] - lse);
    out[j] = scale * (softmax - (j == t ? 1.f : 0.f));
  }
}

}  // namespace

void softmax_xent_forward(int64_t N, int64_t C, const float* logits, const int64_t* targets, const float* weights,
                          int64_t ignore_index, float* loss, float* row_lse, float* total_weight) {
  EMBER_CUDA_REQUIRE(N > 0 && C > 0 && N <= INT32_MAX,
                     "softmax_xent forward: bad logits shape [" + std::to_string(N) + ", " + std::to_string(C) + "]");
  DeviceScratch<float> per_row(2 * N);
  DeviceScratch<int> bad(1);
  memset_zero(bad.get(), sizeof(int));
  xent_rows_kernel<<<unsigned(N), kThreads, 0, stream()>>>(C, logits, targets, weights, ignore_index, row_lse,
                                                            per_row.get(), per_row.get() + N, bad.get());
  EMBER_CUDA_CHECK_LAUNCH();
  xent_total_kernel<<<1, 1024, 0, stream()>>>(N, per_row.get(), per_row.get() + N, loss, total_weight);
  EMBER_CUDA_CHECK_LAUNCH();
  int bad_host = 0;
  memcpy_d2h(&bad_host, bad.get(), sizeof(int));  // one tiny sync buys a clear error for bad labels
  EMBER_CUDA_REQUIRE(bad_host == 0, "softmax_xent forward: a target is outside [0, " + std::to_string(C) +
                                        ") and is not ignore_index " + std::to_string(ignore_index));
}

void softmax_xent_backward(int64_t N, int64_t C, const float* logits, const int64_t* targets, const float* weights,
                           int64_t ignore_index, const float* row_lse, const float* total_weight, const float* dloss,
                           float* dlogits) {
  EMBER_CUDA_REQUIRE(N > 0 && C > 0 && N <= INT32_MAX,
                     "softmax_xent backward: bad logits shape [" + std::to_string(N) + ", " + std::to_string(C) + "]");
  xent_backward_kernel<<<unsigned(N), kThreads, 0, stream()>>>(C, logits, targets, weights, ignore_index, row_lse,
                                                                total_weight, dloss, dlogits);
  EMBER_CUDA_CHECK_LAUNCH();
}

}  // namespace ember::cuda
