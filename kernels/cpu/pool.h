// 2-D pooling kernels on NCHW planes: max (with argmax indices), average, adaptive average.
// All buffers contiguous. Outputs are write-only (every element is written), so callers may pass
// uninitialised memory. Argmax indices are flat positions h * W + w inside the input plane.
#pragma once
#include <cstdint>

#include "kernels/registry.h"

namespace ember::cpu {

struct Pool2dShape {
  int64_t N = 1, C = 1, H = 1, W = 1;
  int64_t kernel_h = 2, kernel_w = 2, stride_h = 2, stride_w = 2, pad_h = 0, pad_w = 0;
  bool count_include_pad = true;  // avg pool: divide by the full window, padding included
  int64_t P() const { return (H + 2 * pad_h - kernel_h) / stride_h + 1; }  // output height (floor mode)
  int64_t Q() const { return (W + 2 * pad_w - kernel_w) / stride_w + 1; }  // output width
  int64_t planes() const { return N * C; }
};

// Adaptive pooling: output bin i of `out` covers input rows [floor(i*in/out), ceil((i+1)*in/out)).
inline int64_t adaptive_start(int64_t i, int64_t in, int64_t out) { return (i * in) / out; }
inline int64_t adaptive_end(int64_t i, int64_t in, int64_t out) { return ((i + 1) * in + out - 1) / out; }

// ---- reference kernels (float and double) --------------------------------------------------
// Max pool: padding never wins (it acts as -inf); ties keep the first position in scan order;
// NaN propagates (like PyTorch).
template <class T>
void max_pool2d_forward_ref(const Pool2dShape& s, const T* x, T* y, int64_t* argmax);
template <class T>
void max_pool2d_backward_ref(const Pool2dShape& s, const T* dy, const int64_t* argmax, T* dx);
template <class T>
void avg_pool2d_forward_ref(const Pool2dShape& s, const T* x, T* y);
template <class T>
void avg_pool2d_backward_ref(const Pool2dShape& s, const T* dy, T* dx);
// x [planes, H, W] -> y [planes, OH, OW].
template <class T>
void adaptive_avg_pool2d_forward_ref(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW, const T* x, T* y);
template <class T>
void adaptive_avg_pool2d_backward_ref(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW, const T* dy,
                                      T* dx);

// ---- variant tables (float): forward and backward of one op are chosen together --------------
struct MaxPoolKernels {
  void (*forward)(const Pool2dShape&, const float* x, float* y, int64_t* argmax);
  void (*backward)(const Pool2dShape&, const float* dy, const int64_t* argmax, float* dx);
};
struct AvgPoolKernels {
  void (*forward)(const Pool2dShape&, const float* x, float* y);
  void (*backward)(const Pool2dShape&, const float* dy, float* dx);
};
struct AdaptiveAvgPoolKernels {
  void (*forward)(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW, const float* x, float* y);
  void (*backward)(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW, const float* dy, float* dx);
};
// Ops "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d": variants {"fast", "ref"}.
kernels::VariantTable<MaxPoolKernels>& max_pool2d_table();
kernels::VariantTable<AvgPoolKernels>& avg_pool2d_table();
kernels::VariantTable<AdaptiveAvgPoolKernels>& adaptive_avg_pool2d_table();

// ---- dispatch: float goes through the table, double always uses the reference ----------------
template <class T>
void max_pool2d_forward(const Pool2dShape& s, const T* x, T* y, int64_t* argmax) {
  if constexpr (sizeof(T) == 4) max_pool2d_table().get().forward(s, x, y, argmax);
  else max_pool2d_forward_ref<T>(s, x, y, argmax);
}
template <class T>
void max_pool2d_backward(const Pool2dShape& s, const T* dy, const int64_t* argmax, T* dx) {
  if constexpr (sizeof(T) == 4) max_pool2d_table().get().backward(s, dy, argmax, dx);
  else max_pool2d_backward_ref<T>(s, dy, argmax, dx);
}
template <class T>
void avg_pool2d_forward(const Pool2dShape& s, const T* x, T* y) {
  if constexpr (sizeof(T) == 4) avg_pool2d_table().get().forward(s, x, y);
  else avg_pool2d_forward_ref<T>(s, x, y);
}
template <class T>
void avg_pool2d_backward(const Pool2dShape& s, const T* dy, T* dx) {
  if constexpr (sizeof(T) == 4) avg_pool2d_table().get().backward(s, dy, dx);
  else avg_pool2d_backward_ref<T>(s, dy, dx);
}
template <class T>
void adaptive_avg_pool2d_forward(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW, const T* x, T* y) {
  if constexpr (sizeof(T) == 4) adaptive_avg_pool2d_table().get().forward(planes, H, W, OH, OW, x, y);
  else adaptive_avg_pool2d_forward_ref<T>(planes, H, W, OH, OW, x, y);
}
template <class T>
void adaptive_avg_pool2d_backward(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW, const T* dy, T* dx) {
  if constexpr (sizeof(T) == 4) adaptive_avg_pool2d_table().get().backward(planes, H, W, OH, OW, dy, dx);
  else adaptive_avg_pool2d_backward_ref<T>(planes, H, W, OH, OW, dy, dx);
}

}  // namespace ember::cpu
