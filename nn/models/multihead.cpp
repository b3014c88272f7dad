#include "nn/models/multihead.h"

#include "nn/models/mlp.h"

namespace ember::nn {

MultiHead::MultiHead(ModulePtr t, const MultiHeadConfig& c, Generator& gen) : Module("MultiHead"), config(c), trunk(t) {
  EMBER_CHECK(trunk != nullptr, "nn::MultiHead: trunk is null");
  EMBER_CHECK(c.embedding_width > 0 && c.gender_classes > 1, "nn::MultiHead: embedding_width (", c.embedding_width,
              ") must be positive and gender_classes (", c.gender_classes, ") at least 2");
  register_module("trunk", trunk);
  auto head = [&](int64_t outputs) {
    MLPConfig m{.in_features = c.embedding_width, .hidden = {}, .out_features = outputs, .dropout = c.dropout};
    if (c.hidden > 0) m.hidden = {c.hidden};
    return std::static_pointer_cast<Sequential>(std::make_shared<MLP>(m, gen));
  };
  age_head = register_module("age_head", head(1));
  gender_head = register_module("gender_head", head(c.gender_classes));
}

MultiHead::Outputs MultiHead::forward_heads(const Tensor& x) {
  Tensor e = trunk->embed(x);
  EMBER_CHECK(e.dim() == 2 && e.shape()[1] == config.embedding_width, "nn::MultiHead: trunk ", trunk->type_name(),
              " embeds to ", e.str(), " but embedding_width is ", config.embedding_width);
  return {(*age_head)(e).flatten(0), (*gender_head)(e)};
}

std::vector<Tensor> MultiHead::forward_many(const std::vector<Tensor>& xs) {
  EMBER_CHECK(xs.size() == 1, "nn::MultiHead: expects 1 input, got ", xs.size());
  Outputs o = forward_heads(xs[0]);
  return {o.age, o.gender_logits};
}

}  // namespace ember::nn
