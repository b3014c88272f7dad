// Walking strided tensors on the CPU. Elementwise kernels use a fast path for contiguous operands
// and this N-d counter for everything else (views, broadcasts with stride 0, permutes).
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "engine/dtype.h"
#include "engine/error.h"
#include "engine/shape.h"

namespace ember {

// Calls fn(linear_index, off[0], ..., off[K-1]) for every element of `shape` in row-major order,
// where off[k] is the element offset of operand k given its strides.
template <size_t K, class Fn>
void for_each_strided(const Shape& shape, const std::array<const Shape*, K>& strides, Fn&& fn) {
  const int64_t nd = int64_t(shape.size());
  const int64_t n = shape_numel(shape);
  if (n == 0) return;
  std::vector<int64_t> idx(nd, 0);
  std::array<int64_t, K> off{};
  for (int64_t lin = 0; lin < n; ++lin) {
    fn(lin, off);
    for (int64_t d = nd - 1; d >= 0; --d) {
      if (++idx[d] < shape[d]) {
        for (size_t k = 0; k < K; ++k) off[k] += (*strides[k])[d];
        break;
      }
      for (size_t k = 0; k < K; ++k) off[k] -= (*strides[k])[d] * (shape[d] - 1);
      idx[d] = 0;
    }
  }
}

// Runs a templated lambda for the tensor's floating dtype:
//   dispatch_float(t.dtype(), "op", [&]<class T>() { ... });
// (a function, not a macro, so OpenMP pragmas may appear inside the lambda).
template <class F>
decltype(auto) dispatch_float(DType dtype, const char* op, F&& f) {
  switch (dtype) {
    case DType::Float32: return f.template operator()<float>();
    case DType::Float64: return f.template operator()<double>();
    default:
      throw Error(detail::cat(op, ": unsupported dtype ", dtype_name(dtype), " (float32 or float64 expected)"));
  }
}

}  // namespace ember
