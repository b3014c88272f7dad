// Losses: cross_entropy, binary_cross_entropy_with_logits, mse, l1, smooth_l1. Forward and backward
// side by side. Each loss is computed per element (or per sample) in one pass that also produces
// the local derivatives when a gradient will be needed; the backward scales them by the incoming
// gradient (a scalar for Mean/Sum, per element for None).
#include <algorithm>
#include <array>
#include <cmath>

#include "engine/ops.h"
#include "engine/ops/composed.h"
#include "engine/ops/cuda_ops.h"
#include "engine/strided.h"

namespace ember {
namespace {

bool any_requires_grad(const std::vector<Tensor>& ts) {
  if (!grad_enabled()) return false;
  for (const auto& t : ts)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

// The incoming gradient for element i: per element for None, else one scalar times `scale`.
template <class T>
struct GradIn {
  const T* per = nullptr;
  T uniform = 0;
  T at(int64_t i) const { return per ? per[i] : uniform; }
};
template <class T>
GradIn<T> grad_in(const Tensor& g, Reduction r, double scale) {
  GradIn<T> gi;
  if (r == Reduction::None) gi.per = g.data<T>();
  else gi.uniform = T(g.item() * scale);
  return gi;
}

// Per-element loss l = f(a, b, c) with derivatives (dl/da, dl/db, dl/dc). Operands are contiguous
// and of the same shape (c is an expanded optional operand, e.g. pos_weight); `record_inputs` are
// the user's tensors, and input 2's gradient is reduced back to its own shape.
template <class F>
Tensor elementwise_loss(const char* op, const std::vector<Tensor>& record_inputs, const Tensor& a, const Tensor& b,
                        const Tensor& c, Reduction red, F f) {
  const int64_t n = a.numel();
  const bool want_grad = any_requires_grad(record_inputs);
  const int nops = c.defined() ? 3 : 2;
  Tensor loss = Tensor::empty(a.shape(), a.dtype());
  std::array<Tensor, 3> deriv;
  if (want_grad)
    for (int k = 0; k < nops; ++k) deriv[k] = Tensor::empty(a.shape(), a.dtype());
  double total = 0;
  dispatch_float(a.dtype(), op, [&]<class T>() {
    const T *pa = a.data<T>(), *pb = b.data<T>(), *pc = c.defined() ? c.data<T>() : nullptr;
    T* pl = loss.data<T>();
    std::array<T*, 3> pd{};
    for (int k = 0; k < nops && want_grad; ++k) pd[k] = deriv[k].data<T>();
#pragma omp parallel for reduction(+ : total) schedule(static) if (n > 32768)
    for (int64_t i = 0; i < n; ++i) {
      const std::array<T, 4> r = f(pa[i], pb[i], pc ? pc[i] : T(0));
      pl[i] = r[0];
      total += double(r[0]);
      if (pd[0])
        for (int k = 0; k < nops; ++k) pd[k][i] = r[k + 1];
    }
  });
  Tensor out = red == Reduction::None ? loss
                                      : Tensor::scalar(red == Reduction::Mean ? total / double(n) : total, a.dtype());
  if (!want_grad) return out;
  const double scale = red == Reduction::Mean ? 1.0 / double(n) : 1.0;
  Shape c_shape = record_inputs.size() > 2 && record_inputs[2].defined() ? record_inputs[2].shape() : Shape{};
  const size_t n_inputs = record_inputs.size();
  return record(op, out, record_inputs, [deriv, red, scale, nops, n, op, c_shape, n_inputs](const Tensor& g_in) {
    Tensor g = g_in.contiguous();
    std::vector<Tensor> grads(n_inputs);  // an undefined optional input gets an undefined gradient
    for (int k = 0; k < nops; ++k) {
      grads[k] = Tensor::empty(deriv[k].shape(), deriv[k].dtype());
      dispatch_float(g.dtype(), op, [&]<class T>() {
        const GradIn<T> gi = grad_in<T>(g, red, scale);
        const T* d = deriv[k].data<T>();
        T* o = grads[k].data<T>();
        for (int64_t i = 0; i < n; ++i) o[i] = gi.at(i) * d[i];
      });
    }
    if (nops == 3) grads[2] = sum_to_shape(grads[2], c_shape);
    return grads;
  });
}

// pred/target checks shared by the regression losses and BCE; true when they are on the GPU (then
// the op runs its composed.h form; the fused loops below are CPU code).
bool check_pair(const char* op, const Tensor& pred, const Tensor& target) {
  check_defined(op, pred, "input");
  check_defined(op, target, "target");
  check_same_device(op, pred, target);
  check_floating(op, pred);
  check_same_dtype(op, pred, target);
  EMBER_CHECK(pred.shape() == target.shape(), op, ": input ", pred.str(), " and target ", target.str(),
              " must have the same shape");
  if (cuda_ops::on_cuda(pred)) return true;
  check_cpu(op, pred);
  return false;
}

template <class F>
Tensor regression_loss(const char* op, const Tensor& pred, const Tensor& target, Reduction red, F f) {
  Tensor p = pred.detach().contiguous(), t = target.detach().contiguous();
  return elementwise_loss(op, {pred, target}, p, t, Tensor(), red, [f](auto x, auto y, auto) {
    using T = decltype(x);
    const auto [value, slope] = f(x - y);  // loss of the difference d = pred - target, and dl/dd
    return std::array<T, 4>{T(value), T(slope), T(-slope), T(0)};
  });
}

}  // namespace

// ---- regression losses ------------------------------------------------------------------------

Tensor mse_loss(const Tensor& pred, const Tensor& target, Reduction reduction) {
  if (check_pair("mse_loss", pred, target)) return composed::mse_loss(pred, target, reduction);
  return regression_loss("mse_loss", pred, target, reduction, [](auto d) { return std::array{d * d, 2 * d}; });
}

Tensor l1_loss(const Tensor& pred, const Tensor& target, Reduction reduction) {
  if (check_pair("l1_loss", pred, target)) return composed::l1_loss(pred, target, reduction);
  return regression_loss("l1_loss", pred, target, reduction, [](auto d) {
    using T = decltype(d);
    return std::array{std::abs(d), T(d > 0 ? 1 : d < 0 ? -1 : 0)};
  });
}

// 0.5 d^2 / beta where |d| < beta, |d| - 0.5 beta elsewhere (beta = 0 is the L1 loss).
Tensor smooth_l1_loss(const Tensor& pred, const Tensor& target, double beta, Reduction reduction) {
  EMBER_CHECK(beta >= 0, "smooth_l1_loss: beta=", beta, " must be >= 0 (input ", pred.str(), ")");
  if (check_pair("smooth_l1_loss", pred, target)) return composed::smooth_l1_loss(pred, target, beta, reduction);
  return regression_loss("smooth_l1_loss", pred, target, reduction, [beta](auto d) {
    using T = decltype(d);
    const T b = T(beta), ad = std::abs(d);
    if (ad < b) return std::array{T(0.5) * d * d / b, d / b};
    return std::array{ad - T(0.5) * b, T(d > 0 ? 1 : d < 0 ? -1 : 0)};
  });
}

// ---- binary cross entropy with logits --------------------------------------------------------
// l = (1 - t) x + lw * softplus(-x), lw = 1 + (pw - 1) t, softplus(-x) = log1p(exp(-|x|)) + max(-x, 0)
// dl/dx = (1 - t) - lw * sigmoid(-x); dl/dt = -x + (pw - 1) softplus(-x); dl/dpw = t softplus(-x).
Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& target, const Tensor& pos_weight,
                                        Reduction reduction) {
  const char* op = "binary_cross_entropy_with_logits";
  const bool gpu = check_pair(op, logits, target);
  Tensor pw;
  if (pos_weight.defined()) {
    check_same_dtype(op, logits, pos_weight);
    check_same_device(op, logits, pos_weight);
    EMBER_CHECK(broadcast_shapes(logits.shape(), pos_weight.shape(), op) == logits.shape(), op, ": pos_weight ",
                pos_weight.str(), " does not broadcast to input ", logits.str());
    if (!gpu) pw = pos_weight.detach().expand(logits.shape()).contiguous();
  }
  if (gpu) return composed::binary_cross_entropy_with_logits(logits, target, pos_weight, reduction);
  Tensor x = logits.detach().contiguous(), t = target.detach().contiguous();
  return elementwise_loss(op, {logits, target, pos_weight}, x, t, pw, reduction, [has_pw = pw.defined()](auto xv,
                                                                                                        auto tv,
                                                                                                        auto pv) {
    using T = decltype(xv);
    const T one = T(1), w = has_pw ? pv : one;
    const T softplus_neg = std::log1p(std::exp(-std::abs(xv))) + std::max(-xv, T(0));
    const T sigmoid_neg = xv >= 0 ? std::exp(-xv) / (one + std::exp(-xv)) : one / (one + std::exp(xv));
    const T lw = one + (w - one) * tv;
    return std::array<T, 4>{(one - tv) * xv + lw * softplus_neg, (one - tv) - lw * sigmoid_neg,
                            -xv + (w - one) * softplus_neg, tv * softplus_neg};
  });
}

// ---- cross entropy --------------------------------------------------------------------------
// Per sample n with target t (w = class weights, 1 if none, eps = label_smoothing, p = softmax):
//   loss_n = (1 - eps) * (-w_t log p_t) + (eps / C) * (-sum_c w_c log p_c)
//   dloss_n/dz_c = (1 - eps) w_t (p_c - [c == t]) + (eps / C) (p_c sum_k w_k - w_c)
// Mean divides by the summed weights w_t of the non-ignored samples (PyTorch's weighted mean).
Tensor cross_entropy(const Tensor& logits, const Tensor& target, const CrossEntropyOptions& opt) {
  const char* op = "cross_entropy";
  check_defined(op, logits, "logits");
  check_defined(op, target, "target");
  check_floating(op, logits);
  EMBER_CHECK(logits.dim() == 2, op, ": logits must be [N, C], got ", logits.str());
  EMBER_CHECK(target.dtype() == DType::Int64, op, ": target must hold int64 class indices, got ", target.str());
  EMBER_CHECK(target.dim() == 1 && target.shape()[0] == logits.shape()[0], op, ": target ", target.str(),
              " must be [N] for logits ", logits.str());
  // On the GPU the targets are not range-checked on the host (that would copy them back every step).
  if (cuda_ops::on_cuda(logits)) return cuda_ops::cross_entropy(logits, target, opt);
  check_cpu(op, logits);
  check_cpu(op, target);
  EMBER_CHECK(opt.label_smoothing >= 0 && opt.label_smoothing <= 1, op, ": label_smoothing=", opt.label_smoothing,
              " must be in [0, 1]");
  const int64_t N = logits.shape()[0], C = logits.shape()[1];
  Tensor cw;
  if (opt.class_weight.defined()) {
    check_same_dtype(op, logits, opt.class_weight);
    EMBER_CHECK(opt.class_weight.dim() == 1 && opt.class_weight.shape()[0] == C, op, ": class_weight ",
                opt.class_weight.str(), " must be [C] = [", C, "] for logits ", logits.str());
    cw = opt.class_weight.detach().contiguous();
  }
  std::vector<int64_t> tgt = target.to_vector<int64_t>();
  for (int64_t n = 0; n < N; ++n)
    EMBER_CHECK(tgt[n] == opt.ignore_index || (tgt[n] >= 0 && tgt[n] < C), op, ": target[", n, "] = ", tgt[n],
                " is outside [0, ", C, ")", opt.ignore_index != -100 ? " and is not ignore_index" : "");

  Tensor z = logits.detach().contiguous();
  Tensor logp = Tensor::empty({N, C}, z.dtype());
  Tensor per_sample = Tensor::empty({N}, z.dtype());
  const double eps = opt.label_smoothing;
  double total = 0, weight_total = 0, class_weight_sum = double(C);
  dispatch_float(z.dtype(), op, [&]<class T>() {
    const T* zp = z.data<T>();
    const T* wp = cw.defined() ? cw.data<T>() : nullptr;
    T* lp = logp.data<T>();
    T* out = per_sample.data<T>();
    if (wp) {
      class_weight_sum = 0;
      for (int64_t c = 0; c < C; ++c) class_weight_sum += double(wp[c]);
    }
    for (int64_t n = 0; n < N; ++n) {
      const T* row = zp + n * C;
      T* lrow = lp + n * C;
      const T mx = *std::max_element(row, row + C);
      double s = 0;
      for (int64_t c = 0; c < C; ++c) s += std::exp(double(row[c] - mx));
      const T log_sum = T(std::log(s));
      for (int64_t c = 0; c < C; ++c) lrow[c] = row[c] - mx - log_sum;
      if (tgt[n] == opt.ignore_index) {
        out[n] = 0;
        continue;
      }
      const double wt = wp ? double(wp[tgt[n]]) : 1.0;
      double smooth = 0;
      for (int64_t c = 0; c < C; ++c) smooth -= (wp ? double(wp[c]) : 1.0) * double(lrow[c]);
      const double l = (1 - eps) * (-wt * double(lrow[tgt[n]])) + eps / double(C) * smooth;
      out[n] = T(l);
      total += l;
      weight_total += wt;
    }
  });
  Tensor result = opt.reduction == Reduction::None ? per_sample
                  : opt.reduction == Reduction::Sum ? Tensor::scalar(total, z.dtype())
                                                    : Tensor::scalar(total / weight_total, z.dtype());
  const double scale = opt.reduction == Reduction::Mean ? 1.0 / weight_total : 1.0;
  return record(op, result, {logits}, [=, red = opt.reduction, ignore = opt.ignore_index](const Tensor& g_in) {
    Tensor g = g_in.contiguous();
    Tensor gz = Tensor::empty({N, C}, logp.dtype());
    dispatch_float(logp.dtype(), "cross_entropy_backward", [&]<class T>() {
      const GradIn<T> gi = grad_in<T>(g, red, scale);
      const T* lp = logp.data<T>();
      const T* wp = cw.defined() ? cw.data<T>() : nullptr;
      T* o = gz.data<T>();
      for (int64_t n = 0; n < N; ++n) {
        T* orow = o + n * C;
        if (tgt[n] == ignore) {
          std::fill(orow, orow + C, T(0));
          continue;
        }
        const double s = double(gi.at(n)), wt = wp ? double(wp[tgt[n]]) : 1.0;
        for (int64_t c = 0; c < C; ++c) {
          const double p = std::exp(double(lp[n * C + c])), wc = wp ? double(wp[c]) : 1.0;
          const double d = (1 - eps) * wt * (p - (c == tgt[n] ? 1.0 : 0.0)) + eps / double(C) * (p * class_weight_sum - wc);
          orow[c] = T(s * d);
        }
      }
    });
    return std::vector<Tensor>{gz};
  });
}

}  // namespace ember
