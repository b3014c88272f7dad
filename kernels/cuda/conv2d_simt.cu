// Variant "ember_simt": FP32 implicit-GEMM convolution on CUDA cores.
// Each 256-thread block computes a 64x64 tile of one group's GEMM (conv2d_gemm.cuh): depth slices
// of 16 of A and B go through registers into one of two shared buffers (conv2d_tiles.cuh: fetched
// before the current slice's math, stored after it), and every thread accumulates a 4x4 register
// tile whose rows/cols are 16 apart (so a warp reads consecutive shared-memory words, no conflicts).
#include "kernels/cuda/conv2d_gemm.cuh"

namespace ember::cuda::conv {
namespace {

using Tiles = SimtTiles;
constexpr int kTileM = Tiles::M, kTileN = Tiles::N, kTileK = Tiles::K, kThreads = Tiles::Threads;
// Rows of 66 floats: a warp staging along the depth writes 16 rows x 2 columns at once, all in one
// bank with rows of 64 floats; with 66 the half-warps take the even and the odd banks, no conflict.
// (Staging along the extent writes consecutive words of one row: no conflict either way.)
constexpr int kLd = kTileM + 2;
static_assert(kTileM == kTileN, "As and Bs share a row length");

template <class Problem>
__global__ void __launch_bounds__(kThreads) simt_gemm_kernel(Problem prob, int depth_chunk) {
  __shared__ float As[2][kTileK][kLd];
  __shared__ float Bs[2][kTileK][kLd];
  const int groups = prob.g.groups;
  const int grp = blockIdx.z % groups, split = blockIdx.z / groups;
  const int row0 = blockIdx.x * kTileM, col0 = blockIdx.y * kTileN;
  const int rows = prob.rows(), cols = prob.cols();
  const int k_begin = split * depth_chunk, k_end = min(prob.depth(), k_begin + depth_chunk);
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;

  OperandStages<Tiles, Problem> stage;
  const auto stash = [&](int buf) {
    stage.a.stash(tid, [&](int r, int d, float v) { As[buf][d][r] = v; });
    stage.b.stash(tid, [&](int c, int d, float v) { Bs[buf][d][c] = v; });
  };
  if (k_begin < k_end) {
    stage.fetch(prob, tid, grp, row0, col0, k_begin, k_end);
    stash(0);
  }
  __syncthreads();

  float acc[4][4] = {};
  int buf = 0;
  for (int k0 = k_begin; k0 < k_end; k0 += kTileK) {
    const bool more = k0 + kTileK < k_end;  // the same for the whole block: barriers stay uniform
    if (more) stage.fetch(prob, tid, grp, row0, col0, k0 + kTileK, k_end);  // in flight during the FMAs
#pragma unroll
    for (int kk = 0; kk < kTileK; ++kk) {
      float a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) a[i] = As[buf][kk][ty + 16 * i];
#pragma unroll
      for (int j = 0; j < 4; ++j) b[j] = Bs[buf][kk][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    // The other buffer was last read before the previous barrier, so it is free to overwrite.
    if (more) stash(buf ^ 1);
    __syncthreads();
    buf ^= 1;
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
  if (g.Cg == 1 && depthwise_direct()) return depthwise_forward(g, x, w, bias, y);
  launch(ForwardProblem{g, x, w, bias, y}, int64_t(g.N) * g.P * g.Q, g.Kg, int64_t(g.Cg) * g.R * g.S, false);
}

void simt_backward_data(const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  const Geom g = make_geom(s, "backward data (ember_simt)");
  if (g.Cg == 1 && depthwise_direct()) return depthwise_backward_data(g, dy, w, dx);
  launch(BackwardDataProblem{g, dy, w, dx}, int64_t(g.N) * g.H * g.W, g.Cg, int64_t(g.Kg) * g.R * g.S, false);
}

void simt_backward_weight(const Conv2dShape& s, const float* x, const float* dy, float* dw, float* dbias) {
  const Geom g = make_geom(s, "backward weight (ember_simt)");
  if (dbias) bias_grad(g, dy, dbias);
  if (g.Cg == 1 && depthwise_direct()) return depthwise_backward_weight(g, x, dy, dw);
  memset_zero(dw, size_t(g.K) * g.Cg * g.R * g.S * sizeof(float));  // split-depth blocks accumulate
  launch(BackwardWeightProblem{g, x, dy, dw}, g.Kg, int64_t(g.Cg) * g.R * g.S, int64_t(g.N) * g.P * g.Q, true);
}

}  // namespace ember::cuda::conv
