// VGG16 and VGG16-BN with torchvision's exact module layout, so torchvision state_dicts load by
// name: features.N (13 convs, ReLUs, 5 max pools; BN after each conv in the BN variant),
// avgpool = AdaptiveAvgPool2d(7, 7), classifier.0/3/6 Linear with ReLU + Dropout at 1-2 and 4-5.
#pragma once
#include "nn/layers.h"

namespace ember::nn {

// Where embed() cuts the network.
enum class VggCut {
  Pool,  // after features + avgpool, flattened: 512*7*7 = 25088
  Fc7,   // after classifier.4 (the second FC's ReLU): classifier_hidden (4096)
};

struct VGGConfig {
  int64_t num_classes = 1000;
  bool batch_norm = false;
  double dropout = 0.5;
  int64_t classifier_hidden = 4096;  // fc6/fc7 width (4096 in VGG16; smaller for tests/experiments)
  VggCut cut = VggCut::Pool;  // what embed() returns
  // torchvision's init (conv kaiming_normal fan_out, Linear N(0, 0.01), biases 0). false keeps
  // the plain PyTorch layer defaults (cheaper: one pass over the 138M weights instead of two).
  bool torchvision_init = true;
};

// torchvision's VGG weight init applied to every Conv2d and Linear under `model`.
void torchvision_vgg_init(Module& model, Generator& gen);

class VGG16 : public Module {
 public:
  explicit VGG16(const VGGConfig& config = {}, Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;
  Tensor embed(const Tensor& x) override { return embed_at(x, config.cut); }
  Tensor embed_at(const Tensor& x, VggCut cut);
  int64_t embedding_width() const { return config.cut == VggCut::Pool ? 512 * 7 * 7 : config.classifier_hidden; }

  VGGConfig config;
  std::shared_ptr<Sequential> features, classifier;
  std::shared_ptr<AdaptiveAvgPool2d> avgpool;
};

}  // namespace ember::nn
