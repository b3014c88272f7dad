// Adam and AdamW following torch.optim.Adam / AdamW (1.13, single-tensor path):
//   t += 1
//   AdamW: w = w * (1 - lr * wd)          Adam: g = g + wd * w   (L2)
//   m = beta1 * m + (1 - beta1) * g
//   v = beta2 * v + (1 - beta2) * g * g
//   vmax = max(vmax, v)                    (amsgrad only; used instead of v below)
//   denom = sqrt(v) / sqrt(1 - beta2^t) + eps
//   w = w - (lr / (1 - beta1^t)) * m / denom
#include <cmath>
#include <map>

#include "engine/ops/cuda_ops.h"
#include "engine/strided.h"
#include "nn/optim.h"

namespace ember {

Adam::Adam(std::vector<ParamGroup> groups, AdamOptions options) : Adam("adam", std::move(groups), options, false) {}

Adam::Adam(std::string kind, std::vector<ParamGroup> groups, AdamOptions options, bool decoupled)
    : Optimizer(std::move(kind), std::move(groups)), opt_(options), decoupled_weight_decay_(decoupled) {
  EMBER_CHECK(opt_.beta1 >= 0.0 && opt_.beta1 < 1.0 && opt_.beta2 >= 0.0 && opt_.beta2 < 1.0, this->kind(),
              ": betas (", opt_.beta1, ", ", opt_.beta2, ") must lie in [0, 1)");
  EMBER_CHECK(opt_.eps >= 0.0, this->kind(), ": eps ", opt_.eps, " must be >= 0");
}

AdamW::AdamW(std::vector<ParamGroup> groups, AdamOptions options) : Adam("adamw", std::move(groups), options, true) {}

nlohmann::json Adam::hyperparameters() const {
  return {{"beta1", opt_.beta1}, {"beta2", opt_.beta2}, {"eps", opt_.eps}, {"amsgrad", opt_.amsgrad},
          {"decoupled_weight_decay", decoupled_weight_decay_}};
}

namespace {
// The parameter's state buffer `name`, zeros on its device at the first step.
Tensor state_buffer(const Tensor& param, std::map<std::string, Tensor>& buffers, const char* name) {
  auto it = buffers.find(name);
  if (it != buffers.end()) return it->second;
  return buffers[name] = Tensor::zeros(param.shape(), param.dtype(), param.device());
}
}  // namespace

void Adam::update(const ParamGroup& group, Tensor& param, const Tensor& grad, ParamState& state) {
  Tensor exp_avg = state_buffer(param, state.buffers, "exp_avg");
  Tensor exp_avg_sq = state_buffer(param, state.buffers, "exp_avg_sq");
  Tensor max_sq = opt_.amsgrad ? state_buffer(param, state.buffers, "max_exp_avg_sq") : Tensor();
  state.step += 1;
  const double t = double(state.step);
  const double bias_correction1 = 1.0 - std::pow(opt_.beta1, t);
  const double bias_correction2_sqrt = std::sqrt(1.0 - std::pow(opt_.beta2, t));
  const double step_size = group.lr / bias_correction1;

  dispatch_float(param.dtype(), kind().c_str(), [&]<class T>() {
    T* w = param.data<T>();
    const T* g = grad.data<T>();
    T* m = exp_avg.data<T>();
    T* v = exp_avg_sq.data<T>();
    T* vmax = opt_.amsgrad ? max_sq.data<T>() : nullptr;
    const T b1 = T(opt_.beta1), b2 = T(opt_.beta2), one_b1 = T(1.0 - opt_.beta1), one_b2 = T(1.0 - opt_.beta2);
    const T wd = T(group.weight_decay), shrink = T(1.0 - group.lr * group.weight_decay);
    const T bc2 = T(bias_correction2_sqrt), eps = T(opt_.eps), neg_step = T(-step_size);
    const bool l2 = !decoupled_weight_decay_ && group.weight_decay != 0.0;
    const bool decay = decoupled_weight_decay_ && group.weight_decay != 0.0;
    const int64_t n = param.numel();
#pragma omp parallel for if (n > 65536) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      if (decay) w[i] = w[i] * shrink;
      const T gi = l2 ? g[i] + wd * w[i] : g[i];
      m[i] = m[i] * b1 + one_b1 * gi;
      v[i] = v[i] * b2 + one_b2 * (gi * gi);
      T second = v[i];
      if (vmax) second = vmax[i] = std::max(vmax[i], v[i]);
      const T denom = std::sqrt(second) / bc2 + eps;
      w[i] = w[i] + neg_step * (m[i] / denom);
    }
  });
}

// All of the group's CUDA parameters that share a step count (normally all) in one launch. Adam's L2
// decay belongs to the gradient (g + wd p, as torch.optim.Adam adds it), so Adam runs the AdamW kernel
// on that gradient with no decoupled decay.
void Adam::update_cuda(const ParamGroup& group, std::vector<CudaParam>& params) {
  EMBER_CHECK(!opt_.amsgrad, kind(), ".step: ", params.front().label, " ", params.front().param.str(),
              " is on cuda; the fused CUDA step has no amsgrad");
  const bool l2 = !decoupled_weight_decay_ && group.weight_decay != 0.0;
  struct Lists {
    std::vector<Tensor> params, grads, exp_avg, exp_avg_sq;
  };
  std::map<int64_t, Lists> by_step;
  for (CudaParam& c : params) {
    c.state->step += 1;
    Lists& l = by_step[c.state->step];
    l.params.push_back(c.param);
    l.grads.push_back(l2 ? c.grad.detach() + c.param.detach() * group.weight_decay : c.grad);
    l.exp_avg.push_back(state_buffer(c.param, c.state->buffers, "exp_avg"));
    l.exp_avg_sq.push_back(state_buffer(c.param, c.state->buffers, "exp_avg_sq"));
  }
  for (const auto& [step, l] : by_step)
    cuda_ops::adamw_step(l.params, l.grads, l.exp_avg, l.exp_avg_sq,
                         {group.lr, opt_.beta1, opt_.beta2, opt_.eps, decoupled_weight_decay_ ? group.weight_decay : 0.0,
                          step});
}

}  // namespace ember
