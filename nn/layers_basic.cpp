// Linear, Dropout and the containers (Sequential, Concat).
#include "nn/init.h"
#include "nn/layers.h"

namespace ember::nn {

Linear::Linear(int64_t in, int64_t out, bool with_bias, Generator& gen)
    : Module("Linear"), in_features(in), out_features(out) {
  EMBER_CHECK(in > 0 && out > 0, "nn::Linear: features must be positive, got in=", in, " out=", out);
  weight = Tensor::empty({out, in});
  if (with_bias) bias = Tensor::empty({out});
  init::torch_default_(weight, bias, gen);
  register_parameter("weight", &weight);
  if (with_bias) register_parameter("bias", &bias);
}

Tensor Linear::forward(const Tensor& x) {
  EMBER_CHECK(x.dim() == 2 && x.shape()[1] == in_features, "nn::Linear(", in_features, " -> ", out_features,
              "): input must be [N, ", in_features, "], got ", x.str());
  return linear(x, weight, bias);
}

Dropout::Dropout(double p, uint64_t seed) : Module("Dropout"), p(p), generator(seed) {
  EMBER_CHECK(p >= 0.0 && p < 1.0, "nn::Dropout: p must be in [0, 1), got ", p);
}

Sequential::Sequential(std::initializer_list<ModulePtr> layers) : Module("Sequential") {
  for (const auto& l : layers) push_back(l);
}

Sequential& Sequential::push_back(ModulePtr layer) {
  add_child(std::to_string(children().size()), std::move(layer));
  return *this;
}

Sequential& Sequential::add(const std::string& name, ModulePtr layer) {
  add_child(name, std::move(layer));
  return *this;
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (const auto& [_, layer] : children()) y = (*layer)(y);
  return y;
}

Concat& Concat::add(const std::string& name, ModulePtr branch) {
  add_child(name, std::move(branch));
  return *this;
}

std::vector<Tensor> Concat::forward_many(const std::vector<Tensor>& xs) {
  EMBER_CHECK(xs.size() == children().size(), "nn::Concat: ", children().size(), " branches but ", xs.size(),
              " inputs (one input per branch)");
  std::vector<Tensor> ys;
  for (size_t i = 0; i < xs.size(); ++i) {
    Tensor y = (*children()[i].second)(xs[i]);
    EMBER_CHECK(y.dim() == 2, "nn::Concat: branch '", children()[i].first, "' must output [N, F], got ", y.str());
    ys.push_back(y);
  }
  return {concat(ys, 1)};
}

Tensor Concat::forward(const Tensor& x) { return forward_many({x})[0]; }

}  // namespace ember::nn
