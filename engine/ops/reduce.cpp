// Reductions over dims: sum, mean, max (+argmax). The reduced dims are permuted to the end and
// made contiguous, so every reduction is a loop over rows of a [outer, inner] matrix.
#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/ops.h"
#include "engine/ops/cuda_ops.h"
#include "engine/strided.h"

namespace ember {
namespace {

struct Plan {
  Shape keep_shape;    // result with keepdim=true
  Shape out_shape;     // result as requested
  Tensor rows;         // [outer, inner] contiguous
  int64_t outer = 1, inner = 1;
};

// The shapes of a reduction (keepdim and as requested) and its dims wrapped and checked.
struct Shapes {
  Shape keep_shape, out_shape;
  std::vector<int64_t> dims;
};
Shapes reduction_shapes(const Tensor& x, std::vector<int64_t> dims, bool keepdim, const char* op) {
  Shapes r;
  std::vector<bool> reduced(size_t(x.dim()), false);
  for (auto& d : dims) {
    d = wrap_dim(d, x.dim(), op);
    EMBER_CHECK(!reduced[d], op, ": dim ", d, " listed twice");
    reduced[d] = true;
  }
  for (int64_t i = 0; i < x.dim(); ++i) {
    r.keep_shape.push_back(reduced[i] ? 1 : x.shape()[i]);
    if (!reduced[i] || keepdim) r.out_shape.push_back(reduced[i] ? 1 : x.shape()[i]);
  }
  r.dims = std::move(dims);
  return r;
}

Plan plan_reduction(const Tensor& x, std::vector<int64_t> dims, bool keepdim, const char* op) {
  check_cpu(op, x);
  const Shapes r = reduction_shapes(x, std::move(dims), keepdim, op);
  Plan p;
  p.keep_shape = r.keep_shape;
  p.out_shape = r.out_shape;
  const auto reduced = [&](int64_t i) { return std::find(r.dims.begin(), r.dims.end(), i) != r.dims.end(); };
  std::vector<int64_t> order;  // kept dims, then reduced ones
  for (int64_t i = 0; i < x.dim(); ++i)
    if (!reduced(i)) {
      order.push_back(i);
      p.outer *= x.shape()[i];
    }
  for (int64_t i = 0; i < x.dim(); ++i)
    if (reduced(i)) {
      order.push_back(i);
      p.inner *= x.shape()[i];
    }
  p.rows = x.detach().permute(order).contiguous();
  return p;
}

std::vector<int64_t> all_dims(const Tensor& x) {
  std::vector<int64_t> d(size_t(x.dim()));
  for (int64_t i = 0; i < x.dim(); ++i) d[i] = i;
  return d;
}

}  // namespace

namespace {
// Leading dims of a contiguous tensor reduced (a bias gradient: sum over the batch of [N, F]):
// sum the rows into per-column double accumulators instead of transposing x into a copy first.
// Same additions in the same order as the general path, so the results are identical.
bool sums_leading_dims(const Tensor& x, const std::vector<int64_t>& dims) {
  if (!x.is_contiguous() || dims.empty() || int64_t(dims.size()) >= x.dim()) return false;
  for (size_t i = 0; i < dims.size(); ++i)
    if (dims[i] != int64_t(i)) return false;
  return true;
}
template <class T>
void sum_leading(const T* x, int64_t rows, int64_t cols, T* out) {
  constexpr int64_t kBlock = 256;  // columns per task: accumulators stay in L1
#pragma omp parallel for if (rows * cols > 65536) schedule(static)
  for (int64_t c0 = 0; c0 < cols; c0 += kBlock) {
    const int64_t width = std::min(kBlock, cols - c0);
    double acc[kBlock] = {};
    for (int64_t r = 0; r < rows; ++r) {
      const T* row = x + r * cols + c0;
      for (int64_t j = 0; j < width; ++j) acc[j] += double(row[j]);
    }
    for (int64_t j = 0; j < width; ++j) out[c0 + j] = T(acc[j]);
  }
}
}  // namespace

namespace {
// The backward of a sum: g broadcast back over the reduced dims.
Tensor sum_backward(const Tensor& g, const Shape& keep_shape, const Shape& in_shape) {
  if (cuda_ops::on_cuda(g)) return cuda_ops::broadcast_to(g.reshape(keep_shape), in_shape);
  return g.reshape(keep_shape).expand(in_shape).contiguous();
}
}  // namespace

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  check_floating("sum", x);
  if (cuda_ops::on_cuda(x)) {
    const Shapes r = reduction_shapes(x, dims, keepdim, "sum");
    return record("sum", cuda_ops::sum(x, r.dims, r.out_shape), {x}, [keep = r.keep_shape, in_shape = x.shape()](const Tensor& g) {
      return std::vector<Tensor>{sum_backward(g, keep, in_shape)};
    });
  }
  Plan p;
  const bool leading = sums_leading_dims(x, dims);
  if (leading) {  // shapes as plan_reduction gives them, without the permuted copy
    check_cpu("sum", x);
    const Shapes r = reduction_shapes(x, dims, keepdim, "sum");
    p.keep_shape = r.keep_shape;
    p.out_shape = r.out_shape;
    for (int64_t i = 0; i < x.dim(); ++i) (i < int64_t(dims.size()) ? p.inner : p.outer) *= x.shape()[i];
  } else {
    p = plan_reduction(x, dims, keepdim, "sum");
  }
  Tensor out = Tensor::empty(p.out_shape, x.dtype());
  dispatch_float(x.dtype(), "sum", [&]<class T>() {
    if (leading) return sum_leading<T>(x.data<T>(), p.inner, p.outer, out.data<T>());
    const T* r = p.rows.data<T>();
    T* o = out.data<T>();
    const int64_t outer = p.outer, inner = p.inner;
#pragma omp parallel for if (outer * inner > 65536) schedule(static)
    for (int64_t i = 0; i < outer; ++i) {
      double acc = 0;  // double accumulation: a float sum of a million terms keeps ~7 digits
      const T* row = r + i * inner;
      for (int64_t j = 0; j < inner; ++j) acc += double(row[j]);
      o[i] = T(acc);
    }
  });
  return record("sum", out, {x}, [keep = p.keep_shape, in_shape = x.shape()](const Tensor& g) {
    return std::vector<Tensor>{sum_backward(g, keep, in_shape)};
  });
}

Tensor sum(const Tensor& x) { return sum(x, all_dims(x), false); }

Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  int64_t count = 1;
  for (auto d : dims) count *= x.shape()[wrap_dim(d, x.dim(), "mean")];
  EMBER_CHECK(count > 0, "mean: reducing ", x.str(), " over an empty dim");
  return sum(x, dims, keepdim) * (1.0 / double(count));
}
Tensor mean(const Tensor& x) { return mean(x, all_dims(x), false); }

namespace {
// Index of the maximum along each row (first one on ties; NaN counts as the maximum, like PyTorch).
Tensor row_argmax(const Plan& p, DType dtype) {
  Tensor idx = Tensor::empty({p.outer}, DType::Int64);
  int64_t* ix = idx.data<int64_t>();
  dispatch_float(dtype, "argmax", [&]<class T>() {
    const T* r = p.rows.data<T>();
    for (int64_t i = 0; i < p.outer; ++i) {
      const T* row = r + i * p.inner;
      int64_t best = 0;
      for (int64_t j = 1; j < p.inner; ++j)
        if (!(row[best] >= row[j]) && !std::isnan(double(row[best]))) best = j;
      ix[i] = best;
    }
  });
  return idx;
}
}  // namespace

namespace {
// argmax and max on the GPU: the shapes of reducing one dim, which must not be empty.
Shapes one_dim_shapes(const Tensor& x, int64_t dim, bool keepdim, const char* op) {
  Shapes r = reduction_shapes(x, {dim}, keepdim, op);
  EMBER_CHECK(x.shape()[size_t(r.dims[0])] > 0, op, ": dim ", dim, " of ", x.str(), " is empty");
  return r;
}
}  // namespace

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  check_floating("argmax", x);
  if (cuda_ops::on_cuda(x)) {
    const Shapes r = one_dim_shapes(x, dim, keepdim, "argmax");
    return cuda_ops::argmax(x, r.dims[0], r.out_shape);
  }
  Plan p = plan_reduction(x, {dim}, keepdim, "argmax");
  EMBER_CHECK(p.inner > 0, "argmax: dim ", dim, " of ", x.str(), " is empty");
  return row_argmax(p, x.dtype()).reshape(p.out_shape);
}

Tensor max(const Tensor& x, int64_t dim, bool keepdim) {
  check_floating("max", x);
  if (cuda_ops::on_cuda(x)) {  // the gradient goes to each row's first maximum, as on the CPU
    const Shapes r = one_dim_shapes(x, dim, keepdim, "max");
    auto [values, index] = cuda_ops::max_with_index(x, r.dims[0], r.out_shape);
    return record("max", values, {x}, [index, d = r.dims[0], in_shape = x.shape()](const Tensor& g) {
      return std::vector<Tensor>{cuda_ops::max_backward(g, index, in_shape, d)};
    });
  }
  dim = wrap_dim(dim, x.dim(), "max");
  Plan p = plan_reduction(x, {dim}, keepdim, "max");
  EMBER_CHECK(p.inner > 0, "max: dim ", dim, " of ", x.str(), " is empty");
  Tensor idx = row_argmax(p, x.dtype());
  Tensor out = Tensor::empty(p.out_shape, x.dtype());
  dispatch_float(x.dtype(), "max", [&]<class T>() {
    const T* r = p.rows.data<T>();
    const int64_t* ix = idx.data<int64_t>();
    T* o = out.data<T>();
    for (int64_t i = 0; i < p.outer; ++i) o[i] = r[i * p.inner + ix[i]];
  });
  return record("max", out, {x}, [idx, dim, in_shape = x.shape(), keep = p.keep_shape](const Tensor& g) {
    // Scatter each row's gradient to its argmax: build in the permuted [outer, inner] layout,
    // then move the reduced dim back into place.
    Tensor gc = g.contiguous();
    const int64_t outer = idx.numel(), inner = in_shape[dim];
    Tensor rows = Tensor::zeros({outer, inner}, g.dtype());
    dispatch_float(g.dtype(), "max_backward", [&]<class T>() {
      const T* gp = gc.data<T>();
      const int64_t* ix = idx.data<int64_t>();
      T* rp = rows.data<T>();
      for (int64_t i = 0; i < outer; ++i) rp[i * inner + ix[i]] = gp[i];
    });
    Shape perm_shape;
    std::vector<int64_t> order, inverse(in_shape.size());
    for (int64_t i = 0; i < int64_t(in_shape.size()); ++i)
      if (i != dim) order.push_back(i);
    order.push_back(dim);
    for (size_t i = 0; i < order.size(); ++i) {
      perm_shape.push_back(in_shape[order[i]]);
      inverse[order[i]] = int64_t(i);
    }
    return std::vector<Tensor>{rows.reshape(perm_shape).permute(inverse).contiguous()};
  });
}

}  // namespace ember
