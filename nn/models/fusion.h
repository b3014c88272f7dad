// Fusion: a two-branch model for image + tabular data (HAM10000: lesion photo + age/sex/site).
//   fuse.tabular: MLP on the tabular features, then a projection to `common_width`;
//   fuse.image:   optional backbone (its embed()), then a projection to `common_width`;
//   head:         MLP on the concatenation (2 * common_width) -> num_classes.
// Each projection is Linear -> BatchNorm1d -> ReLU: equal widths and per-feature normalisation
// keep the 1024-d image embedding from drowning out a handful of tabular columns.
// forward_many({tabular [N, F], image}) where image is [N, image_features] without a backbone,
// or the backbone's input (e.g. [N, 3, H, W]) with one. freeze("fuse.image.backbone").
#pragma once
#include <vector>

#include "nn/layers.h"

namespace ember::nn {

struct FusionConfig {
  int64_t tabular_features = 0;
  std::vector<int64_t> tabular_hidden{32};
  int64_t image_features = 0;  // width of the image embedding (the backbone's, when one is given)
  int64_t common_width = 64;
  bool batch_norm = true;  // in the projections
  std::vector<int64_t> head_hidden{64};
  double dropout = 0.0;  // in the head
  int64_t num_classes = 2;
};

class Fusion : public Module {
 public:
  explicit Fusion(const FusionConfig& config, Generator& gen = default_generator(), ModulePtr image_backbone = nullptr);
  std::vector<Tensor> forward_many(const std::vector<Tensor>& xs) override;  // {logits}
  Tensor forward(const Tensor& x) override;  // rejects: Fusion needs two inputs
  // The fused representation before the head: [N, 2 * common_width].
  Tensor fused(const Tensor& tabular, const Tensor& image);

  FusionConfig config;
  std::shared_ptr<Concat> fuse;
  std::shared_ptr<Sequential> head;
};

}  // namespace ember::nn
