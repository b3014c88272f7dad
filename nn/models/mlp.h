// MLP: Linear -> [BatchNorm1d] -> ReLU -> [Dropout] per hidden width, then a final Linear.
// It is a Sequential, so names are PyTorch's: 0.weight, 1.running_mean, ...
#pragma once
#include <vector>

#include "nn/layers.h"

namespace ember::nn {

struct MLPConfig {
  int64_t in_features = 0;
  std::vector<int64_t> hidden;  // widths of the hidden layers, in order
  int64_t out_features = 0;     // 0: no final Linear (the MLP ends at its last hidden block)
  bool batch_norm = false;
  double dropout = 0.0;  // after each hidden block's ReLU; 0 adds no Dropout module
};

class MLP : public Sequential {
 public:
  explicit MLP(const MLPConfig& config, Generator& gen = default_generator());
  int64_t output_width() const { return out_width_; }

 private:
  int64_t out_width_ = 0;
};

}  // namespace ember::nn
