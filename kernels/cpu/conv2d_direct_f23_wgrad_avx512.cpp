// Weight gradient with 1-D Winograd F(2,3) along each row (variant "direct_f23" of conv2d_bwd_weight,
// AVX-512): the "direct" weight gradient's job (few input channels, e.g. VGG16's conv1_1) with a
// third fewer multiply-adds, for filters 3 taps wide with unit horizontal stride and dilation.
//
// The forward F(2,3) kernel (conv2d_direct_f23_avx512.cpp) computes an output pair from one filter
// row g as y0 = M0 + M1 + M2, y1 = M1 - M2 - M3 with Mm = Um Gm, U = (d0-d2, d1+d2, d2-d1, d1-d3),
// G = (g0, (g0+g1+g2)/2, (g0-g1+g2)/2, g2). That is linear in g, so for the pair's output gradient
// (e0, e1) its adjoint is
//   dL/dg = sum_m Sm dGm/dg,   Sm = sum over pairs of Um * Am,   A = (e0, e0 + e1, e0 - e1, -e1):
//   dg0 = S0 + (S1 + S2)/2,   dg1 = (S1 - S2)/2,   dg2 = (S1 + S2)/2 + S3.
// That is 4 multiply-adds per output pair and filter row instead of 6: for a 3x3 filter on 3 input
// channels, 18 per output instead of the direct kernel's 27.
//
// Register blocks, 16 pairs per vector: products 0 and 3 run 4 output channels x up to 6 filter rows
// (c, r) (24 accumulators, 4 loads of A and 6 of U per 24 FMAs, the direct kernel's ratio);
// products 1 and 2 run together on 2 channels x 6 rows x 2 (24 accumulators, 4 + 12 loads and 4
// adds per 24 FMAs), forming A1 = e0 + e1 and A2 = e0 - e1 in registers. So per channel group the
// transform of dy only splits it into E = (e0, e1) with 2 stores per 16 pairs; storing all four A
// had made it store-bound (4 zmm stores per 16 pairs, 11 cycles per vector even in L1), 40% of the
// kernel's time at conv1_1. A3 = -e1 is read as e1 and S3 subtracted at the end. U is the forward's
// transform of the task's slab rows. Tasks (up to 32 output rows of one image, rows_per_task), slab,
// static schedule, prefetch of the next group's dy and per-lane sums reduced in double at the end
// follow the direct weight gradient (conv2d_direct_wgrad_avx512.cpp).
//
// Speed (conv1_1, batch 8, 2 threads, Zen 4): with dy in cache (batch 1) this runs 25-35% faster than
// the direct kernel, at 80-90% of the FMA peak. At batch 8 dy (103 MB) streams from DRAM, which
// alone takes ~4 ms at the 26 GB/s two threads reach; the prefetches go to L2 (_MM_HINT_T2: with T0
// the gain over direct was 5-10% instead of 20-25%). Splitting E and 32-row tasks did not move it
// (7.1-7.4 ms at best before and after, 64-byte aligned buffers) but took the smaller conv1_1-like
// layers 20-25% faster: 112 px batch 8 2.7-3.0 -> 2.2-2.4 ms, 64 px batch 64 3.7-3.9 -> 2.9-3.2 ms.
// (With misaligned buffers the old kernel lost more, and batch 8 read 8.0-8.4 -> 7.3-7.6 ms.)
//
// Rounding: the transforms add before multiplying and the end halves, so results differ from the
// direct sum by a few ulps; the checker holds it to the same 1e-5 relative bound.
// Compiled with -mavx512f...; called only after has_avx512().
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <array>
#include <utility>
#include <vector>

#include "kernels/cpu/conv2d_direct_f23_avx512.h"
#include "kernels/cpu/conv2d_direct_wgrad.h"
#include "kernels/cpu/conv2d_im2col.h"

namespace ember::cpu {
namespace {

using conv_detail::thread_scratch;

constexpr int kLanes = kF23Lanes;  // output pairs per zmm
constexpr int kM = kF23M;          // products per pair
constexpr int kKb = 4;             // output channels per block
constexpr int kKbPair = 2;         // output channels per block of products 1 and 2
constexpr int kRb = 6;             // filter rows (c, r) per block
constexpr int64_t kMaxRowsPerTask = 32;
constexpr int64_t kTaskBytes = int64_t(512) << 10;  // E and U of a task: half of a 1 MiB L2

constexpr int64_t kBurst = 8;      // vector steps between groups of prefetch requests

// Layouts, per task: E[k][e0 or e1][row][Tpad] (k of the channel group) and U[c][m][slab row][Tpad],
// so a channel's E rows follow each other, and so do U's when stride_h is 1: the block then runs one
// loop over all its rows (at conv1_1 a row is only 7 vectors, and per-row set-up around them cost
// more than the FMAs' loads).
struct Block {
  const float* a;          // E row of the block's first channel, first output row: e0 (products 0, 1
                           // and 2) or e1 (product 3)
  const float* a1;         // the pair block: e1
  int64_t a_channel;       // distance between channels in E
  int64_t u_m;             // the pair block: distance from U_1 to U_2
  const float* u;          // U_m of the task's first output row, filter row (0, 0)
  const int64_t* offset;   // per filter row of the block: its offset from `u`
  int64_t segments;        // runs of contiguous rows: 1 when stride_h is 1, else one per output row
  int64_t length;          // floats per run (whole vectors)
  int64_t a_segment, u_segment;  // distance between runs in A and in U
  float* lanes;            // per-lane sums of the block's first channel, first filter row, product m
  int64_t lanes_channel;   // distance between channels there
  const char* const* prefetch;  // cache lines to request, `per_burst` every kBurst vector steps
  const char* const* prefetch_end;
  int64_t per_burst;
};

// Walks the block's runs of rows in vector steps, issuing its prefetches kBurst steps at a time:
// start(seg) at the beginning of each run, step(j) at each vector. Shared by both register blocks.
template <class Start, class Step>
[[gnu::always_inline]] inline void walk_runs(const Block& b, Start start, Step step) {
  const char* const* pf = b.prefetch;
  for (int64_t seg = 0; seg < b.segments; ++seg) {
    start(seg);
    for (int64_t j0 = 0; j0 < b.length; j0 += kBurst * kLanes) {
      for (int64_t i = 0; i < b.per_burst && pf < b.prefetch_end; ++i) _mm_prefetch(*pf++, _MM_HINT_T2);
      const int64_t j1 = std::min(b.length, j0 + kBurst * kLanes);
      for (int64_t j = j0; j < j1; j += kLanes) step(j);
    }
  }
}

// Loops over k and r are unrolled by pragma so that `acc` stays in registers (see the direct kernel).
template <int KB, int RB>
void run_block(const Block& b) {
  __m512 acc[KB][RB];
#pragma GCC unroll 8
  for (int k = 0; k < KB; ++k)
#pragma GCC unroll 8
    for (int r = 0; r < RB; ++r) acc[k][r] = _mm512_setzero_ps();
  const float* a[KB];
  const float* u[RB];
  walk_runs(
      b,
      [&](int64_t seg) {
#pragma GCC unroll 8
        for (int k = 0; k < KB; ++k) a[k] = b.a + seg * b.a_segment + k * b.a_channel;
#pragma GCC unroll 8
        for (int r = 0; r < RB; ++r) u[r] = b.u + seg * b.u_segment + b.offset[r];
      },
      [&](int64_t j) {
        __m512 e[KB];
#pragma GCC unroll 8
        for (int k = 0; k < KB; ++k) {
          e[k] = _mm512_load_ps(a[k] + j);
          // Keeps e[k] a register: for KB x 3 blocks GCC otherwise folded the A loads into every FMA
          // as memory operands, 15 loads per 12 FMAs instead of 7.
          __asm__("" : "+v"(e[k]));
        }
#pragma GCC unroll 8
        for (int r = 0; r < RB; ++r) {
          const __m512 uv = _mm512_load_ps(u[r] + j);
#pragma GCC unroll 8
          for (int k = 0; k < KB; ++k) acc[k][r] = _mm512_fmadd_ps(e[k], uv, acc[k][r]);
        }
      });
#pragma GCC unroll 8
  for (int k = 0; k < KB; ++k)
#pragma GCC unroll 8
    for (int r = 0; r < RB; ++r) {
      float* sum = b.lanes + k * b.lanes_channel + r * kM * kLanes;
      _mm512_storeu_ps(sum, _mm512_add_ps(_mm512_loadu_ps(sum), acc[k][r]));
    }
}

// Products 1 and 2 together: A1 = e0 + e1 and A2 = e0 - e1 formed in registers from E, so the
// transform writes 2 vectors per 16 pairs instead of 4 (its stores were most of its time).
template <int KB, int RB>
void run_pair(const Block& b) {
  __m512 acc1[KB][RB], acc2[KB][RB];
#pragma GCC unroll 8
  for (int k = 0; k < KB; ++k)
#pragma GCC unroll 8
    for (int r = 0; r < RB; ++r) acc1[k][r] = acc2[k][r] = _mm512_setzero_ps();
  const float* a0[KB];
  const float* a1[KB];
  const float* u[RB];
  walk_runs(
      b,
      [&](int64_t seg) {
#pragma GCC unroll 8
        for (int k = 0; k < KB; ++k) {
          a0[k] = b.a + seg * b.a_segment + k * b.a_channel;
          a1[k] = b.a1 + seg * b.a_segment + k * b.a_channel;
        }
#pragma GCC unroll 8
        for (int r = 0; r < RB; ++r) u[r] = b.u + seg * b.u_segment + b.offset[r];
      },
      [&](int64_t j) {
        __m512 sum[KB], diff[KB];
#pragma GCC unroll 8
        for (int k = 0; k < KB; ++k) {
          __m512 e0 = _mm512_load_ps(a0[k] + j), e1 = _mm512_load_ps(a1[k] + j);
          __asm__("" : "+v"(e0), "+v"(e1));  // one load each, not a memory operand of both the add and the sub
          sum[k] = _mm512_add_ps(e0, e1);
          diff[k] = _mm512_sub_ps(e0, e1);
        }
#pragma GCC unroll 8
        for (int r = 0; r < RB; ++r) {
          __m512 u1 = _mm512_load_ps(u[r] + j), u2 = _mm512_load_ps(u[r] + b.u_m + j);
          __asm__("" : "+v"(u1), "+v"(u2));
#pragma GCC unroll 8
          for (int k = 0; k < KB; ++k) {
            acc1[k][r] = _mm512_fmadd_ps(sum[k], u1, acc1[k][r]);
            acc2[k][r] = _mm512_fmadd_ps(diff[k], u2, acc2[k][r]);
          }
        }
      });
#pragma GCC unroll 8
  for (int k = 0; k < KB; ++k)
#pragma GCC unroll 8
    for (int r = 0; r < RB; ++r) {
      float* sum = b.lanes + k * b.lanes_channel + r * kM * kLanes;
      _mm512_storeu_ps(sum, _mm512_add_ps(_mm512_loadu_ps(sum), acc1[k][r]));
      _mm512_storeu_ps(sum + kLanes, _mm512_add_ps(_mm512_loadu_ps(sum + kLanes), acc2[k][r]));
    }
}

// kBlocks[KB-1][RB-1]: partial channel blocks (K % kKb) and partial row blocks (C*R % kRb).
constexpr auto kBlocks = conv_detail::block_table<kKb, kRb>([]<int K, int R>() { return &run_block<K, R>; });
constexpr auto kPairs = conv_detail::block_table<kKbPair, kRb>([]<int K, int R>() { return &run_pair<K, R>; });

// e[k][0 or 1][row][j] = e0 or e1 of pair j (dy columns 2j, 2j + 1; zero past Q) of output row
// p0 + row of channel k0 + k, for kn channels; adds each channel's e0 + e1 over the rows to its
// per-lane bias sums.
void transform_grad(const Conv2dShape& s, const float* dy, int64_t n, int64_t k0, int64_t kn, int64_t p0, int64_t rows,
                    int64_t Tpad, float* e, double* bias_lanes) {
  const int64_t P = s.P(), Q = s.Q();
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  for (int64_t k = 0; k < kn; ++k) {
    __m512 bias = _mm512_setzero_ps();
    for (int64_t row = 0; row < rows; ++row) {
      const float* g = dy + ((n * s.K + k0 + k) * P + p0 + row) * Q;
      float* er = e + (k * 2 * rows + row) * Tpad;
      for (int64_t j = 0; j < Tpad; j += kLanes) {
        const int64_t q = 2 * j;
        const __m512 lo = _mm512_maskz_loadu_ps(f23_lanes_mask(Q - q), g + q);
        const __m512 hi = _mm512_maskz_loadu_ps(f23_lanes_mask(Q - q - kLanes), g + q + kLanes);
        const __m512 e0 = _mm512_permutex2var_ps(lo, even, hi), e1 = _mm512_permutex2var_ps(lo, odd, hi);
        _mm512_store_ps(er + j, e0);
        _mm512_store_ps(er + rows * Tpad + j, e1);
        bias = _mm512_add_ps(bias, _mm512_add_ps(e0, e1));
      }
    }
    if (bias_lanes) conv_detail::add_bias_lanes(bias, k0 + k, bias_lanes);
  }
}

// Output rows per task. Long tasks stream dy in long runs (a channel's rows of a task are contiguous)
// and transform fewer halo rows: 32 rows ran conv1_1 (batch 8, misaligned buffers) 8-10% faster than
// 8 (16: 2%; 56 and 112: slower, E and U then crowd L2). Capped so that E and U fit kTaskBytes, and shortened (in
// steps of 4) while the tasks would not spread evenly over the threads: at batch 1, 7 tasks of 32
// rows leave one of 2 threads idle an eighth of the time; 8 of 28 do not.
int64_t rows_per_task(const Conv2dShape& s, int64_t Tpad, int threads) {
  const int64_t bytes_per_row = (kKb * 2 + s.C * kM) * Tpad * int64_t(sizeof(float));
  const int64_t cap = std::clamp<int64_t>(kTaskBytes / bytes_per_row / 4 * 4, 4, kMaxRowsPerTask);
  for (int64_t rows = cap; rows > 4; rows -= 4) {
    const int64_t tasks = conv_detail::slab_task_count(s, rows);
    const int64_t rounds = (tasks + threads - 1) / threads;
    if (tasks >= threads && rounds * threads * 20 <= tasks * 21) return rows;  // within 5% of even
  }
  return 4;
}

}  // namespace

void conv2d_backward_weight_direct_f23(const Conv2dShape& s, const float* x, const float* dy, float* dw,
                                       float* dbias) {
  if (!conv_detail::direct_f23_applies(s) || s.N == 0) return conv2d_backward_weight_direct(s, x, dy, dw, dbias);
  const int64_t Q = s.Q(), frows = s.C * s.R;
  const int64_t pairs = (Q + 1) / 2, tvecs = (pairs + kLanes - 1) / kLanes, Tpad = tvecs * kLanes;
  // Slab row width: the transform of the last pair vector reads up to column 2 * Tpad + 1.
  const int64_t Wp = std::max(s.pad_w + s.W, 2 * Tpad + 2);
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  const int64_t task_rows = rows_per_task(s, Tpad, threads);
  const int64_t tasks = conv_detail::slab_task_count(s, task_rows), sums = s.K * frows * kM;
  const bool parallel = threads > 1 && tasks > 1 && s.macs() > (int64_t(1) << 20);
  conv_detail::LaneSums lane_sums(parallel ? threads : 1, sums, s.K);
#pragma omp parallel num_threads(parallel ? threads : 1) if (parallel)
  {
    float* mine = lane_sums.thread_values();  // per-lane S[k][(c, r)][m]
    double* bias_lanes = dbias ? lane_sums.thread_bias() : nullptr;
    static thread_local std::vector<const char*> line;
    line.resize(size_t(conv_detail::dy_lines_capacity(s, kKb, task_rows) + conv_detail::x_lines_capacity(s, task_rows)));
    // Static: each thread's set of tasks, hence its partial sums and the result, depend only on the
    // thread count (a dynamic schedule made training runs differ in the last bits).
#pragma omp for schedule(static)
    for (int64_t task = 0; task < tasks; ++task) {
      const auto [n, p0, p1, slab_rows, slab] = conv_detail::slab_task(s, x, task, task_rows, Wp);
      const int64_t rows = p1 - p0;
      float* u = thread_scratch<2>(s.C * kM * slab_rows * Tpad);  // 64-byte aligned
      for (int64_t c = 0; c < s.C; ++c)  // U[c][m][slab row][j]
        f23_transform_rows(slab + c * slab_rows * Wp, slab_rows, Wp, Tpad, Tpad, slab_rows * Tpad,
                           u + c * kM * slab_rows * Tpad);
      float* e = thread_scratch<3>(kKb * 2 * rows * Tpad);
      int64_t offset[conv_detail::kDirectMaxTaps / 3];
      for (int64_t c = 0, i = 0; c < s.C; ++c)
        for (int64_t r = 0; r < s.R; ++r, ++i) offset[i] = (c * kM * slab_rows + r * s.dil_h) * Tpad;
      const bool merged = s.stride_h == 1;  // then U's rows for consecutive outputs are consecutive
      const int64_t segments = merged ? 1 : rows, length = merged ? rows * Tpad : Tpad;
      for (int64_t k0 = 0; k0 < s.K; k0 += kKb) {
        const int64_t kn = std::min<int64_t>(kKb, s.K - k0);
        transform_grad(s, dy, n, k0, kn, p0, rows, Tpad, e, bias_lanes);
        // The next group's dy rows, requested a few lines at a time over this group's blocks (see the
        // direct weight gradient: a burst of all of them stalls on the miss queue).
        // After the last group, the next task's first group and its input rows instead: else each
        // task began with a cold read of 114 KB of dy and 91 KB of x at conv1_1 (prefetching them made
        // conv1_1 batch 8 3-5% faster, 64 px batch 64 8-10%). Under the static schedule the next task
        // is this thread's, except at the end of its range (then the lines are merely requested early).
        int64_t lines = 0;
        if (k0 + kKb < s.K) {
          lines = conv_detail::dy_lines(s, dy, n, k0 + kKb, k0 + 2 * kKb, p0, rows, line.data());
        } else if (task + 1 < tasks) {
          const auto next = conv_detail::slab_task_rows(s, task + 1, task_rows);
          lines = conv_detail::dy_lines(s, dy, next.n, 0, kKb, next.p0, next.p1 - next.p0, line.data());
          lines += conv_detail::x_lines(s, x, next.n, next.p0, next.p1, line.data() + lines);
        }
        const int64_t fblocks = (frows + kRb - 1) / kRb, kpairs = (kn + kKbPair - 1) / kKbPair;
        const int64_t nblocks = fblocks * (2 + kpairs), per_block = (lines + nblocks - 1) / nblocks;
        const int64_t bursts = segments * ((length / kLanes + kBurst - 1) / kBurst);
        int64_t block = 0;
        // Product m (the pair block: 1 and 2) of channels k0 + k .. and filter rows f0 .., reading e0
        // (which = 0) or e1 (which = 1).
        const auto make = [&](int m, int64_t which, int64_t k, int64_t f0) {
          const int64_t l0 = std::min(lines, block * per_block), l1 = std::min(lines, l0 + per_block);
          ++block;
          const float* ek = e + k * 2 * rows * Tpad;
          return Block{ek + which * rows * Tpad, ek + rows * Tpad, 2 * rows * Tpad, slab_rows * Tpad,
                       u + m * slab_rows * Tpad, offset + f0, segments, length, Tpad, s.stride_h * Tpad,
                       mine + (((k0 + k) * frows + f0) * kM + m) * kLanes, frows * kM * kLanes,
                       line.data() + l0, line.data() + l1, (per_block + bursts - 1) / bursts};
        };
        for (int64_t f0 = 0; f0 < frows; f0 += kRb)
          kBlocks[size_t(kn - 1)][size_t(std::min<int64_t>(kRb, frows - f0) - 1)](make(0, 0, 0, f0));
        for (int64_t k = 0; k < kn; k += kKbPair)
          for (int64_t f0 = 0; f0 < frows; f0 += kRb)
            kPairs[size_t(std::min<int64_t>(kKbPair, kn - k) - 1)][size_t(std::min<int64_t>(kRb, frows - f0) - 1)](
                make(1, 0, k, f0));
        for (int64_t f0 = 0; f0 < frows; f0 += kRb)
          kBlocks[size_t(kn - 1)][size_t(std::min<int64_t>(kRb, frows - f0) - 1)](make(3, 1, 0, f0));
      }
    }
  }
  // S summed over lanes and threads in double, then dw = G^T S per filter row.
  for (int64_t kf = 0; kf < s.K * frows; ++kf) {
    double S[kM];
    for (int m = 0; m < kM; ++m) S[m] = lane_sums.value(kf * kM + m);
    dw[kf * 3 + 0] = float(S[0] + 0.5 * (S[1] + S[2]));
    dw[kf * 3 + 1] = float(0.5 * (S[1] - S[2]));
    dw[kf * 3 + 2] = float(0.5 * (S[1] + S[2]) - S[3]);  // S3 was summed with e1 for A3 = -e1
  }
  if (dbias) lane_sums.bias(dbias);
}

}  // namespace ember::cpu
