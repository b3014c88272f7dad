// Variant "ember_tc": implicit-GEMM convolution on tensor cores (WMMA), FP32 accumulate.
// Precision::TF32 stages float tiles and rounds fragments to TF32 (m16n16k8); Precision::BF16
// takes the same float tensors and converts to bfloat16 while staging into shared memory
// (m16n16k16), so callers never hold bf16 copies. Precision::FP32 falls back to ember_simt.
// A 128-thread block (4 warps, 2x2) computes a 64x64 tile, each warp 32x32 = 2x2 fragments, over
// depth slices of 32 (or 16: EMBER_CONV_TC_DEPTH=k16) staged through registers into two shared
// buffers (conv2d_tiles.cuh); the accumulators then go through shared memory (reusing the buffers)
// so the problem's store() can scatter them to NCHW.
#include <cuda_bf16.h>
#include <mma.h>

#include "kernels/cuda/conv2d_gemm.cuh"

namespace ember::cuda::conv {
namespace {

namespace wmma = nvcuda::wmma;
constexpr int kThreads = TcTiles::Threads;  // both slice depths: 4 warps in a 2x2 grid of 32x32

struct Tf32Math {
  using Elem = float;
  using AFrag = wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major>;
  using BFrag = wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major>;
  using CFrag = wmma::fragment<wmma::accumulator, 16, 16, 8, float>;
  static constexpr int kStep = 8, kPad = 4;  // ld must be a multiple of 4 floats (16 bytes)
  __device__ static Elem convert(float v) { return v; }
  template <class Frag>
  __device__ static void round(Frag& f) {
    for (int t = 0; t < f.num_elements; ++t) f.x[t] = wmma::__float_to_tf32(f.x[t]);
  }
};

struct Bf16Math {
  using Elem = __nv_bfloat16;
  using AFrag = wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major>;
  using BFrag = wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major>;
  using CFrag = wmma::fragment<wmma::accumulator, 16, 16, 16, float>;
  static constexpr int kStep = 16, kPad = 8;  // ld must be a multiple of 8 bf16 (16 bytes)
  __device__ static Elem convert(float v) { return __float2bfloat16(v); }
  template <class Frag>
  __device__ static void round(Frag&) {}  // already bf16
};

template <class Tiles, class Problem, class Math>
__global__ void __launch_bounds__(kThreads) tc_gemm_kernel(Problem prob, int depth_chunk) {
  using Elem = typename Math::Elem;
  constexpr int kTileM = Tiles::M, kTileN = Tiles::N, kTileK = Tiles::K;
  static_assert(Tiles::Threads == kThreads && kTileK % Math::kStep == 0, "tile shape the warps cannot cover");
  constexpr int lda = kTileK + Math::kPad, ldb = kTileN + Math::kPad, ldc = kTileN + 4;
  constexpr int a_elems = kTileM * lda, b_elems = kTileK * ldb;  // one buffer of As / Bs
  constexpr int stage_bytes = 2 * (a_elems + b_elems) * int(sizeof(Elem)), c_bytes = kTileM * ldc * int(sizeof(float));
  static_assert(a_elems * sizeof(Elem) % 32 == 0 && b_elems * sizeof(Elem) % 32 == 0 && 16 * lda * sizeof(Elem) % 32 == 0 &&
                    Math::kStep * ldb * sizeof(Elem) % 32 == 0,
                "WMMA fragment pointers must stay 32-byte aligned");
  // Two buffers of As (rows x depth, row-major) and Bs (depth x cols), and after the last slice Cs
  // in the same bytes (TF32: 35 KB instead of 52, under the 48 KB of static shared memory). WMMA
  // needs 32-byte aligned fragment pointers: every buffer size and row offset here is a multiple.
  __shared__ __align__(128) unsigned char smem[stage_bytes > c_bytes ? stage_bytes : c_bytes];
  Elem* As = reinterpret_cast<Elem*>(smem);
  Elem* Bs = As + 2 * a_elems;
  float* Cs = reinterpret_cast<float*>(smem);
  const int groups = prob.g.groups;
  const int grp = blockIdx.z % groups, split = blockIdx.z / groups;
  const int row0 = blockIdx.x * kTileM, col0 = blockIdx.y * kTileN;
  const int rows = prob.rows(), cols = prob.cols();
  const int k_begin = split * depth_chunk, k_end = min(prob.depth(), k_begin + depth_chunk);
  const int tid = threadIdx.x, warp = tid / 32, warp_row = (warp / 2) * 32, warp_col = (warp % 2) * 32;

  OperandStages<Tiles, Problem> stage;  // floats: converted when stored, so the loads are not waited on early
  const auto stash = [&](int buf) {
    Elem* a = As + buf * a_elems;
    Elem* b = Bs + buf * b_elems;
    stage.a.stash(tid, [&](int r, int d, float v) { a[r * lda + d] = Math::convert(v); });
    stage.b.stash(tid, [&](int c, int d, float v) { b[d * ldb + c] = Math::convert(v); });
  };
  if (k_begin < k_end) {
    stage.fetch(prob, tid, grp, row0, col0, k_begin, k_end);
    stash(0);
  }
  __syncthreads();

  typename Math::CFrag acc[2][2];
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.f);

  int buf = 0;
  for (int k0 = k_begin; k0 < k_end; k0 += kTileK) {
    const bool more = k0 + kTileK < k_end;  // the same for the whole block: barriers stay uniform
    if (more) stage.fetch(prob, tid, grp, row0, col0, k0 + kTileK, k_end);  // in flight during the MMAs
    const Elem* a_tile = As + buf * a_elems;
    const Elem* b_tile = Bs + buf * b_elems;
#pragma unroll
    for (int ks = 0; ks < kTileK; ks += Math::kStep) {
      typename Math::AFrag a[2];
      typename Math::BFrag b[2];
      for (int i = 0; i < 2; ++i) {
        wmma::load_matrix_sync(a[i], a_tile + (warp_row + 16 * i) * lda + ks, lda);
        Math::round(a[i]);
      }
      for (int j = 0; j < 2; ++j) {
        wmma::load_matrix_sync(b[j], b_tile + ks * ldb + warp_col + 16 * j, ldb);
        Math::round(b[j]);
      }
      for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], a[i], b[j], acc[i][j]);
    }
    // The other buffer was last read before the previous barrier, so it is free to overwrite.
    if (more) stash(buf ^ 1);
    __syncthreads();  // also: after the last slice, nobody reads As/Bs any more when Cs overwrites them
    buf ^= 1;
  }
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j)
      wmma::store_matrix_sync(Cs + (warp_row + 16 * i) * ldc + warp_col + 16 * j, acc[i][j], ldc,
                              wmma::mem_row_major);
  __syncthreads();
  for (int i = tid; i < kTileM * kTileN; i += kThreads) {
    const int mm = i / kTileN, nn = i % kTileN, row = row0 + mm, col = col0 + nn;
    if (row < rows && col < cols) prob.store(grp, row, col, Cs[mm * ldc + nn]);
  }
}

template <class Tiles, class Problem>
void launch_tiles(Precision prec, const Problem& prob, int64_t rows, int64_t cols, int64_t depth, bool split_depth) {
  const int64_t tiles_m = (rows + Tiles::M - 1) / Tiles::M, tiles_n = (cols + Tiles::N - 1) / Tiles::N;
  EMBER_CUDA_REQUIRE(tiles_n <= 65535, "conv2d tc: too many output columns for one launch");
  const DepthSplit plan = plan_depth_split(tiles_m * tiles_n, prob.g.groups, depth, Tiles::K, split_depth);
  const dim3 grid(unsigned(tiles_m), unsigned(tiles_n), unsigned(prob.g.groups * plan.splits));
  if (prec == Precision::BF16)
    tc_gemm_kernel<Tiles, Problem, Bf16Math><<<grid, kThreads, 0, stream()>>>(prob, plan.chunk);
  else
    tc_gemm_kernel<Tiles, Problem, Tf32Math><<<grid, kThreads, 0, stream()>>>(prob, plan.chunk);
  EMBER_CUDA_CHECK_LAUNCH();
}

template <class Problem>
void launch(Precision prec, const Problem& prob, int64_t rows, int64_t cols, int64_t depth, bool split_depth) {
  if (tc_slice_depth() == 16) return launch_tiles<TcTilesShallow>(prec, prob, rows, cols, depth, split_depth);
  launch_tiles<TcTiles>(prec, prob, rows, cols, depth, split_depth);
}

}  // namespace

void tc_forward(Precision prec, const Conv2dShape& s, const float* x, const float* w, const float* bias, float* y) {
  if (prec == Precision::FP32) return simt_forward(s, x, w, bias, y);
  const Geom g = make_geom(s, "forward (ember_tc)");
  if (g.Cg == 1 && depthwise_direct()) return depthwise_forward(g, x, w, bias, y);
  launch(prec, ForwardProblem{g, x, w, bias, y}, int64_t(g.N) * g.P * g.Q, g.Kg, int64_t(g.Cg) * g.R * g.S, false);
}

void tc_backward_data(Precision prec, const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  if (prec == Precision::FP32) return simt_backward_data(s, dy, w, dx);
  const Geom g = make_geom(s, "backward data (ember_tc)");
  if (g.Cg == 1 && depthwise_direct()) return depthwise_backward_data(g, dy, w, dx);
  launch(prec, BackwardDataProblem{g, dy, w, dx}, int64_t(g.N) * g.H * g.W, g.Cg, int64_t(g.Kg) * g.R * g.S, false);
}

void tc_backward_weight(Precision prec, const Conv2dShape& s, const float* x, const float* dy, float* dw,
                        float* dbias) {
  if (prec == Precision::FP32) return simt_backward_weight(s, x, dy, dw, dbias);
  const Geom g = make_geom(s, "backward weight (ember_tc)");
  if (dbias) bias_grad(g, dy, dbias);
  if (g.Cg == 1 && depthwise_direct()) return depthwise_backward_weight(g, x, dy, dw);
  memset_zero(dw, size_t(g.K) * g.Cg * g.R * g.S * sizeof(float));
  launch(prec, BackwardWeightProblem{g, x, dy, dw}, g.Kg, int64_t(g.Cg) * g.R * g.S, int64_t(g.N) * g.P * g.Q,
         true);
}

}  // namespace ember::cuda::conv
