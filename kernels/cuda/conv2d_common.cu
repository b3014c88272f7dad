// Shape checks, depth-split planning and the bias gradient shared by the conv variants.
#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cuda/conv2d_gemm.cuh"

namespace ember::cuda::conv {

namespace {
std::string describe(const Conv2dShape& s) {
  auto str = [](int64_t v) { return std::to_string(v); };
  return "N=" + str(s.N) + " C=" + str(s.C) + " H=" + str(s.H) + " W=" + str(s.W) + " K=" + str(s.K) +
         " R=" + str(s.R) + " S=" + str(s.S) + " stride=" + str(s.stride_h) + "x" + str(s.stride_w) +
         " pad=" + str(s.pad_h) + "x" + str(s.pad_w) + " dil=" + str(s.dil_h) + "x" + str(s.dil_w) +
         " groups=" + str(s.groups);
}
}  // namespace

Geom make_geom(const Conv2dShape& s, const char* pass) {
  const std::string where = std::string("conv2d ") + pass + " [" + describe(s) + "]";
  EMBER_CUDA_REQUIRE(s.N > 0 && s.C > 0 && s.H > 0 && s.W > 0 && s.K > 0 && s.R > 0 && s.S > 0,
                     where + ": sizes must be positive");
  EMBER_CUDA_REQUIRE(s.stride_h > 0 && s.stride_w > 0 && s.dil_h > 0 && s.dil_w > 0 && s.pad_h >= 0 && s.pad_w >= 0,
                     where + ": stride and dilation must be positive, padding non-negative");
  EMBER_CUDA_REQUIRE(s.groups > 0 && s.C % s.groups == 0 && s.K % s.groups == 0,
                     where + ": C and K must be divisible by groups");
  EMBER_CUDA_REQUIRE(s.P() > 0 && s.Q() > 0, where + ": empty output");
  require_int32(s.N * s.C * s.H * s.W, ("input of " + where).c_str());
  require_int32(s.N * s.K * s.P() * s.Q(), ("output of " + where).c_str());
  require_int32(s.K * (s.C / s.groups) * s.R * s.S, ("weight of " + where).c_str());
  Geom g{};
  g.N = int(s.N), g.C = int(s.C), g.H = int(s.H), g.W = int(s.W), g.K = int(s.K), g.R = int(s.R), g.S = int(s.S);
  g.P = int(s.P()), g.Q = int(s.Q());
  g.stride_h = int(s.stride_h), g.stride_w = int(s.stride_w), g.pad_h = int(s.pad_h), g.pad_w = int(s.pad_w);
  g.dil_h = int(s.dil_h), g.dil_w = int(s.dil_w);
  g.groups = int(s.groups), g.Cg = int(s.C / s.groups), g.Kg = int(s.K / s.groups);
  g.div_Q = FastDiv(g.Q), g.div_P = FastDiv(g.P), g.div_W = FastDiv(g.W), g.div_H = FastDiv(g.H);
  g.div_S = FastDiv(g.S), g.div_R = FastDiv(g.R), g.div_RS = FastDiv(g.R * g.S), g.div_PQ = FastDiv(g.P * g.Q);
  g.div_stride_h = FastDiv(g.stride_h), g.div_stride_w = FastDiv(g.stride_w);
  g.div_K = FastDiv(g.K), g.div_C = FastDiv(g.C), g.div_Kg = FastDiv(g.Kg);
  return g;
}

DepthSplit plan_depth_split(int64_t tiles_per_group, int groups, int64_t depth, int tile_k, bool allow_split) {
  DepthSplit plan;
  if (allow_split) {
    // Aim for ~1024 blocks in total (a few waves on 108-132 SMs) but keep >= 8 tiles of depth
    // per block so the atomics stay a small part of the work; gridDim.z is capped at 65535.
    const int64_t blocks = tiles_per_group * groups;
    const int64_t want = std::max<int64_t>(1, 1024 / std::max<int64_t>(blocks, 1));
    const int64_t most = std::max<int64_t>(1, depth / (8 * tile_k));
    plan.splits = int(std::min<int64_t>({want, most, 65535 / groups}));
    plan.splits = std::max(plan.splits, 1);
  }
  int64_t chunk = (depth + plan.splits - 1) / plan.splits;
  chunk = (chunk + tile_k - 1) / tile_k * tile_k;
  plan.chunk = int(chunk);
  plan.splits = int((depth + chunk - 1) / chunk);
  EMBER_CUDA_REQUIRE(int64_t(groups) * plan.splits <= 65535, "conv2d: too many groups for one launch");
  return plan;
}

namespace {
// One block per output channel; the block walks its N planes of P*Q values.
__global__ void bias_grad_kernel(int N, int K, int PQ, const float* __restrict__ dy, float* __restrict__ dbias) {
  const int k = blockIdx.x;
  float sum = 0.f;
  for (int n = 0; n < N; ++n) {
    const float* plane = dy + (size_t(n) * K + k) * PQ;
    for (int i = threadIdx.x; i < PQ; i += blockDim.x) sum += plane[i];
  }
  for (int offset = 16; offset > 0; offset >>= 1) sum += __shfl_down_sync(0xffffffffu, sum, offset);
  __shared__ float warp_sums[32];
  if (threadIdx.x % 32 == 0) warp_sums[threadIdx.x / 32] = sum;
  __syncthreads();
  if (threadIdx.x < 32) {
    sum = threadIdx.x < blockDim.x / 32 ? warp_sums[threadIdx.x] : 0.f;
    for (int offset = 16; offset > 0; offset >>= 1) sum += __shfl_down_sync(0xffffffffu, sum, offset);
    if (threadIdx.x == 0) dbias[k] = sum;
  }
}
}  // namespace

void bias_grad(const Geom& g, const float* dy, float* dbias) {
  bias_grad_kernel<<<g.K, 256, 0, stream()>>>(g.N, g.K, g.P * g.Q, dy, dbias);
  EMBER_CUDA_CHECK_LAUNCH();
}

}  // namespace ember::cuda::conv

// ---------------------------------------------------------------------------------------------
// Host emulation of the implicit GEMMs: the same problem structs, depth split and tile staging as
// the kernels (conv2d_tiles.cuh: every thread's fetch and stash of every depth slice), evaluated
// with plain loops. Tests use it to check the gather/scatter index math and the thread-to-element
// mapping on machines without a GPU; the shared-memory buffering, barriers and the multiply-adds
// (FMA or WMMA) themselves need a device. Small shapes only.
namespace ember::cuda::conv {
namespace {

// Counts how often the threads of a block stage each element of one tile; a mapping that misses
// or repeats an element throws.
void check_staged_once(const std::vector<int>& hits, const char* operand, int extent, int depth) {
  for (int e = 0; e < extent; ++e)
    for (int d = 0; d < depth; ++d)
      if (hits[size_t(e) * depth + d] != 1)
        throw std::logic_error(std::string("conv tile staging: element (") + std::to_string(e) + ", " +
                               std::to_string(d) + ") of the " + operand + " tile " + std::to_string(extent) +
                               "x" + std::to_string(depth) + " is staged " + std::to_string(hits[size_t(e) * depth + d]) +
                               " times, not once");
}

template <class Tiles, class Problem>
void host_gemm(const Problem& prob, const DepthSplit& plan) {
  constexpr int M = Tiles::M, N = Tiles::N, K = Tiles::K;
  const int rows = prob.rows(), cols = prob.cols(), depth = prob.depth();
  std::vector<float> As(M * K), Bs(N * K), acc(M * N);  // As[row][d], Bs[col][d]
  std::vector<int> a_hits(M * K), b_hits(N * K);
  for (int grp = 0; grp < prob.g.groups; ++grp)
    for (int split = 0; split < plan.splits; ++split)
      for (int row0 = 0; row0 < rows; row0 += M)
        for (int col0 = 0; col0 < cols; col0 += N) {
          const int k_begin = split * plan.chunk, k_end = std::min(depth, k_begin + plan.chunk);
          std::fill(acc.begin(), acc.end(), 0.f);
          for (int k0 = k_begin; k0 < k_end; k0 += K) {
            std::fill(a_hits.begin(), a_hits.end(), 0), std::fill(b_hits.begin(), b_hits.end(), 0);
            for (int tid = 0; tid < Tiles::Threads; ++tid) {
              OperandStages<Tiles, Problem> stage;
              stage.fetch(prob, tid, grp, row0, col0, k0, k_end);
              stage.a.stash(tid, [&](int r, int d, float v) {
                if (r >= 0 && r < M && d >= 0 && d < K) As[size_t(r) * K + d] = v, ++a_hits[size_t(r) * K + d];
              });
              stage.b.stash(tid, [&](int c, int d, float v) {
                if (c >= 0 && c < N && d >= 0 && d < K) Bs[size_t(c) * K + d] = v, ++b_hits[size_t(c) * K + d];
              });
            }
            check_staged_once(a_hits, "A", M, K);
            check_staged_once(b_hits, "B", N, K);
            for (int m = 0; m < M; ++m)
              for (int n = 0; n < N; ++n)
                for (int d = 0; d < K; ++d) acc[size_t(m) * N + n] += As[size_t(m) * K + d] * Bs[size_t(n) * K + d];
          }
          for (int m = 0; m < M && row0 + m < rows; ++m)
            for (int n = 0; n < N && col0 + n < cols; ++n) prob.store(grp, row0 + m, col0 + n, acc[size_t(m) * N + n]);
        }
}

template <class Problem>
void host_gemm(HostTiles tiles, const Problem& prob, int64_t rows, int64_t cols, int64_t depth, bool split_depth) {
  // The launchers' depth split for the same tiles, so chunk edges are exercised too.
  const auto plan = [&](int m, int n, int k) {
    return plan_depth_split(((rows + m - 1) / m) * ((cols + n - 1) / n), prob.g.groups, depth, k, split_depth);
  };
  if (tiles == HostTiles::Simt)
    host_gemm<SimtTiles>(prob, plan(SimtTiles::M, SimtTiles::N, SimtTiles::K));
  else if (tiles == HostTiles::TensorCore)
    host_gemm<TcTiles>(prob, plan(TcTiles::M, TcTiles::N, TcTiles::K));
  else
    host_gemm<TcTilesShallow>(prob, plan(TcTilesShallow::M, TcTilesShallow::N, TcTilesShallow::K));
}

}  // namespace

int host_fast_div(int divisor, int x) { return FastDiv(divisor).div(x); }

void host_emulate_forward(HostTiles tiles, const Conv2dShape& s, const float* x, const float* w, const float* bias,
                          float* y) {
  const Geom g = make_geom(s, "forward (host emulation)");
  host_gemm(tiles, ForwardProblem{g, x, w, bias, y}, int64_t(g.N) * g.P * g.Q, g.Kg, int64_t(g.Cg) * g.R * g.S, false);
}

void host_emulate_backward_data(HostTiles tiles, const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  const Geom g = make_geom(s, "backward data (host emulation)");
  host_gemm(tiles, BackwardDataProblem{g, dy, w, dx}, int64_t(g.N) * g.H * g.W, g.Cg, int64_t(g.Kg) * g.R * g.S, false);
}

void host_emulate_backward_weight(HostTiles tiles, const Conv2dShape& s, const float* x, const float* dy, float* dw) {
  const Geom g = make_geom(s, "backward weight (host emulation)");
  std::fill(dw, dw + int64_t(g.K) * g.Cg * g.R * g.S, 0.f);
  host_gemm(tiles, BackwardWeightProblem{g, x, dy, dw}, g.Kg, int64_t(g.Cg) * g.R * g.S, int64_t(g.N) * g.P * g.Q, true);
}

}  // namespace ember::cuda::conv
