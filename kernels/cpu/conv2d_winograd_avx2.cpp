// Winograd F(2x2, 3x3) forward convolution (variant "winograd", AVX2 + FMA).
//
// A 3x3 stride-1 convolution computes each 2x2 block of outputs from a 4x4 block of inputs. Winograd's
// minimal filtering algorithm (Lavin & Gray 2016) does that with 16 multiplies per (input channel,
// output channel) instead of 36, by moving the work into cheap additions:
//   U = G g G^T        filter 3x3 -> 4x4, once per call               (G: 4x3)
//   V = B^T d B        input tile 4x4 -> 4x4, once per tile and channel (B^T: 4x4, entries 0/+-1)
//   M[xi] = U[xi] V[xi] summed over input channels: 16 independent GEMMs [K x C] * [C x tiles]
//   Y = A^T M A        4x4 -> the 2x2 output block                     (A^T: 2x4, entries 0/+-1)
// so the GEMMs do 16/36 = 0.44x the multiply-adds of im2col + GEMM. The transforms are additions on
// data that streams through once; they pay off when C and K are large enough for the GEMMs to
// dominate (VGG's layers), so dense 3x3 convs with fewer than kMinChannels channels stay on im2col.
//
// Vectorisation: 8 horizontally adjacent tiles are one AVX2 vector. Their inputs sit at stride 2,
// so each row of a 4x4 tile group is read as 18 contiguous floats and split into even/odd lanes.
// Tiles per tile row are rounded up to a multiple of 8 (the extra tiles read zero padding and are not
// stored), and every input row is first copied into a zero-padded slab so no load needs a bounds test.
//
// Work split: the tile rows of all images form one list, cut into chunks sized so the transformed
// inputs and GEMM outputs of a chunk stay in cache; OpenMP threads take whole chunks and run
// single-threaded GEMMs on private buffers (no barriers). Accuracy: the transforms only add, subtract
// and halve, so the result differs from direct summation by rounding of the same order (checked
// against the reference at 1e-5 relative error in tests/test_conv_kernels.cpp).
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <vector>

#include "kernels/cpu/conv2d_im2col.h"
#include "kernels/cpu/conv2d_winograd_avx2.h"
#include "kernels/cpu/gemm.h"

namespace ember::cpu {
namespace {

using conv_detail::thread_scratch;

// U[xi] = (G g_kc G^T)[xi] for every (k, c), G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1], written as
// sgemm_packed's A operand (K x C): panels of MR rows, U[xi * xi_stride + ((k / MR) * C + c) * MR +
// k % MR], rows past K zero.
void transform_filters(const Conv2dShape& s, const float* w, int64_t MR, int64_t xi_stride, float* U) {
  const int64_t KC = s.K * s.C;
  std::fill(U, U + 16 * xi_stride, 0.f);
#pragma omp parallel for schedule(static) if (!omp_in_parallel() && KC > 4096)
  for (int64_t kc = 0; kc < KC; ++kc) {
    const int64_t k = kc / s.C, c = kc % s.C, at = ((k / MR) * s.C + c) * MR + k % MR;
    const float* g = w + kc * 9;
    float t[4][3];  // G g
    for (int j = 0; j < 3; ++j) {
      t[0][j] = g[j];
      t[1][j] = 0.5f * (g[j] + g[3 + j] + g[6 + j]);
      t[2][j] = 0.5f * (g[j] - g[3 + j] + g[6 + j]);
      t[3][j] = g[6 + j];
    }
    for (int i = 0; i < 4; ++i) {  // (G g) G^T
      const float u[4] = {t[i][0], 0.5f * (t[i][0] + t[i][1] + t[i][2]), 0.5f * (t[i][0] - t[i][1] + t[i][2]), t[i][2]};
      for (int j = 0; j < 4; ++j) U[(i * 4 + j) * xi_stride + at] = u[j];
    }
  }
}

// The 2x2 outputs of 8 tiles from M[xi][k][col..col+7]: y rows 0 and 1 as 16 interleaved floats each.
// A^T = [1 1 1 0; 0 1 -1 -1].
inline void output_tiles(const float* M, int64_t xi_stride, __m256 bias, __m256 out[2][2]) {
  __m256 m[4][4];
  for (int xi = 0; xi < 16; ++xi) m[xi / 4][xi % 4] = _mm256_loadu_ps(M + xi * xi_stride);
  __m256 s[2][4];
  for (int j = 0; j < 4; ++j) {
    s[0][j] = _mm256_add_ps(_mm256_add_ps(m[0][j], m[1][j]), m[2][j]);
    s[1][j] = _mm256_sub_ps(_mm256_sub_ps(m[1][j], m[2][j]), m[3][j]);
  }
  for (int a = 0; a < 2; ++a) {
    const __m256 y0 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(s[a][0], s[a][1]), s[a][2]), bias);
    const __m256 y1 = _mm256_add_ps(_mm256_sub_ps(_mm256_sub_ps(s[a][1], s[a][2]), s[a][3]), bias);
    const __m256 lo = _mm256_unpacklo_ps(y0, y1), hi = _mm256_unpackhi_ps(y0, y1);
    out[a][0] = _mm256_permute2f128_ps(lo, hi, 0x20);  // tiles 0-3: y0 y1 y0 y1 ...
    out[a][1] = _mm256_permute2f128_ps(lo, hi, 0x31);  // tiles 4-7
  }
}

// Stores 16 floats at y[q0..q0+15], clipped to [0, Q).
inline void store_clipped(float* row, int64_t q0, int64_t Q, const __m256 v[2]) {
  if (q0 + 16 <= Q) {
    _mm256_storeu_ps(row + q0, v[0]);
    _mm256_storeu_ps(row + q0 + 8, v[1]);
    return;
  }
  alignas(32) float tmp[16];
  _mm256_store_ps(tmp, v[0]);
  _mm256_store_ps(tmp + 8, v[1]);
  for (int64_t i = 0; q0 + i < Q; ++i) row[q0 + i] = tmp[i];
}

// One chunk: tile rows [g0, g1) of the list (tile row ti of image n is g = n * Pt + ti).
// U holds the 16 packed filter operands, u_stride floats apart.
void run_chunk(const Conv2dShape& s, const Plan& pl, const SgemmPacked& gemm, const float* x, const float* U,
               int64_t u_stride, const float* bias, float* y, int64_t g0, int64_t g1) {
  const int64_t C = s.C, K = s.K;
  const int64_t T = (pl.cols(g1 - g0) + gemm.NR - 1) / gemm.NR * gemm.NR;  // whole B panels
  float* V = thread_scratch<0>(16 * C * T);  // B operands, packed by the transform itself
  float* M = thread_scratch<1>(16 * K * T);
  transform_input_chunk(s, pl, x, g0, g1, V, gemm.NR, C * T);
  // 16 GEMMs: M[xi] (K x T) = U[xi] (K x C) * V[xi] (C x T), both operands already packed (packing
  // them inside sgemm cost about a tenth of these products: perf on the VGG16 train step).
  for (int xi = 0; xi < 16; ++xi) gemm.fn(K, T, C, U + xi * u_stride, V + xi * C * T, 0.f, M + xi * K * T, T);
  // Output transform and store.
  for (int64_t k = 0; k < K; ++k) {
    const __m256 b = _mm256_set1_ps(bias ? bias[k] : 0.f);
    for (int64_t g = g0; g < g1; ++g) {
      const int64_t n = g / pl.Pt, ti = g % pl.Pt;
      float* plane = y + (n * K + k) * pl.P * pl.Q;
      const float* m = M + k * T + (g - g0) * pl.Qt8;
      for (int64_t tj = 0; tj < pl.Qt8; tj += kLanes) {
        const int64_t q0 = 2 * tj;
        if (q0 >= pl.Q) break;
        __m256 out[2][2];
        output_tiles(m + tj, K * T, b, out);
        store_clipped(plane + 2 * ti * pl.Q, q0, pl.Q, out[0]);
        if (2 * ti + 1 < pl.P) store_clipped(plane + (2 * ti + 1) * pl.Q, q0, pl.Q, out[1]);
      }
    }
  }
}

}  // namespace

void conv2d_forward_winograd(const Conv2dShape& s, const float* x, const float* w, const float* bias, float* y) {
  if (!winograd_applies(s)) return conv2d_forward_im2col(s, x, w, bias, y);
  const Plan pl(s);
  const SgemmPacked gemm = sgemm_packed();
  const int64_t u_stride = (s.K + gemm.MR - 1) / gemm.MR * gemm.MR * s.C;
  // Transformed filters, 16 packed K x C operands: this thread's scratch, read by every chunk's thread.
  float* U = thread_scratch<2>(16 * u_stride);
  transform_filters(s, w, gemm.MR, u_stride, U);
  const int64_t chunks = (pl.rows + pl.chunk_rows - 1) / pl.chunk_rows;
#pragma omp parallel for schedule(dynamic, 1) if (!omp_in_parallel() && chunks > 1)
  for (int64_t i = 0; i < chunks; ++i) {
    const int64_t g0 = i * pl.chunk_rows, g1 = std::min(pl.rows, g0 + pl.chunk_rows);
    run_chunk(s, pl, gemm, x, U, u_stride, bias, y, g0, g1);
  }
}

// The data gradient of a 3x3 stride-1 conv is itself one: dx = conv(dy, w'), with w' the filters
// transposed (C outputs from K inputs) and flipped 180 degrees, and padding 2 - pad (so it needs
// pad <= 2). It runs through the forward kernel above.
void conv2d_backward_data_winograd(const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  if (!winograd_applies(s) || s.pad_h > 2 || s.pad_w > 2) return conv2d_backward_data_im2col(s, dy, w, dx);
  Conv2dShape t = s;
  t.C = s.K, t.K = s.C, t.H = s.P(), t.W = s.Q(), t.pad_h = 2 - s.pad_h, t.pad_w = 2 - s.pad_w;
  static thread_local std::vector<float> flipped;
  flipped.resize(size_t(s.K * s.C * 9));
  for (int64_t k = 0; k < s.K; ++k)
    for (int64_t c = 0; c < s.C; ++c)
      for (int i = 0; i < 9; ++i) flipped[size_t((c * s.K + k) * 9 + i)] = w[(k * s.C + c) * 9 + (8 - i)];
  conv2d_forward_winograd(t, dy, flipped.data(), nullptr, dx);
}

}  // namespace ember::cpu
