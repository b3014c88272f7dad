// The standard layers. Each mirrors its torch.nn namesake: same parameter and buffer names
// (weight, bias, running_mean, running_var), same shapes, same default initialisation, so a
// PyTorch state_dict loads into the equivalent ember model unchanged.
// Implementations: nn/layers_basic.cpp (Linear, activations, Dropout, Flatten, containers) and
// nn/layers_conv.cpp (Conv2d, BatchNorm, pooling).
#pragma once
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "engine/rng.h"
#include "nn/module.h"

namespace ember::nn {

// y = x W^T + b; x [N, in]. weight [out, in], bias [out].
class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true, Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;
  int64_t in_features, out_features;
  Tensor weight, bias;
};

struct Conv2dArgs {
  int64_t stride = 1, padding = 0, dilation = 1, groups = 1;
  bool bias = true;
  // TensorFlow 'SAME': output = ceil(input / stride), and when the total padding is odd the extra
  // row/column goes at the bottom/right. Needed to reproduce TF-trained weights (MobileNet).
  bool tf_same = false;
};

// x [N, C, H, W], weight [out, in/groups, k, k], bias [out].
class Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, Conv2dArgs args = {},
         Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;
  int64_t in_channels, out_channels, kernel_size;
  Conv2dArgs args;
  Tensor weight, bias;
};

struct BatchNormArgs {
  double eps = 1e-5, momentum = 0.1;
  bool affine = true;
  bool fuse_relu = false;  // apply ReLU inside the same kernel (no separate ReLU module needed)
};

// Training: batch statistics, running stats updated; eval: running stats.
// weight (gamma, 1s), bias (beta, 0s) when affine; buffers running_mean (0s), running_var (1s).
class BatchNorm : public Module {
 public:
  BatchNorm(int64_t num_features, int64_t input_dims, BatchNormArgs args = {});
  Tensor forward(const Tensor& x) override;
  int64_t num_features, input_dims;  // input_dims: 2 ([N, C]) or 4 ([N, C, H, W])
  BatchNormArgs args;
  Tensor weight, bias, running_mean, running_var;
};
class BatchNorm1d : public BatchNorm {  // [N, C]
 public:
  explicit BatchNorm1d(int64_t num_features, BatchNormArgs args = {}) : BatchNorm(num_features, 2, args) {}
};
class BatchNorm2d : public BatchNorm {  // [N, C, H, W]
 public:
  explicit BatchNorm2d(int64_t num_features, BatchNormArgs args = {}) : BatchNorm(num_features, 4, args) {}
};

class ReLU : public Module {
 public:
  ReLU() : Module("ReLU") {}
  Tensor forward(const Tensor& x) override { return relu(x); }
};
class ReLU6 : public Module {
 public:
  ReLU6() : Module("ReLU6") {}
  Tensor forward(const Tensor& x) override { return relu6(x); }
};
class LeakyReLU : public Module {
 public:
  explicit LeakyReLU(double negative_slope = 0.01) : Module("LeakyReLU"), negative_slope(negative_slope) {}
  Tensor forward(const Tensor& x) override { return leaky_relu(x, negative_slope); }
  double negative_slope;
};
class Identity : public Module {
 public:
  Identity() : Module("Identity") {}
  Tensor forward(const Tensor& x) override { return x; }
};

class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(int64_t kernel_size, int64_t stride = -1, int64_t padding = 0);
  Tensor forward(const Tensor& x) override;
  Pool2dOptions options;
};
class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(int64_t kernel_size, int64_t stride = -1, int64_t padding = 0, bool count_include_pad = true);
  Tensor forward(const Tensor& x) override;
  Pool2dOptions options;
};
// Output [N, C, out_h, out_w] with PyTorch's bin rule (start = floor(i*H/out), end = ceil((i+1)*H/out)).
class AdaptiveAvgPool2d : public Module {
 public:
  AdaptiveAvgPool2d(int64_t out_h, int64_t out_w);
  Tensor forward(const Tensor& x) override;
  int64_t out_h, out_w;
};

// Inverted dropout with its own seeded Generator, so masks are reproducible per module and do
// not depend on what else drew random numbers. Identity in eval mode.
class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5, uint64_t seed = 0x0d70);
  Tensor forward(const Tensor& x) override { return dropout(x, p, is_training(), generator); }
  double p;
  Generator generator;
};

// Collapses dims start..end into one (default: everything after the batch dim).
class Flatten : public Module {
 public:
  explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1) : Module("Flatten"), start_dim(start_dim), end_dim(end_dim) {}
  Tensor forward(const Tensor& x) override { return x.flatten(start_dim, end_dim); }
  int64_t start_dim, end_dim;
};

// Runs children in order. push_back names a child by its position (0, 1, 2, ... like PyTorch);
// add() takes an explicit name (used to keep PyTorch's indices when a layer is left out).
class Sequential : public Module {
 public:
  Sequential() : Module("Sequential") {}
  Sequential(std::initializer_list<ModulePtr> layers);
  Sequential& push_back(ModulePtr layer);
  Sequential& add(const std::string& name, ModulePtr layer);
  Tensor forward(const Tensor& x) override;
  size_t size() const { return children().size(); }
  ModulePtr operator[](size_t i) const { return children().at(i).second; }

 protected:
  explicit Sequential(std::string type_name) : Module(std::move(type_name)) {}
};

// Multimodal fusion block: branch i runs on input i, outputs ([N, F_i]) are concatenated on dim 1.
class Concat : public Module {
 public:
  Concat() : Module("Concat") {}
  Concat& add(const std::string& name, ModulePtr branch);
  std::vector<Tensor> forward_many(const std::vector<Tensor>& xs) override;
  Tensor forward(const Tensor& x) override;  // only when there is exactly one branch
};

}  // namespace ember::nn
