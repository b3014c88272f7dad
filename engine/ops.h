// Every differentiable op of ember. Each is defined once, in engine/ops/<family>.cpp, with its
// forward and its backward side by side; kernels come from kernels/ (reference + fast variants).
// All ops accept float32 and float64 (float64 exists for the gradient checker) unless noted.
#pragma once
#include <optional>
#include <vector>

#include "engine/autograd.h"
#include "engine/tensor.h"

namespace ember {

class Generator;

// ---- elementwise, broadcasting (engine/ops/elementwise.cpp) -------------------------------
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
// Reduces a broadcast gradient back to `shape` (the backward of broadcasting).
Tensor sum_to_shape(const Tensor& g, const Shape& shape);

// ---- unary and activations (engine/ops/unary.cpp) -----------------------------------------
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor pow(const Tensor& x, double exponent);
Tensor sqrt(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor sign(const Tensor& x);  // -1, 0 or 1 (0 for NaN); not differentiable: the result needs no grad
Tensor clamp(const Tensor& x, double lo, double hi);
Tensor relu(const Tensor& x);
Tensor relu6(const Tensor& x);
Tensor leaky_relu(const Tensor& x, double negative_slope = 0.01);
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);

// ---- reductions (engine/ops/reduce.cpp) ---------------------------------------------------
Tensor sum(const Tensor& x);  // all elements -> scalar
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
Tensor max(const Tensor& x, int64_t dim, bool keepdim = false);  // values; gradient to the argmax
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);  // int64, not differentiable

// ---- linear algebra (engine/ops/matmul.cpp) -----------------------------------------------
// [M,K]x[K,N], or batched [B,M,K]x[B,K,N] (a 2-D operand broadcasts over the batch).
Tensor matmul(const Tensor& a, const Tensor& b);
// y = x w^T + b, x [N, in], w [out, in], b [out] (optional), like torch.nn.functional.linear.
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b = Tensor());

// ---- convolution (engine/ops/conv2d.cpp) --------------------------------------------------
struct Conv2dOptions {
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dil_h = 1, dil_w = 1, groups = 1;
  static Conv2dOptions make(int64_t stride, int64_t padding, int64_t dilation = 1, int64_t groups = 1) {
    return {stride, stride, padding, padding, dilation, dilation, groups};
  }
};
// x [N,C,H,W], w [K,C/groups,R,S], b [K] optional -> [N,K,P,Q].
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dOptions& opt);
// Zero padding with separate sides (TensorFlow 'SAME' padding is asymmetric for even inputs).
Tensor pad2d(const Tensor& x, int64_t top, int64_t bottom, int64_t left, int64_t right);

// ---- pooling (engine/ops/pool.cpp) --------------------------------------------------------
struct Pool2dOptions {
  int64_t kernel_h = 2, kernel_w = 2, stride_h = 2, stride_w = 2, pad_h = 0, pad_w = 0;
  bool count_include_pad = true;  // avg pool: PyTorch's default
  static Pool2dOptions make(int64_t kernel, int64_t stride = -1, int64_t padding = 0) {
    int64_t s = stride < 0 ? kernel : stride;
    return {kernel, kernel, s, s, padding, padding, true};
  }
};
Tensor max_pool2d(const Tensor& x, const Pool2dOptions& opt);  // saves argmax indices for backward
Tensor avg_pool2d(const Tensor& x, const Pool2dOptions& opt);
Tensor adaptive_avg_pool2d(const Tensor& x, int64_t out_h, int64_t out_w);  // PyTorch's bin rule
Tensor global_avg_pool2d(const Tensor& x);                                  // [N,C,H,W] -> [N,C]

// ---- normalisation and regularisation (engine/ops/batchnorm.cpp, dropout.cpp) --------------
// x [N,C] or [N,C,H,W]. Training: batch statistics, running stats updated in place with
// `momentum` (unbiased variance, like PyTorch). Eval: running stats. fuse_relu applies ReLU in
// the same pass (and its mask in the backward). weight/bias optional (affine=false).
Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor running_mean, Tensor running_var,
                  bool training, double momentum = 0.1, double eps = 1e-5, bool fuse_relu = false);
// Inverted dropout: zeroes with probability p, scales kept values by 1/(1-p). Identity when !training.
Tensor dropout(const Tensor& x, double p, bool training, Generator& gen);

// ---- shape ops (engine/ops/shape_ops.cpp) --------------------------------------------------
Tensor concat(const std::vector<Tensor>& xs, int64_t dim);

// ---- softmax and losses (engine/ops/softmax.cpp, loss.cpp) ---------------------------------
Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);
enum class Reduction { Mean, Sum, None };
struct CrossEntropyOptions {
  Tensor class_weight;         // [C] optional
  int64_t ignore_index = -100;
  Reduction reduction = Reduction::Mean;
  double label_smoothing = 0.0;
};
// logits [N,C], target int64 [N] in [0, C) (or ignore_index). Mean is weighted like PyTorch.
Tensor cross_entropy(const Tensor& logits, const Tensor& target, const CrossEntropyOptions& opt = {});
// Numerically stable; target same shape as logits, values in [0, 1]. pos_weight [C] optional.
Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& target, const Tensor& pos_weight = Tensor(),
                                        Reduction reduction = Reduction::Mean);
Tensor mse_loss(const Tensor& pred, const Tensor& target, Reduction reduction = Reduction::Mean);
Tensor l1_loss(const Tensor& pred, const Tensor& target, Reduction reduction = Reduction::Mean);
Tensor smooth_l1_loss(const Tensor& pred, const Tensor& target, double beta = 1.0, Reduction reduction = Reduction::Mean);

}  // namespace ember
