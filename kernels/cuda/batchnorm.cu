// Batch norm over (N, H, W) per channel, with an optional fused ReLU.
//
// Training forward, one read of x for the statistics and one read + write for the output:
// (1) each channel's N*H*W values are cut into slices of 4096 float4s (or floats; EMBER_BN_SLICE=
//     u1024|u4096|u16384 picks the size at run time, units_per_slice() in dispatch.cpp), one
//     block per (slice, channel): with one block per channel, VGG's 64-channel layers would use
//     64 of an H100's 132 SMs, each walking 13 MB alone. Welford per thread (one division per
//     float4), merged across the block with Chan's formula (stable for large means, unlike sums of
//     squares), written as per-slice partials;
// (2) one thread per channel merges its slices in double, in slice order (so results do not depend
//     on scheduling), and updates the running stats;
// (3) an element-wise pass normalises, applies gamma/beta and the ReLU (float4 when H*W % 4 == 0).
// Backward, the same shape: per-slice sums of dy' and dy' * xhat (dy' = dy masked by y > 0 under
// ReLU), merged per channel in double, then dx = gamma * invstd / M * (M dy' - sum dy' - xhat * sum dy' xhat).
// The per-thread and per-channel code is __host__ __device__: host_emulate_* runs it on the CPU.
#include <cmath>
#include <initializer_list>
#include <string>
#include <vector>

#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/fast_div.cuh"
#include "kernels/cuda/runtime.h"
#include "kernels/cuda/variants.h"

namespace ember::cuda::ember_bn {
namespace {

constexpr int kThreads = 256;            // statistics and reduction blocks
constexpr int kElementwiseThreads = 256;

struct Welford {  // no member initialisers: it lives in __shared__ memory; Welford{} is all zeros
  float mean, m2, count;
  __host__ __device__ void add(float v) {
    count += 1.f;
    const float delta = v - mean;
    mean += delta / count;
    m2 += delta * (v - mean);
  }
  __host__ __device__ void add4(float4 v) {  // the four values' own mean and M2, then one merge
    const float m = 0.25f * ((v.x + v.y) + (v.z + v.w));
    const float a = v.x - m, b = v.y - m, c = v.z - m, d = v.w - m;
    merge(Welford{m, (a * a + b * b) + (c * c + d * d), 4.f});
  }
  __host__ __device__ void merge(const Welford& o) {
    if (o.count == 0.f) return;
    const float n = count + o.count, delta = o.mean - mean;
    mean += delta * (o.count / n);
    m2 += o.m2 + delta * delta * (count * o.count / n);
    count = n;
  }
};

// How the tensor is walked: in units of `vec` floats (4 when H*W % 4 == 0 and every pointer is
// 16-byte aligned, else 1); per channel N * H*W / vec units, cut into `splits` slices.
struct Slices {
  int C, HW, vec, plane_units, units, per_slice, splits;
  FastDiv div_plane, div_C;  // by plane_units, by C
  // Offset in floats of unit u of channel c.
  __host__ __device__ int offset(int c, int u) const {
    int n, o;
    div_plane.divmod(u, n, o);
    return (n * C + c) * HW + o * vec;
  }
  // Channel of unit i of the whole tensor (element-wise passes): i = (n * C + c) * plane_units + o.
  __host__ __device__ int channel(int i) const {
    int n, c, o;
    split3(i, div_plane, div_C, n, c, o);
    return c;
  }
  __host__ __device__ int total_units() const { return units * C; }
  __host__ __device__ int slice_end(int split) const {
    const int end = (split + 1) * per_slice;
    return end < units ? end : units;
  }
};

Slices make_slices(const BatchNormArgs& a, std::initializer_list<const void*> pointers) {
  const std::string what = "batchnorm [N=" + std::to_string(a.N) + " C=" + std::to_string(a.C) +
                           " HW=" + std::to_string(a.HW) + "]";
  EMBER_CUDA_REQUIRE(a.N > 0 && a.C > 0 && a.HW > 0, what + ": sizes must be positive");
  require_int32(a.N * a.C * a.HW, what.c_str());
  EMBER_CUDA_REQUIRE(a.C <= 65535, what + ": more than 65535 channels (one grid row each)");
  bool vec4 = a.HW % 4 == 0;
  for (const void* p : pointers) vec4 = vec4 && aligned16(p);
  Slices s;
  s.C = int(a.C), s.HW = int(a.HW), s.vec = vec4 ? 4 : 1;
  s.plane_units = s.HW / s.vec, s.units = int(a.N) * s.plane_units;
  s.per_slice = units_per_slice();  // 4096 by default: 16 float4s (64 values) per thread of a 256-thread block
  s.splits = (s.units + s.per_slice - 1) / s.per_slice;
  s.div_plane = FastDiv(s.plane_units), s.div_C = FastDiv(s.C);
  return s;
}

__host__ __device__ inline float4 load_unit(const Slices& s, const float* p) {
  if (s.vec == 4) return *reinterpret_cast<const float4*>(p);
  return make_float4(*p, 0.f, 0.f, 0.f);
}

// ---- statistics ----
__host__ __device__ inline Welford thread_stats(const Slices& s, const float* x, int c, int split, int tid, int threads) {
  Welford w{};
  for (int u = split * s.per_slice + tid; u < s.slice_end(split); u += threads) {
    const float4 v = load_unit(s, x + s.offset(c, u));
    if (s.vec == 4)
      w.add4(v);
    else
      w.add(v.x);
  }
  return w;
}

// partial[(0, 1, 2) * splits * C + split * C + c] = mean, M2, count of one slice.
__host__ __device__ inline void store_partial(const Slices& s, float* partial, int c, int split, const Welford& w) {
  const int stride = s.splits * s.C, i = split * s.C + c;
  partial[i] = w.mean, partial[stride + i] = w.m2, partial[2 * stride + i] = w.count;
}

__host__ __device__ inline void finalize_channel(const Slices& s, const float* partial, int c, float eps, float momentum,
                                                 float* save_mean, float* save_invstd, float* running_mean,
                                                 float* running_var) {
  const int stride = s.splits * s.C;
  double mean = 0, m2 = 0, count = 0;
  for (int split = 0; split < s.splits; ++split) {
    const int i = split * s.C + c;
    const double o_mean = partial[i], o_m2 = partial[stride + i], o_count = partial[2 * stride + i];
    if (o_count == 0) continue;
    const double n = count + o_count, delta = o_mean - mean;
    mean += delta * (o_count / n);
    m2 += o_m2 + delta * delta * (count * o_count / n);
    count = n;
  }
  const double var = m2 / count;
  save_mean[c] = float(mean);
  save_invstd[c] = float(1.0 / sqrt(var + double(eps)));
  if (running_mean) running_mean[c] = float((1.0 - momentum) * running_mean[c] + momentum * mean);
  if (running_var) running_var[c] = float((1.0 - momentum) * running_var[c] + momentum * (count > 1 ? m2 / (count - 1) : var));
}

__device__ Welford warp_merge(Welford w) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    Welford other;
    other.mean = __shfl_xor_sync(0xffffffffu, w.mean, offset);
    other.m2 = __shfl_xor_sync(0xffffffffu, w.m2, offset);
    other.count = __shfl_xor_sync(0xffffffffu, w.count, offset);
    w.merge(other);
  }
  return w;
}

// grid (splits, C)
__global__ void __launch_bounds__(kThreads) stats_kernel(Slices s, const float* __restrict__ x, float* partial) {
  const int split = blockIdx.x, c = blockIdx.y;
  Welford w = warp_merge(thread_stats(s, x, c, split, threadIdx.x, kThreads));
  __shared__ Welford per_warp[kThreads / 32];
  if (threadIdx.x % 32 == 0) per_warp[threadIdx.x / 32] = w;
  __syncthreads();
  if (threadIdx.x < 32) {
    w = threadIdx.x < kThreads / 32 ? per_warp[threadIdx.x] : Welford{};
    w = warp_merge(w);
    if (threadIdx.x == 0) store_partial(s, partial, c, split, w);
  }
}

__global__ void finalize_stats_kernel(Slices s, const float* partial, float eps, float momentum, float* save_mean,
                                      float* save_invstd, float* running_mean, float* running_var) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c < s.C) finalize_channel(s, partial, c, eps, momentum, save_mean, save_invstd, running_mean, running_var);
}

// ---- element-wise: y = relu?((x - mean) * gamma * invstd + beta), unit i of the whole tensor ----
__host__ __device__ inline void normalize_unit(const Slices& s, int i, bool relu, const float* x, const float* mean,
                                               const float* invstd, const float* gamma, const float* beta, float* y) {
  const int c = s.channel(i);
  const float m = mean[c], scale = (gamma ? gamma[c] : 1.f) * invstd[c], shift = beta ? beta[c] : 0.f;
  const float4 v = load_unit(s, x + i * s.vec);
  float out[4] = {v.x, v.y, v.z, v.w};
  for (int k = 0; k < 4; ++k) {  // all 4 lanes (the scalar path ignores 1-3): constant indices, registers
    const float o = (out[k] - m) * scale + shift;
    out[k] = relu ? fmaxf(o, 0.f) : o;
  }
  if (s.vec == 4)
    *reinterpret_cast<float4*>(y + i * 4) = make_float4(out[0], out[1], out[2], out[3]);
  else
    y[i] = out[0];
}

__global__ void normalize_kernel(Slices s, bool relu, const float* __restrict__ x,
                                 const float* __restrict__ mean, const float* __restrict__ invstd,
                                 const float* __restrict__ gamma, const float* __restrict__ beta, float* __restrict__ y) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < s.total_units(); i += int64_t(gridDim.x) * blockDim.x)
    normalize_unit(s, int(i), relu, x, mean, invstd, gamma, beta, y);
}

// ---- backward ----
// The lanes of one unit at offset o: x, and dy' = dy masked by y > 0 under ReLU (y is read only
// then). All 4 lanes are filled (zeros past `vec`) so callers index them with constants.
struct GradLanes {
  float x[4], g[4];
};
__host__ __device__ inline GradLanes grad_lanes(const Slices& s, bool relu, const float* x, const float* y,
                                                const float* dy, int o) {
  const float4 xv = load_unit(s, x + o), gv = load_unit(s, dy + o);
  const float4 yv = relu ? load_unit(s, y + o) : make_float4(1.f, 1.f, 1.f, 1.f);
  const float ys[4] = {yv.x, yv.y, yv.z, yv.w}, gs[4] = {gv.x, gv.y, gv.z, gv.w};
  GradLanes l{{xv.x, xv.y, xv.z, xv.w}, {}};
  for (int k = 0; k < 4; ++k) l.g[k] = ys[k] <= 0.f ? 0.f : gs[k];  // without ReLU y is 1 here
  return l;
}

struct GradSums {
  float dy, dy_xhat;
};
__host__ __device__ inline GradSums thread_grad_sums(const Slices& s, bool relu, const float* x, const float* y,
                                                     const float* dy, float mean, float invstd, int c, int split,
                                                     int tid, int threads) {
  GradSums sum{0.f, 0.f};
  for (int u = split * s.per_slice + tid; u < s.slice_end(split); u += threads) {
    const GradLanes l = grad_lanes(s, relu, x, y, dy, s.offset(c, u));
    for (int k = 0; k < 4; ++k) {  // constant bound: the arrays stay in registers
      if (k >= s.vec) break;
      sum.dy += l.g[k];
      sum.dy_xhat += l.g[k] * (l.x[k] - mean) * invstd;
    }
  }
  return sum;
}

// grid (splits, C); partial[(0, 1) * splits * C + split * C + c]
__global__ void __launch_bounds__(kThreads) grad_sums_kernel(Slices s, bool relu, const float* __restrict__ x,
                                                             const float* __restrict__ y, const float* __restrict__ dy,
                                                             const float* __restrict__ mean,
                                                             const float* __restrict__ invstd, float* partial) {
  const int split = blockIdx.x, c = blockIdx.y;
  const GradSums t = thread_grad_sums(s, relu, x, y, dy, mean[c], invstd[c], c, split, threadIdx.x, kThreads);
  const float s1 = block_sum(t.dy), s2 = block_sum(t.dy_xhat);
  if (threadIdx.x == 0) partial[split * s.C + c] = s1, partial[s.splits * s.C + split * s.C + c] = s2;
}

__host__ __device__ inline void finalize_grad_channel(const Slices& s, const float* partial, int c, float* sum_dy,
                                                      float* sum_dy_xhat) {
  double s1 = 0, s2 = 0;
  for (int split = 0; split < s.splits; ++split) s1 += partial[split * s.C + c], s2 += partial[(s.splits + split) * s.C + c];
  sum_dy[c] = float(s1), sum_dy_xhat[c] = float(s2);
}

__global__ void finalize_grad_kernel(Slices s, const float* partial, float* sum_dy, float* sum_dy_xhat) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c < s.C) finalize_grad_channel(s, partial, c, sum_dy, sum_dy_xhat);
}

__host__ __device__ inline void dx_unit(const Slices& s, int i, float count, bool relu, const float* x, const float* y,
                                        const float* dy, const float* gamma, const float* mean, const float* invstd,
                                        const float* sum_dy, const float* sum_dy_xhat, float* dx) {
  const int c = s.channel(i);
  const float m = mean[c], inv = invstd[c], scale = (gamma ? gamma[c] : 1.f) * inv / count;
  const float s1 = sum_dy[c], s2 = sum_dy_xhat[c];
  const GradLanes l = grad_lanes(s, relu, x, y, dy, i * s.vec);
  float out[4];
  for (int k = 0; k < 4; ++k) out[k] = scale * (count * l.g[k] - s1 - (l.x[k] - m) * inv * s2);
  if (s.vec == 4)
    *reinterpret_cast<float4*>(dx + i * 4) = make_float4(out[0], out[1], out[2], out[3]);
  else
    dx[i] = out[0];
}

__global__ void dx_kernel(Slices s, float count, bool relu, const float* __restrict__ x,
                          const float* __restrict__ y, const float* __restrict__ dy, const float* __restrict__ gamma,
                          const float* __restrict__ mean, const float* __restrict__ invstd,
                          const float* __restrict__ sum_dy, const float* __restrict__ sum_dy_xhat, float* __restrict__ dx) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < s.total_units(); i += int64_t(gridDim.x) * blockDim.x)
    dx_unit(s, int(i), count, relu, x, y, dy, gamma, mean, invstd, sum_dy, sum_dy_xhat, dx);
}

__global__ void eval_stats_kernel(int C, float eps, const float* running_var, float* invstd) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c < C) invstd[c] = rsqrtf(running_var[c] + eps);
}

void launch_normalize(const BatchNormArgs& a, const Slices& s, const float* x, const float* mean, const float* invstd,
                      const float* gamma, const float* beta, float* y) {
  normalize_kernel<<<blocks_for(s.total_units(), kElementwiseThreads), kElementwiseThreads, 0, stream()>>>(
      s, a.relu, x, mean, invstd, gamma, beta, y);
  EMBER_CUDA_CHECK_LAUNCH();
}

}  // namespace

void forward_train(const BatchNormArgs& a, const float* x, const float* gamma, const float* beta, float* y,
                   float* save_mean, float* save_invstd, float* running_mean, float* running_var) {
  const Slices s = make_slices(a, {x, y});
  DeviceScratch<float> partial(3 * int64_t(s.splits) * s.C);
  stats_kernel<<<dim3(unsigned(s.splits), unsigned(s.C)), kThreads, 0, stream()>>>(s, x, partial.get());
  EMBER_CUDA_CHECK_LAUNCH();
  finalize_stats_kernel<<<blocks_for(s.C, 128), 128, 0, stream()>>>(s, partial.get(), a.eps, a.momentum, save_mean,
                                                                     save_invstd, running_mean, running_var);
  EMBER_CUDA_CHECK_LAUNCH();
  launch_normalize(a, s, x, save_mean, save_invstd, gamma, beta, y);
}

void forward_eval(const BatchNormArgs& a, const float* x, const float* gamma, const float* beta,
                  const float* running_mean, const float* running_var, float* y) {
  const Slices s = make_slices(a, {x, y});
  DeviceScratch<float> invstd(a.C);
  eval_stats_kernel<<<blocks_for(a.C, 128), 128, 0, stream()>>>(int(a.C), a.eps, running_var, invstd.get());
  EMBER_CUDA_CHECK_LAUNCH();
  launch_normalize(a, s, x, running_mean, invstd.get(), gamma, beta, y);
}

void backward(const BatchNormArgs& a, const float* x, const float* y, const float* dy, const float* gamma,
              const float* save_mean, const float* save_invstd, float* dx, float* dgamma, float* dbeta) {
  const Slices s = make_slices(a, {x, a.relu ? y : nullptr, dy, dx});
  // dbeta = sum dy', dgamma = sum dy' * xhat: exactly the two sums dx needs, so reuse them.
  DeviceScratch<float> sums(2 * a.C), partial(2 * int64_t(s.splits) * s.C);
  float* sum_dy = dbeta ? dbeta : sums.get();
  float* sum_dy_xhat = dgamma ? dgamma : sums.get() + a.C;
  grad_sums_kernel<<<dim3(unsigned(s.splits), unsigned(s.C)), kThreads, 0, stream()>>>(s, a.relu, x, y, dy, save_mean,
                                                                                        save_invstd, partial.get());
  EMBER_CUDA_CHECK_LAUNCH();
  finalize_grad_kernel<<<blocks_for(s.C, 128), 128, 0, stream()>>>(s, partial.get(), sum_dy, sum_dy_xhat);
  EMBER_CUDA_CHECK_LAUNCH();
  dx_kernel<<<blocks_for(s.total_units(), kElementwiseThreads), kElementwiseThreads, 0, stream()>>>(
      s, float(a.N * a.HW), a.relu, x, y, dy, gamma, save_mean, save_invstd, sum_dy, sum_dy_xhat, dx);
  EMBER_CUDA_CHECK_LAUNCH();
}

// The same per-thread, per-channel and per-unit code on the CPU: block threads run one after the
// other and merge in thread order (the device merges in a butterfly: same math, other rounding).
void host_emulate_forward_train(const BatchNormArgs& a, const float* x, const float* gamma, const float* beta, float* y,
                                float* save_mean, float* save_invstd, float* running_mean, float* running_var) {
  const Slices s = make_slices(a, {x, y});
  std::vector<float> partial(size_t(3) * s.splits * s.C);
  for (int c = 0; c < s.C; ++c)
    for (int split = 0; split < s.splits; ++split) {
      Welford w{};
      for (int tid = 0; tid < kThreads; ++tid) w.merge(thread_stats(s, x, c, split, tid, kThreads));
      store_partial(s, partial.data(), c, split, w);
    }
  for (int c = 0; c < s.C; ++c)
    finalize_channel(s, partial.data(), c, a.eps, a.momentum, save_mean, save_invstd, running_mean, running_var);
  for (int i = 0; i < s.total_units(); ++i)
    normalize_unit(s, i, a.relu, x, save_mean, save_invstd, gamma, beta, y);
}

void host_emulate_backward(const BatchNormArgs& a, const float* x, const float* y, const float* dy, const float* gamma,
                           const float* save_mean, const float* save_invstd, float* dx, float* dgamma, float* dbeta) {
  const Slices s = make_slices(a, {x, a.relu ? y : nullptr, dy, dx});
  std::vector<float> partial(size_t(2) * s.splits * s.C);
  for (int c = 0; c < s.C; ++c)
    for (int split = 0; split < s.splits; ++split) {
      float s1 = 0.f, s2 = 0.f;
      for (int tid = 0; tid < kThreads; ++tid) {
        const GradSums t = thread_grad_sums(s, a.relu, x, y, dy, save_mean[c], save_invstd[c], c, split, tid, kThreads);
        s1 += t.dy, s2 += t.dy_xhat;
      }
      partial[size_t(split) * s.C + c] = s1, partial[size_t(s.splits + split) * s.C + c] = s2;
    }
  for (int c = 0; c < s.C; ++c) finalize_grad_channel(s, partial.data(), c, dbeta, dgamma);
  for (int i = 0; i < s.total_units(); ++i)
    dx_unit(s, i, float(a.N * a.HW), a.relu, x, y, dy, gamma, save_mean, save_invstd, dbeta, dgamma, dx);
}

}  // namespace ember::cuda::ember_bn
