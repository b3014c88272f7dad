// What the driver trains: a trunk (any module with embed(), or none for raw features) plus one head
// per target. A head's output is [N, classes] logits for classification or [N] for regression.
// Regression targets are standardised with the training mean/std (so one learning rate suits
// every target) and mapped back for metrics.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "data/config.h"
#include "nn/module.h"
#include "nn/layers.h"

namespace ember::driver {

struct HeadSpec {
  std::string target;
  data::Task task = data::Task::Binary;
  std::vector<std::string> classes;
  double mean = 0, std = 1;  // regression standardisation (train rows)
  std::string regression_loss = "mse";  // mse | l1 | smooth_l1, on the standardised values
  int64_t out_width() const { return task == data::Task::Regression ? 1 : int64_t(classes.size()); }
  bool classification() const { return task != data::Task::Regression; }
};

// trunk.* (optional) then heads.<i>.*: an MLP per target on the trunk's embedding.
class HeadsModel : public nn::Module {
 public:
  HeadsModel(nn::ModulePtr trunk, int64_t embedding_width, const std::vector<HeadSpec>& heads,
             const std::vector<int64_t>& hidden, double dropout, Generator& gen);
  // One output per head. inputs[0] goes through the trunk (or straight to the heads without one).
  std::vector<Tensor> forward_many(const std::vector<Tensor>& inputs) override;
  nn::ModulePtr trunk;
  std::vector<std::shared_ptr<nn::Sequential>> heads;
  std::vector<HeadSpec> specs;
};

// Two-input model for early fusion: projections of tabular features and image embeddings to the
// same width (Linear-BN-ReLU each, so neither representation dominates by size), concat, heads.
class EarlyFusionModel : public nn::Module {
 public:
  EarlyFusionModel(int64_t tabular_width, int64_t image_width, int64_t common_width, const std::vector<HeadSpec>& heads,
                   const std::vector<int64_t>& hidden, double dropout, Generator& gen);
  std::vector<Tensor> forward_many(const std::vector<Tensor>& inputs) override;  // {features, embeddings}
  std::shared_ptr<nn::Sequential> tabular_proj, image_proj;
  std::shared_ptr<HeadsModel> heads;
};

}  // namespace ember::driver
