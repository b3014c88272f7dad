// Central finite-difference gradient checker (float64), shared by every op test.
//
// gradcheck(f, inputs) perturbs each element of each input by +-eps, evaluates the scalar
// L = sum(f(inputs) * w) for a fixed random weighting w (so every output element matters and
// errors cannot cancel), and compares dL/dx from autograd with (L(x+eps) - L(x-eps)) / 2eps.
// Bound: |analytic - numeric| <= atol + rtol * |numeric| per element (defaults 1e-6, 1e-5).
// Points near kinks (relu at 0, max ties) are the caller's job: draw inputs away from them.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "engine/rng.h"

namespace ember::testing {

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

// Random float64 tensor with values uniform in [lo, hi), seeded.
inline Tensor rand64(const Shape& shape, uint64_t seed, double lo = -1, double hi = 1) {
  Generator g(seed);
  return Tensor::uniform(shape, lo, hi, g, DType::Float64);
}

inline ::testing::AssertionResult gradcheck(const Fn& f, std::vector<Tensor> inputs, double eps = 1e-6,
                                            double atol = 1e-6, double rtol = 1e-5, uint64_t seed = 7) {
  for (auto& x : inputs)
    if (x.defined() && is_floating(x.dtype())) {
      x = x.detach().clone();
      x.requires_grad_(true);
    }
  Tensor out = f(inputs);
  Generator g(seed);
  Tensor w = Tensor::uniform(out.shape(), 0.5, 1.5, g, DType::Float64);
  auto loss_of = [&](const std::vector<Tensor>& in) {
    NoGradGuard ng;
    Tensor o = f(in);
    return sum(mul(o, w)).item();
  };
  sum(mul(out, w)).backward();
  for (size_t k = 0; k < inputs.size(); ++k) {
    Tensor& x = inputs[k];
    if (!x.defined() || !x.requires_grad()) continue;
    Tensor analytic = x.grad();
    if (!analytic.defined()) return ::testing::AssertionFailure() << "input " << k << " received no gradient";
    double* p = x.data<double>();
    const int64_t n = x.numel();
    std::vector<double> ana = analytic.to_vector<double>();
    for (int64_t i = 0; i < n; ++i) {
      const double orig = p[i];
      p[i] = orig + eps;
      double lp = loss_of(inputs);
      p[i] = orig - eps;
      double lm = loss_of(inputs);
      p[i] = orig;
      double num = (lp - lm) / (2 * eps);
      if (std::abs(ana[i] - num) > atol + rtol * std::abs(num))
        return ::testing::AssertionFailure() << "input " << k << " " << x.str() << " element " << i
                                             << ": autograd " << ana[i] << " vs finite difference " << num;
    }
  }
  return ::testing::AssertionSuccess();
}

// Relative norm error ||a - b|| / max(||b||, tiny), for fast-vs-reference kernel checks.
inline double rel_error(const Tensor& a, const Tensor& b) {
  auto va = a.to_vector<double>(), vb = b.to_vector<double>();
  double num = 0, den = 0;
  for (size_t i = 0; i < va.size(); ++i) {
    num += (va[i] - vb[i]) * (va[i] - vb[i]);
    den += vb[i] * vb[i];
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
}

}  // namespace ember::testing
