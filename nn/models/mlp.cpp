#include "nn/models/mlp.h"

#include <memory>

namespace ember::nn {

MLP::MLP(const MLPConfig& c, Generator& gen) : Sequential("MLP") {
  EMBER_CHECK(c.in_features > 0, "nn::MLP: in_features must be positive, got ", c.in_features);
  EMBER_CHECK(c.out_features > 0 || !c.hidden.empty(), "nn::MLP: needs hidden layers or out_features > 0");
  int64_t width = c.in_features;
  for (int64_t h : c.hidden) {
    // With BN after it, the Linear's bias is redundant (BN subtracts the mean); PyTorch models
    // usually keep it anyway, and so do we, so their state_dicts load.
    push_back(std::make_shared<Linear>(width, h, true, gen));
    if (c.batch_norm) push_back(std::make_shared<BatchNorm1d>(h));
    push_back(std::make_shared<ReLU>());
    if (c.dropout > 0.0) push_back(std::make_shared<Dropout>(c.dropout, gen.next_u64()));
    width = h;
  }
  if (c.out_features > 0) {
    push_back(std::make_shared<Linear>(width, c.out_features, true, gen));
    width = c.out_features;
  }
  out_width_ = width;
}

}  // namespace ember::nn
