#include "nn/models/fusion.h"

#include "nn/models/mlp.h"

namespace ember::nn {
namespace {

// Image branch: backbone->embed (when given), then the projection.
class ImageBranch : public Module {
 public:
  ImageBranch(ModulePtr backbone, std::shared_ptr<Sequential> proj) : Module("ImageBranch"), backbone_(backbone), proj_(proj) {
    if (backbone_) register_module("backbone", backbone_);
    register_module("proj", proj_);
  }
  Tensor forward(const Tensor& x) override { return (*proj_)(backbone_ ? backbone_->embed(x) : x); }

 private:
  ModulePtr backbone_;
  std::shared_ptr<Sequential> proj_;
};

std::shared_ptr<Sequential> projection(int64_t in, int64_t width, bool bn, Generator& gen) {
  auto p = std::make_shared<Sequential>();
  p->push_back(std::make_shared<Linear>(in, width, true, gen));
  if (bn) p->push_back(std::make_shared<BatchNorm1d>(width));
  p->push_back(std::make_shared<ReLU>());
  return p;
}

}  // namespace

Fusion::Fusion(const FusionConfig& c, Generator& gen, ModulePtr image_backbone) : Module("Fusion"), config(c) {
  EMBER_CHECK(c.tabular_features > 0 && c.image_features > 0 && c.common_width > 0 && c.num_classes > 0,
              "nn::Fusion: tabular_features (", c.tabular_features, "), image_features (", c.image_features,
              "), common_width (", c.common_width, ") and num_classes (", c.num_classes, ") must be positive");
  auto tabular = std::make_shared<Sequential>();
  int64_t tab_width = c.tabular_features;
  if (!c.tabular_hidden.empty()) {
    auto mlp = std::make_shared<MLP>(MLPConfig{.in_features = c.tabular_features, .hidden = c.tabular_hidden}, gen);
    tab_width = mlp->output_width();
    tabular->add("mlp", mlp);
  }
  tabular->add("proj", projection(tab_width, c.common_width, c.batch_norm, gen));
  auto image = std::make_shared<ImageBranch>(image_backbone, projection(c.image_features, c.common_width, c.batch_norm, gen));
  fuse = register_module("fuse", std::make_shared<Concat>());
  fuse->add("tabular", tabular).add("image", image);
  MLPConfig h{.in_features = 2 * c.common_width, .hidden = c.head_hidden, .out_features = c.num_classes,
              .dropout = c.dropout};
  head = register_module("head", std::static_pointer_cast<Sequential>(std::make_shared<MLP>(h, gen)));
}

Tensor Fusion::fused(const Tensor& tabular, const Tensor& image) { return fuse->call_many({tabular, image})[0]; }

std::vector<Tensor> Fusion::forward_many(const std::vector<Tensor>& xs) {
  EMBER_CHECK(xs.size() == 2, "nn::Fusion: expects {tabular, image}, got ", xs.size(), " input(s)");
  return {(*head)(fused(xs[0], xs[1]))};
}

Tensor Fusion::forward(const Tensor&) {
  throw Error("nn::Fusion: takes two inputs {tabular, image}; call call_many({tabular, image})");
}

}  // namespace ember::nn
