// Adaptive average pooling to any output size (PyTorch's bins: output row i averages input rows
// [floor(i H / OH), ceil((i + 1) H / OH)), columns likewise; bins overlap when H is not a multiple of
// OH). One thread per output value forward; backward gathers per input value over the bins that
// contain it, so there are no atomics. 1x1 outputs take global_avg_pool (pooling.cu) instead.
// Compiles; not yet run on a GPU (host emulation checks the per-value code).
#include <string>

#include "kernels/cuda/runtime.h"
#include "kernels/cuda/variants.h"

namespace ember::cuda {
namespace {

struct AdaptiveGeom {
  int planes, H, W, OH, OW;
};

__host__ __device__ inline int bin_start(int i, int in, int out) { return int(int64_t(i) * in / out); }
__host__ __device__ inline int bin_end(int i, int in, int out) { return int((int64_t(i + 1) * in + out - 1) / out); }
// The bins [first, last] along one axis whose range contains input position pos (the bounds come from
// solving bin_start(i) <= pos < bin_end(i) for i; the loops below still test each bin).
__host__ __device__ inline void bins_containing(int pos, int in, int out, int& first, int& last) {
  first = int(int64_t(pos) * out / in);
  last = min(int((int64_t(pos + 1) * out - 1) / in), out - 1);
}

__host__ __device__ inline float adaptive_forward_at(const AdaptiveGeom& g, const float* x, int64_t i) {
  const int ow = int(i % g.OW), oh = int(i / g.OW % g.OH);
  const int64_t plane = i / (int64_t(g.OW) * g.OH);
  const int h0 = bin_start(oh, g.H, g.OH), h1 = bin_end(oh, g.H, g.OH);
  const int w0 = bin_start(ow, g.W, g.OW), w1 = bin_end(ow, g.W, g.OW);
  const float* src = x + plane * g.H * g.W;
  float sum = 0.f;
  for (int h = h0; h < h1; ++h)
    for (int w = w0; w < w1; ++w) sum += src[h * g.W + w];
  return sum / float((h1 - h0) * (w1 - w0));
}

__host__ __device__ inline float adaptive_backward_at(const AdaptiveGeom& g, const float* dy, int64_t i) {
  const int w = int(i % g.W), h = int(i / g.W % g.H);
  const int64_t plane = i / (int64_t(g.W) * g.H);
  int oh0, oh1, ow0, ow1;
  bins_containing(h, g.H, g.OH, oh0, oh1);
  bins_containing(w, g.W, g.OW, ow0, ow1);
  const float* grad = dy + plane * g.OH * g.OW;
  float sum = 0.f;
  for (int oh = oh0; oh <= oh1; ++oh) {
    const int h0 = bin_start(oh, g.H, g.OH), h1 = bin_end(oh, g.H, g.OH);
    if (h < h0 || h >= h1) continue;
    for (int ow = ow0; ow <= ow1; ++ow) {
      const int w0 = bin_start(ow, g.W, g.OW), w1 = bin_end(ow, g.W, g.OW);
      if (w < w0 || w >= w1) continue;
      sum += grad[oh * g.OW + ow] / float((h1 - h0) * (w1 - w0));
    }
  }
  return sum;
}

__global__ void adaptive_forward_kernel(AdaptiveGeom g, const float* __restrict__ x, float* __restrict__ y) {
  const int64_t total = int64_t(g.planes) * g.OH * g.OW;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = adaptive_forward_at(g, x, i);
}

__global__ void adaptive_backward_kernel(AdaptiveGeom g, const float* __restrict__ dy, float* __restrict__ dx) {
  const int64_t total = int64_t(g.planes) * g.H * g.W;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x)
    dx[i] = adaptive_backward_at(g, dy, i);
}

AdaptiveGeom make_adaptive_geom(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW, const char* op) {
  const std::string where = std::string(op) + " [planes=" + std::to_string(planes) + " " + std::to_string(H) + "x" +
                            std::to_string(W) + " -> " + std::to_string(OH) + "x" + std::to_string(OW) + "]";
  EMBER_CUDA_REQUIRE(planes > 0 && H > 0 && W > 0 && OH > 0 && OW > 0, where + ": sizes must be positive");
  EMBER_CUDA_REQUIRE(planes <= INT32_MAX && H * W <= INT32_MAX && OH * OW <= INT32_MAX,
                     where + ": a plane or the plane count does not fit in int32");
  return AdaptiveGeom{int(planes), int(H), int(W), int(OH), int(OW)};
}

}  // namespace

void adaptive_avg_pool2d_forward(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW, const float* x,
                                 float* y) {
  const AdaptiveGeom g = make_adaptive_geom(planes, H, W, OH, OW, "adaptive_avg_pool2d forward");
  adaptive_forward_kernel<<<blocks_for(planes * OH * OW, 256), 256, 0, stream()>>>(g, x, y);
  EMBER_CUDA_CHECK_LAUNCH();
}

void adaptive_avg_pool2d_backward(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW, const float* dy,
                                  float* dx) {
  const AdaptiveGeom g = make_adaptive_geom(planes, H, W, OH, OW, "adaptive_avg_pool2d backward");
  adaptive_backward_kernel<<<blocks_for(planes * H * W, 256), 256, 0, stream()>>>(g, dy, dx);
  EMBER_CUDA_CHECK_LAUNCH();
}

void ember_pool::host_emulate_adaptive(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW, const float* x,
                                       const float* dy, float* y, float* dx) {
  const AdaptiveGeom g = make_adaptive_geom(planes, H, W, OH, OW, "adaptive_avg_pool2d (host emulation)");
  for (int64_t i = 0; i < planes * OH * OW; ++i) y[i] = adaptive_forward_at(g, x, i);
  for (int64_t i = 0; i < planes * H * W; ++i) dx[i] = adaptive_backward_at(g, dy, i);
}

}  // namespace ember::cuda
