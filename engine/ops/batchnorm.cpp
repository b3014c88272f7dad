// batch_norm (optionally fused with ReLU): forward and backward side by side.
// Training normalises with the batch statistics and updates the running statistics in place
// (running_var gets the unbiased batch variance, like PyTorch); eval normalises with the running
// statistics. The loops live in kernels/cpu/batchnorm.h (EMBER_BATCHNORM=ref|fast).
#include <algorithm>

#include "engine/ops.h"
#include "engine/ops/cuda_ops.h"
#include "engine/strided.h"
#include "kernels/cpu/batchnorm.h"

namespace ember {
namespace {

void check_channel_vector(const Tensor& x, const Tensor& v, const char* what) {
  if (!v.defined()) return;
  check_same_dtype("batch_norm", x, v);
  check_same_device("batch_norm", x, v);
  EMBER_CHECK(v.dim() == 1 && v.shape()[0] == x.shape()[1], "batch_norm: ", what, " ", v.str(),
              " must be [C] = [", x.shape()[1], "] for input ", x.str());
}

void check_batch_norm_args(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                           const Tensor& running_var, bool training, double momentum, double eps) {
  check_defined("batch_norm", x, "input");
  check_floating("batch_norm", x);
  EMBER_CHECK(x.dim() >= 2, "batch_norm: input must be [N, C] or [N, C, H, W], got ", x.str());
  check_channel_vector(x, weight, "weight");
  check_channel_vector(x, bias, "bias");
  check_channel_vector(x, running_mean, "running_mean");
  check_channel_vector(x, running_var, "running_var");
  EMBER_CHECK(running_mean.defined() == running_var.defined(),
              "batch_norm: running_mean and running_var must be given together");
  EMBER_CHECK(training || running_mean.defined(), "batch_norm: eval mode needs running_mean and running_var (input ",
              x.str(), ")");
  EMBER_CHECK(eps >= 0 && momentum >= 0 && momentum <= 1, "batch_norm: eps=", eps, " must be >= 0 and momentum=",
              momentum, " in [0, 1]");
  if (training) {
    const int64_t per_channel = x.numel() / std::max<int64_t>(x.shape()[1], 1);
    EMBER_CHECK(per_channel > 1, "batch_norm: training needs more than one value per channel, input ", x.str());
  }
}

// running = (1 - momentum) * running + momentum * batch (variance made unbiased by M / (M - 1)).
template <class T>
void update_running_stats(Tensor& running_mean, Tensor& running_var, const Tensor& mean, const Tensor& var,
                          double momentum, int64_t M) {
  T* rm = running_mean.data<T>();
  T* rv = running_var.data<T>();
  const int64_t sm = running_mean.strides()[0], sv = running_var.strides()[0];
  const T* bm = mean.data<T>();
  const T* bv = var.data<T>();
  const double unbias = double(M) / double(M - 1);
  for (int64_t c = 0; c < mean.numel(); ++c) {
    rm[c * sm] = T((1 - momentum) * double(rm[c * sm]) + momentum * double(bm[c]));
    rv[c * sv] = T((1 - momentum) * double(rv[c * sv]) + momentum * double(bv[c]) * unbias);
  }
}

}  // namespace

Tensor batch_norm(const Tensor& x_in, const Tensor& weight_in, const Tensor& bias_in, Tensor running_mean,
                  Tensor running_var, bool training, double momentum, double eps, bool fuse_relu) {
  check_batch_norm_args(x_in, weight_in, bias_in, running_mean, running_var, training, momentum, eps);
  if (cuda_ops::on_cuda(x_in))
    return cuda_ops::batch_norm(x_in, weight_in, bias_in, running_mean, running_var, training, momentum, eps, fuse_relu);
  check_cpu("batch_norm", x_in);
  cpu::BatchNormShape s;
  s.N = x_in.shape()[0];
  s.C = x_in.shape()[1];
  s.HW = s.N * s.C == 0 ? 0 : x_in.numel() / (s.N * s.C);
  Tensor x = x_in.detach().contiguous();
  Tensor w = weight_in.defined() ? weight_in.detach().contiguous() : Tensor();
  Tensor b = bias_in.defined() ? bias_in.detach().contiguous() : Tensor();
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  // The statistics the output was normalised with: batch ones in training, a snapshot of the
  // running ones in eval (the optimiser step may update the running buffers before backward).
  Tensor mean, var;
  dispatch_float(x.dtype(), "batch_norm", [&]<class T>() {
    const T* wp = w.defined() ? w.data<T>() : nullptr;
    const T* bp = b.defined() ? b.data<T>() : nullptr;
    if (training) {
      mean = Tensor::empty({s.C}, x.dtype());
      var = Tensor::empty({s.C}, x.dtype());
      cpu::batchnorm_forward_train<T>(s, x.data<T>(), wp, bp, eps, fuse_relu, y.data<T>(), mean.data<T>(),
                                      var.data<T>());
      if (running_mean.defined()) update_running_stats<T>(running_mean, running_var, mean, var, momentum, s.count());
    } else {
      mean = running_mean.detach().clone();
      var = running_var.detach().clone();
      cpu::batchnorm_forward_eval<T>(s, x.data<T>(), wp, bp, mean.data<T>(), var.data<T>(), eps, fuse_relu,
                                     y.data<T>());
    }
  });
  const char* op = fuse_relu ? "batch_norm_relu" : "batch_norm";
  return record(op, y, {x_in, weight_in, bias_in},
                [s, x, w, mean, var, eps, training, fuse_relu, y_saved = fuse_relu ? y.detach() : Tensor(),
                 has_b = b.defined()](const Tensor& g_in) {
                  Tensor g = g_in.contiguous();
                  Tensor gx = Tensor::empty(x.shape(), x.dtype());
                  Tensor gw = Tensor::empty({s.C}, x.dtype()), gb = Tensor::empty({s.C}, x.dtype());
                  dispatch_float(x.dtype(), "batch_norm_backward", [&]<class T>() {
                    cpu::batchnorm_backward<T>(s, x.data<T>(), fuse_relu ? y_saved.data<T>() : nullptr, g.data<T>(),
                                               w.defined() ? w.data<T>() : nullptr, mean.data<T>(), var.data<T>(), eps,
                                               training, fuse_relu, gx.data<T>(), gw.data<T>(), gb.data<T>());
                  });
                  return std::vector<Tensor>{gx, w.defined() ? gw : Tensor(), has_b ? gb : Tensor()};
                });
}

}  // namespace ember
