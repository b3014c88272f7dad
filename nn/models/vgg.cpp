#include "nn/models/vgg.h"

#include <cmath>
#include <optional>

#include "nn/init.h"

namespace ember::nn {
namespace {

// torchvision cfg "D": conv output channels, 0 = 2x2 max pool.
constexpr int64_t kVgg16Plan[] = {64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0};

}  // namespace

void torchvision_vgg_init(Module& model, Generator& gen) {
  for (auto& [_, m] : model.named_modules()) {
    if (auto* conv = dynamic_cast<Conv2d*>(m)) {
      init::kaiming_normal_(conv->weight, gen, 0.0, init::FanMode::FanOut, init::Nonlinearity::ReLU);
      if (conv->bias.defined()) conv->bias.zero_();
    } else if (auto* fc = dynamic_cast<Linear*>(m)) {
      init::normal_(fc->weight, 0.0, 0.01, gen);
      if (fc->bias.defined()) fc->bias.zero_();
    }
  }
}

VGG16::VGG16(const VGGConfig& c, Generator& gen) : Module(c.batch_norm ? "VGG16-BN" : "VGG16"), config(c) {
  EMBER_CHECK(c.num_classes > 0 && c.classifier_hidden > 0, "nn::VGG16: num_classes (", c.num_classes,
              ") and classifier_hidden (", c.classifier_hidden, ") must be positive");
  features = register_module("features", std::make_shared<Sequential>());
  // torchvision's init overwrites every conv and Linear weight and bias, so the layers' own
  // default draws are skipped (half the construction time for 138M weights).
  std::optional<init::DeferDefaultInit> defer;
  if (c.torchvision_init) defer.emplace();
  int64_t in = 3;
  for (int64_t item : kVgg16Plan) {
    if (item == 0) {
      features->push_back(std::make_shared<MaxPool2d>(2, 2));
      continue;
    }
    features->push_back(std::make_shared<Conv2d>(in, item, 3, Conv2dArgs{.padding = 1}, gen));
    if (c.batch_norm) features->push_back(std::make_shared<BatchNorm2d>(item));
    features->push_back(std::make_shared<ReLU>());
    in = item;
  }
  avgpool = register_module("avgpool", std::make_shared<AdaptiveAvgPool2d>(7, 7));
  classifier = register_module("classifier", std::make_shared<Sequential>());
  classifier->push_back(std::make_shared<Linear>(512 * 7 * 7, c.classifier_hidden, true, gen));
  classifier->push_back(std::make_shared<ReLU>());
  classifier->push_back(std::make_shared<Dropout>(c.dropout, gen.next_u64()));
  classifier->push_back(std::make_shared<Linear>(c.classifier_hidden, c.classifier_hidden, true, gen));
  classifier->push_back(std::make_shared<ReLU>());
  classifier->push_back(std::make_shared<Dropout>(c.dropout, gen.next_u64()));
  classifier->push_back(std::make_shared<Linear>(c.classifier_hidden, c.num_classes, true, gen));
  if (c.torchvision_init) {
    defer.reset();
    torchvision_vgg_init(*this, gen);
  }
}

Tensor VGG16::embed_at(const Tensor& x, VggCut cut) {
  Tensor h = (*avgpool)((*features)(x)).flatten(1);
  if (cut == VggCut::Pool) return h;
  for (size_t i = 0; i < 5; ++i) h = (*(*classifier)[i])(h);  // fc6, relu, dropout, fc7, relu
  return h;
}

Tensor VGG16::forward(const Tensor& x) {
  Tensor h = embed_at(x, VggCut::Fc7);
  for (size_t i = 5; i < classifier->size(); ++i) h = (*(*classifier)[i])(h);
  return h;
}

}  // namespace ember::nn
