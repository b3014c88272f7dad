// Reference pooling: the definitions as plain serial loops (double accumulation for averages).
// The yardstick for pool_fast.cpp and the float64 path used by the gradient checker.
#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/cpu/pool.h"

namespace ember::cpu {

template <class T>
void max_pool2d_forward_ref(const Pool2dShape& s, const T* x, T* y, int64_t* argmax) {
  const int64_t P = s.P(), Q = s.Q();
  for (int64_t plane = 0; plane < s.planes(); ++plane) {
    const T* xp = x + plane * s.H * s.W;
    for (int64_t p = 0; p < P; ++p)
      for (int64_t q = 0; q < Q; ++q) {
        T best = -std::numeric_limits<T>::infinity();
        int64_t best_at = -1;
        for (int64_t r = 0; r < s.kernel_h; ++r) {
          const int64_t h = p * s.stride_h - s.pad_h + r;
          if (h < 0 || h >= s.H) continue;
          for (int64_t t = 0; t < s.kernel_w; ++t) {
            const int64_t w = q * s.stride_w - s.pad_w + t;
            if (w < 0 || w >= s.W) continue;
            const T v = xp[h * s.W + w];
            if (best_at < 0 || v > best || std::isnan(v)) {
              best = v;
              best_at = h * s.W + w;
              if (std::isnan(v)) break;
            }
          }
          if (best_at >= 0 && std::isnan(best)) break;
        }
        const int64_t o = (plane * P + p) * Q + q;
        y[o] = best;
        argmax[o] = best_at;
      }
  }
}

template <class T>
void max_pool2d_backward_ref(const Pool2dShape& s, const T* dy, const int64_t* argmax, T* dx) {
  const int64_t P = s.P(), Q = s.Q(), HW = s.H * s.W;
  std::fill(dx, dx + s.planes() * HW, T(0));
  for (int64_t plane = 0; plane < s.planes(); ++plane)
    for (int64_t o = 0; o < P * Q; ++o) {
      const int64_t at = argmax[plane * P * Q + o];
      if (at >= 0) dx[plane * HW + at] += dy[plane * P * Q + o];
    }
}

namespace {
// Number of elements the average of output (p, q) is divided by.
int64_t avg_divisor(const Pool2dShape& s, int64_t p, int64_t q) {
  if (s.count_include_pad) return s.kernel_h * s.kernel_w;  // floor mode: the window never leaves the padding
  const int64_t h0 = std::max<int64_t>(p * s.stride_h - s.pad_h, 0);
  const int64_t h1 = std::min<int64_t>(p * s.stride_h - s.pad_h + s.kernel_h, s.H);
  const int64_t w0 = std::max<int64_t>(q * s.stride_w - s.pad_w, 0);
  const int64_t w1 = std::min<int64_t>(q * s.stride_w - s.pad_w + s.kernel_w, s.W);
  return (h1 - h0) * (w1 - w0);
}
}  // namespace

template <class T>
void avg_pool2d_forward_ref(const Pool2dShape& s, const T* x, T* y) {
  const int64_t P = s.P(), Q = s.Q();
  for (int64_t plane = 0; plane < s.planes(); ++plane) {
    const T* xp = x + plane * s.H * s.W;
    for (int64_t p = 0; p < P; ++p)
      for (int64_t q = 0; q < Q; ++q) {
        double sum = 0;
        for (int64_t r = 0; r < s.kernel_h; ++r) {
          const int64_t h = p * s.stride_h - s.pad_h + r;
          if (h < 0 || h >= s.H) continue;
          for (int64_t t = 0; t < s.kernel_w; ++t) {
            const int64_t w = q * s.stride_w - s.pad_w + t;
            if (w >= 0 && w < s.W) sum += double(xp[h * s.W + w]);
          }
        }
        y[(plane * P + p) * Q + q] = T(sum / double(avg_divisor(s, p, q)));
      }
  }
}

template <class T>
void avg_pool2d_backward_ref(const Pool2dShape& s, const T* dy, T* dx) {
  const int64_t P = s.P(), Q = s.Q(), HW = s.H * s.W;
  std::fill(dx, dx + s.planes() * HW, T(0));
  for (int64_t plane = 0; plane < s.planes(); ++plane)
    for (int64_t p = 0; p < P; ++p)
      for (int64_t q = 0; q < Q; ++q) {
        const T share = dy[(plane * P + p) * Q + q] / T(avg_divisor(s, p, q));
        for (int64_t r = 0; r < s.kernel_h; ++r) {
          const int64_t h = p * s.stride_h - s.pad_h + r;
          if (h < 0 || h >= s.H) continue;
          for (int64_t t = 0; t < s.kernel_w; ++t) {
            const int64_t w = q * s.stride_w - s.pad_w + t;
            if (w >= 0 && w < s.W) dx[plane * HW + h * s.W + w] += share;
          }
        }
      }
}

template <class T>
void adaptive_avg_pool2d_forward_ref(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW, const T* x, T* y) {
  for (int64_t plane = 0; plane < planes; ++plane)
    for (int64_t i = 0; i < OH; ++i) {
      const int64_t h0 = adaptive_start(i, H, OH), h1 = adaptive_end(i, H, OH);
      for (int64_t j = 0; j < OW; ++j) {
        const int64_t w0 = adaptive_start(j, W, OW), w1 = adaptive_end(j, W, OW);
        double sum = 0;
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w) sum += double(x[(plane * H + h) * W + w]);
        y[(plane * OH + i) * OW + j] = T(sum / double((h1 - h0) * (w1 - w0)));
      }
    }
}

template <class T>
void adaptive_avg_pool2d_backward_ref(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW, const T* dy,
                                      T* dx) {
  std::fill(dx, dx + planes * H * W, T(0));
  for (int64_t plane = 0; plane < planes; ++plane)
    for (int64_t i = 0; i < OH; ++i) {
      const int64_t h0 = adaptive_start(i, H, OH), h1 = adaptive_end(i, H, OH);
      for (int64_t j = 0; j < OW; ++j) {
        const int64_t w0 = adaptive_start(j, W, OW), w1 = adaptive_end(j, W, OW);
        const T share = dy[(plane * OH + i) * OW + j] / T((h1 - h0) * (w1 - w0));
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w) dx[(plane * H + h) * W + w] += share;
      }
    }
}

#define EMBER_POOL_INSTANTIATE(T)                                                                               \
  template void max_pool2d_forward_ref<T>(const Pool2dShape&, const T*, T*, int64_t*);                          \
  template void max_pool2d_backward_ref<T>(const Pool2dShape&, const T*, const int64_t*, T*);                   \
  template void avg_pool2d_forward_ref<T>(const Pool2dShape&, const T*, T*);                                    \
  template void avg_pool2d_backward_ref<T>(const Pool2dShape&, const T*, T*);                                   \
  template void adaptive_avg_pool2d_forward_ref<T>(int64_t, int64_t, int64_t, int64_t, int64_t, const T*, T*); \
  template void adaptive_avg_pool2d_backward_ref<T>(int64_t, int64_t, int64_t, int64_t, int64_t, const T*, T*);
EMBER_POOL_INSTANTIATE(float)
EMBER_POOL_INSTANTIATE(double)
#undef EMBER_POOL_INSTANTIATE

}  // namespace ember::cpu
