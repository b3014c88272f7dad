// CUDA paths of the elementwise and reduction ops (see engine/ops/cuda_ops.h): add, sub, mul, div
// with broadcasting, neg, sum over dims, argmax. Unlike cuda_ops.cpp these record no autograd: the
// op files (elementwise.cpp, unary.cpp, reduce.cpp) record, and their backward formulas are made of
// the same ops, so they run on the GPU too. Compiles; not yet run on a GPU.
#include "engine/ops/cuda_ops.h"

#include "engine/error.h"

#ifdef EMBER_WITH_CUDA
#include <algorithm>
#include <utility>
#include <functional>
#include <numeric>

#include "engine/ops/cuda_tensor_access.h"
#include "kernels/cuda/cuda_api.h"

namespace ember::cuda_ops {
using namespace detail;  // cf, mf, strided_f32, empty_like_cuda
namespace {

cuda::BinaryOp kernel_op(Binary op) {
  switch (op) {
    case Binary::Sub: return cuda::BinaryOp::Sub;
    case Binary::Mul: return cuda::BinaryOp::Mul;
    case Binary::Div: return cuda::BinaryOp::Div;
    default: return cuda::BinaryOp::Add;
  }
}

// The broadcast kernel's view of a and b expanded to `shape` (strides in elements, 0 where broadcast).
cuda::BroadcastArgs broadcast_args(const Tensor& a, const Tensor& b, const Shape& shape, const char* op) {
  EMBER_CHECK(shape.size() <= size_t(cuda::kMaxDims), op, " on cuda: at most ", cuda::kMaxDims, " dims, got ",
              shape_str(shape));
  const Tensor ea = a.expand(shape), eb = b.expand(shape);
  cuda::BroadcastArgs args;
  args.ndim = int(shape.size());
  for (size_t i = 0; i < shape.size(); ++i) {
    args.shape[i] = shape[i];
    args.a_strides[i] = ea.strides()[i];
    args.b_strides[i] = eb.strides()[i];
  }
  return args;
}

int64_t product(const Shape& s, size_t begin, size_t end) {
  return std::accumulate(s.begin() + int64_t(begin), s.begin() + int64_t(end), int64_t(1), std::multiplies<>());
}

}  // namespace

Tensor binary(Binary op, const Tensor& a_in, const Tensor& b_in, const char* name) {
  const Tensor a = a_in.detach(), b = b_in.detach();
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
  Tensor out = empty_like_cuda(shape);
  if (out.numel() == 0) return out;
  if (a.shape() == b.shape() && a.is_contiguous() && b.is_contiguous()) {
    cuda::binary_contiguous(kernel_op(op), out.numel(), cf(a, name), cf(b, name), mf(out, name));
  } else {
    cuda::binary(kernel_op(op), broadcast_args(a, b, shape, name), strided_f32(a, name), strided_f32(b, name),
                 mf(out, name));
  }
  return out;
}

// Any strides (a broadcast: stride 0; a transpose) to a new contiguous tensor: a strided copy.
Tensor broadcast_to(const Tensor& x_in, const Shape& shape) {
  const Tensor x = x_in.detach();
  (void)strided_f32(x, "broadcast_to");  // float32 on cuda, like every GPU op's operands
  Tensor out = empty_like_cuda(shape);
  out.copy_(x.expand(shape));
  return out;
}

Tensor dense(const Tensor& x) { return x.is_contiguous() ? x.detach() : broadcast_to(x, x.shape()); }

Tensor convert(const Tensor& x_in, DType dtype) {
  const Tensor x = x_in.detach().contiguous();  // any dtype: dense() is float32-only
  Tensor y = Tensor::empty(x.shape(), dtype, Device::CUDA);
  cuda::convert(x.numel(), elem_type_of(x.dtype()), elem_type_of(dtype), x.raw_data(), y.raw_data());
  return y;
}

Tensor neg(const Tensor& x_in) {
  const Tensor x = dense(x_in);
  Tensor y = empty_like_cuda(x.shape());
  if (y.numel() > 0) cuda::unary(cuda::UnaryOp::Neg, y.numel(), cf(x, "neg"), mf(y, "neg"));
  return y;
}

Tensor unary(UnaryFn fn, const Tensor& x_in, const char* name) {
  static constexpr cuda::UnaryOp kernel_op[] = {cuda::UnaryOp::Exp,     cuda::UnaryOp::Log,  cuda::UnaryOp::Sqrt,
                                                cuda::UnaryOp::Abs,     cuda::UnaryOp::Sigmoid, cuda::UnaryOp::Tanh,
                                                cuda::UnaryOp::Sign};
  const Tensor x = dense(x_in);
  Tensor y = empty_like_cuda(x.shape());
  if (y.numel() > 0) cuda::unary(kernel_op[int(fn)], y.numel(), cf(x, name), mf(y, name));
  return y;
}

Tensor pow(const Tensor& x_in, double exponent) {
  const Tensor x = dense(x_in);
  Tensor y = empty_like_cuda(x.shape());
  if (y.numel() > 0) cuda::pow_scalar(y.numel(), float(exponent), cf(x, "pow"), mf(y, "pow"));
  return y;
}

Tensor sum(const Tensor& x_in, std::vector<int64_t> dims, const Shape& out_shape) {
  Tensor cur = dense(x_in);
  if (dims.empty()) return broadcast_to(cur, out_shape);  // nothing reduced: a copy
  std::sort(dims.rbegin(), dims.rend());  // last dim first: each pass reads a contiguous [outer, dim, inner]
  for (const int64_t d : dims) {
    Shape kept = cur.shape();
    const int64_t outer = product(kept, 0, size_t(d)), len = kept[size_t(d)];
    const int64_t inner = product(kept, size_t(d) + 1, kept.size());
    kept[size_t(d)] = 1;
    Tensor next = Tensor::zeros(kept, DType::Float32, Device::CUDA);  // an empty dim sums to 0
    if (len > 0 && next.numel() > 0) cuda::reduce_dim(cuda::ReduceOp::Sum, outer, len, inner, cf(cur, "sum"), mf(next, "sum"), nullptr);
    cur = next;
  }
  return cur.reshape(out_shape);
}

namespace {
// The maxima of x along dim and their first indices (one reduce_dim pass gives both).
std::pair<Tensor, Tensor> max_along(const Tensor& x_in, int64_t dim, const char* op) {
  const Tensor x = dense(x_in);
  const Shape& s = x.shape();
  const int64_t outer = product(s, 0, size_t(dim)), len = s[size_t(dim)], inner = product(s, size_t(dim) + 1, s.size());
  Tensor best = empty_like_cuda({outer * inner});
  Tensor index = Tensor::empty({outer * inner}, DType::Int64, Device::CUDA);
  if (index.numel() > 0)
    cuda::reduce_dim(cuda::ReduceOp::Max, outer, len, inner, cf(x, op), mf(best, op),
                     static_cast<int64_t*>(index.raw_data()));
  return {best, index};
}
}  // namespace

Tensor argmax(const Tensor& x, int64_t dim, const Shape& out_shape) {
  return max_along(x, dim, "argmax").second.reshape(out_shape);
}

std::pair<Tensor, Tensor> max_with_index(const Tensor& x, int64_t dim, const Shape& out_shape) {
  auto [values, index] = max_along(x, dim, "max");
  return {values.reshape(out_shape), index};
}

Tensor max_backward(const Tensor& g_in, const Tensor& index, const Shape& in_shape, int64_t dim) {
  const Tensor g = dense(g_in);
  const int64_t outer = product(in_shape, 0, size_t(dim)), len = in_shape[size_t(dim)];
  const int64_t inner = product(in_shape, size_t(dim) + 1, in_shape.size());
  EMBER_CHECK(g.numel() == outer * inner && index.numel() == outer * inner && index.dtype() == DType::Int64,
              "max_backward on cuda: gradient ", g.str(), " and index ", index.str(), " do not fit ", shape_str(in_shape),
              " reduced over dim ", dim);
  Tensor gx = empty_like_cuda(in_shape);
  cuda::scatter_along_dim(outer, len, inner, cf(g, "max_backward"), static_cast<const int64_t*>(index.raw_data()),
                          mf(gx, "max_backward"));
  return gx;
}

}  // namespace ember::cuda_ops

#else  // no CUDA in this build: no tensor can be on the GPU, so nothing below is reachable.

namespace ember::cuda_ops {
using detail::unreachable;
Tensor binary(Binary, const Tensor&, const Tensor&, const char* name) { unreachable(name); }
Tensor broadcast_to(const Tensor&, const Shape&) { unreachable("broadcast_to"); }
Tensor dense(const Tensor&) { unreachable("contiguous"); }
Tensor convert(const Tensor&, DType) { unreachable("to(dtype)"); }
Tensor neg(const Tensor&) { unreachable("neg"); }
Tensor unary(UnaryFn, const Tensor&, const char* name) { unreachable(name); }
Tensor pow(const Tensor&, double) { unreachable("pow"); }
Tensor sum(const Tensor&, std::vector<int64_t>, const Shape&) { unreachable("sum"); }
Tensor argmax(const Tensor&, int64_t, const Shape&) { unreachable("argmax"); }
std::pair<Tensor, Tensor> max_with_index(const Tensor&, int64_t, const Shape&) { unreachable("max"); }
Tensor max_backward(const Tensor&, const Tensor&, const Shape&, int64_t) { unreachable("max_backward"); }
}  // namespace ember::cuda_ops

#endif
