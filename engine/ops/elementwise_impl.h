// Shared machinery for elementwise ops on the CPU: a binary map with broadcasting and a unary map.
// Fast paths: both operands contiguous with equal shapes, or the second operand a single value;
// everything else walks strides (broadcast dims have stride 0 after expand()).
#pragma once
#include "engine/ops.h"
#include "engine/strided.h"

namespace ember::detail {

// The operand checks of every binary op, on either device.
inline void check_binary_operands(const char* op, const Tensor& a, const Tensor& b) {
  check_defined(op, a, "a");
  check_defined(op, b, "b");
  check_same_dtype(op, a, b);
  check_same_device(op, a, b);
}

template <class F>
Tensor binary_map(const char* op, const Tensor& a, const Tensor& b, F f) {
  check_binary_operands(op, a, b);
  check_cpu(op, a);
  check_floating(op, a);
  Shape out_shape = broadcast_shapes(a.shape(), b.shape(), op);
  Tensor out = Tensor::empty(out_shape, a.dtype());
  dispatch_float(a.dtype(), op, [&]<class T>() {
    T* o = out.data<T>();
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    const int64_t n = out.numel();
    if (a.shape() == b.shape() && a.is_contiguous() && b.is_contiguous()) {
#pragma omp parallel for simd if (n > 32768) schedule(static)
      for (int64_t i = 0; i < n; ++i) o[i] = f(pa[i], pb[i]);
    } else if (b.numel() == 1 && a.shape() == out_shape && a.is_contiguous()) {
      const T s = pb[0];
#pragma omp parallel for simd if (n > 32768) schedule(static)
      for (int64_t i = 0; i < n; ++i) o[i] = f(pa[i], s);
    } else {
      Tensor ea = a.detach().expand(out_shape), eb = b.detach().expand(out_shape);
      for_each_strided<2>(out_shape, {&ea.strides(), &eb.strides()},
                          [&](int64_t i, const std::array<int64_t, 2>& off) { o[i] = f(pa[off[0]], pb[off[1]]); });
    }
  });
  return out;
}

template <class F>
Tensor unary_map(const char* op, const Tensor& x, F f) {
  check_defined(op, x, "x");
  check_cpu(op, x);
  check_floating(op, x);
  Tensor xc = x.contiguous();
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  dispatch_float(x.dtype(), op, [&]<class T>() {
    const T* p = xc.data<T>();
    T* o = out.data<T>();
    const int64_t n = out.numel();
#pragma omp parallel for simd if (n > 32768) schedule(static)
    for (int64_t i = 0; i < n; ++i) o[i] = f(p[i]);
  });
  return out;
}

}  // namespace ember::detail
