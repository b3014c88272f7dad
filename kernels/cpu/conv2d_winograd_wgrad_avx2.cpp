// Winograd weight gradient of a 3x3 stride-1 convolution (variant "winograd" of conv2d_bwd_weight,
// AVX2 + FMA). The forward kernel (conv2d_winograd_avx2.cpp) computes a 2x2 output block as
//   Y = A^T [ (G g G^T) .* (B^T d B) ] A,
// which is linear in the filter g, so for an output gradient e (2x2) its adjoint is
//   dL/dg = G^T [ (B^T d B) .* (A e A^T) ] G        (A: 4x2, G: 4x3; Lavin & Gray's F(3x3, 2x2)).
// Summed over every tile of every image, the middle part is 16 independent GEMMs
//   Mw[xi] (K x C) += E[xi] (K x tiles) * V[xi]^T (tiles x C),   E = A e A^T, V = B^T d B,
// deep ones (all tiles of the batch), with 16/36 = 0.44x the multiply-adds of im2col + GEMM. The
// transforms are additions: V exactly as in the forward kernel, E from 2x2 blocks of dy, and the 4x4
// -> 3x3 output transform runs once per (k, c) at the end.
//
// Work split: chunks of tile rows (as in the forward kernel, but deeper: the GEMM output Mw is the
// same for every chunk, so a longer chunk amortises its loads and stores); each thread accumulates its
// chunks in a private Mw (16 x K x C floats) and the partial sums are added at the end. Accuracy: the
// transforms add, subtract and halve, like the forward kernel's; the checker bounds it at 1e-5.
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

// E[xi][k][t] for the tile rows [g0, g1): 8 tiles at a time, from output rows 2ti and 2ti+1 of dy
// copied into zero-padded rows (2 x 2*Qt8 floats of scratch) so tiles past P or Q read zeros.
// A = [1 0; 1 1; 1 -1; 0 -1], applied to rows then to columns.
void transform_grad_chunk(const Conv2dShape& s, const Plan& pl, const float* dy, int64_t g0, int64_t g1, float* E,
                          float* rows) {
  const int64_t T = pl.cols(g1 - g0), K = s.K, width = 2 * pl.Qt8;
  for (int64_t k = 0; k < K; ++k)
    for (int64_t g = g0; g < g1; ++g) {
      const int64_t n = g / pl.Pt, ti = g % pl.Pt;
      for (int r = 0; r < 2; ++r) {
        float* dst = rows + r * width;
        const int64_t p = 2 * ti + r;
        std::fill(dst, dst + width, 0.f);
        if (p < pl.P) std::copy_n(dy + ((n * K + k) * pl.P + p) * pl.Q, pl.Q, dst);
      }
      float* e_out = E + k * T + (g - g0) * pl.Qt8;
      for (int64_t tj = 0; tj < pl.Qt8; tj += kLanes) {
        __m256 e[2][2];  // e[row][column] of 8 tiles
        for (int r = 0; r < 2; ++r) {
          const __m256 a = _mm256_loadu_ps(rows + r * width + 2 * tj), b = _mm256_loadu_ps(rows + r * width + 2 * tj + 8);
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
        const int64_t xi_stride = K * T;
        for (int i = 0; i < 4; ++i) {  // (A e) A^T
          _mm256_storeu_ps(e_out + (i * 4 + 0) * xi_stride + tj, t[i][0]);
          _mm256_storeu_ps(e_out + (i * 4 + 1) * xi_stride + tj, _mm256_add_ps(t[i][0], t[i][1]));
          _mm256_storeu_ps(e_out + (i * 4 + 2) * xi_stride + tj, _mm256_sub_ps(t[i][0], t[i][1]));
          _mm256_storeu_ps(e_out + (i * 4 + 3) * xi_stride + tj, _mm256_sub_ps(_mm256_setzero_ps(), t[i][1]));
        }
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
  // Deeper chunks than the forward's: V and E together near 8 MiB, at least 256 columns.
  const int64_t cols = std::max<int64_t>((int64_t(1) << 21) / (16 * (s.C + s.K)), 256);
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
      transform_input_chunk(s, pl, x, g0, g1, V, thread_scratch<2>(4 * pl.Wp));
      transform_grad_chunk(s, pl, dy, g0, g1, E, thread_scratch<4>(4 * pl.Qt8));
      for (int xi = 0; xi < 16; ++xi)
        sgemm(false, true, s.K, s.C, T, 1.f, E + xi * s.K * T, T, V + xi * s.C * T, T, 1.f, Mw + xi * s.K * s.C, s.C);
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
