// concat: forward copies each input into its slice of the output; backward hands each input the
// matching slice of the gradient.
#include "engine/ops.h"

namespace ember {

Tensor concat(const std::vector<Tensor>& xs, int64_t dim) {
  EMBER_CHECK(!xs.empty(), "concat: no tensors given");
  const Tensor& first = xs[0];
  check_defined("concat", first, "xs[0]");
  dim = wrap_dim(dim, first.dim(), "concat");
  Shape out_shape = first.shape();
  out_shape[dim] = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    check_defined("concat", xs[i], "xs[i]");
    check_same_dtype("concat", first, xs[i]);
    check_same_device("concat", first, xs[i]);
    EMBER_CHECK(xs[i].dim() == first.dim(), "concat: tensor ", i, " ", xs[i].str(), " has a different rank than ", first.str());
    for (int64_t d = 0; d < first.dim(); ++d)
      EMBER_CHECK(d == dim || xs[i].shape()[d] == first.shape()[d], "concat: tensor ", i, " ", xs[i].str(),
                  " differs from ", first.str(), " in dim ", d, " (concatenating along dim ", dim, ")");
    out_shape[dim] += xs[i].shape()[dim];
  }
  Tensor out = Tensor::empty(out_shape, first.dtype(), first.device());
  std::vector<int64_t> starts;
  int64_t at = 0;
  for (const auto& x : xs) {
    starts.push_back(at);
    out.detach().slice(dim, at, at + x.shape()[dim]).copy_(x.detach());
    at += x.shape()[dim];
  }
  std::vector<int64_t> sizes;
  for (const auto& x : xs) sizes.push_back(x.shape()[dim]);
  return record("concat", out, xs, [dim, starts, sizes](const Tensor& g) {
    std::vector<Tensor> gs;
    for (size_t i = 0; i < starts.size(); ++i) gs.push_back(g.slice(dim, starts[i], starts[i] + sizes[i]).contiguous());
    return gs;
  });
}

}  // namespace ember
