// Conv2d (with TensorFlow 'SAME' padding), BatchNorm and pooling layers.
#include <cmath>

#include "nn/init.h"
#include "nn/layers.h"

namespace ember::nn {
namespace {

// TF 'SAME' along one axis: (before, after) so that output = ceil(size / stride).
std::pair<int64_t, int64_t> tf_same_pad(int64_t size, int64_t kernel, int64_t stride, int64_t dilation) {
  const int64_t out = (size + stride - 1) / stride;
  const int64_t effective_kernel = (kernel - 1) * dilation + 1;
  const int64_t total = std::max<int64_t>((out - 1) * stride + effective_kernel - size, 0);
  return {total / 2, total - total / 2};
}

}  // namespace

Conv2d::Conv2d(int64_t in, int64_t out, int64_t k, Conv2dArgs a, Generator& gen)
    : Module("Conv2d"), in_channels(in), out_channels(out), kernel_size(k), args(a) {
  EMBER_CHECK(in > 0 && out > 0 && k > 0, "nn::Conv2d: channels and kernel must be positive (in=", in, " out=", out,
              " k=", k, ")");
  EMBER_CHECK(a.groups >= 1 && in % a.groups == 0 && out % a.groups == 0, "nn::Conv2d: groups=", a.groups,
              " must divide in_channels=", in, " and out_channels=", out);
  EMBER_CHECK(!(a.tf_same && a.padding != 0), "nn::Conv2d: tf_same padding computes its own padding; padding=",
              a.padding, " must be 0");
  weight = Tensor::empty({out, in / a.groups, k, k});
  if (a.bias) bias = Tensor::empty({out});
  init::torch_default_(weight, bias, gen);
  register_parameter("weight", &weight);
  if (a.bias) register_parameter("bias", &bias);
}

Tensor Conv2d::forward(const Tensor& x) {
  EMBER_CHECK(x.dim() == 4 && x.shape()[1] == in_channels, "nn::Conv2d(", in_channels, " -> ", out_channels,
              "): input must be [N, ", in_channels, ", H, W], got ", x.str());
  Conv2dOptions o = Conv2dOptions::make(args.stride, args.padding, args.dilation, args.groups);
  if (!args.tf_same) return conv2d(x, weight, bias, o);
  auto [top, bottom] = tf_same_pad(x.shape()[2], kernel_size, args.stride, args.dilation);
  auto [left, right] = tf_same_pad(x.shape()[3], kernel_size, args.stride, args.dilation);
  // The symmetric part goes to the convolution itself; only the odd extra row/column (bottom,
  // right) needs an explicitly padded copy of the input.
  o.pad_h = top;
  o.pad_w = left;
  Tensor xp = (bottom > top || right > left) ? pad2d(x, 0, bottom - top, 0, right - left) : x;
  return conv2d(xp, weight, bias, o);
}

BatchNorm::BatchNorm(int64_t n, int64_t dims, BatchNormArgs a)
    : Module(dims == 2 ? "BatchNorm1d" : "BatchNorm2d"), num_features(n), input_dims(dims), args(a) {
  EMBER_CHECK(n > 0, "nn::BatchNorm: num_features must be positive, got ", n);
  EMBER_CHECK(a.momentum >= 0.0 && a.momentum <= 1.0 && a.eps > 0.0, "nn::BatchNorm: momentum ", a.momentum,
              " must be in [0, 1] and eps ", a.eps, " positive");
  if (a.affine) {
    weight = Tensor::ones({n});
    bias = Tensor::zeros({n});
    register_parameter("weight", &weight);
    register_parameter("bias", &bias);
  }
  running_mean = Tensor::zeros({n});
  running_var = Tensor::ones({n});
  register_buffer("running_mean", &running_mean);
  register_buffer("running_var", &running_var);
}

Tensor BatchNorm::forward(const Tensor& x) {
  EMBER_CHECK(x.dim() == input_dims && x.shape()[1] == num_features, "nn::", type_name(), "(", num_features,
              "): input must be ", input_dims == 2 ? "[N, " : "[N, ", num_features, input_dims == 2 ? "]" : ", H, W]",
              ", got ", x.str());
  return batch_norm(x, weight, bias, running_mean, running_var, is_training(), args.momentum, args.eps, args.fuse_relu);
}

MaxPool2d::MaxPool2d(int64_t k, int64_t stride, int64_t padding)
    : Module("MaxPool2d"), options(Pool2dOptions::make(k, stride, padding)) {}
Tensor MaxPool2d::forward(const Tensor& x) { return max_pool2d(x, options); }

AvgPool2d::AvgPool2d(int64_t k, int64_t stride, int64_t padding, bool count_include_pad)
    : Module("AvgPool2d"), options(Pool2dOptions::make(k, stride, padding)) {
  options.count_include_pad = count_include_pad;
}
Tensor AvgPool2d::forward(const Tensor& x) { return avg_pool2d(x, options); }

AdaptiveAvgPool2d::AdaptiveAvgPool2d(int64_t h, int64_t w) : Module("AdaptiveAvgPool2d"), out_h(h), out_w(w) {
  EMBER_CHECK(h > 0 && w > 0, "nn::AdaptiveAvgPool2d: output size must be positive, got ", h, "x", w);
}
Tensor AdaptiveAvgPool2d::forward(const Tensor& x) { return adaptive_avg_pool2d(x, out_h, out_w); }

}  // namespace ember::nn
