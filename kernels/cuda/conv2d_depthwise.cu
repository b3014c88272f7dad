// Direct kernels for convs with one input channel per group (depthwise, C/groups == 1), where
// implicit-GEMM tiles would be almost all padding. One thread per output value; the weight
// gradient is one block per weight value reducing over N*P*Q. The per-value math is in
// __host__ __device__ functions so the host emulation at the end can test it without a GPU.
#include <algorithm>

#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/conv2d_gemm.cuh"

namespace ember::cuda::conv {
namespace {

// y value i (flat NKPQ index).
__host__ __device__ inline float depthwise_forward_at(const Geom& g, const float* x, const float* w,
                                                      const float* bias, int i) {
  int nk, p, q, n, k;
  g.split_output(i, nk, p, q);  // nk = n * K + k
  g.div_K.divmod(nk, n, k);
  const int c = g.div_Kg.div(k);  // the group's only input channel
  const float* plane = x + (n * g.C + c) * g.H * g.W;
  float sum = bias ? bias[k] : 0.f;
  for (int r = 0; r < g.R; ++r) {
    const int h = p * g.stride_h - g.pad_h + r * g.dil_h;
    if (h < 0 || h >= g.H) continue;
    for (int s = 0; s < g.S; ++s) {
      const int wx = q * g.stride_w - g.pad_w + s * g.dil_w;
      if (wx >= 0 && wx < g.W) sum += plane[h * g.W + wx] * w[(k * g.R + r) * g.S + s];
    }
  }
  return sum;
}

// dx value i (flat NCHW index): every (k, r, s, p, q) whose window tap lands on it.
__host__ __device__ inline float depthwise_backward_data_at(const Geom& g, const float* dy, const float* w, int i) {
  int nc, h, wx, n, c;
  g.split_input(i, nc, h, wx);  // nc = n * C + c
  g.div_C.divmod(nc, n, c);
  float sum = 0.f;
  for (int kk = 0; kk < g.Kg; ++kk) {
    const int k = c * g.Kg + kk;
    for (int r = 0; r < g.R; ++r) {
      const int ph = h + g.pad_h - r * g.dil_h;
      if (ph < 0) continue;
      int p, ph_rem;
      g.div_stride_h.divmod(ph, p, ph_rem);
      if (ph_rem != 0 || p >= g.P) continue;
      for (int s = 0; s < g.S; ++s) {
        const int pw = wx + g.pad_w - s * g.dil_w;
        if (pw < 0) continue;
        int q, pw_rem;
        g.div_stride_w.divmod(pw, q, pw_rem);
        if (pw_rem == 0 && q < g.Q) sum += dy[((n * g.K + k) * g.P + p) * g.Q + q] * w[(k * g.R + r) * g.S + s];
      }
    }
  }
  return sum;
}

// One term of dw[k, 0, r, s] (weight index `widx` = (k * R + r) * S + s): output pixel j of N*P*Q.
__host__ __device__ inline float depthwise_weight_term(const Geom& g, const float* x, const float* dy, int widx, int j) {
  int k, rs, r, s, n, p, q;
  g.div_RS.divmod(widx, k, rs);
  g.div_S.divmod(rs, r, s);
  const int c = g.div_Kg.div(k);
  g.split_output(j, n, p, q);
  const int h = p * g.stride_h - g.pad_h + r * g.dil_h, wx = q * g.stride_w - g.pad_w + s * g.dil_w;
  if (h < 0 || h >= g.H || wx < 0 || wx >= g.W) return 0.f;
  return x[((n * g.C + c) * g.H + h) * g.W + wx] * dy[((n * g.K + k) * g.P + p) * g.Q + q];
}

__global__ void depthwise_forward_kernel(Geom g, const float* __restrict__ x, const float* __restrict__ w,
                                         const float* __restrict__ bias, float* __restrict__ y) {
  const int total = g.N * g.K * g.P * g.Q;
  // int64 step: i + stride may pass INT_MAX when total is close to 2^31 (allowed by make_geom).
  for (int64_t i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = depthwise_forward_at(g, x, w, bias, int(i));
}

__global__ void depthwise_backward_data_kernel(Geom g, const float* __restrict__ dy, const float* __restrict__ w,
                                               float* __restrict__ dx) {
  const int total = g.N * g.C * g.H * g.W;
  for (int64_t i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x)
    dx[i] = depthwise_backward_data_at(g, dy, w, int(i));
}

__global__ void depthwise_backward_weight_kernel(Geom g, const float* __restrict__ x, const float* __restrict__ dy,
                                                 float* __restrict__ dw) {
  const int count = g.N * g.P * g.Q;
  float sum = 0.f;
  for (int j = threadIdx.x; j < count; j += blockDim.x) sum += depthwise_weight_term(g, x, dy, blockIdx.x, j);
  sum = block_sum(sum);
  if (threadIdx.x == 0) dw[blockIdx.x] = sum;
}

}  // namespace

void depthwise_forward(const Geom& g, const float* x, const float* w, const float* bias, float* y) {
  depthwise_forward_kernel<<<blocks_for(int64_t(g.N) * g.K * g.P * g.Q, 256), 256, 0, stream()>>>(g, x, w, bias, y);
  EMBER_CUDA_CHECK_LAUNCH();
}
void depthwise_backward_data(const Geom& g, const float* dy, const float* w, float* dx) {
  depthwise_backward_data_kernel<<<blocks_for(int64_t(g.N) * g.C * g.H * g.W, 256), 256, 0, stream()>>>(g, dy, w, dx);
  EMBER_CUDA_CHECK_LAUNCH();
}
void depthwise_backward_weight(const Geom& g, const float* x, const float* dy, float* dw) {
  depthwise_backward_weight_kernel<<<g.K * g.R * g.S, 256, 0, stream()>>>(g, x, dy, dw);
  EMBER_CUDA_CHECK_LAUNCH();
}

// Host emulation of the three depthwise kernels (same per-value functions), for tests.
void host_emulate_depthwise(const Conv2dShape& s, const float* x, const float* w, const float* bias, const float* dy,
                            float* y, float* dx, float* dw) {
  const Geom g = make_geom(s, "depthwise (host emulation)");
  EMBER_CUDA_REQUIRE(g.Cg == 1, "host_emulate_depthwise: needs C / groups == 1");
  for (int i = 0; i < g.N * g.K * g.P * g.Q; ++i) y[i] = depthwise_forward_at(g, x, w, bias, i);
  for (int i = 0; i < g.N * g.C * g.H * g.W; ++i) dx[i] = depthwise_backward_data_at(g, dy, w, i);
  for (int widx = 0; widx < g.K * g.R * g.S; ++widx) {
    float sum = 0.f;
    for (int j = 0; j < g.N * g.P * g.Q; ++j) sum += depthwise_weight_term(g, x, dy, widx, j);
    dw[widx] = sum;
  }
}

}  // namespace ember::cuda::conv
