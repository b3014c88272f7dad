// cuDNN baselines for pooling and batch norm (variants "cudnn" of ops "pool" and "bn").
// cuDNN's batch norm has no fused ReLU in the NCHW legacy API, so ReLU runs as ember's element-wise
// kernel after the forward and as a dy mask before the backward (the unfused cost is the point of
// the comparison).
#include "kernels/cuda/variants.h"

#if EMBER_HAVE_CUDNN
#include <algorithm>

#include "kernels/cuda/cudnn_util.h"

namespace ember::cuda::cudnn_ref {
namespace {

class PoolDesc {
 public:
  PoolDesc(const Pool2dShape& s, cudnnPoolingMode_t mode) {
    EMBER_CUDNN_CHECK(cudnnCreatePoolingDescriptor(&d_));
    EMBER_CUDNN_CHECK(cudnnSetPooling2dDescriptor(d_, mode, CUDNN_PROPAGATE_NAN, as_int(s.kernel_h, "kernel_h"),
                                                  as_int(s.kernel_w, "kernel_w"), as_int(s.pad_h, "pad_h"),
                                                  as_int(s.pad_w, "pad_w"), as_int(s.stride_h, "stride_h"),
                                                  as_int(s.stride_w, "stride_w")));
  }
  ~PoolDesc() { cudnnDestroyPoolingDescriptor(d_); }
  PoolDesc(const PoolDesc&) = delete;
  PoolDesc& operator=(const PoolDesc&) = delete;
  cudnnPoolingDescriptor_t get() const { return d_; }

 private:
  cudnnPoolingDescriptor_t d_ = nullptr;
};

void pool_forward(const Pool2dShape& s, cudnnPoolingMode_t mode, const float* x, float* y) {
  PoolDesc pd(s, mode);
  TensorDesc xd, yd;
  xd.set(CUDNN_DATA_FLOAT, s.N, s.C, s.H, s.W);
  yd.set(CUDNN_DATA_FLOAT, s.N, s.C, s.P(), s.Q());
  const float one = 1.f, zero = 0.f;
  EMBER_CUDNN_CHECK(cudnnPoolingForward(handle(), pd.get(), &one, xd.get(), x, &zero, yd.get(), y));
}

void pool_backward(const Pool2dShape& s, cudnnPoolingMode_t mode, const float* x, const float* y, const float* dy,
                   float* dx) {
  PoolDesc pd(s, mode);
  TensorDesc xd, yd;
  xd.set(CUDNN_DATA_FLOAT, s.N, s.C, s.H, s.W);
  yd.set(CUDNN_DATA_FLOAT, s.N, s.C, s.P(), s.Q());
  const float one = 1.f, zero = 0.f;
  EMBER_CUDNN_CHECK(cudnnPoolingBackward(handle(), pd.get(), &one, yd.get(), y, yd.get(), dy, xd.get(), x, &zero,
                                         xd.get(), dx));
}

// gamma / beta may be nullptr in ember's API; cuDNN needs real buffers.
struct AffineParams {
  DeviceScratch<float> storage;
  const float* gamma;
  const float* beta;
  AffineParams(int64_t C, const float* g, const float* b) : storage{2 * C}, gamma(g), beta(b) {
    if (!gamma) fill(storage.get(), 1.f, C), gamma = storage.get();
    if (!beta) memset_zero(storage.get() + C, size_t(C) * sizeof(float)), beta = storage.get() + C;
  }
};

// float(1e-5) is a hair below CUDNN_BN_MIN_EPSILON (a double 1e-5), which cuDNN would reject.
double checked_eps(const BatchNormArgs& a) {
  EMBER_CUDA_REQUIRE(a.eps >= float(CUDNN_BN_MIN_EPSILON), "batchnorm (cudnn): eps " + std::to_string(a.eps) +
                                                                " below CUDNN_BN_MIN_EPSILON");
  return std::max(double(a.eps), double(CUDNN_BN_MIN_EPSILON));
}

cudnnPoolingMode_t average_mode(const Pool2dShape& s) {
  return s.count_include_pad ? CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING : CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING;
}

}  // namespace

void max_pool2d_forward(const Pool2dShape& s, const float* x, float* y) { pool_forward(s, CUDNN_POOLING_MAX_DETERMINISTIC, x, y); }
void max_pool2d_backward(const Pool2dShape& s, const float* x, const float* y, const float* dy, float* dx) {
  pool_backward(s, CUDNN_POOLING_MAX_DETERMINISTIC, x, y, dy, dx);
}
void avg_pool2d_forward(const Pool2dShape& s, const float* x, float* y) {
  pool_forward(s, average_mode(s), x, y);
}
void avg_pool2d_backward(const Pool2dShape& s, const float* x, const float* y, const float* dy, float* dx) {
  pool_backward(s, average_mode(s), x, y, dy, dx);
}

void batchnorm_forward_train(const BatchNormArgs& a, const float* x, const float* gamma, const float* beta, float* y,
                             float* save_mean, float* save_invstd, float* running_mean, float* running_var) {
  TensorDesc xd, pd;
  xd.set(CUDNN_DATA_FLOAT, a.N, a.C, a.HW, 1);
  pd.set(CUDNN_DATA_FLOAT, 1, a.C, 1, 1);
  AffineParams p(a.C, gamma, beta);
  const float one = 1.f, zero = 0.f;
  // cuDNN wants both running buffers or neither.
  const bool running = running_mean && running_var;
  EMBER_CUDNN_CHECK(cudnnBatchNormalizationForwardTraining(
      handle(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, xd.get(), x, xd.get(), y, pd.get(), p.gamma, p.beta, a.momentum,
      running ? running_mean : nullptr, running ? running_var : nullptr, checked_eps(a), save_mean, save_invstd));
  if (a.relu) unary(UnaryOp::Relu, a.N * a.C * a.HW, y, y);
}

void batchnorm_forward_eval(const BatchNormArgs& a, const float* x, const float* gamma, const float* beta,
                            const float* running_mean, const float* running_var, float* y) {
  TensorDesc xd, pd;
  xd.set(CUDNN_DATA_FLOAT, a.N, a.C, a.HW, 1);
  pd.set(CUDNN_DATA_FLOAT, 1, a.C, 1, 1);
  AffineParams p(a.C, gamma, beta);
  const float one = 1.f, zero = 0.f;
  EMBER_CUDNN_CHECK(cudnnBatchNormalizationForwardInference(handle(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, xd.get(),
                                                            x, xd.get(), y, pd.get(), p.gamma, p.beta, running_mean,
                                                            running_var, checked_eps(a)));
  if (a.relu) unary(UnaryOp::Relu, a.N * a.C * a.HW, y, y);
}

void batchnorm_backward(const BatchNormArgs& a, const float* x, const float* y, const float* dy, const float* gamma,
                        const float* save_mean, const float* save_invstd, float* dx, float* dgamma, float* dbeta) {
  TensorDesc xd, pd;
  xd.set(CUDNN_DATA_FLOAT, a.N, a.C, a.HW, 1);
  pd.set(CUDNN_DATA_FLOAT, 1, a.C, 1, 1);
  AffineParams p(a.C, gamma, nullptr);
  DeviceScratch<float> grads{2 * a.C};
  const int64_t n = a.N * a.C * a.HW;
  DeviceScratch<float> masked{a.relu ? n : 0};
  if (a.relu) relu_backward(n, y, dy, masked.get());
  const float one = 1.f, zero = 0.f;
  EMBER_CUDNN_CHECK(cudnnBatchNormalizationBackward(
      handle(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, &one, &zero, xd.get(), x, xd.get(), a.relu ? masked.get() : dy,
      xd.get(), dx, pd.get(), p.gamma, dgamma ? dgamma : grads.get(), dbeta ? dbeta : grads.get() + a.C,
      checked_eps(a), save_mean, save_invstd));
}

}  // namespace ember::cuda::cudnn_ref
#endif
