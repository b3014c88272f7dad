// Fused softmax + cross-entropy over logits[N, C] (one block per row; the probabilities are never
// stored), with the CPU op's options: class weights, ignore_index, label smoothing and the three
// reductions. Forward writes each row's log-sum-exp, loss and weight, then a second kernel sums the
// rows in a fixed order (deterministic) into the mean or sum. Backward recomputes
// softmax = exp(x - lse) on the fly. The per-row formulas below are the CPU op's
// (engine/ops/loss.cpp), written once for the kernels and the host emulation.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/runtime.h"

namespace ember::cuda {
namespace {

constexpr int kThreads = 256;

__host__ __device__ inline bool row_counts(const XentArgs& a, int64_t t) {
  return t != a.ignore_index && t >= 0 && t < a.C;  // out-of-range targets are reported, then count as ignored
}
// Loss of one counted row: nll = lse - x_t, and with label smoothing eps also the weighted mean of
// every class's nll, smooth = sum_c w_c (lse - x_c):
//   (1 - eps) * w_t * nll + eps / C * smooth.
__host__ __device__ inline float row_loss_value(const XentArgs& a, float lse, float x_t, float w_t, float smooth) {
  const float nll = w_t * (lse - x_t);
  return a.label_smoothing == 0.f ? nll : (1.f - a.label_smoothing) * nll + a.label_smoothing / float(a.C) * smooth;
}
// d loss_row / d x_c for softmax p_c, times the row's incoming gradient `scale` (wsum = sum_c w_c):
//   (1 - eps) * w_t * (p_c - [c == t]) + eps / C * (p_c * wsum - w_c).
__host__ __device__ inline float grad_value(const XentArgs& a, float p, bool is_target, float w_t, float w_c, float wsum,
                                            float scale) {
  float d = w_t * (p - (is_target ? 1.f : 0.f));
  if (a.label_smoothing != 0.f)
    d = (1.f - a.label_smoothing) * d + a.label_smoothing / float(a.C) * (p * wsum - w_c);
  return scale * d;
}
// The incoming gradient of row `row` (dloss: [N] for None, a scalar otherwise; nullptr means 1).
__host__ __device__ inline float row_scale(const XentArgs& a, const float* dloss, float total_weight, int64_t row) {
  const float g = dloss ? dloss[a.reduction == XentReduction::None ? row : 0] : 1.f;
  return a.reduction == XentReduction::Mean ? g / total_weight : g;
}

// Sum over the row's classes of f(c), on every thread of the block.
template <class F>
__device__ float row_sum(int64_t C, F f) {
  float s = 0.f;
  for (int64_t j = threadIdx.x; j < C; j += blockDim.x) s += f(j);
  return block_sum(s);
}

__global__ void __launch_bounds__(kThreads) xent_rows_kernel(XentArgs a, const float* __restrict__ logits,
                                                             const int64_t* __restrict__ targets,
                                                             const float* __restrict__ weights, float* __restrict__ row_lse,
                                                             float* __restrict__ row_loss,
                                                             float* __restrict__ row_weight, int* bad_target) {
  const int64_t row = blockIdx.x, C = a.C;
  const float* x = logits + row * C;
  float m = -INFINITY;
  for (int64_t j = threadIdx.x; j < C; j += blockDim.x) m = fmaxf(m, x[j]);
  m = block_max(m);
  const float lse = m + logf(row_sum(C, [&](int64_t j) { return expf(x[j] - m); }));
  const float smooth = a.label_smoothing == 0.f
                           ? 0.f
                           : row_sum(C, [&](int64_t j) { return (weights ? weights[j] : 1.f) * (lse - x[j]); });
  if (threadIdx.x == 0) {
    row_lse[row] = lse;
    const int64_t t = targets[row];
    if (t != a.ignore_index && (t < 0 || t >= C)) atomicExch(bad_target, 1);  // reported by the host after the launch
    const bool counts = row_counts(a, t);
    const float w_t = counts ? (weights ? weights[t] : 1.f) : 0.f;
    row_loss[row] = counts ? row_loss_value(a, lse, x[t], w_t, smooth) : 0.f;
    row_weight[row] = w_t;
  }
}

__global__ void __launch_bounds__(1024) xent_total_kernel(XentArgs a, const float* __restrict__ row_loss,
                                                          const float* __restrict__ row_weight, float* loss,
                                                          float* total_weight) {
  float l = 0.f, w = 0.f;
  for (int64_t i = threadIdx.x; i < a.N; i += blockDim.x) l += row_loss[i], w += row_weight[i];
  l = block_sum(l);
  w = block_sum(w);
  if (threadIdx.x == 0) {
    *total_weight = w;
    // Mean over no counted row is NaN (0/0), as in PyTorch.
    if (loss) *loss = a.reduction == XentReduction::Sum ? l : (w > 0.f ? l / w : NAN);
  }
}

__global__ void __launch_bounds__(kThreads) xent_backward_kernel(XentArgs a, const float* __restrict__ logits,
                                                                 const int64_t* __restrict__ targets,
                                                                 const float* __restrict__ weights,
                                                                 const float* __restrict__ row_lse,
                                                                 const float* __restrict__ total_weight,
                                                                 const float* __restrict__ dloss,
                                                                 float* __restrict__ dlogits) {
  const int64_t row = blockIdx.x, t = targets[row], C = a.C;
  const float wsum = a.label_smoothing == 0.f || !weights ? float(C) : row_sum(C, [&](int64_t j) { return weights[j]; });
  float* out = dlogits + row * C;
  const bool counts = row_counts(a, t);
  const float scale = counts ? row_scale(a, dloss, *total_weight, row) : 0.f;
  const float w_t = counts ? (weights ? weights[t] : 1.f) : 0.f;
  const float* x = logits + row * C;
  const float lse = row_lse[row];
  for (int64_t j = threadIdx.x; j < C; j += blockDim.x)
    out[j] = grad_value(a, expf(x[j] - lse), j == t, w_t, weights ? weights[j] : 1.f, wsum, scale);
}

void check_shape(const XentArgs& a, const char* what) {
  EMBER_CUDA_REQUIRE(a.N > 0 && a.C > 0 && a.N <= INT32_MAX, std::string("softmax_xent ") + what +
                                                                 ": bad logits shape [" + std::to_string(a.N) + ", " +
                                                                 std::to_string(a.C) + "]");
}

}  // namespace

void softmax_xent_forward(const XentArgs& a, const float* logits, const int64_t* targets, const float* weights,
                          float* row_loss, float* loss, float* row_lse, float* total_weight) {
  check_shape(a, "forward");
  DeviceScratch<float> row_weight(a.N);
  DeviceScratch<int> bad(1);
  memset_zero(bad.get(), sizeof(int));
  xent_rows_kernel<<<unsigned(a.N), kThreads, 0, stream()>>>(a, logits, targets, weights, row_lse, row_loss,
                                                              row_weight.get(), bad.get());
  EMBER_CUDA_CHECK_LAUNCH();
  xent_total_kernel<<<1, 1024, 0, stream()>>>(a, row_loss, row_weight.get(), a.reduction == XentReduction::None ? nullptr : loss,
                                              total_weight);
  EMBER_CUDA_CHECK_LAUNCH();
  int bad_host = 0;
  memcpy_d2h(&bad_host, bad.get(), sizeof(int));  // one tiny sync buys a clear error for bad labels
  EMBER_CUDA_REQUIRE(bad_host == 0, "softmax_xent forward: a target is outside [0, " + std::to_string(a.C) +
                                        ") and is not ignore_index " + std::to_string(a.ignore_index));
}

void softmax_xent_backward(const XentArgs& a, const float* logits, const int64_t* targets, const float* weights,
                           const float* row_lse, const float* total_weight, const float* dloss, float* dlogits) {
  check_shape(a, "backward");
  xent_backward_kernel<<<unsigned(a.N), kThreads, 0, stream()>>>(a, logits, targets, weights, row_lse, total_weight,
                                                                  dloss, dlogits);
  EMBER_CUDA_CHECK_LAUNCH();
}

void host_emulate_softmax_xent(const XentArgs& a, const float* logits, const int64_t* targets, const float* weights,
                               const float* dloss, float* row_loss, float* loss, float* dlogits) {
  const int64_t N = a.N, C = a.C;
  std::vector<float> lse(static_cast<size_t>(N));
  float total = 0.f, total_weight = 0.f, wsum = 0.f;
  for (int64_t c = 0; c < C; ++c) wsum += weights ? weights[c] : 1.f;
  for (int64_t i = 0; i < N; ++i) {
    const float* x = logits + i * C;
    float m = -INFINITY, s = 0.f, smooth = 0.f;
    for (int64_t j = 0; j < C; ++j) m = std::max(m, x[j]);
    for (int64_t j = 0; j < C; ++j) s += std::exp(x[j] - m);
    lse[size_t(i)] = m + std::log(s);
    for (int64_t j = 0; j < C; ++j) smooth += (weights ? weights[j] : 1.f) * (lse[size_t(i)] - x[j]);
    const int64_t t = targets[i];
    const bool counts = row_counts(a, t);
    const float w_t = counts ? (weights ? weights[t] : 1.f) : 0.f;
    row_loss[i] = counts ? row_loss_value(a, lse[size_t(i)], x[t], w_t, smooth) : 0.f;
    total += row_loss[i], total_weight += w_t;
  }
  if (a.reduction != XentReduction::None) *loss = a.reduction == XentReduction::Sum ? total : total / total_weight;
  for (int64_t i = 0; i < N; ++i) {
    const int64_t t = targets[i];
    const bool counts = row_counts(a, t);
    const float scale = counts ? row_scale(a, dloss, total_weight, i) : 0.f, w_t = counts ? (weights ? weights[t] : 1.f) : 0.f;
    for (int64_t j = 0; j < C; ++j)
      dlogits[i * C + j] = grad_value(a, std::exp(logits[i * C + j] - lse[size_t(i)]), j == t, w_t,
                                      weights ? weights[j] : 1.f, wsum, scale);
  }
}

}  // namespace ember::cuda
