// ember's own conv launchers (plain C++ declarations, so dispatch.cpp compiles without nvcc).
#pragma once
#include "kernels/cuda/cuda_api.h"

namespace ember::cuda::conv {

// Whether convs with C / groups == 1 run the direct depthwise kernels (EMBER_DEPTHWISE=direct, the
// default) or the engine's implicit GEMM (gemm); registry op "depthwise" (dispatch.cpp).
bool depthwise_direct();
// The tensor-core engine's depth slice: 32 (EMBER_CONV_TC_DEPTH=k32, the default) or 16 (k16);
// registry op "conv_tc_depth" (dispatch.cpp).
int tc_slice_depth();
// conv2d_simt.cu: FP32 implicit GEMM on CUDA cores.
void simt_forward(const Conv2dShape& s, const float* x, const float* w, const float* bias, float* y);
void simt_backward_data(const Conv2dShape& s, const float* dy, const float* w, float* dx);
void simt_backward_weight(const Conv2dShape& s, const float* x, const float* dy, float* dw, float* dbias);
// conv2d_tc.cu: WMMA tensor cores in TF32 or BF16 (FP32 runs the SIMT kernels).
void tc_forward(Precision prec, const Conv2dShape& s, const float* x, const float* w, const float* bias, float* y);
void tc_backward_data(Precision prec, const Conv2dShape& s, const float* dy, const float* w, float* dx);
void tc_backward_weight(Precision prec, const Conv2dShape& s, const float* x, const float* dy, float* dw,
                        float* dbias);

}  // namespace ember::cuda::conv

namespace ember::cuda::conv {

// Host emulation of the three implicit GEMMs (conv2d_common.cu): the kernels' own gather/scatter
// code, depth split and tile staging (every thread's share of every slice, checked to cover each
// element once) run as plain loops on the CPU, so tests can check the index math on machines
// without a GPU. dw is zeroed first. Slow: small shapes only.
// Whose tile shapes and staging to emulate: the SIMT engine's, or the tensor-core engine's at slice
// depth 32 or 16.
enum class HostTiles { Simt, TensorCore, TensorCoreShallow };
void host_emulate_forward(HostTiles tiles, const Conv2dShape& s, const float* x, const float* w, const float* bias,
                          float* y);
void host_emulate_backward_data(HostTiles tiles, const Conv2dShape& s, const float* dy, const float* w, float* dx);
void host_emulate_backward_weight(HostTiles tiles, const Conv2dShape& s, const float* x, const float* dy, float* dw);
// x / divisor through the gathers' FastDiv (fast_div.cuh), bit for bit the device arithmetic.
int host_fast_div(int divisor, int x);
// The direct depthwise kernels (C / groups == 1; conv2d_depthwise.cu), all three passes.
void host_emulate_depthwise(const Conv2dShape& s, const float* x, const float* w, const float* bias, const float* dy,
                            float* y, float* dx, float* dw);

}  // namespace ember::cuda::conv
