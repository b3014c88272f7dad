// MultiHead: one shared trunk, two heads on its embedding: age regression ([N], one value per
// sample) and gender classification ([N, classes] logits). forward_many({x}) returns both.
// Names: trunk.* (the backbone's own names), age_head.*, gender_head.*; freeze("trunk") trains
// the heads only.
#pragma once
#include "nn/layers.h"

namespace ember::nn {

struct MultiHeadConfig {
  int64_t embedding_width = 0;  // what trunk->embed(x) returns per sample
  int64_t hidden = 0;           // 0: each head is a single Linear
  double dropout = 0.0;         // inside each head, after its hidden ReLU
  int64_t gender_classes = 2;
};

class MultiHead : public Module {
 public:
  MultiHead(ModulePtr trunk, const MultiHeadConfig& config, Generator& gen = default_generator());
  struct Outputs {
    Tensor age;            // [N]
    Tensor gender_logits;  // [N, gender_classes]
  };
  Outputs forward_heads(const Tensor& x);
  std::vector<Tensor> forward_many(const std::vector<Tensor>& xs) override;  // {age, gender_logits}
  Tensor embed(const Tensor& x) override { return trunk->embed(x); }

  MultiHeadConfig config;
  ModulePtr trunk;
  std::shared_ptr<Sequential> age_head, gender_head;
};

}  // namespace ember::nn
