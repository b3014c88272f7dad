// Device-agnostic op forms from GPU-capable ops (see composed.h). Each formula sits beside the CPU
// definition it reproduces, quoted from engine/ops/unary.cpp and engine/ops/loss.cpp.
#include "engine/ops/composed.h"

namespace ember::composed {

Tensor unary_backward(Unary op, const Tensor& g, const Tensor& x, const Tensor& y) {
  switch (op) {
    case Unary::Exp: return g * y;                       // d exp(x) = exp(x)
    case Unary::Log: return g / x;                       // d log(x) = 1 / x
    case Unary::Sqrt: return g / (y * 2.0);              // d sqrt(x) = 1 / (2 sqrt(x))
    case Unary::Abs: return g * sign(x);                 // d |x| = sign(x), 0 at 0
    case Unary::Sigmoid: return g * (y - y * y);         // s (1 - s)
    case Unary::Tanh: return g - g * (y * y);            // 1 - t^2
  }
  EMBER_CHECK(false, "unary_backward: unknown op");
  return Tensor();
}

Tensor pow_backward(const Tensor& g, const Tensor& x, double e) {
  if (e == 0) return Tensor::zeros(g.shape(), g.dtype(), g.device());
  return g * pow(x, e - 1) * e;
}

Tensor reduce(const Tensor& per_element, Reduction reduction) {
  if (reduction == Reduction::Mean) return mean(per_element);
  if (reduction == Reduction::Sum) return sum(per_element);
  return per_element;
}

Tensor clamp(const Tensor& x, double lo, double hi) { return relu(x - lo) - relu(x - hi) + lo; }

Tensor leaky_relu(const Tensor& x, double slope) { return relu(x) - relu(-x) * slope; }

Tensor softmax(const Tensor& x, int64_t dim, bool log_output) {
  const Tensor z = x - max(x.detach(), dim, /*keepdim=*/true);
  const Tensor e = exp(z), total = sum(e, {dim}, /*keepdim=*/true);
  return log_output ? z - log(total) : e / total;
}

Tensor mse_loss(const Tensor& pred, const Tensor& target, Reduction reduction) {
  const Tensor d = pred - target;
  return reduce(d * d, reduction);
}

Tensor l1_loss(const Tensor& pred, const Tensor& target, Reduction reduction) {
  return reduce(abs(pred - target), reduction);
}

// 0.5 d^2 / beta where |d| < beta, |d| - 0.5 beta elsewhere. With m = min(|d|, beta) =
// |d| - relu(|d| - beta) both cases are 0.5 m^2 / beta + (|d| - m).
Tensor smooth_l1_loss(const Tensor& pred, const Tensor& target, double beta, Reduction reduction) {
  EMBER_CHECK(beta >= 0, "smooth_l1_loss: beta=", beta, " must be >= 0 (input ", pred.str(), ")");
  if (beta == 0) return composed::l1_loss(pred, target, reduction);
  const Tensor a = abs(pred - target);
  const Tensor m = a - relu(a - beta);
  return reduce(m * m * (0.5 / beta) + (a - m), reduction);
}

// l = (1 - t) x + lw * softplus(-x), lw = 1 + (pw - 1) t, softplus(-x) = log(1 + exp(-|x|)) + relu(-x).
Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& target, const Tensor& pos_weight,
                                        Reduction reduction) {
  const Tensor softplus_neg = log(exp(-abs(logits)) + 1.0) + relu(-logits);
  const Tensor weighted = pos_weight.defined() ? ((pos_weight - 1.0) * target + 1.0) * softplus_neg : softplus_neg;
  return reduce(logits - target * logits + weighted, reduction);
}

}  // namespace ember::composed
