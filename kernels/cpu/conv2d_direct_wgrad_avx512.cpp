// Direct weight gradient for layers with few input channels (variant "direct" of conv2d_bwd_weight,
// AVX-512): dw[k][tap] = sum over n, p, q of dy[n][k][p][q] * x[n][c][p*stride_h - pad_h + r*dil_h]
// [q - pad_w + t*dil_w], tap = (c, r, t). With C = 3 (VGG's conv1_1) im2col makes this a GEMM of
// only 27 columns, which ran at 15-19% of the two-core peak.
//
// Register block: 4 output channels x up to 6 taps = 24 accumulators, each 16 adjacent q of one
// output row; per vector of q it loads 4 vectors of dy and 6 of the input slab (shifted by the tap's
// offset) for 24 FMAs, the forward direct kernel's ratio. A block accumulates over 2 output rows,
// then adds its 24 vectors to the thread's own per-lane sums (16 per weight), which are reduced
// across lanes and threads once at the end. Tasks, slab and borders are the forward direct kernel's
// (conv2d_direct_avx512.cpp): 8 output rows of one image, every input row copied into a
// zero-bordered slab; the last vector of a row is masked on dy, so columns past Q add nothing.
// Compiled with -mavx512f...; called only after has_avx512().
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <array>
#include <utility>
#include <vector>

#include "kernels/cpu/conv2d_direct_wgrad.h"
#include "kernels/cpu/conv2d_im2col.h"

namespace ember::cpu {
namespace {

using conv_detail::thread_scratch;

constexpr int kLanes = 16;
constexpr int kKb = 4;  // output channels per block
constexpr int kTb = 6;  // taps per block
constexpr int64_t kRowsPerTask = 8;
constexpr int64_t kRowsPerBlock = 2;

struct Block {
  const float* dy;          // dy of the block's first channel, first row of the task
  int64_t plane;            // P*Q: distance between dy channels
  const float* slab;        // slab position of the task's first output row, column 0
  const int64_t* tap_offset;  // per tap of the block: its offset from `slab`
  int64_t rows, row_dy, row_slab;  // output rows, and the distance between rows in dy and in the slab
  int64_t qvecs;            // vectors per row; the last one under `last`
  __mmask16 last;
  float* lanes;             // the thread's per-lane sums of the block's first channel and tap
  int64_t taps;             // C*R*S: distance between channels there (in vectors of 16)
  const char* const* prefetch;      // cache lines to request, one per vector step, until prefetch_end
  const char* const* prefetch_end;
};

// Loops over k and t are unrolled by pragma so that `acc` stays in registers (see the direct kernel).
template <int KB, int TB>
void run_block(const Block& b) {
  __m512 acc[KB][TB];
#pragma GCC unroll 8
  for (int k = 0; k < KB; ++k)
#pragma GCC unroll 8
    for (int t = 0; t < TB; ++t) acc[k][t] = _mm512_setzero_ps();
  const char* const* pf = b.prefetch;
  for (int64_t p = 0; p < b.rows; ++p) {
    const float* g = b.dy + p * b.row_dy;
    const float* in = b.slab + p * b.row_slab;
    for (int64_t v = 0; v < b.qvecs; ++v) {
      if (pf < b.prefetch_end) _mm_prefetch(*pf++, _MM_HINT_T0);
      const __mmask16 m = v + 1 == b.qvecs ? b.last : __mmask16(0xFFFF);
      __m512 e[KB];
#pragma GCC unroll 8
      for (int k = 0; k < KB; ++k) e[k] = _mm512_maskz_loadu_ps(m, g + k * b.plane + v * kLanes);
#pragma GCC unroll 8
      for (int t = 0; t < TB; ++t) {
        const __m512 xv = _mm512_loadu_ps(in + b.tap_offset[t] + v * kLanes);
#pragma GCC unroll 8
        for (int k = 0; k < KB; ++k) acc[k][t] = _mm512_fmadd_ps(e[k], xv, acc[k][t]);
      }
    }
  }
#pragma GCC unroll 8
  for (int k = 0; k < KB; ++k)
#pragma GCC unroll 8
    for (int t = 0; t < TB; ++t) {
      float* sum = b.lanes + (k * b.taps + t) * kLanes;
      _mm512_storeu_ps(sum, _mm512_add_ps(_mm512_loadu_ps(sum), acc[k][t]));
    }
}

// kBlocks[KB-1][TB-1]: partial channel blocks (K % kKb) and partial tap blocks (taps % kTb).
constexpr auto kBlocks = conv_detail::block_table<kKb, kTb>([]<int K, int T>() { return &run_block<K, T>; });

}  // namespace

void conv2d_backward_weight_direct(const Conv2dShape& s, const float* x, const float* dy, float* dw, float* dbias) {
  if (!conv_detail::direct_applies(s) || s.N == 0) return conv2d_backward_weight_im2col(s, x, dy, dw, dbias);
  const int64_t P = s.P(), Q = s.Q(), taps = s.C * s.R * s.S, qvecs = (Q + kLanes - 1) / kLanes;
  const int64_t Wp = std::max(s.pad_w + s.W, qvecs * kLanes + (s.S - 1) * s.dil_w);
  const int64_t tasks = conv_detail::slab_task_count(s, kRowsPerTask), dw_size = s.K * taps;
  const __mmask16 last = conv_detail::last_vector_mask(Q);
  const bool parallel = !omp_in_parallel() && tasks > 1 && s.macs() > (int64_t(1) << 20);
  conv_detail::LaneSums sums(parallel ? omp_get_max_threads() : 1, dw_size, s.K);
#pragma omp parallel num_threads(parallel ? omp_get_max_threads() : 1) if (parallel)
  {
    float* mine = sums.thread_values();  // per-lane sums of dw
    double* bias_lanes = sums.thread_bias();
    static thread_local std::vector<const char*> line;  // the next channel group's dy lines
    line.resize(size_t(conv_detail::dy_lines_capacity(s, kKb, kRowsPerBlock)));
    // Static: each thread's set of tasks, hence its partial sums and the result, depend only on the
    // thread count (a dynamic schedule made training runs differ in the last bits).
#pragma omp for schedule(static)
    for (int64_t task = 0; task < tasks; ++task) {
      const auto [n, p0, p1, slab_rows, slab] = conv_detail::slab_task(s, x, task, kRowsPerTask, Wp);
      int64_t tap_offset[conv_detail::kDirectMaxTaps];
      conv_detail::slab_tap_offsets(s, slab_rows, Wp, tap_offset);
      // Per channel group, two output rows at a time: the group's dy (4 channels x 2 rows) and the slab
      // rows stay in L1 across its tap blocks, and each channel's dy rows are read front to back.
      // The next group's dy rows are requested one step ahead: left to the hardware, the loads of
      // dy (4 runs of 2 rows, then a jump) missed to DRAM and the blocks ran at a third of the FMA rate.
      // The requests are spread over the tap blocks, one cache line per vector step: issued all at
      // once (112 lines at conv1_1) they filled the miss queue and the prefetch instructions stalled
      // (perf: 65% of this function's samples on one prefetcht0); spread, 5-10% faster than none.
      for (int64_t k0 = 0; k0 < s.K; k0 += kKb)
        for (int64_t q0 = p0; q0 < p1; q0 += kRowsPerBlock) {
          const int64_t rows = std::min(kRowsPerBlock, p1 - q0);
          const int64_t lines = conv_detail::dy_lines(s, dy, n, k0 + kKb, k0 + 2 * kKb, q0, rows, line.data());
          const int64_t tap_blocks = (taps + kTb - 1) / kTb, per_block = (lines + tap_blocks - 1) / tap_blocks;
          for (int64_t t0 = 0; t0 < taps; t0 += kTb) {
            const int64_t kn = std::min<int64_t>(kKb, s.K - k0), tn = std::min<int64_t>(kTb, taps - t0);
            const int64_t l0 = std::min(lines, t0 / kTb * per_block), l1 = std::min(lines, l0 + per_block);
            const Block b{dy + ((n * s.K + k0) * P + q0) * Q, P * Q, slab + (q0 - p0) * s.stride_h * Wp, tap_offset + t0,
                          rows, Q, s.stride_h * Wp, qvecs, last, mine + (k0 * taps + t0) * kLanes, taps,
                          line.data() + l0, line.data() + l1};
            kBlocks[size_t(kn - 1)][size_t(tn - 1)](b);
          }
          // The bias gradient from the same dy rows while they are in L1 (a separate pass over dy read
          // all of it from DRAM a second time: a quarter of this kernel's time on conv1_1).
          // A float sum of these rows, then added to per-lane sums in double (as the reference sums).
          for (int64_t k = k0; dbias && k < std::min(s.K, k0 + kKb); ++k) {
            __m512 sum = _mm512_setzero_ps();
            for (int64_t r = 0; r < rows; ++r) {
              const float* g = dy + ((n * s.K + k) * P + q0 + r) * Q;
              for (int64_t v = 0; v < qvecs; ++v)
                sum = _mm512_add_ps(sum, _mm512_maskz_loadu_ps(v + 1 == qvecs ? last : __mmask16(0xFFFF), g + v * kLanes));
            }
            conv_detail::add_bias_lanes(sum, k, bias_lanes);
          }
        }
    }
  }
  for (int64_t i = 0; i < dw_size; ++i) dw[i] = float(sums.value(i));  // a few thousand sums of 16 lanes per thread
  if (dbias) sums.bias(dbias);
}

}  // namespace ember::cpu
