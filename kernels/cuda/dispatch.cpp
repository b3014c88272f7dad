// Run-time choice between ember's CUDA kernels and the cuDNN baselines, through the same
// registry as the CPU kernels (kernels/registry.h): ops "conv", "depthwise", "pool" and "bn", selected
// with EMBER_CONV=ember_tc|ember_simt|cudnn, EMBER_DEPTHWISE=direct|gemm, EMBER_CONV_TC_DEPTH=k32|k16,
// EMBER_POOL=ember|cudnn, EMBER_BN=ember|cudnn, EMBER_BN_SLICE=u4096|u1024|u16384, or
// kernels::set_variant(op, name). The tables register on first use (see cuda_variant_ops()).
// Conv math precision comes from EMBER_CONV_PRECISION=fp32|tf32|bf16 (default fp32), that of the dense
// layers' cuBLAS GEMMs from EMBER_GEMM_PRECISION (same values and default).
#include <cstdlib>
#include <mutex>
#include <stdexcept>

#include "kernels/cuda/conv2d_dispatch.h"
#include "kernels/cuda/variants.h"
#include "kernels/registry.h"

namespace ember::cuda {
namespace {

bool device_ready() { return cuda_available(); }
bool cudnn_ready() { return cudnn_available(); }

enum class Impl { Ember, Cudnn };

kernels::VariantTable<ConvAlgo>& conv_table() {
  static kernels::VariantTable<ConvAlgo> table("conv", {{"ember_tc", ConvAlgo::EmberTensorCore, device_ready},
                                                        {"ember_simt", ConvAlgo::EmberSimt, device_ready},
                                                        {"cudnn", ConvAlgo::Cudnn, cudnn_ready}});
  return table;
}
// Convs with one input channel per group (depthwise) under ember's engines: the direct kernels
// (conv2d_depthwise.cu, FP32 whatever the precision; the default, as a depthwise GEMM is 1 x R*S per
// output and memory-bound) or the engine's own implicit GEMM (ember_tc: TF32/BF16 tensor cores).
enum class Depthwise { Direct, Gemm };
kernels::VariantTable<Depthwise>& depthwise_table() {
  static kernels::VariantTable<Depthwise> table("depthwise", {{"direct", Depthwise::Direct, device_ready},
                                                              {"gemm", Depthwise::Gemm, device_ready}});
  return table;
}
// The tensor-core engine's depth slice (conv2d_tiles.cuh): 32 or 16.
kernels::VariantTable<int>& tc_depth_table() {
  static kernels::VariantTable<int> table("conv_tc_depth", {{"k32", 32, device_ready}, {"k16", 16, device_ready}});
  return table;
}
// Batch norm's statistics slice (batchnorm.cu), in units per block; no device needed to choose it,
// so the host emulation can run every size.
kernels::VariantTable<int>& bn_slice_table() {
  static kernels::VariantTable<int> table("bn_slice", {{"u4096", 4096, nullptr}, {"u1024", 1024, nullptr},
                                                       {"u16384", 16384, nullptr}});
  return table;
}
kernels::VariantTable<Impl>& pool_table() {
  static kernels::VariantTable<Impl> table("pool", {{"ember", Impl::Ember, device_ready}, {"cudnn", Impl::Cudnn, cudnn_ready}});
  return table;
}
kernels::VariantTable<Impl>& bn_table() {
  static kernels::VariantTable<Impl> table("bn", {{"ember", Impl::Ember, device_ready}, {"cudnn", Impl::Cudnn, cudnn_ready}});
  return table;
}

std::mutex precision_mutex;
std::string forced_precision;  // set_conv_precision

Precision parse_precision(const std::string& name, const char* source) {
  if (name == "fp32") return Precision::FP32;
  if (name == "tf32") return Precision::TF32;
  if (name == "bf16") return Precision::BF16;
  throw std::invalid_argument(std::string("ember CUDA: ") + source + " = '" + name +
                              "' is not a conv precision (fp32, tf32, bf16)");
}

}  // namespace

std::vector<std::string> cuda_variant_ops() {
  conv_table();
  depthwise_table();
  tc_depth_table();
  pool_table();
  bn_table();
  bn_slice_table();
  return {"conv", "depthwise", "conv_tc_depth", "pool", "bn", "bn_slice"};
}

int ember_bn::units_per_slice() { return bn_slice_table().get(); }

bool conv::depthwise_direct() { return depthwise_table().get() == Depthwise::Direct; }
int conv::tc_slice_depth() { return tc_depth_table().get(); }

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::TF32: return "tf32";
    case Precision::BF16: return "bf16";
    default: return "fp32";
  }
}
const char* conv_algo_name(ConvAlgo a) {
  switch (a) {
    case ConvAlgo::EmberTensorCore: return "ember_tc";
    case ConvAlgo::Cudnn: return "cudnn";
    default: return "ember_simt";
  }
}
bool cudnn_available() { return cudnn_ref::compiled_in() && cuda_available(); }

ConvAlgo active_conv_algo() { return conv_table().get(); }
Precision active_conv_precision() {
  {
    std::lock_guard<std::mutex> lock(precision_mutex);
    if (!forced_precision.empty()) return parse_precision(forced_precision, "set_conv_precision");
  }
  const char* env = std::getenv("EMBER_CONV_PRECISION");
  return env && *env ? parse_precision(env, "EMBER_CONV_PRECISION") : Precision::FP32;
}
Precision active_gemm_precision() {
  const char* env = std::getenv("EMBER_GEMM_PRECISION");
  return env && *env ? parse_precision(env, "EMBER_GEMM_PRECISION") : Precision::FP32;
}
void set_conv_precision(const std::string& name) {
  if (!name.empty()) parse_precision(name, "set_conv_precision");  // validate now, not at the next conv
  std::lock_guard<std::mutex> lock(precision_mutex);
  forced_precision = name;
}

// ---- conv ----
void conv2d_forward(ConvAlgo algo, Precision prec, const Conv2dShape& s, const float* x, const float* w,
                    const float* bias, float* y) {
  switch (algo) {
    case ConvAlgo::EmberSimt: return conv::simt_forward(s, x, w, bias, y);
    case ConvAlgo::EmberTensorCore: return conv::tc_forward(prec, s, x, w, bias, y);
    case ConvAlgo::Cudnn: return cudnn_ref::conv2d_forward(prec, s, x, w, bias, y);
  }
}
void conv2d_backward_data(ConvAlgo algo, Precision prec, const Conv2dShape& s, const float* dy, const float* w,
                          float* dx) {
  switch (algo) {
    case ConvAlgo::EmberSimt: return conv::simt_backward_data(s, dy, w, dx);
    case ConvAlgo::EmberTensorCore: return conv::tc_backward_data(prec, s, dy, w, dx);
    case ConvAlgo::Cudnn: return cudnn_ref::conv2d_backward_data(prec, s, dy, w, dx);
  }
}
void conv2d_backward_weight(ConvAlgo algo, Precision prec, const Conv2dShape& s, const float* x, const float* dy,
                            float* dw, float* dbias) {
  switch (algo) {
    case ConvAlgo::EmberSimt: return conv::simt_backward_weight(s, x, dy, dw, dbias);
    case ConvAlgo::EmberTensorCore: return conv::tc_backward_weight(prec, s, x, dy, dw, dbias);
    case ConvAlgo::Cudnn: return cudnn_ref::conv2d_backward_weight(prec, s, x, dy, dw, dbias);
  }
}
void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* bias, float* y) {
  conv2d_forward(active_conv_algo(), active_conv_precision(), s, x, w, bias, y);
}
void conv2d_backward_data(const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  conv2d_backward_data(active_conv_algo(), active_conv_precision(), s, dy, w, dx);
}
void conv2d_backward_weight(const Conv2dShape& s, const float* x, const float* dy, float* dw, float* dbias) {
  conv2d_backward_weight(active_conv_algo(), active_conv_precision(), s, x, dy, dw, dbias);
}

// ---- pooling ----
void max_pool2d_forward(const Pool2dShape& s, const float* x, float* y, int64_t* indices) {
  if (pool_table().get() == Impl::Ember) return ember_pool::max_pool2d_forward(s, x, y, indices);
  cudnn_ref::max_pool2d_forward(s, x, y);
  if (indices) ember_pool::max_pool2d_forward(s, x, nullptr, indices);  // cuDNN has no argmax output
}
void max_pool2d_backward(const Pool2dShape& s, const float* x, const float* y, const float* dy, const int64_t* indices,
                         float* dx) {
  if (pool_table().get() == Impl::Ember || !x || !y) return ember_pool::max_pool2d_backward(s, dy, indices, dx);
  cudnn_ref::max_pool2d_backward(s, x, y, dy, dx);
}
void avg_pool2d_forward(const Pool2dShape& s, const float* x, float* y) {
  if (pool_table().get() == Impl::Ember) return ember_pool::avg_pool2d_forward(s, x, y);
  cudnn_ref::avg_pool2d_forward(s, x, y);
}
void avg_pool2d_backward(const Pool2dShape& s, const float* dy, float* dx) {
  // cuDNN's average-pool backward never reads x or y, but wants descriptors for them; passing dy/dx
  // as stand-ins keeps ember's API free of tensors the math does not need.
  if (pool_table().get() == Impl::Ember) return ember_pool::avg_pool2d_backward(s, dy, dx);
  cudnn_ref::avg_pool2d_backward(s, dx, dy, dy, dx);
}

// ---- batch norm ----
void batchnorm_forward_train(const BatchNormArgs& a, const float* x, const float* gamma, const float* beta, float* y,
                             float* save_mean, float* save_invstd, float* running_mean, float* running_var) {
  if (bn_table().get() == Impl::Ember)
    return ember_bn::forward_train(a, x, gamma, beta, y, save_mean, save_invstd, running_mean, running_var);
  cudnn_ref::batchnorm_forward_train(a, x, gamma, beta, y, save_mean, save_invstd, running_mean, running_var);
}
void batchnorm_forward_eval(const BatchNormArgs& a, const float* x, const float* gamma, const float* beta,
                            const float* running_mean, const float* running_var, float* y) {
  if (bn_table().get() == Impl::Ember)
    return ember_bn::forward_eval(a, x, gamma, beta, running_mean, running_var, y);
  cudnn_ref::batchnorm_forward_eval(a, x, gamma, beta, running_mean, running_var, y);
}
void batchnorm_backward(const BatchNormArgs& a, const float* x, const float* y, const float* dy, const float* gamma,
                        const float* save_mean, const float* save_invstd, float* dx, float* dgamma, float* dbeta) {
  if (bn_table().get() == Impl::Ember)
    return ember_bn::backward(a, x, y, dy, gamma, save_mean, save_invstd, dx, dgamma, dbeta);
  cudnn_ref::batchnorm_backward(a, x, y, dy, gamma, save_mean, save_invstd, dx, dgamma, dbeta);
}

}  // namespace ember::cuda
