// SmallCNN: a configurable stack of conv3x3 -> [BN] -> ReLU -> maxpool2 blocks, global average
// pooling, and an MLP head. For quick experiments on small images (UTKFace, HAM10000 crops).
// Names: features.{b}.0 (conv), features.{b}.1 (BN), features.{b}.3 (pool), classifier.*.
#pragma once
#include <vector>

#include "nn/layers.h"

namespace ember::nn {

struct SmallCNNConfig {
  int64_t in_channels = 3;
  std::vector<int64_t> channels{32, 64, 128};  // one block per entry
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
