#include "apps/driver/heads.h"

#include "nn/models/mlp.h"

namespace ember::driver {

HeadsModel::HeadsModel(nn::ModulePtr trunk_in, int64_t width, const std::vector<HeadSpec>& specs_in,
                       const std::vector<int64_t>& hidden, double dropout, Generator& gen)
    : Module("HeadsModel"), trunk(std::move(trunk_in)), specs(specs_in) {
  if (trunk) register_module("trunk", trunk);
  auto list = std::make_shared<nn::Sequential>();
  for (size_t i = 0; i < specs.size(); ++i) {
    nn::MLPConfig cfg;
    cfg.in_features = width;
    cfg.hidden = hidden;
    cfg.out_features = specs[i].out_width();
    cfg.dropout = dropout;
    auto head = std::make_shared<nn::MLP>(cfg, gen);
    heads.push_back(head);
    list->add(std::to_string(i), head);
  }
  register_module("heads", list);
}

std::vector<Tensor> HeadsModel::forward_many(const std::vector<Tensor>& inputs) {
  EMBER_CHECK(!inputs.empty(), "HeadsModel: no input");
  Tensor z = trunk ? trunk->embed(inputs[0]) : inputs[0];
  std::vector<Tensor> outs;
  for (size_t i = 0; i < heads.size(); ++i) {
    Tensor o = (*heads[i])(z);
    outs.push_back(specs[i].classification() ? o : o.reshape({o.shape()[0]}));
  }
  return outs;
}

EarlyFusionModel::EarlyFusionModel(int64_t tab_w, int64_t img_w, int64_t common, const std::vector<HeadSpec>& specs,
                                   const std::vector<int64_t>& hidden, double dropout, Generator& gen)
    : Module("EarlyFusionModel") {
  auto proj = [&](int64_t in) {
    return std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
        std::make_shared<nn::Linear>(in, common, true, gen), std::make_shared<nn::BatchNorm1d>(common),
        std::make_shared<nn::ReLU>()});
  };
  tabular_proj = register_module("tabular_proj", proj(tab_w));
  image_proj = register_module("image_proj", proj(img_w));
  heads = register_module("head", std::make_shared<HeadsModel>(nullptr, 2 * common, specs, hidden, dropout, gen));
}

std::vector<Tensor> EarlyFusionModel::forward_many(const std::vector<Tensor>& in) {
  EMBER_CHECK(in.size() == 2, "EarlyFusionModel: expected {features, embeddings}, got ", in.size(), " inputs");
  Tensor z = concat({(*tabular_proj)(in[0]), (*image_proj)(in[1])}, 1);
  return heads->call_many({z});
}

}  // namespace ember::driver
