// MobileNet-v1 1.0 (Howard et al. 2017): a stride-2 3x3 stem conv, 13 depthwise-separable blocks
// (depthwise 3x3 + BN + ReLU6, pointwise 1x1 + BN + ReLU6), global average pool -> 1024-d
// embedding, Linear classifier (1001 classes by default: TF's "background" + ImageNet's 1000).
//
// Names (PyTorch-style indices inside each block, kept fixed whether BN is folded or not):
//   features.0.0 stem conv, features.0.1 BN, features.0.2 ReLU6;
//   features.{i}.0 depthwise, .1 BN, .2 ReLU6, .3 pointwise, .4 BN, .5 ReLU6 for i = 1..13;
//   classifier.weight / classifier.bias.
// folded_bn: BN folded into the convs (conv with bias, BN slots 1 and 4 absent) and TensorFlow
// 'SAME' padding: the layout of the TFLite weights (tools/convert/tflite_mobilenet.py).
// Unfolded, the convs have no bias, padding is PyTorch's symmetric k/2, and BN uses eps 1e-3
// (TensorFlow's MobileNet value).
#pragma once
#include "nn/layers.h"

namespace ember::nn {

struct MobileNetConfig {
  int64_t num_classes = 1001;
  bool folded_bn = false;
};

class MobileNetV1 : public Module {
 public:
  explicit MobileNetV1(const MobileNetConfig& config = {}, Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;
  Tensor embed(const Tensor& x) override;  // [N, 1024]
  static constexpr int64_t kEmbeddingWidth = 1024;

  MobileNetConfig config;
  std::shared_ptr<Sequential> features;
  std::shared_ptr<AdaptiveAvgPool2d> pool;
  std::shared_ptr<Linear> classifier;
};

}  // namespace ember::nn
