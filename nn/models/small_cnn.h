// SmallCNN: a configurable stack of blocks, each `convs_per_block` x (conv3x3 -> [BN] -> ReLU) then
// maxpool2, global average pooling, and an MLP head. For quick experiments on small images
// (UTKFace, HAM10000 crops). Names: features.{b}.{3i} (conv i of block b), features.{b}.{3i+1} (BN),
// features.{b}.{3i+2} (ReLU), features.{b}.{3n} (pool); with one conv per block: .0, .1, .3.
#pragma once
#include <vector>

#include "nn/layers.h"

namespace ember::nn {

struct SmallCNNConfig {
  int64_t in_channels = 3;
  std::vector<int64_t> channels{32, 64, 128};  // one block per entry
  int64_t convs_per_block = 1;                 // 2 gives VGG-style double-conv blocks
  bool batch_norm = true;
  bool fuse_bn_relu = false;  // BN applies the ReLU itself; the ReLU slot (index 2) is left out
  int64_t hidden = 0;         // 0: classifier is a single Linear
  double dropout = 0.0;       // after the hidden layer (only when hidden > 0)
  int64_t num_classes = 10;
};

class SmallCNN : public Module {
 public:
  explicit SmallCNN(const SmallCNNConfig& config, Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;
  Tensor embed(const Tensor& x) override;  // [N, channels.back()] after global average pooling
  int64_t embedding_width() const { return config.channels.back(); }

  SmallCNNConfig config;
  std::shared_ptr<Sequential> features, classifier;
  std::shared_ptr<AdaptiveAvgPool2d> pool;
};

}  // namespace ember::nn
