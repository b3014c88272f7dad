// Strided copies (cuda_api.h: make_strided_copy, copy_strided): one thread per element of the view,
// which reads src and writes dst at their own strides. Elements are moved as unsigned integers of
// their size, so one kernel serves every dtype. Compiles; not yet run on a GPU.
#include <cstring>
#include <string>

#include "kernels/cuda/runtime.h"
#include "kernels/cuda/strided_index.cuh"

namespace ember::cuda {
namespace {

int64_t element_count(const StridedCopyArgs& a) {
  int64_t total = 1;
  for (int d = 0; d < a.ndim; ++d) total *= a.shape[d];
  return total;
}

template <class Bits>
__host__ __device__ inline void copy_element(const StridedCopyArgs& a, int64_t i, const Bits* src, Bits* dst) {
  int64_t di, si;
  strided_offsets(i, a.ndim, a.shape, a.dst_strides, a.src_strides, di, si);
  dst[di] = src[si];
}

template <class Bits>
__global__ void copy_strided_kernel(StridedCopyArgs a, int64_t total, const Bits* __restrict__ src,
                                    Bits* __restrict__ dst) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x)
    copy_element(a, i, src, dst);
}

// Runs f with a null pointer of the unsigned type as wide as one element.
template <class F>
void with_bits_type(size_t elem_size, F&& f) {
  switch (elem_size) {
    case 1: f(static_cast<uint8_t*>(nullptr)); break;
    case 2: f(static_cast<uint16_t*>(nullptr)); break;
    case 4: f(static_cast<uint32_t*>(nullptr)); break;
    case 8: f(static_cast<uint64_t*>(nullptr)); break;
    default: EMBER_CUDA_REQUIRE(false, "copy_strided: element size " + std::to_string(elem_size) + " is not 1, 2, 4 or 8");
  }
}

}  // namespace

StridedCopyArgs make_strided_copy(const std::vector<int64_t>& shape, const std::vector<int64_t>& dst_strides,
                                  const std::vector<int64_t>& src_strides) {
  EMBER_CUDA_REQUIRE(dst_strides.size() == shape.size() && src_strides.size() == shape.size(),
                     "make_strided_copy: " + std::to_string(shape.size()) + " dims but " +
                         std::to_string(dst_strides.size()) + " and " + std::to_string(src_strides.size()) + " strides");
  // Kept dims, outermost first; a dim merges into the one before it when stepping over the whole of
  // it equals one step of the outer dim in both views.
  std::vector<int64_t> sh, ds, ss;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    if (shape[d] == 0) return StridedCopyArgs{1, {0}, {0}, {0}};  // nothing to copy
    if (!sh.empty() && ds.back() == dst_strides[d] * shape[d] && ss.back() == src_strides[d] * shape[d]) {
      sh.back() *= shape[d];
      ds.back() = dst_strides[d];
      ss.back() = src_strides[d];
      continue;
    }
    sh.push_back(shape[d]);
    ds.push_back(dst_strides[d]);
    ss.push_back(src_strides[d]);
  }
  EMBER_CUDA_REQUIRE(sh.size() <= size_t(kMaxDims), "make_strided_copy: " + std::to_string(sh.size()) +
                                                        " dims remain after merging, at most " +
                                                        std::to_string(kMaxDims) + " are supported");
  StridedCopyArgs a;
  a.ndim = int(sh.size());
  for (int d = 0; d < a.ndim; ++d) a.shape[d] = sh[size_t(d)], a.dst_strides[d] = ds[size_t(d)], a.src_strides[d] = ss[size_t(d)];
  return a;
}

void copy_strided(const StridedCopyArgs& a, size_t elem_size, const void* src, void* dst) {
  const int64_t total = element_count(a);
  if (total <= 0) return;
  with_bits_type(elem_size, [&](auto* type_tag) {
    using Bits = std::remove_pointer_t<decltype(type_tag)>;
    copy_strided_kernel<Bits><<<blocks_for(total, 256), 256, 0, stream()>>>(a, total, static_cast<const Bits*>(src),
                                                                             static_cast<Bits*>(dst));
  });
  EMBER_CUDA_CHECK_LAUNCH();
}

void host_emulate_copy_strided(const StridedCopyArgs& a, size_t elem_size, const void* src, void* dst) {
  const int64_t total = element_count(a);
  with_bits_type(elem_size, [&](auto* type_tag) {
    using Bits = std::remove_pointer_t<decltype(type_tag)>;
    for (int64_t i = 0; i < total; ++i) copy_element(a, i, static_cast<const Bits*>(src), static_cast<Bits*>(dst));
  });
}

}  // namespace ember::cuda
