// 2-D convolution kernels (cross-correlation, as in PyTorch), NCHW activations, KCRS weights
// (K output channels, C/groups input channels per group, R x S filter). All buffers contiguous.
#pragma once
#include <cstdint>

#include "kernels/registry.h"

namespace ember::cpu {

struct Conv2dShape {
  int64_t N = 1, C = 1, H = 1, W = 1;  // input
  int64_t K = 1, R = 1, S = 1;         // output channels, filter height/width
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dil_h = 1, dil_w = 1, groups = 1;
  int64_t P() const { return (H + 2 * pad_h - dil_h * (R - 1) - 1) / stride_h + 1; }  // output height
  int64_t Q() const { return (W + 2 * pad_w - dil_w * (S - 1) - 1) / stride_w + 1; }  // output width
  int64_t macs() const { return N * K * P() * Q() * (C / groups) * R * S; }           // multiply-adds
};

// y[N,K,P,Q] = conv(x, w) (+ bias[K] if bias != nullptr). y is write-only.
template <class T>
void conv2d_forward_ref(const Conv2dShape& s, const T* x, const T* w, const T* bias, T* y);
// dx[N,C,H,W] = conv_transpose(dy, w). dx is write-only.
template <class T>
void conv2d_backward_data_ref(const Conv2dShape& s, const T* dy, const T* w, T* dx);
// dw[K,C/g,R,S] = sum over N,P,Q of dy * x; dbias[K] = sum of dy (if dbias != nullptr). Write-only.
template <class T>
void conv2d_backward_weight_ref(const Conv2dShape& s, const T* x, const T* dy, T* dw, T* dbias);

using ConvFwdFn = void (*)(const Conv2dShape&, const float* x, const float* w, const float* bias, float* y);
using ConvBwdDataFn = void (*)(const Conv2dShape&, const float* dy, const float* w, float* dx);
using ConvBwdWeightFn = void (*)(const Conv2dShape&, const float* x, const float* dy, float* dw, float* dbias);

// Ops "conv2d_fwd", "conv2d_bwd_data", "conv2d_bwd_weight": fast variants first, "ref" last.
kernels::VariantTable<ConvFwdFn>& conv2d_fwd_table();
kernels::VariantTable<ConvBwdDataFn>& conv2d_bwd_data_table();
kernels::VariantTable<ConvBwdWeightFn>& conv2d_bwd_weight_table();

template <class T>
void conv2d_forward(const Conv2dShape& s, const T* x, const T* w, const T* bias, T* y) {
  if constexpr (sizeof(T) == 4) conv2d_fwd_table().get()(s, x, w, bias, y);
  else conv2d_forward_ref<T>(s, x, w, bias, y);
}
template <class T>
void conv2d_backward_data(const Conv2dShape& s, const T* dy, const T* w, T* dx) {
  if constexpr (sizeof(T) == 4) conv2d_bwd_data_table().get()(s, dy, w, dx);
  else conv2d_backward_data_ref<T>(s, dy, w, dx);
}
template <class T>
void conv2d_backward_weight(const Conv2dShape& s, const T* x, const T* dy, T* dw, T* dbias) {
  if constexpr (sizeof(T) == 4) conv2d_bwd_weight_table().get()(s, x, dy, dw, dbias);
  else conv2d_backward_weight_ref<T>(s, x, dy, dw, dbias);
}

}  // namespace ember::cpu
