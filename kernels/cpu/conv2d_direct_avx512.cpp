// Direct convolution for layers with few input channels (variant "direct", AVX-512): the first layer
// of VGG, ResNet and most image models (C = 3).
//
// Why not im2col + GEMM: with C = 3 a 3x3 conv is a GEMM of depth C*R*S = 27. Such a shallow GEMM
// spends more time packing its panels and loading/storing the output tile than multiplying (each
// output element gets 27 FMAs but is read and written by the micro-kernel once per depth block), and
// the 27-row column matrix is 9x the input. VGG16's conv1_1 ran at 22-27% of the two-core peak that
// way. Here every output element is accumulated in a register across all C*R*S taps and written once.
//
// Register block: kKb output channels x up to kVb vectors of 16 adjacent outputs of one output row,
// i.e. up to 4 x 6 = 24 of the 32 zmm registers accumulate; per tap the kernel loads the input vectors
// (unaligned, shifted by the tap's offset) and broadcasts kKb weights: 10 loads feed 24 FMAs. A row is
// cut into even blocks (224 outputs = 14 vectors: 5+5+4, not 6+6+2). 5x5 and 6x4 blocks measured the
// same as 4x6 (before the register fix below); what did matter (conv1_1, batch 8, 2 threads,
// interleaved A/B runs):
//   - per tap, an offset from a per-task table instead of per-block pointer set-up: ~15% faster;
//   - a task of 8 output rows x all channels instead of 1 row: each output plane then gets runs of
//     consecutive rows instead of 64 planes receiving one row each;
//   - prefetching the block's output lines before the taps: a few % (the stores no longer wait for
//     the read-for-ownership), or non-temporal stores for an output larger than the cache (+5%);
//   - accumulators that really stay in registers (see run_block): +16-19%.
//
// Borders: each task first copies the input rows its output rows read into a zero-bordered slab
// (C x ~10 rows x ~240 floats, stays in L1/L2), so no load needs a bounds test; the last vector of a
// row is stored under a mask. Any padding, stride_h and dilation work; stride_w must be 1 (adjacent
// outputs read adjacent inputs).
//
// Threads: OpenMP over (image, 8-row chunk) tasks, handed out dynamically two at a time: a task is
// ~40 us, and on a VM whose two cores drift apart in speed a static split leaves the faster one
// idle at the end (median +5% on conv1_1, 8 interleaved runs). Scratch is the per-thread slab and the packed
// weights (K x C*R*S floats): nothing proportional to the batch. Compiled with -mavx512f...; called
// only after has_avx512().
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <utility>

#include "kernels/cpu/conv2d_im2col.h"

namespace ember::cpu {
namespace {

using conv_detail::thread_scratch;

constexpr int kLanes = 16;  // outputs per zmm: adjacent q
constexpr int kKb = 4;      // output channels per register block
constexpr int kVb = 6;      // vectors per register block (kKb * kVb accumulators + kVb inputs + 1 weight <= 32)
constexpr int64_t kRowsPerTask = 8;

struct Block {
  const float* in;            // slab position of the block's first output (row p, column v0*16)
  const int64_t* tap_offset;  // per tap (c, r, t): its offset from `in` in the slab
  int64_t ntaps;
  const float* wp;  // packed weights of this channel block: [tap][kKb]
  const float* bp;  // packed bias of this channel block: [kKb]
  float* y;         // output of the block's first channel, row and column
  int64_t plane;    // P*Q: distance between output channels
  __mmask16 last;   // store mask of the block's last vector (unused when streaming: no partial vector)
};

// Accumulates KB channels x VB vectors over every tap, then stores them (the last vector under b.last).
// Every loop over k and v is unrolled by pragma, and the store kind is a template argument: GCC
// scalarises `acc` into registers only when every index is a constant before its SRA pass runs. Left
// to unroll later, it kept `acc` on the stack (20 zmm stores at the start, 40 spill/reload moves at the
// end of each 27-tap block): conv1_1 then ran 16-19% slower (interleaved runs, batch 8, 2 threads).
template <int KB, int VB, bool Stream>
void run_block(const Block& b) {
  // Without streaming, ask for the output lines now: the taps below take long enough to hide a miss
  // to DRAM, and the stores at the end then hit in cache instead of stalling on read-for-ownership.
  if constexpr (!Stream) {
#pragma GCC unroll 8
    for (int k = 0; k < KB; ++k)
#pragma GCC unroll 8
      for (int v = 0; v < VB; ++v) _mm_prefetch(reinterpret_cast<const char*>(b.y + k * b.plane + v * kLanes), _MM_HINT_T0);
  }
  __m512 acc[KB][VB];
#pragma GCC unroll 8
  for (int k = 0; k < KB; ++k) {
    const __m512 bias = _mm512_set1_ps(b.bp[k]);
#pragma GCC unroll 8
    for (int v = 0; v < VB; ++v) acc[k][v] = bias;
  }
  const float* w = b.wp;
  for (int64_t i = 0; i < b.ntaps; ++i, w += kKb) {
    const float* in = b.in + b.tap_offset[i];
    __m512 x[VB];
#pragma GCC unroll 8
    for (int v = 0; v < VB; ++v) x[v] = _mm512_loadu_ps(in + v * kLanes);
#pragma GCC unroll 8
    for (int k = 0; k < KB; ++k) {
      const __m512 wk = _mm512_set1_ps(w[k]);
#pragma GCC unroll 8
      for (int v = 0; v < VB; ++v) acc[k][v] = _mm512_fmadd_ps(wk, x[v], acc[k][v]);
    }
  }
#pragma GCC unroll 8
  for (int k = 0; k < KB; ++k) {
    float* out = b.y + k * b.plane;
    if constexpr (Stream) {
#pragma GCC unroll 8
      for (int v = 0; v < VB; ++v) _mm512_stream_ps(out + v * kLanes, acc[k][v]);
    } else {
#pragma GCC unroll 8
      for (int v = 0; v < VB - 1; ++v) _mm512_storeu_ps(out + v * kLanes, acc[k][v]);
      _mm512_mask_storeu_ps(out + (VB - 1) * kLanes, b.last, acc[k][VB - 1]);
    }
  }
}

using BlockFn = void (*)(const Block&);
template <int KB, bool Stream, int... V>
constexpr std::array<BlockFn, sizeof...(V)> blocks_with_channels(std::integer_sequence<int, V...>) {
  return {&run_block<KB, V + 1, Stream>...};
}
template <bool Stream, int... K>
constexpr std::array<std::array<BlockFn, kVb>, sizeof...(K)> all_blocks(std::integer_sequence<int, K...>) {
  return {blocks_with_channels<K + 1, Stream>(std::make_integer_sequence<int, kVb>{})...};
}
// kBlocks[stream][KB-1][VB-1]: partial channel blocks (K % kKb) and partial column blocks (Q % (kVb*16)).
constexpr std::array<std::array<std::array<BlockFn, kVb>, kKb>, 2> kBlocks = {
    all_blocks<false>(std::make_integer_sequence<int, kKb>{}), all_blocks<true>(std::make_integer_sequence<int, kKb>{})};

// wp[kb][tap][k] = w[kb*kKb + k][tap] (zero for channels past K); bp likewise from bias (or zero).
void pack_weights(const Conv2dShape& s, const float* w, const float* bias, float* wp, float* bp) {
  const int64_t taps = s.C * s.R * s.S, kblocks = (s.K + kKb - 1) / kKb;
  for (int64_t kb = 0; kb < kblocks; ++kb)
    for (int64_t k = 0; k < kKb; ++k) {
      const int64_t kk = kb * kKb + k;
      for (int64_t tap = 0; tap < taps; ++tap) wp[(kb * taps + tap) * kKb + k] = kk < s.K ? w[kk * taps + tap] : 0.f;
      bp[kb * kKb + k] = kk < s.K && bias ? bias[kk] : 0.f;
    }
}

}  // namespace

void conv2d_forward_direct(const Conv2dShape& s, const float* x, const float* w, const float* bias, float* y) {
  if (!conv_detail::direct_applies(s)) return conv2d_forward_im2col(s, x, w, bias, y);
  const int64_t P = s.P(), Q = s.Q(), taps = s.C * s.R * s.S, kblocks = (s.K + kKb - 1) / kKb;
  const int64_t qvecs = (Q + kLanes - 1) / kLanes;
  // Even column blocks (14 vectors: 5+5+4, not 6+6+2): a narrow block has too few accumulators per load.
  const int64_t qblocks = (qvecs + kVb - 1) / kVb;
  // Slab row width: every load of the last vector plus the widest tap offset stays inside.
  const int64_t Wp = std::max(s.pad_w + s.W, qvecs * kLanes + (s.S - 1) * s.dil_w);
  const __mmask16 tail = conv_detail::last_vector_mask(Q);
  const bool stream = conv_detail::stream_output(s, y, kLanes);

  float* wp = thread_scratch<0>(kblocks * kKb * (taps + 1));
  float* bp = wp + kblocks * kKb * taps;
  pack_weights(s, w, bias, wp, bp);

  // A task is kRowsPerTask output rows of one image, every channel: the slab of input rows it reads
  // stays in L1/L2, and each output plane receives kRowsPerTask consecutive rows in one go (writing one
  // row per plane per task streamed to 64 pages at once and measured slower at batch 8).
#pragma omp parallel for schedule(dynamic, 2) if (!omp_in_parallel() && s.macs() > (int64_t(1) << 20))
  for (int64_t task = 0; task < conv_detail::slab_task_count(s, kRowsPerTask); ++task) {
    const auto [n, p0, p1, slab_rows, slab] = conv_detail::slab_task(s, x, task, kRowsPerTask, Wp);
    int64_t tap_offset[conv_detail::kDirectMaxTaps];
    conv_detail::slab_tap_offsets(s, slab_rows, Wp, tap_offset);
    for (int64_t kb = 0; kb < kblocks; ++kb) {
      const int64_t kn = std::min<int64_t>(kKb, s.K - kb * kKb);
      for (int64_t p = p0; p < p1; ++p) {
        int64_t vn = 0;
        for (int64_t j = 0, v0 = 0; j < qblocks; ++j, v0 += vn) {
          vn = qvecs / qblocks + (j < qvecs % qblocks);
          const Block b{slab + (p - p0) * s.stride_h * Wp + v0 * kLanes, tap_offset, taps, wp + kb * taps * kKb, bp + kb * kKb,
                        y + ((n * s.K + kb * kKb) * P + p) * Q + v0 * kLanes, P * Q,
                        v0 + vn == qvecs ? tail : __mmask16(0xFFFF)};
          kBlocks[stream][size_t(kn - 1)][size_t(vn - 1)](b);
        }
      }
    }
    if (stream) _mm_sfence();  // make this task's non-temporal stores visible before the barrier
  }
}

}  // namespace ember::cpu
