// Variant tables of the float convolutions: "winograd" (forward and data gradient: F(2x2,3x3) for
// dense 3x3 stride-1 convs with >= 8 channels, im2col for every other shape), "im2col" (GEMM-based,
// depthwise direct) and "ref". Weight gradients: "im2col" and "ref".
#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/conv2d_im2col.h"  // the variants' entry points

namespace ember::cpu {

kernels::VariantTable<ConvFwdFn>& conv2d_fwd_table() {
  static kernels::VariantTable<ConvFwdFn> table("conv2d_fwd", {
                                                                  {"winograd", &conv2d_forward_winograd, &kernels::has_avx2},
                                                                  {"im2col", &conv2d_forward_im2col, nullptr},
                                                                  {"ref", &conv2d_forward_ref<float>, nullptr},
                                                              });
  return table;
}
kernels::VariantTable<ConvBwdDataFn>& conv2d_bwd_data_table() {
  static kernels::VariantTable<ConvBwdDataFn> table(
      "conv2d_bwd_data", {
                             {"winograd", &conv2d_backward_data_winograd, &kernels::has_avx2},
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
