// Fast batch normalisation: OpenMP over channels (each channel's statistics and gradients are
// independent), strips of HW values processed with vectorisable float loops whose partial sums
// are gathered in double.
//
// Training forward (fused BN+ReLU) is two passes per channel: a statistics pass (shifted sums,
// so a large mean does not cancel the variance) then one normalise+ReLU pass, with the affine
// folded into y = x * scale + shift. Backward is also two passes: the two channel sums
// (sum g, sum g * xhat, with the ReLU mask read from the output) and then dx.
// The per-strip loops have AVX2 bodies (chosen at run time): GCC left the masked backward loops
// scalar and branchy (a mispredicted branch per element on the ReLU mask), which made this kernel
// cost as much as the convolutions in a small-CNN train step.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "kernels/cpu/batchnorm.h"

namespace ember::cpu {
namespace {

constexpr int64_t kParallelWork = 16384;

// ---- AVX2 strip loops (8 floats a step, scalar tail) ------------------------------------------
__attribute__((target("avx2,fma"))) inline float hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

// a += sum(x - pivot), b += sum((x - pivot)^2)
__attribute__((target("avx2,fma"))) void strip_stats_avx2(const float* xs, int64_t n, float pivot, float& a, float& b) {
  const __m256 p = _mm256_set1_ps(pivot);
  __m256 va = _mm256_setzero_ps(), vb = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(xs + i), p);
    va = _mm256_add_ps(va, d);
    vb = _mm256_fmadd_ps(d, d, vb);
  }
  float ta = hsum256(va), tb = hsum256(vb);
  for (; i < n; ++i) {
    const float d = xs[i] - pivot;
    ta += d;
    tb += d * d;
  }
  a += ta;
  b += tb;
}

// ys = x * scale + shift, then max(., 0) when relu
__attribute__((target("avx2,fma"))) void strip_normalise_avx2(const float* xs, int64_t n, float scale, float shift,
                                                              bool relu, float* ys) {
  const __m256 sc = _mm256_set1_ps(scale), sh = _mm256_set1_ps(shift), zero = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_fmadd_ps(_mm256_loadu_ps(xs + i), sc, sh);
    if (relu) v = _mm256_max_ps(v, zero);
    _mm256_storeu_ps(ys + i, v);
  }
  for (; i < n; ++i) ys[i] = relu ? std::max(xs[i] * scale + shift, 0.0f) : xs[i] * scale + shift;
}

// With g = dy masked by (y > 0) when relu: a += sum g, b += sum g * (x - mu)
__attribute__((target("avx2,fma"))) void strip_grad_sums_avx2(const float* xs, const float* dys, const float* ys,
                                                              int64_t n, float mu, bool relu, float& a, float& b) {
  const __m256 m = _mm256_set1_ps(mu), zero = _mm256_setzero_ps();
  __m256 va = _mm256_setzero_ps(), vb = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 g = _mm256_loadu_ps(dys + i);
    if (relu) g = _mm256_and_ps(g, _mm256_cmp_ps(_mm256_loadu_ps(ys + i), zero, _CMP_GT_OQ));
    va = _mm256_add_ps(va, g);
    vb = _mm256_fmadd_ps(g, _mm256_sub_ps(_mm256_loadu_ps(xs + i), m), vb);
  }
  float ta = hsum256(va), tb = hsum256(vb);
  for (; i < n; ++i) {
    const float g = !relu || ys[i] > 0.0f ? dys[i] : 0.0f;
    ta += g;
    tb += g * (xs[i] - mu);
  }
  a += ta;
  b += tb;
}

// dx = kg * g + c0 + c1 * (x - mu)
__attribute__((target("avx2,fma"))) void strip_dx_avx2(const float* xs, const float* dys, const float* ys, int64_t n,
                                                       float mu, float kg, float c0, float c1, bool relu, float* dxs) {
  const __m256 m = _mm256_set1_ps(mu), vk = _mm256_set1_ps(kg), v0 = _mm256_set1_ps(c0), v1 = _mm256_set1_ps(c1),
               zero = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 g = _mm256_loadu_ps(dys + i);
    if (relu) g = _mm256_and_ps(g, _mm256_cmp_ps(_mm256_loadu_ps(ys + i), zero, _CMP_GT_OQ));
    const __m256 lin = _mm256_fmadd_ps(v1, _mm256_sub_ps(_mm256_loadu_ps(xs + i), m), v0);
    _mm256_storeu_ps(dxs + i, _mm256_fmadd_ps(vk, g, lin));
  }
  for (; i < n; ++i) {
    const float g = !relu || ys[i] > 0.0f ? dys[i] : 0.0f;
    dxs[i] = kg * g + c0 + c1 * (xs[i] - mu);
  }
}

// Shifted sums of one channel: returns mean and biased variance.
void channel_stats(const BatchNormShape& s, int64_t c, const float* x, double& mean, double& var) {
  const float pivot = x[c * s.HW];  // any value of the channel; centring makes the sums small
  double s1 = 0, s2 = 0;
  for (int64_t n = 0; n < s.N; ++n) {
    const float* xs = x + (n * s.C + c) * s.HW;
    float a = 0, b = 0;
    if (kernels::has_avx2()) {
      strip_stats_avx2(xs, s.HW, pivot, a, b);
      s1 += a;
      s2 += b;
      continue;
    }
#pragma omp simd reduction(+ : a, b)
    for (int64_t i = 0; i < s.HW; ++i) {
      const float d = xs[i] - pivot;
      a += d;
      b += d * d;
    }
    s1 += a;
    s2 += b;
  }
  const double M = double(s.count()), m1 = s1 / M;
  mean = double(pivot) + m1;
  var = std::max(s2 / M - m1 * m1, 0.0);
}

void normalise_channel(const BatchNormShape& s, int64_t c, const float* x, const float* weight, const float* bias,
                       double mean, double var, double eps, bool relu, float* y) {
  const double invstd = 1.0 / std::sqrt(var + eps);
  const double w = weight ? double(weight[c]) : 1.0, b = bias ? double(bias[c]) : 0.0;
  const float scale = float(w * invstd), shift = float(b - mean * w * invstd);
  for (int64_t n = 0; n < s.N; ++n) {
    const float* xs = x + (n * s.C + c) * s.HW;
    float* ys = y + (n * s.C + c) * s.HW;
    if (kernels::has_avx2()) {
      strip_normalise_avx2(xs, s.HW, scale, shift, relu, ys);
    } else if (relu) {
#pragma omp simd
      for (int64_t i = 0; i < s.HW; ++i) ys[i] = std::max(xs[i] * scale + shift, 0.0f);
    } else {
#pragma omp simd
      for (int64_t i = 0; i < s.HW; ++i) ys[i] = xs[i] * scale + shift;
    }
  }
}

void batchnorm_forward_train_fast(const BatchNormShape& s, const float* x, const float* weight, const float* bias,
                                  double eps, bool relu, float* y, float* mean, float* var) {
#pragma omp parallel for schedule(static) if (s.N * s.C * s.HW > kParallelWork)
  for (int64_t c = 0; c < s.C; ++c) {
    double mu, v;
    channel_stats(s, c, x, mu, v);
    mean[c] = float(mu);
    var[c] = float(v);
    normalise_channel(s, c, x, weight, bias, mu, v, eps, relu, y);
  }
}

void batchnorm_forward_eval_fast(const BatchNormShape& s, const float* x, const float* weight, const float* bias,
                                 const float* mean, const float* var, double eps, bool relu, float* y) {
#pragma omp parallel for schedule(static) if (s.N * s.C * s.HW > kParallelWork)
  for (int64_t c = 0; c < s.C; ++c) normalise_channel(s, c, x, weight, bias, mean[c], var[c], eps, relu, y);
}

void batchnorm_backward_fast(const BatchNormShape& s, const float* x, const float* y, const float* dy,
                             const float* weight, const float* mean, const float* var, double eps, bool training,
                             bool relu, float* dx, float* dweight, float* dbias) {
  const double M = double(s.count());
#pragma omp parallel for schedule(static) if (s.N * s.C * s.HW > kParallelWork)
  for (int64_t c = 0; c < s.C; ++c) {
    const float mu = mean[c];
    const double invstd = 1.0 / std::sqrt(double(var[c]) + eps);
    // Pass 1: sum g and sum g * (x - mean); the ReLU mask comes from the saved output.
    double sg = 0, sgd = 0;
    for (int64_t n = 0; n < s.N; ++n) {
      const int64_t base = (n * s.C + c) * s.HW;
      const float *xs = x + base, *dys = dy + base, *ys = y + base;
      float a = 0, b = 0;
      if (kernels::has_avx2()) {
        strip_grad_sums_avx2(xs, dys, ys, s.HW, mu, relu, a, b);
      } else if (relu) {
#pragma omp simd reduction(+ : a, b)
        for (int64_t i = 0; i < s.HW; ++i) {
          const float g = ys[i] > 0.0f ? dys[i] : 0.0f;
          a += g;
          b += g * (xs[i] - mu);
        }
      } else {
#pragma omp simd reduction(+ : a, b)
        for (int64_t i = 0; i < s.HW; ++i) {
          a += dys[i];
          b += dys[i] * (xs[i] - mu);
        }
      }
      sg += a;
      sgd += b;
    }
    const double sgx = sgd * invstd;  // sum g * xhat
    dbias[c] = float(sg);
    dweight[c] = float(sgx);
    if (!dx) continue;
    // Pass 2: dx = k * g - k * sg / M - (x - mean) * k * invstd * sgx / M, with k = weight * invstd.
    const double k = (weight ? double(weight[c]) : 1.0) * invstd;
    const float kg = float(k);
    const float c0 = training ? float(-k * sg / M) : 0.0f;
    const float c1 = training ? float(-k * invstd * sgx / M) : 0.0f;
    for (int64_t n = 0; n < s.N; ++n) {
      const int64_t base = (n * s.C + c) * s.HW;
      const float *xs = x + base, *dys = dy + base, *ys = y + base;
      float* dxs = dx + base;
      if (kernels::has_avx2()) {
        strip_dx_avx2(xs, dys, ys, s.HW, mu, kg, c0, c1, relu, dxs);
      } else if (relu) {
#pragma omp simd
        for (int64_t i = 0; i < s.HW; ++i) {
          const float g = ys[i] > 0.0f ? dys[i] : 0.0f;
          dxs[i] = kg * g + c0 + c1 * (xs[i] - mu);
        }
      } else {
#pragma omp simd
        for (int64_t i = 0; i < s.HW; ++i) dxs[i] = kg * dys[i] + c0 + c1 * (xs[i] - mu);
      }
    }
  }
}

}  // namespace

kernels::VariantTable<BatchNormKernels>& batchnorm_table() {
  static kernels::VariantTable<BatchNormKernels> table(
      "batchnorm",
      {{"fast", {&batchnorm_forward_train_fast, &batchnorm_forward_eval_fast, &batchnorm_backward_fast}, nullptr},
       {"ref",
        {&batchnorm_forward_train_ref<float>, &batchnorm_forward_eval_ref<float>, &batchnorm_backward_ref<float>},
        nullptr}});
  return table;
}

namespace {
[[maybe_unused]] const bool registered_at_load = (batchnorm_table(), true);
}  // namespace

}  // namespace ember::cpu
