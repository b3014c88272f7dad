// Unary math and activations: each forward map followed by its derivative.
// Backwards that need the input save x.detach(); those cheaper from the output save y.detach().
#include <cmath>

#include "engine/ops/composed.h"
#include "engine/ops/cuda_ops.h"
#include "engine/ops/elementwise_impl.h"

namespace ember {
using detail::binary_map;
using detail::unary_map;

namespace {
// Records y = f(x) with dL/dx = g * df(x, y), df evaluated elementwise.
template <class DF>
Tensor record_unary(const char* op, const Tensor& x, Tensor y, DF df) {
  return record(op, y, {x}, [x = x.detach(), y = y.detach(), df, op](const Tensor& g) {
    return std::vector<Tensor>{binary_map(op, g, df(x, y), [](auto a, auto b) { return a * b; })};
  });
}
// On the GPU: the kernel's forward, and composed.h's backward (made of ops with GPU paths; the tests
// check those formulas on the CPU against the derivatives below).
Tensor on_gpu(cuda_ops::UnaryFn fn, composed::Unary grad, const char* op, const Tensor& x) {
  Tensor y = cuda_ops::unary(fn, x, op);
  return record(op, y, {x}, [grad, x = x.detach(), y = y.detach()](const Tensor& g) {
    return std::vector<Tensor>{composed::unary_backward(grad, g, x, y)};
  });
}
// Elementwise derivative tensor from a lambda on (x, y) values.
template <class F>
Tensor deriv(const Tensor& x, const Tensor& y, F f) {
  return binary_map("derivative", x, y, f);
}
}  // namespace

Tensor neg(const Tensor& x) {
  Tensor y = cuda_ops::on_cuda(x) ? cuda_ops::neg(x) : unary_map("neg", x, [](auto v) { return -v; });
  return record("neg", y, {x}, [](const Tensor& g) { return std::vector<Tensor>{neg(g)}; });
}

Tensor exp(const Tensor& x) {
  if (cuda_ops::on_cuda(x)) return on_gpu(cuda_ops::UnaryFn::Exp, composed::Unary::Exp, "exp", x);
  Tensor y = unary_map("exp", x, [](auto v) { return std::exp(v); });
  return record_unary("exp", x, y, [](const Tensor&, const Tensor& y) { return y; });
}

Tensor log(const Tensor& x) {
  if (cuda_ops::on_cuda(x)) return on_gpu(cuda_ops::UnaryFn::Log, composed::Unary::Log, "log", x);
  Tensor y = unary_map("log", x, [](auto v) { return std::log(v); });
  return record_unary("log", x, y, [](const Tensor& x, const Tensor& y) {
    return deriv(x, y, [](auto a, auto) { return decltype(a)(1) / a; });
  });
}

Tensor pow(const Tensor& x, double e) {
  if (cuda_ops::on_cuda(x)) {
    Tensor y = cuda_ops::pow(x, e);
    return record("pow", y, {x}, [e, x = x.detach()](const Tensor& g) {
      return std::vector<Tensor>{composed::pow_backward(g, x, e)};
    });
  }
  Tensor y = unary_map("pow", x, [e](auto v) { return decltype(v)(std::pow(v, decltype(v)(e))); });
  return record_unary("pow", x, y, [e](const Tensor& x, const Tensor& y) {
    // x^0 is constant: its derivative is 0 everywhere, also at x = 0 where 0 * 0^-1 would be NaN.
    return deriv(x, y, [e](auto a, auto) {
      using T = decltype(a);
      return e == 0 ? T(0) : T(e * std::pow(a, T(e - 1)));
    });
  });
}

Tensor sqrt(const Tensor& x) {
  if (cuda_ops::on_cuda(x)) return on_gpu(cuda_ops::UnaryFn::Sqrt, composed::Unary::Sqrt, "sqrt", x);
  Tensor y = unary_map("sqrt", x, [](auto v) { return std::sqrt(v); });
  return record_unary("sqrt", x, y, [](const Tensor& x, const Tensor& y) {
    return deriv(x, y, [](auto, auto b) { return decltype(b)(0.5) / b; });
  });
}

Tensor abs(const Tensor& x) {
  if (cuda_ops::on_cuda(x)) return on_gpu(cuda_ops::UnaryFn::Abs, composed::Unary::Abs, "abs", x);
  Tensor y = unary_map("abs", x, [](auto v) { return std::abs(v); });
  return record_unary("abs", x, y, [](const Tensor& x, const Tensor& y) {
    return deriv(x, y, [](auto a, auto) { return decltype(a)(a > 0 ? 1 : a < 0 ? -1 : 0); });
  });
}

// Not differentiable (its derivative is 0 wherever it exists): the result is recorded on no tape.
Tensor sign(const Tensor& x) {
  if (cuda_ops::on_cuda(x)) return cuda_ops::unary(cuda_ops::UnaryFn::Sign, x.detach(), "sign");
  return unary_map("sign", x.detach(), [](auto v) { return decltype(v)((v > 0) - (v < 0)); });
}

Tensor clamp(const Tensor& x, double lo, double hi) {
  EMBER_CHECK(lo <= hi, "clamp: lower bound ", lo, " > upper bound ", hi);
  if (cuda_ops::on_cuda(x)) return composed::clamp(x, lo, hi);
  Tensor y = unary_map("clamp", x, [lo, hi](auto v) {
    using T = decltype(v);
    return v < T(lo) ? T(lo) : v > T(hi) ? T(hi) : v;
  });
  return record_unary("clamp", x, y, [lo, hi](const Tensor& x, const Tensor& y) {
    return deriv(x, y, [lo, hi](auto a, auto) { return decltype(a)(a >= lo && a <= hi ? 1 : 0); });
  });
}

Tensor relu(const Tensor& x) {
  if (cuda_ops::on_cuda(x)) return cuda_ops::relu(x);
  Tensor y = unary_map("relu", x, [](auto v) { return v > 0 ? v : decltype(v)(0); });
  // y > 0 exactly where x > 0, so the backward keeps only y: the input (often a conv output) can be
  // freed after the forward, and the mask is applied in one pass without a derivative tensor.
  return record("relu", y, {x}, [y = y.detach()](const Tensor& g) {
    return std::vector<Tensor>{binary_map("relu_backward", g, y, [](auto gv, auto yv) {
      return yv > 0 ? gv : decltype(gv)(0);
    })};
  });
}

Tensor relu6(const Tensor& x) {
  if (cuda_ops::on_cuda(x)) return composed::clamp(x, 0, 6);  // MobileNet's activation
  Tensor y = unary_map("relu6", x, [](auto v) {
    using T = decltype(v);
    return v < T(0) ? T(0) : v > T(6) ? T(6) : v;
  });
  return record_unary("relu6", x, y, [](const Tensor& x, const Tensor& y) {
    return deriv(x, y, [](auto a, auto) { return decltype(a)(a > 0 && a < 6 ? 1 : 0); });
  });
}

Tensor leaky_relu(const Tensor& x, double slope) {
  if (cuda_ops::on_cuda(x)) return composed::leaky_relu(x, slope);
  Tensor y = unary_map("leaky_relu", x, [slope](auto v) { return v > 0 ? v : decltype(v)(slope) * v; });
  return record_unary("leaky_relu", x, y, [slope](const Tensor& x, const Tensor& y) {
    return deriv(x, y, [slope](auto a, auto) { return decltype(a)(a > 0 ? 1 : slope); });
  });
}

Tensor sigmoid(const Tensor& x) {
  if (cuda_ops::on_cuda(x)) return on_gpu(cuda_ops::UnaryFn::Sigmoid, composed::Unary::Sigmoid, "sigmoid", x);
  Tensor y = unary_map("sigmoid", x, [](auto v) {
    using T = decltype(v);
    // Split by sign so exp never overflows.
    return v >= 0 ? T(1) / (T(1) + std::exp(-v)) : std::exp(v) / (T(1) + std::exp(v));
  });
  return record_unary("sigmoid", x, y, [](const Tensor& x, const Tensor& y) {
    return deriv(x, y, [](auto, auto s) { return s * (decltype(s)(1) - s); });
  });
}

Tensor tanh(const Tensor& x) {
  if (cuda_ops::on_cuda(x)) return on_gpu(cuda_ops::UnaryFn::Tanh, composed::Unary::Tanh, "tanh", x);
  Tensor y = unary_map("tanh", x, [](auto v) { return std::tanh(v); });
  return record_unary("tanh", x, y, [](const Tensor& x, const Tensor& y) {
    return deriv(x, y, [](auto, auto t) { return decltype(t)(1) - t * t; });
  });
}

}  // namespace ember
