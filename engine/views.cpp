// Views share storage with their base: only shape, strides and offset change. Each is
// differentiable; its backward maps the gradient back onto the base's shape.
#include <algorithm>
#include <numeric>

#include "engine/autograd.h"
#include "engine/ops.h"

namespace ember {
namespace {

Tensor make_view(const Tensor& base, Shape shape, Shape strides, int64_t offset) {
  auto v = std::make_shared<TensorImpl>();
  v->storage = base.impl().storage;
  v->shape = std::move(shape);
  v->strides = std::move(strides);
  v->offset = offset;
  v->dtype = base.dtype();
  return Tensor(v);
}

Shape infer_shape(const Shape& requested, int64_t numel, const Tensor& x, const char* op) {
  Shape s = requested;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      EMBER_CHECK(infer < 0, op, ": more than one -1 in shape ", shape_str(requested));
      infer = int64_t(i);
    } else {
      EMBER_CHECK(s[i] >= 0, op, ": negative size in shape ", shape_str(requested));
      known *= s[i];
    }
  }
  if (infer >= 0) {
    EMBER_CHECK(known > 0 && numel % known == 0, op, ": cannot view ", x.str(), " as ", shape_str(requested));
    s[infer] = numel / known;
  }
  EMBER_CHECK(shape_numel(s) == numel, op, ": shape ", shape_str(requested), " does not match the ", numel,
              " elements of ", x.str());
  return s;
}

}  // namespace

Tensor Tensor::view(const Shape& shape_req) const {
  Shape s = infer_shape(shape_req, numel(), *this, "view");
  EMBER_CHECK(is_contiguous(), "view: tensor ", str(), " is not contiguous; use reshape()");
  Shape in_shape = shape();
  Tensor out = make_view(*this, s, contiguous_strides(s), offset());
  return record("view", out, {*this}, [in_shape](const Tensor& g) { return std::vector<Tensor>{g.reshape(in_shape)}; });
}

Tensor Tensor::reshape(const Shape& shape_req) const {
  if (is_contiguous()) return view(shape_req);
  return contiguous().view(shape_req);
}

Tensor Tensor::permute(const std::vector<int64_t>& dims) const {
  EMBER_CHECK(int64_t(dims.size()) == dim(), "permute: ", dims.size(), " dims given for ", str());
  Shape s(dims.size()), st(dims.size());
  std::vector<int64_t> inverse(dims.size(), -1);
  for (size_t i = 0; i < dims.size(); ++i) {
    int64_t d = wrap_dim(dims[i], dim(), "permute");
    EMBER_CHECK(inverse[d] < 0, "permute: dim ", d, " repeated");
    inverse[d] = int64_t(i);
    s[i] = shape()[d];
    st[i] = strides()[d];
  }
  Tensor out = make_view(*this, s, st, offset());
  return record("permute", out, {*this}, [inverse](const Tensor& g) { return std::vector<Tensor>{g.permute(inverse)}; });
}

Tensor Tensor::transpose(int64_t d0, int64_t d1) const {
  std::vector<int64_t> dims(static_cast<size_t>(dim()));
  std::iota(dims.begin(), dims.end(), 0);
  std::swap(dims[wrap_dim(d0, dim(), "transpose")], dims[wrap_dim(d1, dim(), "transpose")]);
  return permute(dims);
}

Tensor Tensor::slice(int64_t d, int64_t start, int64_t end, int64_t step) const {
  d = wrap_dim(d, dim(), "slice");
  const int64_t n = shape()[d];
  EMBER_CHECK(step > 0, "slice: step must be positive, got ", step);
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape s = shape(), st = strides();
  s[d] = (end - start + step - 1) / step;
  st[d] *= step;
  Tensor out = make_view(*this, s, st, offset() + start * strides()[d]);
  Shape in_shape = shape();
  DType t = dtype();
  return record("slice", out, {*this}, [=](const Tensor& g) {
    Tensor gin = Tensor::zeros(in_shape, t, g.device());
    gin.slice(d, start, end, step).copy_(g);
    return std::vector<Tensor>{gin};
  });
}

Tensor Tensor::select(int64_t d, int64_t index) const {
  d = wrap_dim(d, dim(), "select");
  EMBER_CHECK(index >= -shape()[d] && index < shape()[d], "select: index ", index, " out of range for dim ", d, " of ",
              str());
  if (index < 0) index += shape()[d];
  return slice(d, index, index + 1).squeeze(d);
}

Tensor Tensor::expand(const Shape& target) const {
  EMBER_CHECK(int64_t(target.size()) >= dim(), "expand: cannot expand ", str(), " to fewer dims ", shape_str(target));
  size_t lead = target.size() - size_t(dim());
  Shape st(target.size(), 0);
  for (size_t i = 0; i < target.size(); ++i) {
    if (i < lead) continue;
    int64_t src = shape()[i - lead];
    EMBER_CHECK(src == target[i] || src == 1, "expand: cannot expand ", str(), " to ", shape_str(target), " (dim ", i,
                ")");
    st[i] = src == 1 && target[i] != 1 ? 0 : strides()[i - lead];
  }
  Tensor out = make_view(*this, target, st, offset());
  Shape in_shape = shape();
  return record("expand", out, {*this}, [in_shape](const Tensor& g) { return std::vector<Tensor>{sum_to_shape(g, in_shape)}; });
}

Tensor Tensor::unsqueeze(int64_t d) const {
  d = wrap_dim(d, dim() + 1, "unsqueeze");
  Shape s = shape(), st = strides();
  int64_t stride = d < dim() ? strides()[d] * shape()[d] : 1;
  s.insert(s.begin() + d, 1);
  st.insert(st.begin() + d, stride);
  Tensor out = make_view(*this, s, st, offset());
  Shape in_shape = shape();
  return record("unsqueeze", out, {*this}, [in_shape](const Tensor& g) { return std::vector<Tensor>{g.reshape(in_shape)}; });
}

Tensor Tensor::squeeze(int64_t d) const {
  d = wrap_dim(d, dim(), "squeeze");
  if (shape()[d] != 1) return *this;
  Shape s = shape(), st = strides();
  s.erase(s.begin() + d);
  st.erase(st.begin() + d);
  Tensor out = make_view(*this, s, st, offset());
  Shape in_shape = shape();
  return record("squeeze", out, {*this}, [in_shape](const Tensor& g) { return std::vector<Tensor>{g.reshape(in_shape)}; });
}

Tensor Tensor::flatten(int64_t start_dim, int64_t end_dim) const {
  if (dim() == 0) return reshape({1});
  start_dim = wrap_dim(start_dim, dim(), "flatten");
  end_dim = wrap_dim(end_dim, dim(), "flatten");
  EMBER_CHECK(start_dim <= end_dim, "flatten: start_dim ", start_dim, " > end_dim ", end_dim);
  Shape s(shape().begin(), shape().begin() + start_dim);
  int64_t m = 1;
  for (int64_t i = start_dim; i <= end_dim; ++i) m *= shape()[i];
  s.push_back(m);
  s.insert(s.end(), shape().begin() + end_dim + 1, shape().end());
  return reshape(s);
}

}  // namespace ember
