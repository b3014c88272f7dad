// Reference 2-D convolution: the definitions written as direct loops (gather form, double accumulation),
// used as the yardstick for the fast variants and as the double-precision path.

#include "kernels/cpu/conv2d.h"

namespace ember::cpu {
namespace {

// Input row/column touched by output position o and filter tap t (may fall in the padding).
inline int64_t input_index(int64_t o, int64_t t, int64_t stride, int64_t pad, int64_t dil) {
  return o * stride - pad + t * dil;
}

}  // namespace

template <class T>
void conv2d_forward_ref(const Conv2dShape& s, const T* x, const T* w, const T* bias, T* y) {
  const int64_t P = s.P(), Q = s.Q(), Cg = s.C / s.groups, Kg = s.K / s.groups;
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t k = 0; k < s.K; ++k) {
      const int64_t g = k / Kg;
      for (int64_t p = 0; p < P; ++p)
        for (int64_t q = 0; q < Q; ++q) {
          double sum = bias ? double(bias[k]) : 0.0;
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t r = 0; r < s.R; ++r) {
              const int64_t h = input_index(p, r, s.stride_h, s.pad_h, s.dil_h);
              if (h < 0 || h >= s.H) continue;
              for (int64_t t = 0; t < s.S; ++t) {
                const int64_t wi = input_index(q, t, s.stride_w, s.pad_w, s.dil_w);
                if (wi < 0 || wi >= s.W) continue;
                sum += double(x[((n * s.C + g * Cg + c) * s.H + h) * s.W + wi]) *
                       double(w[((k * Cg + c) * s.R + r) * s.S + t]);
              }
            }
          y[((n * s.K + k) * P + p) * Q + q] = T(sum);
        }
    }
}

template <class T>
void conv2d_backward_data_ref(const Conv2dShape& s, const T* dy, const T* w, T* dx) {
  const int64_t P = s.P(), Q = s.Q(), Cg = s.C / s.groups, Kg = s.K / s.groups;
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t ci = 0; ci < s.C; ++ci) {
      const int64_t g = ci / Cg, c = ci % Cg;
      for (int64_t h = 0; h < s.H; ++h)
        for (int64_t wi = 0; wi < s.W; ++wi) {
          // dx(h, wi) gathers every output (p, q) whose tap (r, t) lands on it.
          double sum = 0;
          for (int64_t k = g * Kg; k < (g + 1) * Kg; ++k)
            for (int64_t r = 0; r < s.R; ++r) {
              const int64_t ph = h + s.pad_h - r * s.dil_h;
              if (ph < 0 || ph % s.stride_h != 0 || ph / s.stride_h >= P) continue;
              for (int64_t t = 0; t < s.S; ++t) {
                const int64_t qw = wi + s.pad_w - t * s.dil_w;
                if (qw < 0 || qw % s.stride_w != 0 || qw / s.stride_w >= Q) continue;
                sum += double(dy[((n * s.K + k) * P + ph / s.stride_h) * Q + qw / s.stride_w]) *
                       double(w[((k * Cg + c) * s.R + r) * s.S + t]);
              }
            }
          dx[((n * s.C + ci) * s.H + h) * s.W + wi] = T(sum);
        }
    }
}

template <class T>
void conv2d_backward_weight_ref(const Conv2dShape& s, const T* x, const T* dy, T* dw, T* dbias) {
  const int64_t P = s.P(), Q = s.Q(), Cg = s.C / s.groups, Kg = s.K / s.groups;
  for (int64_t k = 0; k < s.K; ++k) {
    const int64_t g = k / Kg;
    for (int64_t c = 0; c < Cg; ++c)
      for (int64_t r = 0; r < s.R; ++r)
        for (int64_t t = 0; t < s.S; ++t) {
          double sum = 0;
          for (int64_t n = 0; n < s.N; ++n)
            for (int64_t p = 0; p < P; ++p) {
              const int64_t h = input_index(p, r, s.stride_h, s.pad_h, s.dil_h);
              if (h < 0 || h >= s.H) continue;
              for (int64_t q = 0; q < Q; ++q) {
                const int64_t wi = input_index(q, t, s.stride_w, s.pad_w, s.dil_w);
                if (wi < 0 || wi >= s.W) continue;
                sum += double(dy[((n * s.K + k) * P + p) * Q + q]) *
                       double(x[((n * s.C + g * Cg + c) * s.H + h) * s.W + wi]);
              }
            }
          dw[((k * Cg + c) * s.R + r) * s.S + t] = T(sum);
        }
    if (dbias) {
      double sum = 0;
      for (int64_t n = 0; n < s.N; ++n)
        for (int64_t i = 0; i < P * Q; ++i) sum += double(dy[(n * s.K + k) * P * Q + i]);
      dbias[k] = T(sum);
    }
  }
}

#define EMBER_CONV_REF_INSTANTIATE(T)                                                               \
  template void conv2d_forward_ref<T>(const Conv2dShape&, const T*, const T*, const T*, T*);      \
  template void conv2d_backward_data_ref<T>(const Conv2dShape&, const T*, const T*, T*);          \
  template void conv2d_backward_weight_ref<T>(const Conv2dShape&, const T*, const T*, T*, T*);
EMBER_CONV_REF_INSTANTIATE(float)
EMBER_CONV_REF_INSTANTIATE(double)
#undef EMBER_CONV_REF_INSTANTIATE

}  // namespace ember::cpu
