// conv2d and pad2d: forward and backward side by side. The arithmetic lives in kernels/cpu/conv2d.h
// (reference loops + fast variants chosen at run time: EMBER_CONV2D_FWD=im2col|ref, ...).
#include "engine/ops.h"
#include "engine/ops/cuda_ops.h"
#include "engine/strided.h"
#include "kernels/cpu/conv2d.h"

namespace ember {
namespace {

cpu::Conv2dShape conv_shape(const Tensor& x, const Tensor& w, const Conv2dOptions& o) {
  cpu::Conv2dShape s;
  s.N = x.shape()[0];
  s.C = x.shape()[1];
  s.H = x.shape()[2];
  s.W = x.shape()[3];
  s.K = w.shape()[0];
  s.R = w.shape()[2];
  s.S = w.shape()[3];
  s.stride_h = o.stride_h;
  s.stride_w = o.stride_w;
  s.pad_h = o.pad_h;
  s.pad_w = o.pad_w;
  s.dil_h = o.dil_h;
  s.dil_w = o.dil_w;
  s.groups = o.groups;
  return s;
}

void check_conv_args(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dOptions& o) {
  check_defined("conv2d", x, "input");
  check_defined("conv2d", w, "weight");
  EMBER_CHECK(x.dim() == 4, "conv2d: input must be [N, C, H, W], got ", x.str());
  EMBER_CHECK(w.dim() == 4, "conv2d: weight must be [K, C/groups, R, S], got ", w.str());
  check_same_dtype("conv2d", x, w);
  check_same_device("conv2d", x, w);
  if (b.defined()) check_same_device("conv2d", x, b);
  check_floating("conv2d", x);
  EMBER_CHECK(o.groups >= 1 && x.shape()[1] % o.groups == 0 && w.shape()[0] % o.groups == 0, "conv2d: groups=", o.groups,
              " must divide input channels ", x.shape()[1], " and output channels ", w.shape()[0], " (input ", x.str(),
              ", weight ", w.str(), ")");
  EMBER_CHECK(w.shape()[1] * o.groups == x.shape()[1], "conv2d: weight ", w.str(), " expects ", w.shape()[1] * o.groups,
              " input channels (groups=", o.groups, ") but input ", x.str(), " has ", x.shape()[1]);
  EMBER_CHECK(o.stride_h > 0 && o.stride_w > 0 && o.dil_h > 0 && o.dil_w > 0 && o.pad_h >= 0 && o.pad_w >= 0,
              "conv2d: stride and dilation must be positive and padding non-negative");
  if (b.defined()) {
    check_same_dtype("conv2d", x, b);
    EMBER_CHECK(b.dim() == 1 && b.shape()[0] == w.shape()[0], "conv2d: bias ", b.str(), " does not match weight ", w.str());
  }
  auto s = conv_shape(x, w, o);
  // Compare the padded input with the dilated kernel before dividing: with stride > 1, integer
  // division would round a negative span up to a (wrong) output size of 1.
  const bool fits = s.H + 2 * o.pad_h >= o.dil_h * (s.R - 1) + 1 && s.W + 2 * o.pad_w >= o.dil_w * (s.S - 1) + 1;
  EMBER_CHECK(fits && s.P() > 0 && s.Q() > 0, "conv2d: input ", x.str(), " is too small for weight ", w.str(), " (", s.R, "x",
              s.S, " kernel) with padding ", o.pad_h, "x", o.pad_w, " and dilation ", o.dil_h, "x", o.dil_w);
}

}  // namespace

Tensor conv2d(const Tensor& x_in, const Tensor& w_in, const Tensor& b_in, const Conv2dOptions& opt) {
  check_conv_args(x_in, w_in, b_in, opt);
  if (cuda_ops::on_cuda(x_in)) return cuda_ops::conv2d(x_in, w_in, b_in, conv_shape(x_in, w_in, opt));
  Tensor x = x_in.detach().contiguous(), w = w_in.detach().contiguous();
  Tensor b = b_in.defined() ? b_in.detach().contiguous() : Tensor();
  const cpu::Conv2dShape s = conv_shape(x, w, opt);
  Tensor y = Tensor::empty({s.N, s.K, s.P(), s.Q()}, x.dtype());
  dispatch_float(x.dtype(), "conv2d", [&]<class T>() {
    cpu::conv2d_forward<T>(s, x.data<T>(), w.data<T>(), b.defined() ? b.data<T>() : nullptr, y.data<T>());
  });
  // The data gradient of a network's input image is never used: skip it (a whole backward GEMM
  // plus col2im per image for a first conv layer).
  const bool need_gx = x_in.requires_grad();
  return record("conv2d", y, {x_in, w_in, b_in}, [x, w, s, has_b = b.defined(), need_gx](const Tensor& g_in) {
    Tensor g = g_in.contiguous();
    Tensor gx = need_gx ? Tensor::empty(x.shape(), x.dtype()) : Tensor(), gw = Tensor::empty(w.shape(), w.dtype());
    Tensor gb = has_b ? Tensor::empty({s.K}, w.dtype()) : Tensor();
    dispatch_float(x.dtype(), "conv2d_backward", [&]<class T>() {
      if (need_gx) cpu::conv2d_backward_data<T>(s, g.data<T>(), w.data<T>(), gx.data<T>());
      cpu::conv2d_backward_weight<T>(s, x.data<T>(), g.data<T>(), gw.data<T>(), has_b ? gb.data<T>() : nullptr);
    });
    return std::vector<Tensor>{gx, gw, gb};
  });
}

Tensor pad2d(const Tensor& x, int64_t top, int64_t bottom, int64_t left, int64_t right) {
  check_defined("pad2d", x, "input");
  EMBER_CHECK(x.dim() == 4, "pad2d: input must be [N, C, H, W], got ", x.str());
  EMBER_CHECK(top >= 0 && bottom >= 0 && left >= 0 && right >= 0, "pad2d: negative padding");
  // Any device: zeros, then a (strided on the GPU) copy into the interior; the gradient is the interior.
  const int64_t H = x.shape()[2], W = x.shape()[3];
  Tensor y = Tensor::zeros({x.shape()[0], x.shape()[1], H + top + bottom, W + left + right}, x.dtype(), x.device());
  y.slice(2, top, top + H).slice(3, left, left + W).copy_(x.detach());
  return record("pad2d", y, {x}, [=](const Tensor& g) {
    return std::vector<Tensor>{g.slice(2, top, top + H).slice(3, left, left + W).contiguous()};
  });
}

}  // namespace ember
