// Variant tables of the float convolutions. Forward: "auto" (per shape: "direct_f23" for few input
// channels and 3-tap rows, "direct" for other few-channel convs, "winograd" for dense 3x3 stride-1
// convs with >= 8 channels, "im2col" otherwise), "winograd", "direct_f23" and "direct" (each on its
// own domain, "direct_f23" falls back to "direct", the others to im2col, so forcing one compares it
// against the fallback layer by layer), "im2col" (GEMM-based, depthwise direct) and "ref".
// Data gradient: "winograd" (im2col outside its domain), "im2col", "ref". Weight gradient: "auto"
// (as the forward's, with "winograd" for everything from 8 channels on), "winograd", "direct_f23"
// and "direct" (the same domains and fallbacks as the forward's), "im2col", "ref".
#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/conv2d_im2col.h"  // the variants' entry points

namespace ember::cpu {
namespace {
// Compiled without ISA flags: only the domain tests run here, the kernels behind them are gated.
void conv2d_forward_auto(const Conv2dShape& s, const float* x, const float* w, const float* bias, float* y) {
  if (kernels::has_avx512() && conv_detail::direct_applies(s)) return conv2d_forward_direct_f23(s, x, w, bias, y);
  conv2d_forward_winograd(s, x, w, bias, y);  // Winograd on its domain, im2col elsewhere
}
void conv2d_backward_weight_auto(const Conv2dShape& s, const float* x, const float* dy, float* dw, float* dbias) {
  if (kernels::has_avx512() && conv_detail::direct_applies(s)) return conv2d_backward_weight_direct_f23(s, x, dy, dw, dbias);
  conv2d_backward_weight_winograd(s, x, dy, dw, dbias);  // Winograd on its domain, im2col elsewhere
}
}  // namespace

kernels::VariantTable<ConvFwdFn>& conv2d_fwd_table() {
  static kernels::VariantTable<ConvFwdFn> table("conv2d_fwd", {
                                                                  {"auto", &conv2d_forward_auto, &kernels::has_avx2},
                                                                  {"winograd", &conv2d_forward_winograd, &kernels::has_avx2},
                                                                  {"direct_f23", &conv2d_forward_direct_f23, &kernels::has_avx512},
                                                                  {"direct", &conv2d_forward_direct, &kernels::has_avx512},
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
                               {"auto", &conv2d_backward_weight_auto, &kernels::has_avx2},
                               {"winograd", &conv2d_backward_weight_winograd, &kernels::has_avx2},
                               {"direct_f23", &conv2d_backward_weight_direct_f23, &kernels::has_avx512},
                               {"direct", &conv2d_backward_weight_direct, &kernels::has_avx512},
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
