// Pooling ops: max (argmax indices saved for the backward), average, adaptive and global average.
// Forward and backward side by side; the loops live in kernels/cpu/pool.h (EMBER_MAX_POOL2D=ref|fast, ...).
#include "engine/ops.h"
#include "engine/ops/cuda_ops.h"
#include "engine/strided.h"
#include "kernels/cpu/pool.h"

namespace ember {
namespace {

// Device-neutral checks; each op checks the device itself where its CPU path starts (max_pool2d,
// avg_pool2d and adaptive_avg_pool2d first hand CUDA tensors to engine/ops/cuda_ops.h).
void check_pool_input(const char* op, const Tensor& x) {
  check_defined(op, x, "input");
  check_floating(op, x);
  EMBER_CHECK(x.dim() == 4, op, ": input must be [N, C, H, W], got ", x.str());
}

cpu::Pool2dShape pool_shape(const char* op, const Tensor& x, const Pool2dOptions& o) {
  check_pool_input(op, x);
  cpu::Pool2dShape s;
  s.N = x.shape()[0];
  s.C = x.shape()[1];
  s.H = x.shape()[2];
  s.W = x.shape()[3];
  s.kernel_h = o.kernel_h;
  s.kernel_w = o.kernel_w;
  s.stride_h = o.stride_h;
  s.stride_w = o.stride_w;
  s.pad_h = o.pad_h;
  s.pad_w = o.pad_w;
  s.count_include_pad = o.count_include_pad;
  EMBER_CHECK(o.kernel_h > 0 && o.kernel_w > 0 && o.stride_h > 0 && o.stride_w > 0, op, ": kernel ", o.kernel_h, "x",
              o.kernel_w, " and stride ", o.stride_h, "x", o.stride_w, " must be positive");
  // Like PyTorch: padding at most half the kernel, so every window holds at least one real value.
  EMBER_CHECK(o.pad_h >= 0 && o.pad_w >= 0 && 2 * o.pad_h <= o.kernel_h && 2 * o.pad_w <= o.kernel_w, op,
              ": padding ", o.pad_h, "x", o.pad_w, " must be non-negative and at most half the kernel ", o.kernel_h,
              "x", o.kernel_w);
  // Checked before P()/Q(): C++ division truncates toward zero, so a too-small input would give P = 1.
  EMBER_CHECK(s.H + 2 * s.pad_h >= s.kernel_h && s.W + 2 * s.pad_w >= s.kernel_w, op, ": input ", x.str(),
              " is too small for a ", o.kernel_h, "x", o.kernel_w, " window with padding ", o.pad_h, "x", o.pad_w);
  return s;
}

}  // namespace

Tensor max_pool2d(const Tensor& x_in, const Pool2dOptions& opt) {
  const cpu::Pool2dShape s = pool_shape("max_pool2d", x_in, opt);
  if (cuda_ops::on_cuda(x_in)) return cuda_ops::max_pool2d(x_in, s);
  check_cpu("max_pool2d", x_in);
  Tensor x = x_in.detach().contiguous();
  Tensor y = Tensor::empty({s.N, s.C, s.P(), s.Q()}, x.dtype());
  Tensor argmax = Tensor::empty({s.N, s.C, s.P(), s.Q()}, DType::Int64);
  dispatch_float(x.dtype(), "max_pool2d", [&]<class T>() {
    cpu::max_pool2d_forward<T>(s, x.data<T>(), y.data<T>(), argmax.data<int64_t>());
  });
  // The backward needs only the indices, not the input: the gradient goes to each window's argmax.
  return record("max_pool2d", y, {x_in}, [s, argmax, in_shape = x.shape(), dtype = x.dtype()](const Tensor& g_in) {
    Tensor g = g_in.contiguous();
    Tensor gx = Tensor::empty(in_shape, dtype);
    dispatch_float(dtype, "max_pool2d_backward", [&]<class T>() {
      cpu::max_pool2d_backward<T>(s, g.data<T>(), argmax.data<int64_t>(), gx.data<T>());
    });
    return std::vector<Tensor>{gx};
  });
}

Tensor avg_pool2d(const Tensor& x_in, const Pool2dOptions& opt) {
  const cpu::Pool2dShape s = pool_shape("avg_pool2d", x_in, opt);
  if (cuda_ops::on_cuda(x_in)) return cuda_ops::avg_pool2d(x_in, s);
  check_cpu("avg_pool2d", x_in);
  Tensor x = x_in.detach().contiguous();
  Tensor y = Tensor::empty({s.N, s.C, s.P(), s.Q()}, x.dtype());
  dispatch_float(x.dtype(), "avg_pool2d", [&]<class T>() { cpu::avg_pool2d_forward<T>(s, x.data<T>(), y.data<T>()); });
  return record("avg_pool2d", y, {x_in}, [s, in_shape = x.shape(), dtype = x.dtype()](const Tensor& g_in) {
    Tensor g = g_in.contiguous();
    Tensor gx = Tensor::empty(in_shape, dtype);
    dispatch_float(dtype, "avg_pool2d_backward",
                   [&]<class T>() { cpu::avg_pool2d_backward<T>(s, g.data<T>(), gx.data<T>()); });
    return std::vector<Tensor>{gx};
  });
}

Tensor adaptive_avg_pool2d(const Tensor& x_in, int64_t out_h, int64_t out_w) {
  check_pool_input("adaptive_avg_pool2d", x_in);
  EMBER_CHECK(out_h > 0 && out_w > 0, "adaptive_avg_pool2d: output size ", out_h, "x", out_w,
              " must be positive (input ", x_in.str(), ")");
  const int64_t N = x_in.shape()[0], C = x_in.shape()[1], H = x_in.shape()[2], W = x_in.shape()[3];
  EMBER_CHECK(H > 0 && W > 0, "adaptive_avg_pool2d: input ", x_in.str(), " has an empty spatial size");
  if (cuda_ops::on_cuda(x_in)) return cuda_ops::adaptive_avg_pool2d(x_in, out_h, out_w);
  check_cpu("adaptive_avg_pool2d", x_in);
  Tensor x = x_in.detach().contiguous();
  Tensor y = Tensor::empty({N, C, out_h, out_w}, x.dtype());
  dispatch_float(x.dtype(), "adaptive_avg_pool2d", [&]<class T>() {
    cpu::adaptive_avg_pool2d_forward<T>(N * C, H, W, out_h, out_w, x.data<T>(), y.data<T>());
  });
  return record("adaptive_avg_pool2d", y, {x_in},
                [=, in_shape = x.shape(), dtype = x.dtype()](const Tensor& g_in) {
                  Tensor g = g_in.contiguous();
                  Tensor gx = Tensor::empty(in_shape, dtype);
                  dispatch_float(dtype, "adaptive_avg_pool2d_backward", [&]<class T>() {
                    cpu::adaptive_avg_pool2d_backward<T>(N * C, H, W, out_h, out_w, g.data<T>(), gx.data<T>());
                  });
                  return std::vector<Tensor>{gx};
                });
}

Tensor global_avg_pool2d(const Tensor& x) {
  check_pool_input("global_avg_pool2d", x);
  // One bin covering the plane (on either device); the [N, C, 1, 1] -> [N, C] view is differentiable.
  return adaptive_avg_pool2d(x, 1, 1).view({x.shape()[0], x.shape()[1]});
}

}  // namespace ember
