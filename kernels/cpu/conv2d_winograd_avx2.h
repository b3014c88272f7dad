// Shared pieces of the Winograd F(2x2, 3x3) kernels (conv2d_winograd_avx2.cpp: forward and data
// gradient; conv2d_winograd_wgrad_avx2.cpp: weight gradient): the domain, the tiling plan, and the
// input transform V = B^T d B. Included only by files compiled with AVX2 + FMA; everything has
// internal linkage so no AVX2 code can be shared into a path run without AVX2.
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "kernels/cpu/conv2d.h"

namespace ember::cpu {
namespace {

constexpr int64_t kLanes = 8;        // tiles per vector
constexpr int64_t kMinChannels = 8;  // below this the transforms cost more than the GEMM saves

bool winograd_applies(const Conv2dShape& s) {
  return s.R == 3 && s.S == 3 && s.stride_h == 1 && s.stride_w == 1 && s.dil_h == 1 && s.dil_w == 1 &&
         s.groups == 1 && s.C >= kMinChannels && s.K >= kMinChannels;
}

struct Plan {
  int64_t P, Q;       // output size
  int64_t Pt, Qt8;    // tile rows per image, tiles per tile row rounded up to kLanes
  int64_t rows;       // tile rows over all images: N * Pt
  int64_t chunk_rows; // tile rows per chunk
  explicit Plan(const Conv2dShape& s) : P(s.P()), Q(s.Q()) {
    Pt = (P + 1) / 2;
    Qt8 = ((Q + 1) / 2 + kLanes - 1) / kLanes * kLanes;
    rows = s.N * Pt;
    // V (16 x C x T) plus M (16 x K x T) floats near 4 MiB: they stream through L2 into L3,
    // but at least 256 columns, or the GEMMs' packing of U (K x C per xi) was not amortised at
    // VGG's deep layers (measured on conv1_2..conv5_2, batch 8: 64 columns cost conv5_2 1.3x).
    // Re-measured after 9312fcc (U packed once per call): a fixed 128 or 1024 columns per chunk
    // was slower on conv1_2, conv2_x and conv5_x, and level on conv3_x.
    const int64_t cols = std::max<int64_t>((int64_t(1) << 20) / (16 * (s.C + s.K)), 256);
    chunk_rows = std::clamp<int64_t>(cols / Qt8, 1, rows);
  }
  int64_t cols(int64_t nrows) const { return nrows * Qt8; }
};

inline __m256 even_lanes(__m256 a, __m256 b) {  // a0 a2 a4 a6 b0 b2 b4 b6
  const __m256 t = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), _MM_SHUFFLE(3, 1, 2, 0)));
}
inline __m256 odd_lanes(__m256 a, __m256 b) {  // a1 a3 a5 a7 b1 b3 b5 b7
  const __m256 t = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), _MM_SHUFFLE(3, 1, 2, 0)));
}

// V[xi][c][col..col+7] for 8 tiles whose 4x4 inputs start at row[r] + 0, 2, ..., 14 (r = 0..3; 18
// floats of each row are read). B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], applied to rows then
// to columns.
inline void input_tiles(const float* const row[4], float* V, int64_t xi_stride) {
  __m256 d[4][4];
  for (int r = 0; r < 4; ++r) {
    const float* p = row[r];
    const __m256 a = _mm256_loadu_ps(p), b = _mm256_loadu_ps(p + 8);
    const __m256 a2 = _mm256_loadu_ps(p + 2), b2 = _mm256_loadu_ps(p + 10);
    d[r][0] = even_lanes(a, b);
    d[r][1] = odd_lanes(a, b);
    d[r][2] = even_lanes(a2, b2);
    d[r][3] = odd_lanes(a2, b2);
  }
  __m256 t[4][4];
  for (int j = 0; j < 4; ++j) {
    t[0][j] = _mm256_sub_ps(d[0][j], d[2][j]);
    t[1][j] = _mm256_add_ps(d[1][j], d[2][j]);
    t[2][j] = _mm256_sub_ps(d[2][j], d[1][j]);
    t[3][j] = _mm256_sub_ps(d[1][j], d[3][j]);
  }
  for (int i = 0; i < 4; ++i) {
    _mm256_storeu_ps(V + (i * 4 + 0) * xi_stride, _mm256_sub_ps(t[i][0], t[i][2]));
    _mm256_storeu_ps(V + (i * 4 + 1) * xi_stride, _mm256_add_ps(t[i][1], t[i][2]));
    _mm256_storeu_ps(V + (i * 4 + 2) * xi_stride, _mm256_sub_ps(t[i][2], t[i][1]));
    _mm256_storeu_ps(V + (i * 4 + 3) * xi_stride, _mm256_sub_ps(t[i][1], t[i][3]));
  }
}

// Where 8 tiles read `width` floats from column w0 on of `rows` rows (nullptr: a row outside the
// input, all zeros): into the rows themselves when [w0, w0 + width) lies inside [0, W), otherwise
// into zero-padded copies in `edge` (rows x kEdgeRow floats). Only a row's first and last groups of
// tiles need the copy; copying every row into a padded slab instead cost about a sixth of the weight
// gradient's time at conv1_2 (perf: memmove + memset).
constexpr int64_t kEdgeRow = 24;
template <int Rows>
inline void tile_sources(const float* const row[Rows], int64_t w0, int64_t width, int64_t W, float* edge,
                         const float* src[Rows]) {
  alignas(32) static const float zeros[kEdgeRow] = {};
  const bool inside = w0 >= 0 && w0 + width <= W;
  for (int r = 0; r < Rows; ++r) {
    if (!row[r]) {
      src[r] = zeros;
    } else if (inside) {
      src[r] = row[r] + w0;
    } else {
      float* e = edge + r * kEdgeRow;
      std::fill(e, e + kEdgeRow, 0.f);
      for (int64_t w = std::max<int64_t>(w0, 0); w < std::min(w0 + width, W); ++w) e[w - w0] = row[r][w];
      src[r] = e;
    }
  }
}

// V for tile rows [g0, g1) of the list (tile row ti of image n is g = n * Pt + ti), T = pl.cols(g1 - g0)
// columns, read straight from x (zero padding supplied by tile_sources). Column t of channel c of
// position xi goes to V[xi * xi_stride + (t / width) * C * width + c * width + t % width]: with
// width = T that is V[xi][c][t]; with width = the GEMM's NR it is sgemm_packed's B panels (width a
// multiple of 8, xi_stride = C * T rounded up to whole panels; columns from T on are zeroed).
inline void transform_input_chunk(const Conv2dShape& s, const Plan& pl, const float* x, int64_t g0, int64_t g1,
                                  float* V, int64_t width, int64_t xi_stride) {
  const int64_t T = pl.cols(g1 - g0), C = s.C, H = s.H, W = s.W;
  if (T % width)  // the last panel's columns past T
    for (int64_t xi = 0; xi < 16; ++xi)
      for (int64_t c = 0; c < C; ++c) {
        float* pad = V + xi * xi_stride + (T / width) * C * width + c * width;
        std::fill(pad + T % width, pad + width, 0.f);
      }
  alignas(32) float edge[4 * kEdgeRow];
  for (int64_t c = 0; c < C; ++c) {
    for (int64_t g = g0; g < g1; ++g) {
      const int64_t n = g / pl.Pt, ti = g % pl.Pt;
      const float* plane = x + (n * C + c) * H * W;
      const float* row[4];
      for (int r = 0; r < 4; ++r) {
        const int64_t h = 2 * ti + r - s.pad_h;
        row[r] = h >= 0 && h < H ? plane + h * W : nullptr;
      }
      for (int64_t tj = 0; tj < pl.Qt8; tj += kLanes) {
        const int64_t t = (g - g0) * pl.Qt8 + tj;
        const float* src[4];
        tile_sources<4>(row, 2 * tj - s.pad_w, 2 * kLanes + 2, W, edge, src);
        input_tiles(src, V + (t / width) * C * width + c * width + t % width, xi_stride);
      }
    }
  }
}

}  // namespace
}  // namespace ember::cpu
