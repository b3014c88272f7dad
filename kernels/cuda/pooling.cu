// Pooling: max (with argmax indices), average (count_include_pad or not, like PyTorch) and global
// average. One thread per output value forward; backward gathers per input value (each input
// scans the few windows that cover it), so there are no atomics and results are deterministic.
#include <algorithm>
#include <cfloat>
#include <cmath>

#include "kernels/cuda/variants.h"
#include "kernels/cuda/runtime.h"
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/fast_div.cuh"

namespace ember::cuda {
namespace {

struct PoolGeom {
  int N, C, H, W, P, Q, kh, kw, sh, sw, ph, pw;
  bool include_pad;  // average pooling's divisor: the whole window, or its positions inside the input
  // Index splits without run-time integer division (fast_div.cuh): by Q, P, W, H and the strides.
  FastDiv div_Q, div_P, div_W, div_H, div_sh, div_sw;

  // output i = (plane * P + p) * Q + q; input i = (plane * H + h) * W + w
  __host__ __device__ void split_output(int i, int& plane, int& p, int& q) const { split3(i, div_Q, div_P, plane, p, q); }
  __host__ __device__ void split_input(int i, int& plane, int& h, int& w) const { split3(i, div_W, div_H, plane, h, w); }
};

PoolGeom make_pool_geom(const Pool2dShape& s, const char* op) {
  const std::string where = std::string(op) + " [N=" + std::to_string(s.N) + " C=" + std::to_string(s.C) +
                            " H=" + std::to_string(s.H) + " W=" + std::to_string(s.W) + " kernel=" +
                            std::to_string(s.kernel_h) + "x" + std::to_string(s.kernel_w) + "]";
  EMBER_CUDA_REQUIRE(s.N > 0 && s.C > 0 && s.H > 0 && s.W > 0 && s.kernel_h > 0 && s.kernel_w > 0 &&
                         s.stride_h > 0 && s.stride_w > 0 && s.pad_h >= 0 && s.pad_w >= 0,
                     where + ": sizes, kernel and stride must be positive, padding non-negative");
  EMBER_CUDA_REQUIRE(2 * s.pad_h <= s.kernel_h && 2 * s.pad_w <= s.kernel_w,
                     where + ": padding must be at most half the kernel (as in PyTorch)");
  EMBER_CUDA_REQUIRE(s.P() > 0 && s.Q() > 0, where + ": empty output");
  require_int32(s.N * s.C * s.H * s.W, where.c_str());
  require_int32(s.N * s.C * s.P() * s.Q(), where.c_str());  // outputs can outnumber inputs (e.g. k2 s1 p1)
  PoolGeom g{};
  g.N = int(s.N), g.C = int(s.C), g.H = int(s.H), g.W = int(s.W), g.P = int(s.P()), g.Q = int(s.Q());
  g.kh = int(s.kernel_h), g.kw = int(s.kernel_w), g.sh = int(s.stride_h), g.sw = int(s.stride_w);
  g.ph = int(s.pad_h), g.pw = int(s.pad_w), g.include_pad = s.count_include_pad;
  g.div_Q = FastDiv(g.Q), g.div_P = FastDiv(g.P), g.div_W = FastDiv(g.W), g.div_H = FastDiv(g.H);
  g.div_sh = FastDiv(g.sh), g.div_sw = FastDiv(g.sw);
  return g;
}

// Output windows [first, last] along one axis that contain input position `pos`.
__host__ __device__ inline void covering_windows(int pos, int pad, int kernel, const FastDiv& stride, int out,
                                                 int& first, int& last) {
  const int shifted = pos + pad;
  first = shifted < kernel ? 0 : stride.div(shifted - kernel) + 1;
  last = min(stride.div(shifted), out - 1);
}

// The per-value math, shared by the kernels and the host emulation (tests without a GPU).
// Max of output window i (flat NCPQ index); *index gets h * W + w of the first maximum.
__host__ __device__ inline float max_pool_forward_at(const PoolGeom& g, const float* x, int i, int64_t* index) {
  int plane, p, q;
  g.split_output(i, plane, p, q);
  const float* src = x + size_t(plane) * g.H * g.W;
  float best = -INFINITY;
  int best_index = -1;
  for (int r = 0; r < g.kh; ++r) {
    const int h = p * g.sh - g.ph + r;
    if (h < 0 || h >= g.H) continue;
    for (int s = 0; s < g.kw; ++s) {
      const int w = q * g.sw - g.pw + s;
      if (w < 0 || w >= g.W) continue;
      const float v = src[h * g.W + w];
      if (best_index < 0 || v > best || (v != v && best == best)) {  // v != v: NaN propagates, like PyTorch
        best = v;
        best_index = h * g.W + w;
      }
    }
  }
  *index = best_index;
  return best;
}

// dx value i (flat NCHW index) = sum of dy over the windows whose argmax is this input.
__host__ __device__ inline float max_pool_backward_at(const PoolGeom& g, const float* dy, const int64_t* indices, int i) {
  int plane, h, w;
  g.split_input(i, plane, h, w);
  int p0, p1, q0, q1;
  covering_windows(h, g.ph, g.kh, g.div_sh, g.P, p0, p1);
  covering_windows(w, g.pw, g.kw, g.div_sw, g.Q, q0, q1);
  const int64_t self = h * g.W + w;
  float sum = 0.f;
  for (int p = p0; p <= p1; ++p)
    for (int q = q0; q <= q1; ++q) {
      const int o = (plane * g.P + p) * g.Q + q;
      if (indices[o] == self) sum += dy[o];
    }
  return sum;
}

// The divisor of output window (p, q): kh * kw with count_include_pad (floor mode: a window never
// leaves the padded input), else the number of its positions inside the input.
__host__ __device__ inline float avg_divisor(const PoolGeom& g, int p, int q) {
  if (g.include_pad) return float(g.kh * g.kw);
  const int h0 = p * g.sh - g.ph, w0 = q * g.sw - g.pw;
  const int rows = min(h0 + g.kh, g.H) - max(h0, 0), cols = min(w0 + g.kw, g.W) - max(w0, 0);
  return float(rows * cols);  // >= 1: padding is at most half the window
}

__host__ __device__ inline float avg_pool_forward_at(const PoolGeom& g, const float* x, int i) {
  int plane, p, q;
  g.split_output(i, plane, p, q);
  const float* src = x + size_t(plane) * g.H * g.W;
  float sum = 0.f;
  for (int h = max(p * g.sh - g.ph, 0); h < min(p * g.sh - g.ph + g.kh, g.H); ++h)
    for (int w = max(q * g.sw - g.pw, 0); w < min(q * g.sw - g.pw + g.kw, g.W); ++w) sum += src[h * g.W + w];
  return sum / avg_divisor(g, p, q);
}

__host__ __device__ inline float avg_pool_backward_at(const PoolGeom& g, const float* dy, int i) {
  int plane, h, w;
  g.split_input(i, plane, h, w);
  int p0, p1, q0, q1;
  covering_windows(h, g.ph, g.kh, g.div_sh, g.P, p0, p1);
  covering_windows(w, g.pw, g.kw, g.div_sw, g.Q, q0, q1);
  float sum = 0.f;
  if (g.include_pad) {  // one divisor for every window: divide once
    for (int p = p0; p <= p1; ++p)
      for (int q = q0; q <= q1; ++q) sum += dy[(plane * g.P + p) * g.Q + q];
    return sum / float(g.kh * g.kw);
  }
  for (int p = p0; p <= p1; ++p)
    for (int q = q0; q <= q1; ++q) sum += dy[(plane * g.P + p) * g.Q + q] / avg_divisor(g, p, q);
  return sum;
}

__global__ void max_pool_forward_kernel(PoolGeom g, const float* __restrict__ x, float* __restrict__ y,
                                        int64_t* __restrict__ indices) {
  const int64_t total = int64_t(g.N) * g.C * g.P * g.Q;  // int64 loop: i + grid stride may pass INT32_MAX
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t index;
    const float best = max_pool_forward_at(g, x, int(i), &index);
    if (y) y[i] = best;
    if (indices) indices[i] = index;
  }
}

__global__ void max_pool_backward_kernel(PoolGeom g, const float* __restrict__ dy, const int64_t* __restrict__ indices,
                                         float* __restrict__ dx) {
  const int64_t total = int64_t(g.N) * g.C * g.H * g.W;  // int64 loop: i + grid stride may pass INT32_MAX
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x)
    dx[i] = max_pool_backward_at(g, dy, indices, int(i));
}

__global__ void avg_pool_forward_kernel(PoolGeom g, const float* __restrict__ x, float* __restrict__ y) {
  const int64_t total = int64_t(g.N) * g.C * g.P * g.Q;  // int64 loop: i + grid stride may pass INT32_MAX
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = avg_pool_forward_at(g, x, int(i));
}

__global__ void avg_pool_backward_kernel(PoolGeom g, const float* __restrict__ dy, float* __restrict__ dx) {
  const int64_t total = int64_t(g.N) * g.C * g.H * g.W;  // int64 loop: i + grid stride may pass INT32_MAX
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x)
    dx[i] = avg_pool_backward_at(g, dy, int(i));
}

// One block per (n, c) plane.
__global__ void global_avg_forward_kernel(int HW, const float* __restrict__ x, float* __restrict__ y) {
  const float* src = x + size_t(blockIdx.x) * HW;
  float sum = 0.f;
  for (int i = threadIdx.x; i < HW; i += blockDim.x) sum += src[i];
  sum = block_sum(sum);
  if (threadIdx.x == 0) y[blockIdx.x] = sum / float(HW);
}

__global__ void global_avg_backward_kernel(int64_t total, int HW, const float* __restrict__ dy, float* __restrict__ dx) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x)
    dx[i] = dy[i / HW] / float(HW);
}

}  // namespace

namespace ember_pool {

void max_pool2d_forward(const Pool2dShape& s, const float* x, float* y, int64_t* indices) {
  const PoolGeom g = make_pool_geom(s, "max_pool2d forward");
  max_pool_forward_kernel<<<blocks_for(int64_t(g.N) * g.C * g.P * g.Q, 256), 256, 0, stream()>>>(g, x, y, indices);
  EMBER_CUDA_CHECK_LAUNCH();
}
void max_pool2d_backward(const Pool2dShape& s, const float* dy, const int64_t* indices, float* dx) {
  const PoolGeom g = make_pool_geom(s, "max_pool2d backward");
  EMBER_CUDA_REQUIRE(indices != nullptr, "max_pool2d backward (ember): needs the forward's indices");
  max_pool_backward_kernel<<<blocks_for(int64_t(g.N) * g.C * g.H * g.W, 256), 256, 0, stream()>>>(g, dy, indices, dx);
  EMBER_CUDA_CHECK_LAUNCH();
}
void avg_pool2d_forward(const Pool2dShape& s, const float* x, float* y) {
  const PoolGeom g = make_pool_geom(s, "avg_pool2d forward");
  avg_pool_forward_kernel<<<blocks_for(int64_t(g.N) * g.C * g.P * g.Q, 256), 256, 0, stream()>>>(g, x, y);
  EMBER_CUDA_CHECK_LAUNCH();
}
void avg_pool2d_backward(const Pool2dShape& s, const float* dy, float* dx) {
  const PoolGeom g = make_pool_geom(s, "avg_pool2d backward");
  avg_pool_backward_kernel<<<blocks_for(int64_t(g.N) * g.C * g.H * g.W, 256), 256, 0, stream()>>>(g, dy, dx);
  EMBER_CUDA_CHECK_LAUNCH();
}

void host_emulate(const Pool2dShape& s, const float* x, const float* dy, float* max_y, int64_t* max_indices,
                  float* max_dx, float* avg_y, float* avg_dx) {
  const PoolGeom g = make_pool_geom(s, "pooling (host emulation)");
  const int outputs = g.N * g.C * g.P * g.Q, inputs = g.N * g.C * g.H * g.W;
  for (int i = 0; i < outputs; ++i) {
    max_y[i] = max_pool_forward_at(g, x, i, &max_indices[i]);
    avg_y[i] = avg_pool_forward_at(g, x, i);
  }
  for (int i = 0; i < inputs; ++i) {
    max_dx[i] = max_pool_backward_at(g, dy, max_indices, i);
    avg_dx[i] = avg_pool_backward_at(g, dy, i);
  }
}

}  // namespace ember_pool

void global_avg_pool_forward(int64_t N, int64_t C, int64_t HW, const float* x, float* y) {
  EMBER_CUDA_REQUIRE(N > 0 && C > 0 && HW > 0 && N * C <= INT32_MAX && HW <= INT32_MAX,
                     "global_avg_pool forward: bad sizes N=" + std::to_string(N) + " C=" + std::to_string(C) +
                         " HW=" + std::to_string(HW));
  global_avg_forward_kernel<<<unsigned(N * C), 256, 0, stream()>>>(int(HW), x, y);
  EMBER_CUDA_CHECK_LAUNCH();
}
void global_avg_pool_backward(int64_t N, int64_t C, int64_t HW, const float* dy, float* dx) {
  EMBER_CUDA_REQUIRE(N > 0 && C > 0 && HW > 0 && HW <= INT32_MAX, "global_avg_pool backward: bad sizes");
  global_avg_backward_kernel<<<blocks_for(N * C * HW, 256), 256, 0, stream()>>>(N * C * HW, int(HW), dy, dx);
  EMBER_CUDA_CHECK_LAUNCH();
}

}  // namespace ember::cuda
