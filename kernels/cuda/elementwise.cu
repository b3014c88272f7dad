// Element-wise ops: binary with broadcasting (strides, 0 = broadcast), a float4 fast path for the
// contiguous same-shape case, unary math, ReLU backward, axpby and float <-> bf16 conversion.
#include <cuda_bf16.h>

#include "kernels/cuda/runtime.h"
#include "kernels/cuda/strided_index.cuh"

namespace ember::cuda {
namespace {

template <BinaryOp kOp>
__device__ __forceinline__ float apply_binary(float a, float b) {
  if constexpr (kOp == BinaryOp::Add) return a + b;
  else if constexpr (kOp == BinaryOp::Sub) return a - b;
  else if constexpr (kOp == BinaryOp::Mul) return a * b;
  else return a / b;
}

template <BinaryOp kOp>
__global__ void binary_strided_kernel(BroadcastArgs args, int64_t total, const float* __restrict__ a,
                                      const float* __restrict__ b, float* __restrict__ out) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t ia, ib;
    strided_offsets(i, args.ndim, args.shape, args.a_strides, args.b_strides, ia, ib);
    out[i] = apply_binary<kOp>(a[ia], b[ib]);
  }
}

template <BinaryOp kOp>
__global__ void binary_contiguous_kernel(int64_t n, const float* __restrict__ a, const float* __restrict__ b,
                                         float* __restrict__ out, bool vec4) {
  const int64_t start = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
  if (vec4) {  // 16-byte loads/stores: a quarter of the memory instructions
    for (int64_t i = start; i < n / 4; i += stride) {
      const float4 va = reinterpret_cast<const float4*>(a)[i], vb = reinterpret_cast<const float4*>(b)[i];
      reinterpret_cast<float4*>(out)[i] = make_float4(apply_binary<kOp>(va.x, vb.x), apply_binary<kOp>(va.y, vb.y),
                                                      apply_binary<kOp>(va.z, vb.z), apply_binary<kOp>(va.w, vb.w));
    }
    for (int64_t i = n / 4 * 4 + start; i < n; i += stride) out[i] = apply_binary<kOp>(a[i], b[i]);
  } else {
    for (int64_t i = start; i < n; i += stride) out[i] = apply_binary<kOp>(a[i], b[i]);
  }
}

__device__ __forceinline__ float apply_unary(UnaryOp op, float v) {
  switch (op) {
    case UnaryOp::Neg: return -v;
    case UnaryOp::Exp: return expf(v);
    case UnaryOp::Log: return logf(v);
    case UnaryOp::Sqrt: return sqrtf(v);
    case UnaryOp::Tanh: return tanhf(v);
    case UnaryOp::Sigmoid: return 1.f / (1.f + expf(-v));
    case UnaryOp::Relu: return fmaxf(v, 0.f);
    case UnaryOp::Abs: return fabsf(v);
    case UnaryOp::Sign: return float((v > 0.f) - (v < 0.f));  // 0 for NaN, as the CPU op
  }
  return v;
}

__global__ void unary_kernel(UnaryOp op, int64_t n, const float* __restrict__ x, float* __restrict__ y) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = apply_unary(op, x[i]);
}

__global__ void relu_backward_kernel(int64_t n, const float* __restrict__ y, const float* __restrict__ dy,
                                     float* __restrict__ dx) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dx[i] = y[i] > 0.f ? dy[i] : 0.f;
}

__global__ void pow_scalar_kernel(int64_t n, float exponent, const float* __restrict__ x, float* __restrict__ y) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = powf(x[i], exponent);  // the CPU op's std::pow(float, float): negative x with an integer exponent too
}

__global__ void axpby_kernel(int64_t n, float alpha, const float* __restrict__ x, float beta, float* __restrict__ y) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = alpha * x[i] + (beta == 0.f ? 0.f : beta * y[i]);
}

__global__ void to_bf16_kernel(int64_t n, const float* __restrict__ x, __nv_bfloat16* __restrict__ y) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = __float2bfloat16(x[i]);
}
__global__ void from_bf16_kernel(int64_t n, const __nv_bfloat16* __restrict__ x, float* __restrict__ y) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = __bfloat162float(x[i]);
}

template <class Launch>
void dispatch_binary(BinaryOp op, Launch&& launch) {
  switch (op) {
    case BinaryOp::Add: launch(std::integral_constant<BinaryOp, BinaryOp::Add>{}); break;
    case BinaryOp::Sub: launch(std::integral_constant<BinaryOp, BinaryOp::Sub>{}); break;
    case BinaryOp::Mul: launch(std::integral_constant<BinaryOp, BinaryOp::Mul>{}); break;
    case BinaryOp::Div: launch(std::integral_constant<BinaryOp, BinaryOp::Div>{}); break;
  }
  EMBER_CUDA_CHECK_LAUNCH();
}

}  // namespace

void binary(BinaryOp op, const BroadcastArgs& args, const float* a, const float* b, float* out) {
  EMBER_CUDA_REQUIRE(args.ndim >= 0 && args.ndim <= kMaxDims, "binary: ndim " + std::to_string(args.ndim) +
                                                                  " outside [0, " + std::to_string(kMaxDims) + "]");
  int64_t total = 1;
  for (int d = 0; d < args.ndim; ++d) total *= args.shape[d];
  if (total <= 0) return;
  dispatch_binary(op, [&](auto kind) {
    binary_strided_kernel<decltype(kind)::value><<<blocks_for(total, 256), 256, 0, stream()>>>(args, total, a, b, out);
  });
}

void binary_contiguous(BinaryOp op, int64_t n, const float* a, const float* b, float* out) {
  if (n <= 0) return;
  const bool vec4 = aligned16(a) && aligned16(b) && aligned16(out);
  dispatch_binary(op, [&](auto kind) {
    binary_contiguous_kernel<decltype(kind)::value>
        <<<blocks_for(vec4 ? (n + 3) / 4 : n, 256), 256, 0, stream()>>>(n, a, b, out, vec4);
  });
}

void unary(UnaryOp op, int64_t n, const float* x, float* y) {
  if (n <= 0) return;
  unary_kernel<<<blocks_for(n, 256), 256, 0, stream()>>>(op, n, x, y);
  EMBER_CUDA_CHECK_LAUNCH();
}
void relu_backward(int64_t n, const float* y, const float* dy, float* dx) {
  if (n <= 0) return;
  relu_backward_kernel<<<blocks_for(n, 256), 256, 0, stream()>>>(n, y, dy, dx);
  EMBER_CUDA_CHECK_LAUNCH();
}
void pow_scalar(int64_t n, float exponent, const float* x, float* y) {
  if (n <= 0) return;
  pow_scalar_kernel<<<blocks_for(n, 256), 256, 0, stream()>>>(n, exponent, x, y);
  EMBER_CUDA_CHECK_LAUNCH();
}
void axpby(int64_t n, float alpha, const float* x, float beta, float* y) {
  if (n <= 0) return;
  axpby_kernel<<<blocks_for(n, 256), 256, 0, stream()>>>(n, alpha, x, beta, y);
  EMBER_CUDA_CHECK_LAUNCH();
}
void float_to_bf16(int64_t n, const float* x, uint16_t* y) {
  if (n <= 0) return;
  to_bf16_kernel<<<blocks_for(n, 256), 256, 0, stream()>>>(n, x, reinterpret_cast<__nv_bfloat16*>(y));
  EMBER_CUDA_CHECK_LAUNCH();
}
void bf16_to_float(int64_t n, const uint16_t* x, float* y) {
  if (n <= 0) return;
  from_bf16_kernel<<<blocks_for(n, 256), 256, 0, stream()>>>(n, reinterpret_cast<const __nv_bfloat16*>(x), y);
  EMBER_CUDA_CHECK_LAUNCH();
}

}  // namespace ember::cuda
