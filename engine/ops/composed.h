// Device-agnostic forms of ops that have no GPU kernel of their own, built only from ops that do
// (add/sub/mul/div with scalars and broadcasting, neg, relu, exp, log, sqrt, abs, sign, sum, mean).
// Their autograd is the autograd of those ops, so there is no second backward to get wrong.
//
// Who uses them: the op files, when an operand lives on the GPU (the CPU keeps its fused one-pass
// loops). Who checks them: tests/test_composed_ops.cpp, on CPU tensors, against the fused CPU ops,
// values and gradients; the GPU tests then only have to show that the GPU runs the same formulas.
#pragma once
#include "engine/ops.h"

namespace ember::composed {

// The gradient of y = op(x) for incoming gradient g, for op in {exp, log, sqrt, abs, sigmoid, tanh}
// (y is op(x), passed so exp, sqrt, sigmoid and tanh need not recompute it).
enum class Unary { Exp, Log, Sqrt, Abs, Sigmoid, Tanh };
Tensor unary_backward(Unary op, const Tensor& g, const Tensor& x, const Tensor& y);
// The gradient of y = x^e: g * e * x^(e - 1), and 0 for e = 0 (also at x = 0, where 0 * 0^-1 is NaN).
Tensor pow_backward(const Tensor& g, const Tensor& x, double e);

Tensor reduce(const Tensor& per_element, Reduction reduction);  // None: as is; Mean; Sum

// clamp(x, lo, hi) = lo + relu(x - lo) - relu(x - hi) (relu6 is clamp(x, 0, 6)) and
// leaky_relu(x) = relu(x) - slope * relu(-x). Exactly at a kink (x == lo, x == 0) the gradient takes
// the other side's value than the CPU op does; everywhere else they agree.
Tensor clamp(const Tensor& x, double lo, double hi);
Tensor leaky_relu(const Tensor& x, double slope);

// softmax / log_softmax along dim, shifted by the (detached) row maximum: exp never overflows, and
// the shift, constant per row, changes neither the value nor the gradient.
Tensor softmax(const Tensor& x, int64_t dim, bool log_output);

// The regression losses and BCE-with-logits, with the CPU ops' definitions (engine/ops/loss.cpp).
Tensor mse_loss(const Tensor& pred, const Tensor& target, Reduction reduction);
Tensor l1_loss(const Tensor& pred, const Tensor& target, Reduction reduction);
Tensor smooth_l1_loss(const Tensor& pred, const Tensor& target, double beta, Reduction reduction);
// pos_weight: undefined, or broadcastable to logits. At logits exactly 0 the gradient is (1 - t)
// instead of (1 - t) - lw / 2 (abs' and relu' are 0 there); elsewhere it matches the CPU op.
Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& target, const Tensor& pos_weight,
                                        Reduction reduction);

}  // namespace ember::composed
