// add, sub, mul, div with NumPy broadcasting: forward and backward side by side.
// The backward of broadcasting is a sum over the broadcast dims (sum_to_shape).
#include "engine/ops/cuda_ops.h"
#include "engine/ops/elementwise_impl.h"

namespace ember {
using detail::binary_map;

namespace {
// a op b on the GPU when either operand is there (after the same checks as the CPU map), else on the CPU.
template <class F>
Tensor binary_on_device(const char* op, cuda_ops::Binary kind, const Tensor& a, const Tensor& b, F f) {
  if (!cuda_ops::on_cuda(a) && !cuda_ops::on_cuda(b)) return binary_map(op, a, b, f);
  detail::check_binary_operands(op, a, b);
  return cuda_ops::binary(kind, a, b, op);
}
// A scalar operand on a's device.
Tensor scalar_like(const Tensor& a, double value) {
  Tensor s = Tensor::scalar(value, a.dtype());
  return a.device() == Device::CPU ? s : s.to(a.device());
}
}  // namespace

Tensor sum_to_shape(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  const int64_t lead = g.dim() - int64_t(shape.size());
  std::vector<int64_t> dims;
  for (int64_t i = 0; i < g.dim(); ++i)
    if (i < lead || (shape[i - lead] == 1 && g.shape()[i] != 1)) dims.push_back(i);
  return sum(g, dims, /*keepdim=*/true).reshape(shape);
}

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = binary_on_device("add", cuda_ops::Binary::Add, a, b, [](auto x, auto y) { return x + y; });
  return record("add", out, {a, b}, [sa = a.shape(), sb = b.shape()](const Tensor& g) {
    return std::vector<Tensor>{sum_to_shape(g, sa), sum_to_shape(g, sb)};
  });
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = binary_on_device("sub", cuda_ops::Binary::Sub, a, b, [](auto x, auto y) { return x - y; });
  return record("sub", out, {a, b}, [sa = a.shape(), sb = b.shape()](const Tensor& g) {
    return std::vector<Tensor>{sum_to_shape(g, sa), neg(sum_to_shape(g, sb))};
  });
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = binary_on_device("mul", cuda_ops::Binary::Mul, a, b, [](auto x, auto y) { return x * y; });
  return record("mul", out, {a, b}, [a = a.detach(), b = b.detach()](const Tensor& g) {
    return std::vector<Tensor>{sum_to_shape(mul(g, b), a.shape()), sum_to_shape(mul(g, a), b.shape())};
  });
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = binary_on_device("div", cuda_ops::Binary::Div, a, b, [](auto x, auto y) { return x / y; });
  return record("div", out, {a, b}, [a = a.detach(), b = b.detach()](const Tensor& g) {
    Tensor ga = div(g, b);
    Tensor gb = neg(div(mul(ga, a), b));  // -g a / b^2
    return std::vector<Tensor>{sum_to_shape(ga, a.shape()), sum_to_shape(gb, b.shape())};
  });
}

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator-(const Tensor& a) { return neg(a); }
Tensor operator+(const Tensor& a, double b) { return add(a, scalar_like(a, b)); }
Tensor operator-(const Tensor& a, double b) { return sub(a, scalar_like(a, b)); }
Tensor operator*(const Tensor& a, double b) { return mul(a, scalar_like(a, b)); }
Tensor operator/(const Tensor& a, double b) { return div(a, scalar_like(a, b)); }

}  // namespace ember
