// Direct convolution with 1-D Winograd F(2,3) along each row (variant "direct_f23", AVX-512, forward
// only): the "direct" kernel's job (few input channels, e.g. the C = 3 first layer of an image model)
// with a third fewer multiply-adds, for filters 3 taps wide with unit horizontal stride and dilation.
//
// Why: with 3 input channels the direct kernel is bound by its FMAs (27 per output) and by storing the
// output (103 MB for VGG16's conv1_1 at batch 8); the stores cannot shrink, the FMAs can. Along a row,
// two adjacent outputs of a 3-tap filter g from four inputs d0..d3 (Lavin & Gray's F(2,3)) are
//   y0 = d0 g0 + d1 g1 + d2 g2 = M0 + M1 + M2,   y1 = d1 g0 + d2 g1 + d3 g2 = M1 - M2 - M3,
//   Mm = Um * Gm:  U = (d0 - d2, d1 + d2, d2 - d1, d1 - d3),  G = (g0, (g0+g1+g2)/2, (g0-g1+g2)/2, g2).
// Each filter row r of each channel c adds its four products to the same M0..M3, so an output pair
// costs 4 C R FMAs instead of 6 C R (18 instead of 27 per output for 3x3, C = 3). U is formed once per
// input row and shared by every output channel; G once per call; the output transform (4 adds, 2
// permutes per 32 outputs and channel) runs once per output after all C R rows.
//
// Register block: kKb = 6 output channels x 4 products x one vector of 16 output pairs (32 adjacent
// outputs of a row) = 24 accumulators. Per (c, r, m) it loads one vector of U (aligned) and
// broadcasts 6 weights for 6 FMAs. The task layout, slab, threading and streaming stores are the
// direct kernel's (conv2d_direct_avx512.cpp); each task also transforms its slab rows into U.
//
// Rounding: the transform adds terms before multiplying (d1 + d2, halved filter sums), so results
// differ from the direct sum by a few ulps; the checker holds it to the same 1e-5 relative bound.
// Compiled with -mavx512f...; called only after has_avx512().
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <utility>

#include "kernels/cpu/conv2d_direct_f23_avx512.h"
#include "kernels/cpu/conv2d_im2col.h"

namespace ember::cpu {
namespace {

using conv_detail::thread_scratch;

constexpr int kLanes = kF23Lanes;  // output pairs per zmm
constexpr int kKb = 6;             // output channels per register block (x 4 products = 24 accumulators)
constexpr int kM = kF23M;          // products per output pair
constexpr int64_t kRowsPerTask = 8;

struct Block {
  const float* u;          // U of the block's first output row and pair vector
  const int64_t* offset;   // per (c, r, m): its offset from `u`
  int64_t nterms;          // C * R * 4
  const float* gp;         // packed transformed weights of this channel block: [term][kKb]
  const float* bp;         // packed bias of this channel block: [kKb]
  float* y;                // output of the block's first channel, row and column
  int64_t plane;           // P*Q: distance between output channels
  __mmask16 first, second;  // store masks of the two output vectors (outputs 0-15 and 16-31)
};

// Accumulates M0..M3 for KB channels over every (c, r), then turns them into 32 outputs per channel.
// Loops over k and m are unrolled by pragma so that GCC keeps `acc` in registers (see the direct kernel).
template <int KB, bool Stream>
void run_block(const Block& b) {
  if constexpr (!Stream) {
#pragma GCC unroll 8
    for (int k = 0; k < KB; ++k) {
      _mm_prefetch(reinterpret_cast<const char*>(b.y + k * b.plane), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(b.y + k * b.plane + kLanes), _MM_HINT_T0);
    }
  }
  __m512 acc[KB][kM];
#pragma GCC unroll 8
  for (int k = 0; k < KB; ++k) {
    acc[k][0] = acc[k][2] = acc[k][3] = _mm512_setzero_ps();
    acc[k][1] = _mm512_set1_ps(b.bp[k]);  // M1 enters both outputs with sign +: the bias rides on it
  }
  const float* g = b.gp;
  for (int64_t i = 0; i < b.nterms; i += kM) {
#pragma GCC unroll 4
    for (int m = 0; m < kM; ++m, g += kKb) {
      const __m512 u = _mm512_load_ps(b.u + b.offset[i + m]);
#pragma GCC unroll 8
      for (int k = 0; k < KB; ++k) acc[k][m] = _mm512_fmadd_ps(_mm512_set1_ps(g[k]), u, acc[k][m]);
    }
  }
  // Interleave y0 (even outputs) and y1 (odd outputs) of 16 pairs back into 32 adjacent outputs.
  const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
#pragma GCC unroll 8
  for (int k = 0; k < KB; ++k) {
    const __m512 y0 = _mm512_add_ps(_mm512_add_ps(acc[k][0], acc[k][1]), acc[k][2]);
    const __m512 y1 = _mm512_sub_ps(_mm512_sub_ps(acc[k][1], acc[k][2]), acc[k][3]);
    const __m512 first = _mm512_permutex2var_ps(y0, lo, y1), second = _mm512_permutex2var_ps(y0, hi, y1);
    float* out = b.y + k * b.plane;
    if constexpr (Stream) {
      _mm512_stream_ps(out, first);
      _mm512_stream_ps(out + kLanes, second);
    } else {
      _mm512_mask_storeu_ps(out, b.first, first);
      if (b.second) _mm512_mask_storeu_ps(out + kLanes, b.second, second);
    }
  }
}

using BlockFn = void (*)(const Block&);
template <bool Stream, int... K>
constexpr std::array<BlockFn, sizeof...(K)> blocks(std::integer_sequence<int, K...>) {
  return {&run_block<K + 1, Stream>...};
}
// kBlocks[stream][KB-1]: the last channel block may be partial (K % kKb).
constexpr std::array<std::array<BlockFn, kKb>, 2> kBlocks = {blocks<false>(std::make_integer_sequence<int, kKb>{}),
                                                             blocks<true>(std::make_integer_sequence<int, kKb>{})};

// gp[kb][(c*R + r)*4 + m][k] = G_m of filter row w[kb*kKb + k][c][r][0..2] (zero past K); bp likewise.
void pack_weights(const Conv2dShape& s, const float* w, const float* bias, float* gp, float* bp) {
  const int64_t rows = s.C * s.R, kblocks = (s.K + kKb - 1) / kKb;
  for (int64_t kb = 0; kb < kblocks; ++kb)
    for (int64_t k = 0; k < kKb; ++k) {
      const int64_t kk = kb * kKb + k;
      for (int64_t cr = 0; cr < rows; ++cr) {
        float g[3] = {0.f, 0.f, 0.f};
        if (kk < s.K)
          for (int t = 0; t < 3; ++t) g[t] = w[(kk * rows + cr) * 3 + t];
        const float G[kM] = {g[0], 0.5f * (g[0] + g[1] + g[2]), 0.5f * (g[0] - g[1] + g[2]), g[2]};
        for (int m = 0; m < kM; ++m) gp[((kb * rows + cr) * kM + m) * kKb + k] = G[m];
      }
      bp[kb * kKb + k] = kk < s.K && bias ? bias[kk] : 0.f;
    }
}

}  // namespace

void conv2d_forward_direct_f23(const Conv2dShape& s, const float* x, const float* w, const float* bias, float* y) {
  if (!conv_detail::direct_f23_applies(s)) return conv2d_forward_direct(s, x, w, bias, y);
  const int64_t P = s.P(), Q = s.Q(), rows = s.C * s.R, kblocks = (s.K + kKb - 1) / kKb;
  const int64_t pairs = (Q + 1) / 2, tvecs = (pairs + kLanes - 1) / kLanes, Tpad = tvecs * kLanes;
  // Slab row width: the transform of the last pair vector reads up to column 2 * Tpad + 1.
  const int64_t Wp = std::max(s.pad_w + s.W, 2 * Tpad + 2);
  const bool stream = conv_detail::stream_output(s, y, 2 * kLanes);  // whole 32-output vectors

  float* gp = thread_scratch<0>(kblocks * kKb * (rows * kM + 1));
  float* bp = gp + kblocks * kKb * rows * kM;
  pack_weights(s, w, bias, gp, bp);

#pragma omp parallel for schedule(dynamic, 2) if (!omp_in_parallel() && s.macs() > (int64_t(1) << 20))
  for (int64_t task = 0; task < conv_detail::slab_task_count(s, kRowsPerTask); ++task) {
    const auto [n, p0, p1, slab_rows, slab] = conv_detail::slab_task(s, x, task, kRowsPerTask, Wp);
    float* u = thread_scratch<2>(s.C * slab_rows * kM * Tpad);  // 64-byte aligned: U is read with aligned loads
    f23_transform_rows(slab, s.C * slab_rows, Wp, Tpad, kM * Tpad, Tpad, u);  // u[row][m][j]
    int64_t offset[conv_detail::kDirectMaxTaps / 3 * kM];
    for (int64_t c = 0, i = 0; c < s.C; ++c)
      for (int64_t r = 0; r < s.R; ++r)
        for (int64_t m = 0; m < kM; ++m, ++i) offset[i] = ((c * slab_rows + r * s.dil_h) * kM + m) * Tpad;
    // Channel blocks innermost: the 36 U vectors a (row, pair vector) reads stay in L1 for all of them
    // (U of the whole task is ~54 KB for conv1_1); measured level with channel blocks outermost.
    for (int64_t p = p0; p < p1; ++p)
      for (int64_t tv = 0; tv < tvecs; ++tv) {
        const int64_t q0 = tv * 2 * kLanes;
        for (int64_t kb = 0; kb < kblocks; ++kb) {
          const Block b{u + (p - p0) * s.stride_h * kM * Tpad + tv * kLanes, offset, rows * kM,
                        gp + kb * rows * kM * kKb, bp + kb * kKb, y + ((n * s.K + kb * kKb) * P + p) * Q + q0, P * Q,
                        f23_lanes_mask(Q - q0), f23_lanes_mask(Q - q0 - kLanes)};
          kBlocks[stream][size_t(std::min<int64_t>(kKb, s.K - kb * kKb) - 1)](b);
        }
      }
    if (stream) _mm_sfence();  // make this task's non-temporal stores visible before the barrier
  }
}

}  // namespace ember::cpu
