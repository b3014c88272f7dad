// Reference batch normalisation: serial loops, two-pass statistics, double accumulation.
#include <cmath>

#include "kernels/cpu/batchnorm.h"

namespace ember::cpu {
namespace {

template <class T>
inline const T* strip(const T* base, const BatchNormShape& s, int64_t n, int64_t c) {
  return base + (n * s.C + c) * s.HW;
}

// Normalises channel c with the given statistics: y = (x - mean) * invstd * w + b (+ ReLU).
template <class T>
void normalise_channel(const BatchNormShape& s, int64_t c, const T* x, const T* weight, const T* bias, double mean,
                       double var, double eps, bool relu, T* y) {
  const double invstd = 1.0 / std::sqrt(var + eps);
  const double w = weight ? double(weight[c]) : 1.0, b = bias ? double(bias[c]) : 0.0;
  for (int64_t n = 0; n < s.N; ++n) {
    const T* xs = strip(x, s, n, c);
    T* ys = y + (n * s.C + c) * s.HW;
    for (int64_t i = 0; i < s.HW; ++i) {
      double v = (double(xs[i]) - mean) * invstd * w + b;
      if (relu && !(v > 0)) v = 0;
      ys[i] = T(v);
    }
  }
}

}  // namespace

template <class T>
void batchnorm_forward_train_ref(const BatchNormShape& s, const T* x, const T* weight, const T* bias, double eps,
                                 bool relu, T* y, T* mean, T* var) {
  const double M = double(s.count());
  for (int64_t c = 0; c < s.C; ++c) {
    double sum = 0;
    for (int64_t n = 0; n < s.N; ++n)
      for (int64_t i = 0; i < s.HW; ++i) sum += double(strip(x, s, n, c)[i]);
    const double mu = sum / M;
    double sq = 0;
    for (int64_t n = 0; n < s.N; ++n)
      for (int64_t i = 0; i < s.HW; ++i) {
        const double d = double(strip(x, s, n, c)[i]) - mu;
        sq += d * d;
      }
    const double v = sq / M;
    mean[c] = T(mu);
    var[c] = T(v);
    normalise_channel(s, c, x, weight, bias, mu, v, eps, relu, y);
  }
}

template <class T>
void batchnorm_forward_eval_ref(const BatchNormShape& s, const T* x, const T* weight, const T* bias, const T* mean,
                                const T* var, double eps, bool relu, T* y) {
  for (int64_t c = 0; c < s.C; ++c) normalise_channel(s, c, x, weight, bias, double(mean[c]), double(var[c]), eps, relu, y);
}

template <class T>
void batchnorm_backward_ref(const BatchNormShape& s, const T* x, const T* y, const T* dy, const T* weight,
                            const T* mean, const T* var, double eps, bool training, bool relu, T* dx, T* dweight,
                            T* dbias) {
  const double M = double(s.count());
  for (int64_t c = 0; c < s.C; ++c) {
    const double mu = double(mean[c]), invstd = 1.0 / std::sqrt(double(var[c]) + eps);
    const double w = weight ? double(weight[c]) : 1.0;
    auto grad_at = [&](int64_t n, int64_t i) {  // dL/d(pre-ReLU output)
      const int64_t k = (n * s.C + c) * s.HW + i;
      return relu && !(y[k] > 0) ? 0.0 : double(dy[k]);
    };
    double sg = 0, sgx = 0;
    for (int64_t n = 0; n < s.N; ++n)
      for (int64_t i = 0; i < s.HW; ++i) {
        const double g = grad_at(n, i);
        sg += g;
        sgx += g * (double(strip(x, s, n, c)[i]) - mu) * invstd;
      }
    dbias[c] = T(sg);
    dweight[c] = T(sgx);
    if (!dx) continue;
    for (int64_t n = 0; n < s.N; ++n)
      for (int64_t i = 0; i < s.HW; ++i) {
        const double g = grad_at(n, i);
        const double xhat = (double(strip(x, s, n, c)[i]) - mu) * invstd;
        const double d = training ? g - sg / M - xhat * sgx / M : g;
        dx[(n * s.C + c) * s.HW + i] = T(w * invstd * d);
      }
  }
}

#define EMBER_BN_INSTANTIATE(T)                                                                                  \
  template void batchnorm_forward_train_ref<T>(const BatchNormShape&, const T*, const T*, const T*, double, bool, \
                                               T*, T*, T*);                                                      \
  template void batchnorm_forward_eval_ref<T>(const BatchNormShape&, const T*, const T*, const T*, const T*,      \
                                              const T*, double, bool, T*);                                       \
  template void batchnorm_backward_ref<T>(const BatchNormShape&, const T*, const T*, const T*, const T*, const T*, \
                                          const T*, double, bool, bool, T*, T*, T*);
EMBER_BN_INSTANTIATE(float)
EMBER_BN_INSTANTIATE(double)
#undef EMBER_BN_INSTANTIATE

}  // namespace ember::cpu
