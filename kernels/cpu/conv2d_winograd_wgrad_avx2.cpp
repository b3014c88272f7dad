// Winograd weight gradient of a 3x3 stride-1 convolution (variant "winograd" of conv2d_bwd_weight,
// AVX2 + FMA). The forward kernel (conv2d_winograd_avx2.cpp) computes a 2x2 output block as
//   Y = A^T [ (G g G^T) .* (B^T d B) ] A,
// which is linear in the filter g, so for an output gradient e (2x2) its adjoint is
//   dL/dg = G^T [ (B^T d B) .* (A e A^T) ] G        (A: 4x2, G: 4x3; Lavin & Gray's F(3x3, 2x2)).
// Summed over every tile of every image, the middle part is 16 independent GEMMs
//   Mw[xi] (K x C) += E[xi] (K x tiles) * V[xi]^T (tiles x C),   E = A e A^T, V = B^T d B,
// deep ones (all tiles of the batch), with 16/36 = 0.44x the multiply-adds of im2col + GEMM. They
// run as dot products along the tiles (dot_block), on E and V as the transforms laid them out. The
// transforms are additions: V exactly as in the forward kernel, E from 2x2 blocks of dy, and the 4x4
// -> 3x3 output transform runs once per (k, c) at the end.
//
// Work split: chunks of tile rows (as in the forward kernel, but deeper: Mw is the same for every
// chunk, so a longer chunk amortises its lane sums and its loads and stores); each thread accumulates its
// chunks in a private Mw (16 x K x C floats) and the partial sums are added at the end. Accuracy: the
// transforms add, subtract and halve, like the forward kernel's; the checker bounds it at 1e-5.
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <vector>

#include "kernels/cpu/conv2d_im2col.h"
#include "kernels/cpu/conv2d_winograd_avx2.h"

namespace ember::cpu {
namespace {

using conv_detail::thread_scratch;

// E[xi][k][t] for the tile rows [g0, g1): 8 tiles at a time, from output rows 2ti and 2ti+1 of dy
// (rows and columns past P or Q read as zeros, through tile_sources).
// A = [1 0; 1 1; 1 -1; 0 -1], applied to rows then to columns.
void transform_grad_chunk(const Conv2dShape& s, const Plan& pl, const float* dy, int64_t g0, int64_t g1, float* E) {
  const int64_t T = pl.cols(g1 - g0), K = s.K, xi_stride = K * T;
  alignas(32) float edge[2 * kEdgeRow];
  for (int64_t k = 0; k < K; ++k)
    for (int64_t g = g0; g < g1; ++g) {
      const int64_t n = g / pl.Pt, ti = g % pl.Pt;
      const float* row[2];
      for (int r = 0; r < 2; ++r) {
        const int64_t p = 2 * ti + r;
        row[r] = p < pl.P ? dy + ((n * K + k) * pl.P + p) * pl.Q : nullptr;
      }
      float* e_out = E + k * T + (g - g0) * pl.Qt8;
      for (int64_t tj = 0; tj < pl.Qt8; tj += kLanes) {
        const float* src[2];
        tile_sources<2>(row, 2 * tj, 2 * kLanes, pl.Q, edge, src);
        __m256 e[2][2];  // e[row][column] of 8 tiles
        for (int r = 0; r < 2; ++r) {
          const __m256 a = _mm256_loadu_ps(src[r]), b = _mm256_loadu_ps(src[r] + 8);
          e[r][0] = even_lanes(a, b);
          e[r][1] = odd_lanes(a, b);
        }
        __m256 t[4][2];  // A e
        for (int j = 0; j < 2; ++j) {
          t[0][j] = e[0][j];
          t[1][j] = _mm256_add_ps(e[0][j], e[1][j]);
          t[2][j] = _mm256_sub_ps(e[0][j], e[1][j]);
          t[3][j] = _mm256_sub_ps(_mm256_setzero_ps(), e[1][j]);
        }
        for (int i = 0; i < 4; ++i) {  // (A e) A^T
          _mm256_storeu_ps(e_out + (i * 4 + 0) * xi_stride + tj, t[i][0]);
          _mm256_storeu_ps(e_out + (i * 4 + 1) * xi_stride + tj, _mm256_add_ps(t[i][0], t[i][1]));
          _mm256_storeu_ps(e_out + (i * 4 + 2) * xi_stride + tj, _mm256_sub_ps(t[i][0], t[i][1]));
          _mm256_storeu_ps(e_out + (i * 4 + 3) * xi_stride + tj, _mm256_sub_ps(_mm256_setzero_ps(), t[i][1]));
        }
      }
    }
}

// {sum of a0's lanes, ..., sum of a3's lanes}.
inline __m128 lane_sums4(__m256 a0, __m256 a1, __m256 a2, __m256 a3) {
  const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
  return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}
inline float lane_sum(__m256 a) {
  const __m128 q = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  const __m128 d = _mm_add_ps(q, _mm_movehl_ps(q, q));
  return _mm_cvtss_f32(_mm_add_ss(d, _mm_movehdup_ps(d)));
}

// mw[i][j] += sum_t e[i][t] * v[j][t] for BM rows of E and BN rows of V, both T long (a multiple of
// 8; rows T apart): the BM x BN dot products run as vectors over t, reduced across lanes once at the
// end. Both operands are read in the layout the transforms wrote, so nothing is packed (packing them
// for sgemm cost as much as the multiply-adds at conv1_2, 64 x 64 per xi). 3 x 4 accumulators + 3 E
// rows + 1 V vector fill the 16 ymm registers; 7 loads per 12 FMAs. Not inlined, so that
// tools/check-register-blocks.sh can find every instance in the assembly.
template <int BM, int BN>
__attribute__((noinline)) void dot_block(const float* e, const float* v, int64_t T, float* mw, int64_t ldm) {
  __m256 acc[BM][BN];
#pragma GCC unroll 4
  for (int i = 0; i < BM; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < BN; ++j) acc[i][j] = _mm256_setzero_ps();
  for (int64_t t = 0; t < T; t += kLanes) {
    __m256 a[BM];
#pragma GCC unroll 4
    for (int i = 0; i < BM; ++i) a[i] = _mm256_loadu_ps(e + i * T + t);
#pragma GCC unroll 4
    for (int j = 0; j < BN; ++j) {
      const __m256 b = _mm256_loadu_ps(v + j * T + t);
#pragma GCC unroll 4
      for (int i = 0; i < BM; ++i) acc[i][j] = _mm256_fmadd_ps(a[i], b, acc[i][j]);
    }
  }
#pragma GCC unroll 4
  for (int i = 0; i < BM; ++i) {
    float* row = mw + i * ldm;
    if constexpr (BN == 4) {
      _mm_storeu_ps(row, _mm_add_ps(_mm_loadu_ps(row), lane_sums4(acc[i][0], acc[i][1], acc[i][2], acc[i][3])));
    } else {
#pragma GCC unroll 4
      for (int j = 0; j < BN; ++j) row[j] += lane_sum(acc[i][j]);
    }
  }
}

template <int BM>
void dot_block_cols(int bn, const float* e, const float* v, int64_t T, float* mw, int64_t ldm) {
  switch (bn) {
    case 4: return dot_block<BM, 4>(e, v, T, mw, ldm);
    case 3: return dot_block<BM, 3>(e, v, T, mw, ldm);
    case 2: return dot_block<BM, 2>(e, v, T, mw, ldm);
    default: return dot_block<BM, 1>(e, v, T, mw, ldm);
  }
}

// Mw (K x C) += E (K x T) * V^T (C x T)^T, one xi.
void accumulate_products(int64_t K, int64_t C, int64_t T, const float* E, const float* V, float* Mw) {
  constexpr int64_t BM = 3, BN = 4;
  for (int64_t k = 0; k < K; k += BM) {  // 3 rows of E stay in L1 while V streams from L2
    const int bm = int(std::min(BM, K - k));
    for (int64_t c = 0; c < C; c += BN) {
      const int bn = int(std::min(BN, C - c));
      const float *e = E + k * T, *v = V + c * T;
      float* mw = Mw + k * C + c;
      if (bm == 3) dot_block_cols<3>(bn, e, v, T, mw, C);
      else if (bm == 2) dot_block_cols<2>(bn, e, v, T, mw, C);
      else dot_block_cols<1>(bn, e, v, T, mw, C);
    }
  }
}

// dw[k][c] = G^T Mw[.][k][c] G for every (k, c), G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1].
void transform_back(const Conv2dShape& s, const float* Mw, float* dw) {
  const int64_t KC = s.K * s.C;
  static constexpr float G[4][3] = {{1.f, 0.f, 0.f}, {.5f, .5f, .5f}, {.5f, -.5f, .5f}, {0.f, 0.f, 1.f}};
#pragma omp parallel for schedule(static) if (!omp_in_parallel() && KC > 4096)
  for (int64_t kc = 0; kc < KC; ++kc) {
    float m[4][4], t[3][4];  // t = G^T m
    for (int xi = 0; xi < 16; ++xi) m[xi / 4][xi % 4] = Mw[xi * KC + kc];
    for (int r = 0; r < 3; ++r)
      for (int j = 0; j < 4; ++j) t[r][j] = G[0][r] * m[0][j] + G[1][r] * m[1][j] + G[2][r] * m[2][j] + G[3][r] * m[3][j];
    for (int r = 0; r < 3; ++r)
      for (int c = 0; c < 3; ++c)
        dw[kc * 9 + r * 3 + c] = t[r][0] * G[0][c] + t[r][1] * G[1][c] + t[r][2] * G[2][c] + t[r][3] * G[3][c];
  }
}

}  // namespace

void conv2d_backward_weight_winograd(const Conv2dShape& s, const float* x, const float* dy, float* dw, float* dbias) {
  if (!winograd_applies(s) || s.N == 0) return conv2d_backward_weight_im2col(s, x, dy, dw, dbias);
  const Plan pl(s);
  // 256-512 columns per chunk (V and E together near 8 MiB where C + K >= 256). Long rows amortise
  // dot_block's lane sums; at conv1_2 (C + K = 128), 1024 columns measured 10-15% slower than 448.
  const int64_t cols = std::clamp<int64_t>((int64_t(1) << 21) / (16 * (s.C + s.K)), 256, 512);
  const int64_t chunk_rows = std::clamp<int64_t>(cols / pl.Qt8, 1, pl.rows);
  const int64_t chunks = (pl.rows + chunk_rows - 1) / chunk_rows, acc_size = 16 * s.K * s.C;
  const int nt = omp_in_parallel() || chunks == 1 ? 1 : omp_get_max_threads();
  std::vector<float*> partial(size_t(nt), nullptr);
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    float* Mw = thread_scratch<3>(acc_size);
    std::fill(Mw, Mw + acc_size, 0.f);
    bool used = false;
    // Static, so that the partial sums (and the rounding of their total) do not depend on timing.
#pragma omp for schedule(static)
    for (int64_t i = 0; i < chunks; ++i) {
      const int64_t g0 = i * chunk_rows, g1 = std::min(pl.rows, g0 + chunk_rows), T = pl.cols(g1 - g0);
      float* V = thread_scratch<0>(16 * s.C * T);
      float* E = thread_scratch<1>(16 * s.K * T);
      transform_input_chunk(s, pl, x, g0, g1, V, T, s.C * T);
      transform_grad_chunk(s, pl, dy, g0, g1, E);
      for (int xi = 0; xi < 16; ++xi)
        accumulate_products(s.K, s.C, T, E + xi * s.K * T, V + xi * s.C * T, Mw + xi * s.K * s.C);
      used = true;
    }
    partial[size_t(omp_get_thread_num())] = used ? Mw : nullptr;
#pragma omp barrier
    // Add the other threads' sums into the first used one, split by element.
#pragma omp for schedule(static)
    for (int64_t i = 0; i < acc_size; ++i) {
      float* first = nullptr;
      for (float* p : partial)
        if (p) {
          if (!first) first = p;
          else first[i] += p[i];
        }
    }
  }
  const float* sum = nullptr;
  for (float* p : partial)
    if (p && !sum) sum = p;
  transform_back(s, sum, dw);
  if (dbias) conv_detail::bias_gradient(s, dy, dbias);
}

}  // namespace ember::cpu
