#include "nn/models/mobilenet.h"

namespace ember::nn {
namespace {

struct BlockSpec {
  int64_t stride, out_channels;
};
constexpr BlockSpec kBlocks[13] = {{1, 64},  {2, 128}, {1, 128}, {2, 256}, {1, 256}, {2, 512},  {1, 512},
                                   {1, 512}, {1, 512}, {1, 512}, {1, 512}, {2, 1024}, {1, 1024}};

// conv (+ BN unless folded) + ReLU6, placed at slots conv_slot, conv_slot+1, conv_slot+2.
void add_conv_unit(Sequential& block, int conv_slot, int64_t in, int64_t out, int64_t kernel, int64_t stride,
                   int64_t groups, bool folded, Generator& gen) {
  Conv2dArgs args{.stride = stride, .padding = folded ? 0 : kernel / 2, .groups = groups, .bias = folded, .tf_same = folded};
  block.add(std::to_string(conv_slot), std::make_shared<Conv2d>(in, out, kernel, args, gen));
  if (!folded) block.add(std::to_string(conv_slot + 1), std::make_shared<BatchNorm2d>(out, BatchNormArgs{.eps = 1e-3}));
  block.add(std::to_string(conv_slot + 2), std::make_shared<ReLU6>());
}

}  // namespace

MobileNetV1::MobileNetV1(const MobileNetConfig& c, Generator& gen)
    : Module(c.folded_bn ? "MobileNetV1-folded" : "MobileNetV1"), config(c) {
  EMBER_CHECK(c.num_classes > 0, "nn::MobileNetV1: num_classes must be positive, got ", c.num_classes);
  features = register_module("features", std::make_shared<Sequential>());
  auto stem = std::make_shared<Sequential>();
  add_conv_unit(*stem, 0, 3, 32, 3, 2, 1, c.folded_bn, gen);
  features->push_back(stem);
  int64_t in = 32;
  for (const BlockSpec& b : kBlocks) {
    auto block = std::make_shared<Sequential>();
    add_conv_unit(*block, 0, in, in, 3, b.stride, in, c.folded_bn, gen);        // depthwise
    add_conv_unit(*block, 3, in, b.out_channels, 1, 1, 1, c.folded_bn, gen);   // pointwise
    features->push_back(block);
    in = b.out_channels;
  }
  pool = register_module("pool", std::make_shared<AdaptiveAvgPool2d>(1, 1));
  classifier = register_module("classifier", std::make_shared<Linear>(kEmbeddingWidth, c.num_classes, true, gen));
}

Tensor MobileNetV1::embed(const Tensor& x) { return (*pool)((*features)(x)).flatten(1); }

Tensor MobileNetV1::forward(const Tensor& x) { return (*classifier)(embed(x)); }

}  // namespace ember::nn
