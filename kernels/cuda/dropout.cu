// Dropout with Philox4x32-10 (kernels/philox.h): thread t handles elements 4t..4t+3 with one
// Philox call at counter offset + t, lane i % 4 for element i, so the mask equals the CPU one.
#include "kernels/cuda/runtime.h"
#include "kernels/philox.h"

namespace ember::cuda {
namespace {

__global__ void dropout_forward_kernel(int64_t n, float p, float scale, uint64_t seed, uint64_t offset,
                                       const float* __restrict__ x, float* __restrict__ y, uint8_t* __restrict__ mask) {
  const int64_t blocks4 = (n + 3) / 4;
  for (int64_t b = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; b < blocks4; b += int64_t(gridDim.x) * blockDim.x) {
    const Philox4x32 r = philox4x32_10(offset + uint64_t(b), seed);
    for (int lane = 0; lane < 4; ++lane) {
      const int64_t i = 4 * b + lane;
      if (i >= n) break;
      const bool keep = philox_dropout_keep(r.v[lane], p);
      if (mask) mask[i] = keep ? 1 : 0;
      y[i] = keep ? x[i] * scale : 0.f;
    }
  }
}

__global__ void dropout_backward_kernel(int64_t n, float scale, const uint8_t* __restrict__ mask,
                                        const float* __restrict__ dy, float* __restrict__ dx) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dx[i] = mask[i] ? dy[i] * scale : 0.f;
}

}  // namespace

void dropout_forward(int64_t n, float p, uint64_t seed, uint64_t offset, const float* x, float* y, uint8_t* mask) {
  EMBER_CUDA_REQUIRE(p >= 0.f && p < 1.f, "dropout forward: p = " + std::to_string(p) + " must be in [0, 1)");
  if (n <= 0) return;
  dropout_forward_kernel<<<blocks_for((n + 3) / 4, 256), 256, 0, stream()>>>(n, p, 1.f / (1.f - p), seed, offset, x,
                                                                            y, mask);
  EMBER_CUDA_CHECK_LAUNCH();
}

void dropout_backward(int64_t n, float p, const uint8_t* mask, const float* dy, float* dx) {
  EMBER_CUDA_REQUIRE(p >= 0.f && p < 1.f, "dropout backward: p = " + std::to_string(p) + " must be in [0, 1)");
  if (n <= 0) return;
  dropout_backward_kernel<<<blocks_for(n, 256), 256, 0, stream()>>>(n, 1.f / (1.f - p), mask, dy, dx);
  EMBER_CUDA_CHECK_LAUNCH();
}

}  // namespace ember::cuda
