#include "nn/models/small_cnn.h"

#include "nn/models/mlp.h"

namespace ember::nn {

SmallCNN::SmallCNN(const SmallCNNConfig& c, Generator& gen) : Module("SmallCNN"), config(c) {
  EMBER_CHECK(!c.channels.empty() && c.in_channels > 0 && c.num_classes > 0 && c.convs_per_block > 0,
              "nn::SmallCNN: needs at least one block, in_channels > 0, num_classes > 0 and convs_per_block > 0");
  features = register_module("features", std::make_shared<Sequential>());
  int64_t in = c.in_channels;
  for (int64_t out : c.channels) {
    auto block = std::make_shared<Sequential>();
    for (int64_t i = 0; i < c.convs_per_block; ++i) {
      const std::string at = std::to_string(3 * i);
      block->add(at, std::make_shared<Conv2d>(i == 0 ? in : out, out, 3, Conv2dArgs{.padding = 1, .bias = !c.batch_norm}, gen));
      if (c.batch_norm)
        block->add(std::to_string(3 * i + 1), std::make_shared<BatchNorm2d>(out, BatchNormArgs{.fuse_relu = c.fuse_bn_relu}));
      if (!(c.batch_norm && c.fuse_bn_relu)) block->add(std::to_string(3 * i + 2), std::make_shared<ReLU>());
    }
    block->add(std::to_string(3 * c.convs_per_block), std::make_shared<MaxPool2d>(2));
    features->push_back(block);
    in = out;
  }
  pool = register_module("pool", std::make_shared<AdaptiveAvgPool2d>(1, 1));
  MLPConfig head{.in_features = in, .hidden = {}, .out_features = c.num_classes};
  if (c.hidden > 0) head.hidden = {c.hidden};
  head.dropout = c.dropout;
  classifier = register_module("classifier", std::static_pointer_cast<Sequential>(std::make_shared<MLP>(head, gen)));
}

Tensor SmallCNN::embed(const Tensor& x) { return (*pool)((*features)(x)).flatten(1); }

Tensor SmallCNN::forward(const Tensor& x) { return (*classifier)(embed(x)); }

}  // namespace ember::nn
