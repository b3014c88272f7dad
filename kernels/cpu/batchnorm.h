// Batch normalisation kernels on x viewed as [N, C, HW] (HW = 1 for [N, C] inputs), contiguous.
// Channel c of sample n is the strip x[(n * C + c) * HW .. + HW).
//
//   training: mean/var are the batch statistics (biased variance), written to mean[C], var[C];
//   eval:     mean/var are given (running statistics);
//   y = (x - mean) / sqrt(var + eps) * weight + bias, then max(y, 0) when `relu` (the fused BN+ReLU).
// weight/bias may be nullptr (affine = false: weight 1, bias 0).
//
// Backward, with g = dy masked by (y > 0) when relu, xhat = (x - mean) * invstd, M = N * HW:
//   db = sum g, dw = sum g * xhat (per channel; always written, the engine needs them for dx),
//   training: dx = weight * invstd * (g - db / M - xhat * dw / M)   (mean and var depend on x)
//   eval:     dx = weight * invstd * g                              (statistics are constants)
// dx may be nullptr when the input needs no gradient.
#pragma once
#include <cstdint>

#include "kernels/registry.h"

namespace ember::cpu {

struct BatchNormShape {
  int64_t N = 1, C = 1, HW = 1;
  int64_t count() const { return N * HW; }  // values per channel
};

template <class T>
void batchnorm_forward_train_ref(const BatchNormShape& s, const T* x, const T* weight, const T* bias, double eps,
                                 bool relu, T* y, T* mean, T* var);
template <class T>
void batchnorm_forward_eval_ref(const BatchNormShape& s, const T* x, const T* weight, const T* bias, const T* mean,
                                const T* var, double eps, bool relu, T* y);
template <class T>
void batchnorm_backward_ref(const BatchNormShape& s, const T* x, const T* y, const T* dy, const T* weight,
                            const T* mean, const T* var, double eps, bool training, bool relu, T* dx, T* dweight,
                            T* dbias);

struct BatchNormKernels {
  void (*forward_train)(const BatchNormShape&, const float* x, const float* weight, const float* bias, double eps,
                        bool relu, float* y, float* mean, float* var);
  void (*forward_eval)(const BatchNormShape&, const float* x, const float* weight, const float* bias,
                       const float* mean, const float* var, double eps, bool relu, float* y);
  void (*backward)(const BatchNormShape&, const float* x, const float* y, const float* dy, const float* weight,
                   const float* mean, const float* var, double eps, bool training, bool relu, float* dx,
                   float* dweight, float* dbias);
};
// Op "batchnorm": variants {"fast", "ref"}.
kernels::VariantTable<BatchNormKernels>& batchnorm_table();

template <class T>
void batchnorm_forward_train(const BatchNormShape& s, const T* x, const T* weight, const T* bias, double eps, bool relu,
                             T* y, T* mean, T* var) {
  if constexpr (sizeof(T) == 4) batchnorm_table().get().forward_train(s, x, weight, bias, eps, relu, y, mean, var);
  else batchnorm_forward_train_ref<T>(s, x, weight, bias, eps, relu, y, mean, var);
}
template <class T>
void batchnorm_forward_eval(const BatchNormShape& s, const T* x, const T* weight, const T* bias, const T* mean,
                            const T* var, double eps, bool relu, T* y) {
  if constexpr (sizeof(T) == 4) batchnorm_table().get().forward_eval(s, x, weight, bias, mean, var, eps, relu, y);
  else batchnorm_forward_eval_ref<T>(s, x, weight, bias, mean, var, eps, relu, y);
}
template <class T>
void batchnorm_backward(const BatchNormShape& s, const T* x, const T* y, const T* dy, const T* weight, const T* mean,
                        const T* var, double eps, bool training, bool relu, T* dx, T* dweight, T* dbias) {
  if constexpr (sizeof(T) == 4)
    batchnorm_table().get().backward(s, x, y, dy, weight, mean, var, eps, training, relu, dx, dweight, dbias);
  else
    batchnorm_backward_ref<T>(s, x, y, dy, weight, mean, var, eps, training, relu, dx, dweight, dbias);
}

}  // namespace ember::cpu
