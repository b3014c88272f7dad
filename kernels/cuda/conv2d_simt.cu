// Variant "ember_simt": FP32 implicit-GEMM convolution on CUDA cores.
// Each 256-thread block computes a 64x64 tile of one group's GEMM (conv2d_gemm.cuh): it stages a
// 16-deep slice of A and B in shared memory, then every thread accumulates a 4x4 register tile
// whose rows/cols are 16 apart (so a warp reads consecutive shared-memory words, no conflicts).
#include "kernels/cuda/conv2d_gemm.cuh"

namespace ember::cuda::conv {
namespace {

constexpr int kTileM = 64, kTileN = 64, kTileK = 16, kThreads = 256;

template <class Problem>
__global__ void __launch_bounds__(kThreads) simt_gemm_kernel(Problem prob, int depth_chunk) {
  __shared__ float As[kTileK][kTileM];
  __shared__ float Bs[kTileK][kTileN];
  const int groups = prob.g.groups;
  const int grp = blockIdx.z % groups, split = blockIdx.z / groups;
  const int row0 = blockIdx.x * kTileM, col0 = blockIdx.y * kTileN;
  const int rows = prob.rows(), cols = prob.cols();
  const int k_begin = split * depth_chunk, k_end = min(prob.depth(), k_begin + depth_chunk);
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;

  float acc[4][4] = {};
  for (int k0 = k_begin; k0 < k_end; k0 += kTileK) {
    // Consecutive threads take consecutive rows/cols: coalesced along output pixels.
    for (int i = threadIdx.x; i < kTileK * kTileM; i += kThreads) {
      const int kk = i / kTileM, mm = i % kTileM, row = row0 + mm, k = k0 + kk;
      As[kk][mm] = (row < rows && k < k_end) ? prob.a(grp, row, k) : 0.f;
    }
    for (int i = threadIdx.x; i < kTileK * kTileN; i += kThreads) {
      const int kk = i / kTileN, nn = i % kTileN, col = col0 + nn, k = k0 + kk;
      Bs[kk][nn] = (col < cols && k < k_end) ? prob.b(grp, k, col) : 0.f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kTileK; ++kk) {
      float a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) a[i] = As[kk][ty + 16 * i];
#pragma unroll
      for (int j = 0; j < 4; ++j) b[j] = Bs[kk][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) {
      const int row = row0 + ty + 16 * i, col = col0 + tx + 16 * j;
      if (row < rows && col < cols) prob.store(grp, row, col, acc[i][j]);
    }
}

template <class Problem>
void launch(const Problem& prob, int64_t rows, int64_t cols, int64_t depth, bool split_depth) {
  const int64_t tiles_m = (rows + kTileM - 1) / kTileM, tiles_n = (cols + kTileN - 1) / kTileN;
  EMBER_CUDA_REQUIRE(tiles_n <= 65535, "conv2d simt: too many output columns for one launch");
  const DepthSplit plan = plan_depth_split(tiles_m * tiles_n, prob.g.groups, depth, kTileK, split_depth);
  const dim3 grid(unsigned(tiles_m), unsigned(tiles_n), unsigned(prob.g.groups * plan.splits));
  simt_gemm_kernel<Problem><<<grid, kThreads, 0, stream()>>>(prob, plan.chunk);
  EMBER_CUDA_CHECK_LAUNCH();
}

}  // namespace

void simt_forward(const Conv2dShape& s, const float* x, const float* w, const float* bias, float* y) {
  const Geom g = make_geom(s, "forward (ember_simt)");
  if (g.Cg == 1) return depthwise_forward(g, x, w, bias, y);
  launch(ForwardProblem{g, x, w, bias, y}, int64_t(g.N) * g.P * g.Q, g.Kg, int64_t(g.Cg) * g.R * g.S, false);
}

void simt_backward_data(const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  const Geom g = make_geom(s, "backward data (ember_simt)");
  if (g.Cg == 1) return depthwise_backward_data(g, dy, w, dx);
  launch(BackwardDataProblem{g, dy, w, dx}, int64_t(g.N) * g.H * g.W, g.Cg, int64_t(g.Kg) * g.R * g.S, false);
}

void simt_backward_weight(const Conv2dShape& s, const float* x, const float* dy, float* dw, float* dbias) {
  const Geom g = make_geom(s, "backward weight (ember_simt)");
  if (dbias) bias_grad(g, dy, dbias);
  if (g.Cg == 1) return depthwise_backward_weight(g, x, dy, dw);
  memset_zero(dw, size_t(g.K) * g.Cg * g.R * g.S * sizeof(float));  // split-depth blocks accumulate
  launch(BackwardWeightProblem{g, x, dy, dw}, g.Kg, int64_t(g.Cg) * g.R * g.S, int64_t(g.N) * g.P * g.Q, true);
}

}  // namespace ember::cuda::conv
