// Batch norm over (N, H, W) per channel, with an optional fused ReLU.
// Training forward = two kernels: (1) one block per channel computes mean and biased variance
// in one read of x with Welford per thread, merged across the block with Chan's formula (stable
// for large means, unlike sum/sum-of-squares), and updates the running stats; (2) an element-wise
// pass normalises, applies gamma/beta and the ReLU (float4 when H*W % 4 == 0).
// Backward = (1) per-channel sums of dy' and dy' * xhat, where dy' = dy masked by y > 0 under ReLU,
// (2) dx = gamma * invstd / M * (M dy' - sum dy' - xhat * sum dy' xhat).
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/runtime.h"
#include "kernels/cuda/variants.h"

namespace ember::cuda::ember_bn {
namespace {

constexpr int kStatThreads = 512;

struct Welford {  // no member initialisers: it lives in __shared__ memory; Welford{} is all zeros
  float mean, m2, count;
  __device__ void add(float v) {
    count += 1.f;
    const float delta = v - mean;
    mean += delta / count;
    m2 += delta * (v - mean);
  }
  __device__ void merge(const Welford& o) {
    if (o.count == 0.f) return;
    const float n = count + o.count, delta = o.mean - mean;
    mean += delta * (o.count / n);
    m2 += o.m2 + delta * delta * (count * o.count / n);
    count = n;
  }
};

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

__global__ void __launch_bounds__(kStatThreads) stats_kernel(int N, int C, int HW, const float* __restrict__ x,
                                                             float eps, float momentum, float* save_mean,
                                                             float* save_invstd, float* running_mean,
                                                             float* running_var) {
  const int c = blockIdx.x;
  Welford acc{};
  for (int n = 0; n < N; ++n) {
    const float* plane = x + (size_t(n) * C + c) * HW;
    for (int i = threadIdx.x; i < HW; i += blockDim.x) acc.add(plane[i]);
  }
  acc = warp_merge(acc);
  __shared__ Welford per_warp[kStatThreads / 32];
  if (threadIdx.x % 32 == 0) per_warp[threadIdx.x / 32] = acc;
  __syncthreads();
  if (threadIdx.x < 32) {
    acc = threadIdx.x < blockDim.x / 32 ? per_warp[threadIdx.x] : Welford{};
    acc = warp_merge(acc);
    if (threadIdx.x == 0) {
      const float count = float(N) * HW, var = acc.m2 / count;
      save_mean[c] = acc.mean;
      save_invstd[c] = rsqrtf(var + eps);
      if (running_mean) running_mean[c] = (1.f - momentum) * running_mean[c] + momentum * acc.mean;
      if (running_var) {
        const float unbiased = count > 1.f ? acc.m2 / (count - 1.f) : var;
        running_var[c] = (1.f - momentum) * running_var[c] + momentum * unbiased;
      }
    }
  }
}

// y = relu?(x * scale[c] + shift[c]); mean/invstd/gamma/beta are folded into scale and shift.
template <bool kRelu>
__global__ void normalize_kernel(int64_t total, int C, int HW, const float* __restrict__ x,
                                 const float* __restrict__ mean, const float* __restrict__ invstd,
                                 const float* __restrict__ gamma, const float* __restrict__ beta,
                                 float* __restrict__ y, bool vec4) {
  auto apply = [&](float v, int c) {
    const float scale = (gamma ? gamma[c] : 1.f) * invstd[c];
    float out = (v - mean[c]) * scale + (beta ? beta[c] : 0.f);
    return kRelu ? fmaxf(out, 0.f) : out;
  };
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  if (vec4) {  // HW % 4 == 0: a float4 never straddles two channels
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total / 4; i += stride) {
      const int c = int((i * 4 / HW) % C);
      float4 v = reinterpret_cast<const float4*>(x)[i];
      v.x = apply(v.x, c), v.y = apply(v.y, c), v.z = apply(v.z, c), v.w = apply(v.w, c);
      reinterpret_cast<float4*>(y)[i] = v;
    }
  } else {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += stride)
      y[i] = apply(x[i], int((i / HW) % C));
  }
}

__global__ void __launch_bounds__(kStatThreads) backward_reduce_kernel(
    int N, int C, int HW, bool relu, const float* __restrict__ x, const float* __restrict__ y,
    const float* __restrict__ dy, const float* __restrict__ mean, const float* __restrict__ invstd,
    float* __restrict__ sum_dy, float* __restrict__ sum_dy_xhat) {
  const int c = blockIdx.x;
  float s1 = 0.f, s2 = 0.f;
  for (int n = 0; n < N; ++n) {
    const size_t base = (size_t(n) * C + c) * HW;
    for (int i = threadIdx.x; i < HW; i += blockDim.x) {
      const float g = (relu && y[base + i] <= 0.f) ? 0.f : dy[base + i];
      s1 += g;
      s2 += g * (x[base + i] - mean[c]) * invstd[c];
    }
  }
  s1 = block_sum(s1);
  s2 = block_sum(s2);
  if (threadIdx.x == 0) sum_dy[c] = s1, sum_dy_xhat[c] = s2;
}

__global__ void backward_dx_kernel(int64_t total, int C, int HW, float count, bool relu, const float* __restrict__ x,
                                   const float* __restrict__ y, const float* __restrict__ dy,
                                   const float* __restrict__ gamma, const float* __restrict__ mean,
                                   const float* __restrict__ invstd, const float* __restrict__ sum_dy,
                                   const float* __restrict__ sum_dy_xhat, float* __restrict__ dx) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int c = int((i / HW) % C);
    const float g = (relu && y[i] <= 0.f) ? 0.f : dy[i];
    const float xhat = (x[i] - mean[c]) * invstd[c];
    const float scale = (gamma ? gamma[c] : 1.f) * invstd[c] / count;
    dx[i] = scale * (count * g - sum_dy[c] - xhat * sum_dy_xhat[c]);
  }
}

void check_args(const BatchNormArgs& a, const char* op) {
  EMBER_CUDA_REQUIRE(a.N > 0 && a.C > 0 && a.HW > 0 && a.HW <= INT32_MAX && a.C <= INT32_MAX,
                     std::string(op) + ": bad sizes N=" + std::to_string(a.N) + " C=" + std::to_string(a.C) +
                         " HW=" + std::to_string(a.HW));
}

void launch_normalize(const BatchNormArgs& a, const float* x, const float* mean, const float* invstd,
                      const float* gamma, const float* beta, float* y) {
  const int64_t total = a.N * a.C * a.HW;
  const bool vec4 = a.HW % 4 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0 && reinterpret_cast<uintptr_t>(y) % 16 == 0;
  const unsigned blocks = blocks_for(vec4 ? total / 4 : total, 256);
  if (a.relu)
    normalize_kernel<true><<<blocks, 256, 0, stream()>>>(total, int(a.C), int(a.HW), x, mean, invstd, gamma, beta, y, vec4);
  else
    normalize_kernel<false><<<blocks, 256, 0, stream()>>>(total, int(a.C), int(a.HW), x, mean, invstd, gamma, beta, y, vec4);
  EMBER_CUDA_CHECK_LAUNCH();
}

// Eval: folds running stats into per-channel mean / invstd, then the same normalize kernel.
__global__ void eval_stats_kernel(int C, float eps, const float* running_var, float* invstd) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c < C) invstd[c] = rsqrtf(running_var[c] + eps);
}

}  // namespace

void forward_train(const BatchNormArgs& a, const float* x, const float* gamma, const float* beta, float* y,
                   float* save_mean, float* save_invstd, float* running_mean, float* running_var) {
  check_args(a, "batchnorm forward (train)");
  stats_kernel<<<unsigned(a.C), kStatThreads, 0, stream()>>>(int(a.N), int(a.C), int(a.HW), x, a.eps, a.momentum,
                                                              save_mean, save_invstd, running_mean, running_var);
  EMBER_CUDA_CHECK_LAUNCH();
  launch_normalize(a, x, save_mean, save_invstd, gamma, beta, y);
}

void forward_eval(const BatchNormArgs& a, const float* x, const float* gamma, const float* beta,
                  const float* running_mean, const float* running_var, float* y) {
  check_args(a, "batchnorm forward (eval)");
  DeviceScratch<float> invstd(a.C);
  eval_stats_kernel<<<blocks_for(a.C, 128), 128, 0, stream()>>>(int(a.C), a.eps, running_var, invstd.get());
  EMBER_CUDA_CHECK_LAUNCH();
  launch_normalize(a, x, running_mean, invstd.get(), gamma, beta, y);
}

void backward(const BatchNormArgs& a, const float* x, const float* y, const float* dy, const float* gamma,
              const float* save_mean, const float* save_invstd, float* dx, float* dgamma, float* dbeta) {
  check_args(a, "batchnorm backward");
  // dbeta = sum dy', dgamma = sum dy' * xhat: exactly the two sums dx needs, so reuse them.
  DeviceScratch<float> sums(2 * a.C);
  float* sum_dy = dbeta ? dbeta : sums.get();
  float* sum_dy_xhat = dgamma ? dgamma : sums.get() + a.C;
  backward_reduce_kernel<<<unsigned(a.C), kStatThreads, 0, stream()>>>(int(a.N), int(a.C), int(a.HW), a.relu, x, y, dy,
                                                                       save_mean, save_invstd, sum_dy, sum_dy_xhat);
  EMBER_CUDA_CHECK_LAUNCH();
  const int64_t total = a.N * a.C * a.HW;
  backward_dx_kernel<<<blocks_for(total, 256), 256, 0, stream()>>>(total, int(a.C), int(a.HW), float(a.N * a.HW),
                                                                   a.relu, x, y, dy, gamma, save_mean, save_invstd,
                                                                   sum_dy, sum_dy_xhat, dx);
  EMBER_CUDA_CHECK_LAUNCH();
}

}  // namespace ember::cuda::ember_bn
