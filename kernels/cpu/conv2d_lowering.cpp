// im2col / col2im: the memory-bound lowering steps of the GEMM-based convolutions.
#include <algorithm>
#include <cstring>

#include "kernels/cpu/conv2d_im2col.h"

namespace ember::cpu::conv_detail {

void im2col(const Conv2dShape& s, const float* x, int64_t p0, int64_t p1, float* col, bool parallel) {
  const int64_t Q = s.Q(), Cg = s.C / s.groups, RS = s.R * s.S, cols = (p1 - p0) * Q;
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t row = 0; row < Cg * RS; ++row) {
    const int64_t c = row / RS, r = (row / s.S) % s.R, t = row % s.S;
    const float* plane = x + c * s.H * s.W;
    float* dst = col + row * cols;
    const ValidRange qr = valid_outputs(Q, s.W, s.stride_w, s.pad_w, t * s.dil_w);
    const int64_t w_shift = t * s.dil_w - s.pad_w;  // input column = q*stride_w + w_shift
    for (int64_t p = p0; p < p1; ++p, dst += Q) {
      const int64_t h = p * s.stride_h - s.pad_h + r * s.dil_h;
      if (h < 0 || h >= s.H) {
        std::fill(dst, dst + Q, 0.f);
        continue;
      }
      std::fill(dst, dst + qr.lo, 0.f);
      std::fill(dst + qr.hi, dst + Q, 0.f);
      const float* src = plane + h * s.W;
      if (s.stride_w == 1)
        std::memcpy(dst + qr.lo, src + qr.lo + w_shift, sizeof(float) * size_t(qr.hi - qr.lo));
      else
        for (int64_t q = qr.lo; q < qr.hi; ++q) dst[q] = src[q * s.stride_w + w_shift];
    }
  }
}

void col2im_add(const Conv2dShape& s, const float* col, int64_t p0, int64_t p1, float* dx, bool parallel) {
  const int64_t Q = s.Q(), Cg = s.C / s.groups, cols = (p1 - p0) * Q;
  // One channel per iteration: its R*S rows all land in its own plane, so threads never collide.
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t c = 0; c < Cg; ++c) {
    float* plane = dx + c * s.H * s.W;
    for (int64_t r = 0; r < s.R; ++r)
      for (int64_t t = 0; t < s.S; ++t) {
        const float* src = col + ((c * s.R + r) * s.S + t) * cols;
        const ValidRange qr = valid_outputs(Q, s.W, s.stride_w, s.pad_w, t * s.dil_w);
        const int64_t w_shift = t * s.dil_w - s.pad_w;
        for (int64_t p = p0; p < p1; ++p, src += Q) {
          const int64_t h = p * s.stride_h - s.pad_h + r * s.dil_h;
          if (h < 0 || h >= s.H) continue;
          float* dst = plane + h * s.W;
          for (int64_t q = qr.lo; q < qr.hi; ++q) dst[q * s.stride_w + w_shift] += src[q];
        }
      }
  }
}

}  // namespace ember::cpu::conv_detail
