// softmax and log_softmax over any dim: forward and backward side by side.
// The tensor is viewed as [outer, D, inner] (D = the softmax dim); each of the outer * inner lines
// of D values is independent. Stable form: the line's max is subtracted before exp, and the sum
// of exponentials is accumulated in double.
#include <algorithm>
#include <cmath>

#include "engine/ops.h"
#include "engine/ops/composed.h"
#include "engine/ops/cuda_ops.h"
#include "engine/strided.h"

namespace ember {
namespace {

struct Lines {
  int64_t outer = 1, D = 1, inner = 1;
  int64_t count() const { return outer * inner; }
  // Offset of element d of line `line`.
  int64_t at(int64_t line, int64_t d) const { return ((line / inner) * D + d) * inner + line % inner; }
};

Lines lines_of(const Tensor& x, int64_t dim) {
  Lines l;
  for (int64_t i = 0; i < dim; ++i) l.outer *= x.shape()[i];
  l.D = x.shape()[dim];
  for (int64_t i = dim + 1; i < x.dim(); ++i) l.inner *= x.shape()[i];
  return l;
}

template <class T>
void softmax_lines(const Lines& l, const T* x, T* y, bool log_output) {
#pragma omp parallel for schedule(static) if (l.count() * l.D > 32768)
  for (int64_t line = 0; line < l.count(); ++line) {
    T mx = -INFINITY;
    for (int64_t d = 0; d < l.D; ++d) mx = std::max(mx, x[l.at(line, d)]);
    if (std::isinf(mx) && mx < 0) mx = 0;  // an all -inf line: keep exp(-inf - 0) = 0 (gives NaN like PyTorch)
    double sum = 0;
    for (int64_t d = 0; d < l.D; ++d) sum += std::exp(double(x[l.at(line, d)] - mx));
    if (log_output) {
      const T log_sum = T(std::log(sum));
      for (int64_t d = 0; d < l.D; ++d) y[l.at(line, d)] = x[l.at(line, d)] - mx - log_sum;
    } else {
      const double inv = 1.0 / sum;
      for (int64_t d = 0; d < l.D; ++d) y[l.at(line, d)] = T(std::exp(double(x[l.at(line, d)] - mx)) * inv);
    }
  }
}

// softmax:     dx = y * (g - sum(g * y))
// log_softmax: dx = g - exp(y) * sum(g)
template <class T>
void softmax_backward_lines(const Lines& l, const T* y, const T* g, T* dx, bool log_output) {
#pragma omp parallel for schedule(static) if (l.count() * l.D > 32768)
  for (int64_t line = 0; line < l.count(); ++line) {
    double acc = 0;
    for (int64_t d = 0; d < l.D; ++d) {
      const int64_t k = l.at(line, d);
      acc += log_output ? double(g[k]) : double(g[k]) * double(y[k]);
    }
    for (int64_t d = 0; d < l.D; ++d) {
      const int64_t k = l.at(line, d);
      dx[k] = log_output ? T(double(g[k]) - std::exp(double(y[k])) * acc) : T(double(y[k]) * (double(g[k]) - acc));
    }
  }
}

Tensor softmax_impl(const char* op, const Tensor& x_in, int64_t dim, bool log_output) {
  check_defined(op, x_in, "input");
  if (cuda_ops::on_cuda(x_in)) {  // engine/ops/composed.h: made of ops with GPU paths
    EMBER_CHECK(x_in.dim() >= 1, op, ": input ", x_in.str(), " must have at least one dim");
    return composed::softmax(x_in, wrap_dim(dim, x_in.dim(), op), log_output);
  }
  check_cpu(op, x_in);
  check_floating(op, x_in);
  EMBER_CHECK(x_in.dim() >= 1, op, ": input ", x_in.str(), " must have at least one dim");
  dim = wrap_dim(dim, x_in.dim(), op);
  Tensor x = x_in.detach().contiguous();
  const Lines l = lines_of(x, dim);
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  dispatch_float(x.dtype(), op, [&]<class T>() { softmax_lines<T>(l, x.data<T>(), y.data<T>(), log_output); });
  // Both backwards need only the output.
  return record(op, y, {x_in}, [l, y_saved = y.detach(), log_output, op](const Tensor& g_in) {
    Tensor g = g_in.contiguous();
    Tensor gx = Tensor::empty(y_saved.shape(), y_saved.dtype());
    dispatch_float(y_saved.dtype(), op, [&]<class T>() {
      softmax_backward_lines<T>(l, y_saved.data<T>(), g.data<T>(), gx.data<T>(), log_output);
    });
    return std::vector<Tensor>{gx};
  });
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_impl("softmax", x, dim, false); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_impl("log_softmax", x, dim, true); }

}  // namespace ember
