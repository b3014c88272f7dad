// The element offsets of a linear index in a strided view: i is unravelled over `shape` (last dim
// fastest, as a contiguous tensor is laid out) and the coordinates are dotted with two stride sets.
// Shared by the broadcasting binary kernel (elementwise.cu) and the strided copy (copy.cu); host and
// device both, so copy.cu's host emulation runs the kernel's own index math.
#pragma once
#include <cstdint>

namespace ember::cuda {

__host__ __device__ inline void strided_offsets(int64_t i, int ndim, const int64_t* shape, const int64_t* strides0,
                                                const int64_t* strides1, int64_t& offset0, int64_t& offset1) {
  int64_t rest = i, o0 = 0, o1 = 0;
  for (int d = ndim - 1; d >= 0; --d) {
    const int64_t coord = rest % shape[d];
    rest /= shape[d];
    o0 += coord * strides0[d];
    o1 += coord * strides1[d];
  }
  offset0 = o0;
  offset1 = o1;
}

}  // namespace ember::cuda
