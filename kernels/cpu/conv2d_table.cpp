// Variant tables of the float convolutions: "im2col" (GEMM-based, depthwise direct) and "ref".
#include "kernels/cpu/conv2d.h"

namespace ember::cpu {

// Defined in conv2d_im2col.cpp.
void conv2d_forward_im2col(const Conv2dShape&, const float*, const float*, const float*, float*);
void conv2d_backward_data_im2col(const Conv2dShape&, const float*, const float*, float*);
void conv2d_backward_weight_im2col(const Conv2dShape&, const float*, const float*, float*, float*);

kernels::VariantTable<ConvFwdFn>& conv2d_fwd_table() {
  static kernels::VariantTable<ConvFwdFn> table("conv2d_fwd", {
                                                                  {"im2col", &conv2d_forward_im2col, nullptr},
                                                                  {"ref", &conv2d_forward_ref<float>, nullptr},
                                                              });
  return table;
}
kernels::VariantTable<ConvBwdDataFn>& conv2d_bwd_data_table() {
  static kernels::VariantTable<ConvBwdDataFn> table(
      "conv2d_bwd_data", {
                             {"im2col", &conv2d_backward_data_im2col, nullptr},
                             {"ref", &conv2d_backward_data_ref<float>, nullptr},
                         });
  return table;
}
kernels::VariantTable<ConvBwdWeightFn>& conv2d_bwd_weight_table() {
  static kernels::VariantTable<ConvBwdWeightFn> table(
      "conv2d_bwd_weight", {
                               {"im2col", &conv2d_backward_weight_im2col, nullptr},
                               {"ref", &conv2d_backward_weight_ref<float>, nullptr},
                           });
  return table;
}

namespace {
// Build the tables at load time so that kernels::variants("conv2d_fwd") works before the first call.
[[maybe_unused]] const bool registered_at_load =
    (conv2d_fwd_table(), conv2d_bwd_data_table(), conv2d_bwd_weight_table(), true);
}  // namespace

}  // namespace ember::cpu
