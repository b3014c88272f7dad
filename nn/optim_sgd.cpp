// SGD with momentum, dampening, Nesterov and L2 weight decay, following torch.optim.SGD (1.13):
//   d = g + wd * w
//   buf = d                                  (first step with momentum)
//   buf = momentum * buf + (1 - dampening) * d (later steps)
//   d = nesterov ? d + momentum * buf : buf
//   w = w - lr * d
// Arithmetic is done in the parameter's dtype, operation by operation in the same order as PyTorch,
// so float64 runs agree to rounding.
#include "engine/ops/cuda_ops.h"
#include "engine/strided.h"
#include "nn/optim.h"

namespace ember {

SGD::SGD(std::vector<ParamGroup> groups, SGDOptions options) : Optimizer("sgd", std::move(groups)), opt_(options) {
  EMBER_CHECK(opt_.momentum >= 0.0, "sgd: momentum ", opt_.momentum, " must be >= 0");
  EMBER_CHECK(!opt_.nesterov || (opt_.momentum > 0.0 && opt_.dampening == 0.0),
              "sgd: Nesterov momentum needs momentum > 0 and dampening 0 (got momentum ", opt_.momentum,
              ", dampening ", opt_.dampening, ")");
}

nlohmann::json SGD::hyperparameters() const {
  return {{"momentum", opt_.momentum}, {"dampening", opt_.dampening}, {"nesterov", opt_.nesterov}};
}

Tensor SGD::momentum_buffer(const Tensor& param, ParamState& state, bool& first) const {
  auto it = state.buffers.find("momentum_buffer");
  first = it == state.buffers.end();
  if (!first) return it->second;
  return state.buffers["momentum_buffer"] = Tensor::empty(param.shape(), param.dtype(), param.device());
}

void SGD::update(const ParamGroup& group, Tensor& param, const Tensor& grad, ParamState& state) {
  state.step += 1;
  const bool use_momentum = opt_.momentum != 0.0;
  bool first = false;
  Tensor buf = use_momentum ? momentum_buffer(param, state, first) : Tensor();
  dispatch_float(param.dtype(), "sgd", [&]<class T>() {
    T* w = param.data<T>();
    const T* g = grad.data<T>();
    T* b = use_momentum ? buf.data<T>() : nullptr;
    const T wd = T(group.weight_decay), lr = T(group.lr), mom = T(opt_.momentum), keep = T(1.0 - opt_.dampening);
    const bool has_wd = group.weight_decay != 0.0, nesterov = opt_.nesterov;
    const int64_t n = param.numel();
#pragma omp parallel for if (n > 65536) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      T d = has_wd ? g[i] + wd * w[i] : g[i];
      if (b) {
        b[i] = first ? d : b[i] * mom + keep * d;
        d = nesterov ? d + mom * b[i] : b[i];
      }
      w[i] = w[i] + (-lr) * d;
    }
  });
}

// All of the group's CUDA parameters in one launch; parameters at their first momentum step (their
// buffer starts as the gradient) in a second one.
void SGD::update_cuda(const ParamGroup& group, std::vector<CudaParam>& params) {
  struct Lists {
    std::vector<Tensor> params, grads, buffers;
  } later, first_step;
  for (CudaParam& c : params) {
    c.state->step += 1;
    bool first = false;
    const Tensor buf = opt_.momentum != 0.0 ? momentum_buffer(c.param, *c.state, first) : Tensor();
    Lists& l = first ? first_step : later;
    l.params.push_back(c.param);
    l.grads.push_back(c.grad);
    if (buf.defined()) l.buffers.push_back(buf);
  }
  const cuda_ops::SgdHyper h{group.lr, opt_.momentum, opt_.dampening, group.weight_decay, opt_.nesterov};
  if (!later.params.empty()) cuda_ops::sgd_step(later.params, later.grads, later.buffers, false, h);
  if (!first_step.params.empty()) cuda_ops::sgd_step(first_step.params, first_step.grads, first_step.buffers, true, h);
}

}  // namespace ember
