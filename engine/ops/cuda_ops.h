// The CUDA side of the differentiable ops: what conv2d, relu, max_pool2d, avg_pool2d, linear, matmul,
// dropout, cross_entropy, batch_norm, add_, the elementwise arithmetic and math (exp, log, sqrt, abs,
// sign, sigmoid, tanh, pow), dtype conversion, sum/mean/max/argmax, adaptive pooling and the SGD/AdamW
// steps do when their tensors live on the GPU. Each op file checks `on_cuda(x)` first and hands the call here; forward and backward sit side
// by side in engine/ops/cuda_ops.cpp (elementwise and reductions in cuda_elementwise.cpp, whose autograd
// the op files record), on the kernels of kernels/cuda/cuda_api.h (ember's own conv, pooling and
// batchnorm kernels, or cuDNN, as EMBER_CONV / EMBER_POOL / EMBER_BN choose; cuBLAS for linear and
// matmul). softmax, log_softmax, the regression losses and BCE have no kernel of their own: on the GPU
// they run engine/ops/composed.h, made of the ops above; pad2d and concat are written for either device
// (zeros or an empty tensor, then Tensor::copy_ into slices, a strided copy on the GPU). float32 only.
// In a build without CUDA no tensor can be on the GPU, and these throw if reached.
//
// Status: compiles; NOT YET RUN on a GPU (no device was lent while it was written). The checks that
// validate it are tests/cuda/test_cuda_training.cpp, test_cuda_optim.cpp and
// test_cuda_elementwise_ops.cpp, which skip without a device; tests/test_composed_ops.cpp checks the
// composed formulas on the CPU.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "engine/ops.h"
#include "engine/rng.h"
#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/pool.h"

namespace ember::cuda_ops {

inline bool on_cuda(const Tensor& t) { return t.defined() && t.device() == Device::CUDA; }
namespace detail {
// What every GPU path does in a build without CUDA (where no tensor can be on the GPU): throws.
[[noreturn]] void unreachable(const char* op);
}  // namespace detail

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const cpu::Conv2dShape& s);
Tensor relu(const Tensor& x);
Tensor max_pool2d(const Tensor& x, const cpu::Pool2dShape& s);
Tensor avg_pool2d(const Tensor& x, const cpu::Pool2dShape& s);
// Any output size (PyTorch's bins); output == input size returns the input (VGG's 7x7 pool at 224 px),
// 1x1 is a plane mean (global_avg_pool).
Tensor adaptive_avg_pool2d(const Tensor& x, int64_t out_h, int64_t out_w);
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b);
// c = op(a) op(b) + beta c through cuBLAS at EMBER_GEMM_PRECISION, row-major like kernels/cpu/gemm.h:
// a and b are views whose first element starts the matrix (op = transpose where trans_*), c is
// contiguous [M, ldc]. No autograd: matmul (engine/ops/matmul.cpp) records its own.
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const Tensor& a, int64_t lda, const Tensor& b,
          int64_t ldb, double beta, Tensor& c, int64_t ldc);
Tensor dropout(const Tensor& x, double p, Generator& gen);
Tensor cross_entropy(const Tensor& logits, const Tensor& target, const CrossEntropyOptions& opt);
Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor running_mean, Tensor running_var,
                  bool training, double momentum, double eps, bool fuse_relu);
void add_(Tensor& dst, const Tensor& src, double alpha);  // dst += alpha * src, same shape
// Elementwise and reductions (engine/ops/cuda_elementwise.cpp). These record no autograd: the op
// files do, with backward formulas made of the same ops. Outputs are contiguous.
enum class Binary { Add, Sub, Mul, Div };
Tensor binary(Binary op, const Tensor& a, const Tensor& b, const char* name);  // NumPy broadcasting
Tensor broadcast_to(const Tensor& x, const Shape& shape);  // x expanded to shape, materialised
Tensor dense(const Tensor& x);                             // x, or a contiguous copy of it
Tensor convert(const Tensor& x, DType dtype);              // a contiguous copy in dtype, the CPU's rounding
Tensor neg(const Tensor& x);
enum class UnaryFn { Exp, Log, Sqrt, Abs, Sigmoid, Tanh, Sign };
Tensor unary(UnaryFn fn, const Tensor& x, const char* name);  // y = fn(x), contiguous
Tensor pow(const Tensor& x, double exponent);                  // y = x^exponent, contiguous
// Sum over `dims` (wrapped, distinct); the result has out_shape (keepdim or not, as the op chose).
Tensor sum(const Tensor& x, std::vector<int64_t> dims, const Shape& out_shape);
Tensor argmax(const Tensor& x, int64_t dim, const Shape& out_shape);  // int64, first maximum
// The maxima along dim (out_shape) and their first indices (int64, [outer * inner] of x viewed as
// [outer, dim, inner]), which max_backward scatters the gradient g (out_shape) to.
std::pair<Tensor, Tensor> max_with_index(const Tensor& x, int64_t dim, const Shape& out_shape);
Tensor max_backward(const Tensor& g, const Tensor& index, const Shape& in_shape, int64_t dim);

// Fused optimizer steps: ONE kernel launch updates every listed CUDA parameter (the lists are
// parallel: params[i] with grads[i] and its state buffers, all float32, contiguous, on the GPU).
// SGD as torch.optim.SGD (momentum buffers unused when momentum is 0; first_step: each buffer starts
// as its first gradient); AdamW as torch.optim.AdamW, `step` the 1-based step count after this update.
struct SgdHyper {
  double lr, momentum, dampening, weight_decay;
  bool nesterov;
};
void sgd_step(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
              const std::vector<Tensor>& momentum_buffers, bool first_step, const SgdHyper& h);
struct AdamWHyper {
  double lr, beta1, beta2, eps, weight_decay;
  int64_t step;
};
void adamw_step(const std::vector<Tensor>& params, const std::vector<Tensor>& grads, const std::vector<Tensor>& exp_avg,
                const std::vector<Tensor>& exp_avg_sq, const AdamWHyper& h);

}  // namespace ember::cuda_ops
