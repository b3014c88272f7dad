// Fast pooling: OpenMP over the N*C planes (each plane is independent, so backward scatters never
// race), windows clipped once per output instead of bounds checks per tap, and a dedicated
// 2x2 / stride-2 / no-padding max pool (every VGG pooling layer). Results match pool_ref.cpp:
// same scan order, same tie and NaN rules, so the argmax indices are identical.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "kernels/cpu/pool.h"

namespace ember::cpu {
namespace {

constexpr int64_t kParallelWork = 16384;  // below this many input elements a thread team costs more than it saves

// Window rows/cols of output position o, clipped to the input.
struct Range {
  int64_t lo, hi;
};
inline Range clip(int64_t o, int64_t stride, int64_t pad, int64_t kernel, int64_t size) {
  const int64_t start = o * stride - pad;
  return {std::max<int64_t>(start, 0), std::min<int64_t>(start + kernel, size)};
}

// Scan-order max with the reference rules: strictly greater wins, the first NaN wins and sticks.
struct MaxTracker {
  float best;
  int64_t at;
  inline void consider(float v, int64_t pos) {
    if (!std::isnan(best) && (v > best || std::isnan(v))) {
      best = v;
      at = pos;
    }
  }
};

__attribute__((target("avx2,fma"))) inline void split_even_odd_avx2(const float* r, __m256& even, __m256& odd) {
  const __m256 lo = _mm256_loadu_ps(r), hi = _mm256_loadu_ps(r + 8);
  even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(lo, hi, 0x88)), 0xD8));
  odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(lo, hi, 0xDD)), 0xD8));
}
// MaxTracker::consider on 8 lanes; `off` holds each lane's winning offset (int32 bits) in the window.
__attribute__((target("avx2,fma"))) inline void consider_avx2(__m256 v, __m256 v_off, __m256& best, __m256& off) {
  const __m256 best_nan = _mm256_cmp_ps(best, best, _CMP_UNORD_Q);
  const __m256 wins = _mm256_or_ps(_mm256_cmp_ps(v, best, _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  const __m256 take = _mm256_andnot_ps(best_nan, wins);
  best = _mm256_blendv_ps(best, v, take);
  off = _mm256_blendv_ps(off, v_off, take);
}

// AVX2 2x2 max pool of outputs q0 .. q0+7 of row p: the MaxTracker rules on 8 lanes at once
// (the scalar loop's data-dependent branches mispredicted on every other window). Returns the
// next q to do. Even/odd columns are split with a shuffle + cross-lane permute.
__attribute__((target("avx2,fma"))) int64_t max_pool_2x2_row_avx2(const float* r0, const float* r1, int64_t W,
                                                                  int64_t base, int64_t Q, float* yrow,
                                                                  int64_t* arow) {
  const __m256i lane2 = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
  const __m256 off_b = _mm256_castsi256_ps(_mm256_set1_epi32(1)),
               off_c = _mm256_castsi256_ps(_mm256_set1_epi32(int32_t(W))),
               off_d = _mm256_castsi256_ps(_mm256_set1_epi32(int32_t(W + 1)));
  int64_t q = 0;
  for (; q + 8 <= Q; q += 8) {
    __m256 a, b, c, d;
    split_even_odd_avx2(r0 + 2 * q, a, b);
    split_even_odd_avx2(r1 + 2 * q, c, d);
    __m256 best = a, off = _mm256_setzero_ps();
    consider_avx2(b, off_b, best, off);
    consider_avx2(c, off_c, best, off);
    consider_avx2(d, off_d, best, off);
    _mm256_storeu_ps(yrow + q, best);
    const __m256i idx = _mm256_add_epi32(_mm256_add_epi32(_mm256_set1_epi32(int32_t(base + 2 * q)), lane2),
                                         _mm256_castps_si256(off));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(arow + q), _mm256_cvtepi32_epi64(_mm256_castsi256_si128(idx)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(arow + q + 4),
                        _mm256_cvtepi32_epi64(_mm256_extracti128_si256(idx, 1)));
  }
  return q;
}

void max_pool_2x2_plane(const float* xp, int64_t W, int64_t P, int64_t Q, float* yp, int64_t* ap) {
  // int32 lane arithmetic for the indices: fine for any plane below 2^31 elements.
  const bool simd = kernels::has_avx2() && 2 * P * W + W < (int64_t(1) << 31);
  for (int64_t p = 0; p < P; ++p) {
    const float* r0 = xp + 2 * p * W;
    const float* r1 = r0 + W;
    const int64_t base = 2 * p * W;
    const int64_t q_done = simd ? max_pool_2x2_row_avx2(r0, r1, W, base, Q, yp + p * Q, ap + p * Q) : 0;
    for (int64_t q = q_done; q < Q; ++q) {
      const int64_t w = 2 * q;
      MaxTracker m{r0[w], base + w};
      m.consider(r0[w + 1], base + w + 1);
      m.consider(r1[w], base + W + w);
      m.consider(r1[w + 1], base + W + w + 1);
      yp[p * Q + q] = m.best;
      ap[p * Q + q] = m.at;
    }
  }
}

void max_pool_plane(const Pool2dShape& s, const float* xp, int64_t P, int64_t Q, float* yp, int64_t* ap) {
  for (int64_t p = 0; p < P; ++p) {
    const Range hr = clip(p, s.stride_h, s.pad_h, s.kernel_h, s.H);
    for (int64_t q = 0; q < Q; ++q) {
      const Range wr = clip(q, s.stride_w, s.pad_w, s.kernel_w, s.W);
      MaxTracker m{xp[hr.lo * s.W + wr.lo], hr.lo * s.W + wr.lo};
      for (int64_t h = hr.lo; h < hr.hi; ++h)
        for (int64_t w = wr.lo; w < wr.hi; ++w) m.consider(xp[h * s.W + w], h * s.W + w);
      yp[p * Q + q] = m.best;
      ap[p * Q + q] = m.at;
    }
  }
}

void max_pool2d_forward_fast(const Pool2dShape& s, const float* x, float* y, int64_t* argmax) {
  const int64_t P = s.P(), Q = s.Q(), HW = s.H * s.W, planes = s.planes();
  const bool vgg = s.kernel_h == 2 && s.kernel_w == 2 && s.stride_h == 2 && s.stride_w == 2 && s.pad_h == 0 &&
                   s.pad_w == 0;
#pragma omp parallel for schedule(static) if (planes * HW > kParallelWork)
  for (int64_t plane = 0; plane < planes; ++plane) {
    if (vgg)
      max_pool_2x2_plane(x + plane * HW, s.W, P, Q, y + plane * P * Q, argmax + plane * P * Q);
    else
      max_pool_plane(s, x + plane * HW, P, Q, y + plane * P * Q, argmax + plane * P * Q);
  }
}

void max_pool2d_backward_fast(const Pool2dShape& s, const float* dy, const int64_t* argmax, float* dx) {
  const int64_t PQ = s.P() * s.Q(), HW = s.H * s.W, planes = s.planes();
#pragma omp parallel for schedule(static) if (planes * HW > kParallelWork)
  for (int64_t plane = 0; plane < planes; ++plane) {
    float* dxp = dx + plane * HW;
    const float* dyp = dy + plane * PQ;
    const int64_t* ap = argmax + plane * PQ;
    std::fill(dxp, dxp + HW, 0.0f);
    for (int64_t o = 0; o < PQ; ++o) dxp[ap[o]] += dyp[o];
  }
}

inline float avg_scale(const Pool2dShape& s, Range hr, Range wr) {
  const int64_t count = s.count_include_pad ? s.kernel_h * s.kernel_w : (hr.hi - hr.lo) * (wr.hi - wr.lo);
  return 1.0f / float(count);
}

void avg_pool2d_forward_fast(const Pool2dShape& s, const float* x, float* y) {
  const int64_t P = s.P(), Q = s.Q(), HW = s.H * s.W, planes = s.planes();
#pragma omp parallel for schedule(static) if (planes * HW > kParallelWork)
  for (int64_t plane = 0; plane < planes; ++plane) {
    const float* xp = x + plane * HW;
    float* yp = y + plane * P * Q;
    for (int64_t p = 0; p < P; ++p) {
      const Range hr = clip(p, s.stride_h, s.pad_h, s.kernel_h, s.H);
      for (int64_t q = 0; q < Q; ++q) {
        const Range wr = clip(q, s.stride_w, s.pad_w, s.kernel_w, s.W);
        float sum = 0;
        for (int64_t h = hr.lo; h < hr.hi; ++h)
          for (int64_t w = wr.lo; w < wr.hi; ++w) sum += xp[h * s.W + w];
        yp[p * Q + q] = sum * avg_scale(s, hr, wr);
      }
    }
  }
}

void avg_pool2d_backward_fast(const Pool2dShape& s, const float* dy, float* dx) {
  const int64_t P = s.P(), Q = s.Q(), HW = s.H * s.W, planes = s.planes();
#pragma omp parallel for schedule(static) if (planes * HW > kParallelWork)
  for (int64_t plane = 0; plane < planes; ++plane) {
    float* dxp = dx + plane * HW;
    const float* dyp = dy + plane * P * Q;
    std::fill(dxp, dxp + HW, 0.0f);
    for (int64_t p = 0; p < P; ++p) {
      const Range hr = clip(p, s.stride_h, s.pad_h, s.kernel_h, s.H);
      for (int64_t q = 0; q < Q; ++q) {
        const Range wr = clip(q, s.stride_w, s.pad_w, s.kernel_w, s.W);
        const float share = dyp[p * Q + q] * avg_scale(s, hr, wr);
        for (int64_t h = hr.lo; h < hr.hi; ++h)
          for (int64_t w = wr.lo; w < wr.hi; ++w) dxp[h * s.W + w] += share;
      }
    }
  }
}

void adaptive_avg_pool2d_forward_fast(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW, const float* x,
                                      float* y) {
  const int64_t HW = H * W;
#pragma omp parallel for schedule(static) if (planes * HW > kParallelWork)
  for (int64_t plane = 0; plane < planes; ++plane) {
    const float* xp = x + plane * HW;
    for (int64_t i = 0; i < OH; ++i) {
      const int64_t h0 = adaptive_start(i, H, OH), h1 = adaptive_end(i, H, OH);
      for (int64_t j = 0; j < OW; ++j) {
        const int64_t w0 = adaptive_start(j, W, OW), w1 = adaptive_end(j, W, OW);
        // Global pooling sums thousands of values: keep a double accumulator, rows vectorised in float.
        double sum = 0;
        for (int64_t h = h0; h < h1; ++h) {
          float row = 0;
#pragma omp simd reduction(+ : row)
          for (int64_t w = w0; w < w1; ++w) row += xp[h * W + w];
          sum += row;
        }
        y[(plane * OH + i) * OW + j] = float(sum / double((h1 - h0) * (w1 - w0)));
      }
    }
  }
}

void adaptive_avg_pool2d_backward_fast(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW, const float* dy,
                                       float* dx) {
  const int64_t HW = H * W;
#pragma omp parallel for schedule(static) if (planes * HW > kParallelWork)
  for (int64_t plane = 0; plane < planes; ++plane) {
    float* dxp = dx + plane * HW;
    std::fill(dxp, dxp + HW, 0.0f);
    for (int64_t i = 0; i < OH; ++i) {
      const int64_t h0 = adaptive_start(i, H, OH), h1 = adaptive_end(i, H, OH);
      for (int64_t j = 0; j < OW; ++j) {
        const int64_t w0 = adaptive_start(j, W, OW), w1 = adaptive_end(j, W, OW);
        const float share = dy[(plane * OH + i) * OW + j] / float((h1 - h0) * (w1 - w0));
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w) dxp[h * W + w] += share;
      }
    }
  }
}

}  // namespace

kernels::VariantTable<MaxPoolKernels>& max_pool2d_table() {
  static kernels::VariantTable<MaxPoolKernels> table(
      "max_pool2d", {{"fast", {&max_pool2d_forward_fast, &max_pool2d_backward_fast}, nullptr},
                     {"ref", {&max_pool2d_forward_ref<float>, &max_pool2d_backward_ref<float>}, nullptr}});
  return table;
}
kernels::VariantTable<AvgPoolKernels>& avg_pool2d_table() {
  static kernels::VariantTable<AvgPoolKernels> table(
      "avg_pool2d", {{"fast", {&avg_pool2d_forward_fast, &avg_pool2d_backward_fast}, nullptr},
                     {"ref", {&avg_pool2d_forward_ref<float>, &avg_pool2d_backward_ref<float>}, nullptr}});
  return table;
}
kernels::VariantTable<AdaptiveAvgPoolKernels>& adaptive_avg_pool2d_table() {
  static kernels::VariantTable<AdaptiveAvgPoolKernels> table(
      "adaptive_avg_pool2d",
      {{"fast", {&adaptive_avg_pool2d_forward_fast, &adaptive_avg_pool2d_backward_fast}, nullptr},
       {"ref", {&adaptive_avg_pool2d_forward_ref<float>, &adaptive_avg_pool2d_backward_ref<float>}, nullptr}});
  return table;
}

namespace {
// Build the tables at load time so kernels::variants("max_pool2d") works before the first call.
[[maybe_unused]] const bool registered_at_load =
    (max_pool2d_table(), avg_pool2d_table(), adaptive_avg_pool2d_table(), true);
}  // namespace

}  // namespace ember::cpu
