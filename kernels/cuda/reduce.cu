// Sum / mean / max over one dim of a contiguous tensor viewed as [outer, dim, inner].
// inner == 1 (reducing the last dim): one warp per row, lanes stride the row, shuffles combine.
// inner > 1: one thread per (outer, inner) column walks dim; neighbouring threads read
// neighbouring addresses, so loads coalesce without any shuffles.
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/runtime.h"

namespace ember::cuda {
namespace {

struct MaxArg {
  float value;
  int64_t index;
};
// Larger value wins; ties (and NaN, which propagates) go to the smaller index, like PyTorch.
__device__ __forceinline__ MaxArg better(MaxArg a, MaxArg b) {
  const bool a_nan = isnan(a.value), b_nan = isnan(b.value);
  if (a_nan || b_nan) return (a_nan && (!b_nan || a.index < b.index)) ? a : b;
  if (a.value != b.value) return a.value > b.value ? a : b;
  return a.index < b.index ? a : b;
}

__global__ void reduce_rows_kernel(ReduceOp op, int64_t outer, int64_t dim, const float* __restrict__ x,
                                   float* __restrict__ out, int64_t* __restrict__ argmax) {
  const int lane = threadIdx.x % 32;
  const int64_t warps = int64_t(gridDim.x) * (blockDim.x / 32);
  for (int64_t row = blockIdx.x * int64_t(blockDim.x / 32) + threadIdx.x / 32; row < outer; row += warps) {
    const float* src = x + row * dim;
    if (op == ReduceOp::Max) {
      MaxArg best{-INFINITY, dim};
      for (int64_t j = lane; j < dim; j += 32) best = better(best, MaxArg{src[j], j});
      for (int offset = 16; offset > 0; offset >>= 1) {
        MaxArg other{__shfl_xor_sync(0xffffffffu, best.value, offset),
                     __shfl_xor_sync(0xffffffffu, best.index, offset)};
        best = better(best, other);
      }
      if (lane == 0) {
        out[row] = best.value;
        if (argmax) argmax[row] = best.index;
      }
    } else {
      float sum = 0.f;
      for (int64_t j = lane; j < dim; j += 32) sum += src[j];
      sum = warp_sum(sum);
      if (lane == 0) out[row] = op == ReduceOp::Mean ? sum / float(dim) : sum;
    }
  }
}

__global__ void reduce_columns_kernel(ReduceOp op, int64_t outer, int64_t dim, int64_t inner,
                                      const float* __restrict__ x, float* __restrict__ out,
                                      int64_t* __restrict__ argmax) {
  const int64_t total = outer * inner;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t o = i / inner, in = i % inner;
    const float* src = x + o * dim * inner + in;
    if (op == ReduceOp::Max) {
      MaxArg best{-INFINITY, dim};
      for (int64_t j = 0; j < dim; ++j) best = better(best, MaxArg{src[j * inner], j});
      out[i] = best.value;
      if (argmax) argmax[i] = best.index;
    } else {
      float sum = 0.f;
      for (int64_t j = 0; j < dim; ++j) sum += src[j * inner];
      out[i] = op == ReduceOp::Mean ? sum / float(dim) : sum;
    }
  }
}

__global__ void scatter_along_dim_kernel(int64_t outer, int64_t dim, int64_t inner, const float* __restrict__ dy,
                                         const int64_t* __restrict__ index, float* __restrict__ dx) {
  const int64_t total = outer * inner;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t o = i / inner, in = i % inner;
    dx[(o * dim + index[i]) * inner + in] = dy[i];
  }
}

}  // namespace

void scatter_along_dim(int64_t outer, int64_t dim, int64_t inner, const float* dy, const int64_t* index, float* dx) {
  if (outer * dim * inner <= 0) return;
  memset_zero(dx, size_t(outer * dim * inner) * sizeof(float));  // same stream: ordered before the scatter
  scatter_along_dim_kernel<<<blocks_for(outer * inner, 256), 256, 0, stream()>>>(outer, dim, inner, dy, index, dx);
  EMBER_CUDA_CHECK_LAUNCH();
}

void reduce_dim(ReduceOp op, int64_t outer, int64_t dim, int64_t inner, const float* x, float* out, int64_t* argmax) {
  EMBER_CUDA_REQUIRE(outer >= 0 && dim > 0 && inner >= 0,
                     "reduce_dim: bad view [" + std::to_string(outer) + ", " + std::to_string(dim) + ", " +
                         std::to_string(inner) + "] (the reduced dim must be non-empty)");
  if (outer == 0 || inner == 0) return;
  if (inner == 1) {
    reduce_rows_kernel<<<blocks_for(outer, 8), 256, 0, stream()>>>(op, outer, dim, x, out, argmax);  // 8 warps/block
  } else {
    reduce_columns_kernel<<<blocks_for(outer * inner, 256), 256, 0, stream()>>>(op, outer, dim, inner, x, out, argmax);
  }
  EMBER_CUDA_CHECK_LAUNCH();
}

}  // namespace ember::cuda
