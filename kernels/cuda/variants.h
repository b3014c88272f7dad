// The implementations behind cuda_api.h's run-time selected ops (dispatch.cpp picks one):
// ember's own kernels and the cuDNN baselines. Plain C++ declarations, no CUDA headers.
#pragma once
#include "kernels/cuda/cuda_api.h"

namespace ember::cuda {

namespace ember_pool {  // pooling.cu
void max_pool2d_forward(const Pool2dShape& s, const float* x, float* y, int64_t* indices);
void max_pool2d_backward(const Pool2dShape& s, const float* dy, const int64_t* indices, float* dx);
void avg_pool2d_forward(const Pool2dShape& s, const float* x, float* y);
void avg_pool2d_backward(const Pool2dShape& s, const float* dy, float* dx);
// The kernels' per-value code run by host loops, so tests can check it without a GPU.
void host_emulate(const Pool2dShape& s, const float* x, const float* dy, float* max_y, int64_t* max_indices,
                  float* max_dx, float* avg_y, float* avg_dx);
// adaptive_pool.cu's per-value code the same way: y[planes, OH, OW] from x, dx[planes, H, W] from dy.
void host_emulate_adaptive(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW, const float* x,
                           const float* dy, float* y, float* dx);
}  // namespace ember_pool

namespace ember_bn {  // batchnorm.cu
// Units (float4s, or floats) per statistics block: EMBER_BN_SLICE=u4096 (default) | u1024 | u16384,
// registry op "bn_slice" (dispatch.cpp); a tuning knob for the GPU, so it needs no device to select.
int units_per_slice();
void forward_train(const BatchNormArgs& a, const float* x, const float* gamma, const float* beta, float* y,
                   float* save_mean, float* save_invstd, float* running_mean, float* running_var);
void forward_eval(const BatchNormArgs& a, const float* x, const float* gamma, const float* beta,
                  const float* running_mean, const float* running_var, float* y);
void backward(const BatchNormArgs& a, const float* x, const float* y, const float* dy, const float* gamma,
              const float* save_mean, const float* save_invstd, float* dx, float* dgamma, float* dbeta);
// The kernels' per-thread, per-channel and per-element code run by host loops on host pointers
// (forward_train and backward with dgamma and dbeta required), so tests can check it without a GPU.
void host_emulate_forward_train(const BatchNormArgs& a, const float* x, const float* gamma, const float* beta, float* y,
                                float* save_mean, float* save_invstd, float* running_mean, float* running_var);
void host_emulate_backward(const BatchNormArgs& a, const float* x, const float* y, const float* dy, const float* gamma,
                           const float* save_mean, const float* save_invstd, float* dx, float* dgamma, float* dbeta);
}  // namespace ember_bn

// cuDNN baselines (cudnn_ref.cu). Every function throws when ember was built without cuDNN.
namespace cudnn_ref {
bool compiled_in();
void conv2d_forward(Precision prec, const Conv2dShape& s, const float* x, const float* w, const float* bias, float* y);
void conv2d_backward_data(Precision prec, const Conv2dShape& s, const float* dy, const float* w, float* dx);
void conv2d_backward_weight(Precision prec, const Conv2dShape& s, const float* x, const float* dy, float* dw,
                            float* dbias);
// cuDNN alone on tensors already in the precision's storage type (bf16 bits for BF16, else float),
// without the conversions the float entry points add at BF16: the baseline a cuDNN user would time.
// pass 0: out = y from (a, b) = (x, w); 1: out = dx from (dy, w); 2: out = dw from (x, dy). No bias.
void conv2d_stored(Precision prec, int pass, const Conv2dShape& s, const void* a, const void* b, void* out);
void max_pool2d_forward(const Pool2dShape& s, const float* x, float* y);
void max_pool2d_backward(const Pool2dShape& s, const float* x, const float* y, const float* dy, float* dx);
void avg_pool2d_forward(const Pool2dShape& s, const float* x, float* y);
void avg_pool2d_backward(const Pool2dShape& s, const float* x, const float* y, const float* dy, float* dx);
void batchnorm_forward_train(const BatchNormArgs& a, const float* x, const float* gamma, const float* beta, float* y,
                             float* save_mean, float* save_invstd, float* running_mean, float* running_var);
void batchnorm_forward_eval(const BatchNormArgs& a, const float* x, const float* gamma, const float* beta,
                            const float* running_mean, const float* running_var, float* y);
void batchnorm_backward(const BatchNormArgs& a, const float* x, const float* y, const float* dy, const float* gamma,
                        const float* save_mean, const float* save_invstd, float* dx, float* dgamma, float* dbeta);
}  // namespace cudnn_ref

}  // namespace ember::cuda
