// Element type conversion of a contiguous array (Tensor::to(DType) on the GPU). Every value goes
// through double, exactly as the CPU's copy_ converts (engine/tensor.cpp): int64 truncates toward
// zero, bfloat16 rounds float(v) to nearest even with the same bit arithmetic as engine/dtype.h's
// bf16::from_float, so both devices give the same bits. Compiles; not yet run on a GPU (the host
// emulation runs the same per-element code).
#include <bit>
#include <cstdint>

#include "kernels/cuda/runtime.h"

namespace ember::cuda {
namespace {

__host__ __device__ inline double load(ElemType t, const void* p, int64_t i) {
  switch (t) {
    case ElemType::F32: return static_cast<const float*>(p)[i];
    case ElemType::F64: return static_cast<const double*>(p)[i];
    case ElemType::I64: return double(static_cast<const int64_t*>(p)[i]);
    case ElemType::BF16: return std::bit_cast<float>(uint32_t(static_cast<const uint16_t*>(p)[i]) << 16);
  }
  return 0;
}
__host__ __device__ inline void store(ElemType t, void* p, int64_t i, double v) {
  switch (t) {
    case ElemType::F32: static_cast<float*>(p)[i] = float(v); break;
    case ElemType::F64: static_cast<double*>(p)[i] = v; break;
    case ElemType::I64: static_cast<int64_t*>(p)[i] = int64_t(v); break;
    case ElemType::BF16: {
      uint32_t u = std::bit_cast<uint32_t>(float(v));  // constexpr: device code too (--expt-relaxed-constexpr)
      if ((u & 0x7fffffffu) > 0x7f800000u) {
        u = (u >> 16) | 0x40;  // quiet NaN
      } else {
        u += 0x7fffu + ((u >> 16) & 1u);
        u >>= 16;
      }
      static_cast<uint16_t*>(p)[i] = uint16_t(u);
      break;
    }
  }
}

__global__ void convert_kernel(int64_t n, ElemType from, ElemType to, const void* __restrict__ src,
                               void* __restrict__ dst) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    store(to, dst, i, load(from, src, i));
}

}  // namespace

void convert(int64_t n, ElemType from, ElemType to, const void* src, void* dst) {
  if (n <= 0) return;
  convert_kernel<<<blocks_for(n, 256), 256, 0, stream()>>>(n, from, to, src, dst);
  EMBER_CUDA_CHECK_LAUNCH();
}

void host_emulate_convert(int64_t n, ElemType from, ElemType to, const void* src, void* dst) {
  for (int64_t i = 0; i < n; ++i) store(to, dst, i, load(from, src, i));
}

}  // namespace ember::cuda
