// Optimizer base: the step loop, per-parameter state and its (de)serialisation; gradient clipping.
// The update rules themselves live in nn/optim_sgd.cpp and nn/optim_adam.cpp.
#include "nn/optim.h"

#include <cmath>
#include <limits>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/strided.h"

namespace ember {
namespace {

std::string param_label(const ParamGroup& g, size_t gi, size_t pi, const Tensor& p) {
  std::string group = g.name.empty() ? "group " + std::to_string(gi) : "group '" + g.name + "'";
  std::string label = group + " param " + std::to_string(pi);
  if (p.defined() && !p.name().empty()) label += " ('" + p.name() + "')";
  return label;
}

std::string state_key(size_t gi, size_t pi, const std::string& buffer) {
  return std::to_string(gi) + "." + std::to_string(pi) + "." + buffer;
}

}  // namespace

Optimizer::Optimizer(std::string kind, std::vector<ParamGroup> groups) : kind_(std::move(kind)), groups_(std::move(groups)) {
  for (size_t gi = 0; gi < groups_.size(); ++gi)
    for (size_t pi = 0; pi < groups_[gi].params.size(); ++pi)
      EMBER_CHECK(groups_[gi].params[pi].defined(), kind_, ": ", param_label(groups_[gi], gi, pi, Tensor()),
                  " is an undefined tensor");
  state_.resize(groups_.size());
}

void Optimizer::step() {
  NoGradGuard no_grad;
  state_.resize(groups_.size());
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    ParamGroup& group = groups_[gi];
    state_[gi].resize(group.params.size());
    std::vector<CudaParam> on_gpu;
    for (size_t pi = 0; pi < group.params.size(); ++pi) {
      Tensor& p = group.params[pi];
      Tensor g = p.grad();
      if (!g.defined()) continue;  // no gradient this step: PyTorch skips it too
      const std::string label = param_label(group, gi, pi, p);
      EMBER_CHECK(g.shape() == p.shape(), kind_, ".step: ", label, " ", p.str(), " has gradient ", g.str());
      EMBER_CHECK(g.dtype() == p.dtype(), kind_, ".step: ", label, " ", p.str(), " has gradient of dtype ",
                  dtype_name(g.dtype()));
      EMBER_CHECK(g.device() == p.device(), kind_, ".step: ", label, " ", p.str(), " has its gradient on ",
                  device_name(g.device()));
      check_floating(kind_.c_str(), p);
      EMBER_CHECK(p.is_contiguous(), kind_, ".step: ", label, " ", p.str(), " is not contiguous");
      if (p.device() == Device::CUDA) {
        on_gpu.push_back({p, g.contiguous(), &state_[gi][pi], label});
        continue;
      }
      check_cpu(kind_.c_str(), p);
      update(group, p, g.contiguous(), state_[gi][pi]);
    }
    if (!on_gpu.empty()) update_cuda(group, on_gpu);
  }
}

void Optimizer::update_cuda(const ParamGroup&, std::vector<CudaParam>& params) {
  EMBER_CHECK(false, kind_, ".step: ", params.front().label, " ", params.front().param.str(),
              " is on cuda, and this optimizer has no CUDA update (SGD and AdamW have one)");
}

void Optimizer::zero_grad() {
  for (auto& g : groups_)
    for (auto& p : g.params) p.zero_grad();
}

void Optimizer::set_lr(double lr) {
  for (auto& g : groups_) g.lr = lr;
}
void Optimizer::set_lr(size_t group, double lr) {
  EMBER_CHECK(group < groups_.size(), kind_, ".set_lr: group ", group, " out of range (", groups_.size(), " groups)");
  groups_[group].lr = lr;
}
double Optimizer::lr(size_t group) const {
  EMBER_CHECK(group < groups_.size(), kind_, ".lr: group ", group, " out of range (", groups_.size(), " groups)");
  return groups_[group].lr;
}

OptimizerState Optimizer::state_dict() const {
  OptimizerState out;
  out.scalars = {{"kind", kind_}, {"hyperparameters", hyperparameters()}, {"groups", nlohmann::json::array()}};
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    const ParamGroup& g = groups_[gi];
    nlohmann::json params = nlohmann::json::array();
    for (size_t pi = 0; pi < g.params.size(); ++pi) {
      const ParamState* st = gi < state_.size() && pi < state_[gi].size() ? &state_[gi][pi] : nullptr;
      nlohmann::json buffers = nlohmann::json::array();
      if (st)
        for (const auto& [name, buf] : st->buffers) {
          buffers.push_back(name);
          out.tensors[state_key(gi, pi, name)] = buf;
        }
      params.push_back({{"shape", g.params[pi].shape()}, {"step", st ? st->step : 0}, {"buffers", buffers}});
    }
    out.scalars["groups"].push_back({{"name", g.name}, {"lr", g.lr}, {"weight_decay", g.weight_decay}, {"params", params}});
  }
  return out;
}

void Optimizer::load_state_dict(const OptimizerState& state) {
  const auto& s = state.scalars;
  const std::string where = kind_ + ".load_state_dict: ";
  EMBER_CHECK(s.is_object() && s.contains("kind") && s.contains("groups") && s["groups"].is_array(), where,
              "state has no 'kind'/'groups' (not an optimizer state)");
  EMBER_CHECK(s["kind"] == kind_, where, "state was saved by optimizer '", s["kind"].dump(), "'");
  const auto& groups = s["groups"];
  EMBER_CHECK(groups.size() == groups_.size(), where, "state has ", groups.size(), " parameter groups, optimizer has ",
              groups_.size());
  // Validate everything before changing anything, so a bad state leaves the optimizer as it was.
  std::vector<std::vector<ParamState>> fresh(groups_.size());
  try {
    for (size_t gi = 0; gi < groups_.size(); ++gi) {
      const auto& gj = groups[gi];
      const auto& params = gj.at("params");
      EMBER_CHECK(params.size() == groups_[gi].params.size(), where, "group ", gi, " has ", params.size(),
                  " parameters in the state but ", groups_[gi].params.size(), " in the optimizer");
      for (size_t pi = 0; pi < params.size(); ++pi) {
        const Tensor& p = groups_[gi].params[pi];
        const std::string label = param_label(groups_[gi], gi, pi, p);
        Shape saved = params[pi].at("shape").get<Shape>();
        EMBER_CHECK(saved == p.shape(), where, label, " is ", p.str(), " but the state was saved for shape ",
                    shape_str(saved));
        ParamState st;
        st.step = params[pi].at("step").get<int64_t>();
        for (const auto& name : params[pi].at("buffers")) {
          const std::string key = state_key(gi, pi, name.get<std::string>());
          auto it = state.tensors.find(key);
          EMBER_CHECK(it != state.tensors.end() && it->second.defined(), where, "missing state tensor '", key, "' for ",
                      label);
          EMBER_CHECK(it->second.shape() == p.shape(), where, "state tensor '", key, "' is ", it->second.str(),
                      " but ", label, " is ", p.str());
          // A private copy in the parameter's dtype: loaded tensors may alias a file or another optimizer.
          Tensor buf = Tensor::empty(p.shape(), p.dtype(), p.device());
          buf.copy_(it->second.detach());
          st.buffers[name.get<std::string>()] = buf;
        }
        fresh[gi].push_back(std::move(st));
      }
      groups[gi].at("lr").get<double>();  // checked here, applied below
      groups[gi].at("weight_decay").get<double>();
    }
  } catch (const nlohmann::json::exception& e) {  // a missing or mistyped field in the scalars
    throw Error(detail::cat(where, "malformed state: ", e.what()));
  }
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    groups_[gi].lr = groups[gi]["lr"].get<double>();
    groups_[gi].weight_decay = groups[gi]["weight_decay"].get<double>();
  }
  state_ = std::move(fresh);
}

double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type, bool error_if_nonfinite) {
  NoGradGuard no_grad;
  std::vector<Tensor> grads;
  for (const auto& p : params)
    if (p.defined() && p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return 0.0;
  const bool inf_norm = std::isinf(norm_type);
  double acc = 0.0;  // sum of |g|^p, or max |g| for the inf-norm; in double whatever the dtype
  const auto fold_max = [&acc](double a) { acc = (a > acc || std::isnan(a)) ? a : acc; };  // NaN propagates, as in torch.max
  for (const auto& g : grads) {
    if (g.device() == Device::CUDA) {  // a reduction on the GPU per gradient; its float result is folded in double
      if (norm_type == 2.0) {  // the default: no |g| pass
        acc += sum(g * g).item();
      } else {
        const Tensor a = abs(g).reshape({-1});
        if (!inf_norm) acc += (norm_type == 1.0 ? sum(a) : sum(pow(a, norm_type))).item();
        else if (a.numel() > 0) fold_max(max(a, 0).item());
      }
      continue;
    }
    check_cpu("clip_grad_norm_", g);
    dispatch_float(g.dtype(), "clip_grad_norm_", [&]<class T>() {
      const T* base = g.data<T>();
      for_each_strided<1>(g.shape(), {&g.strides()}, [&](int64_t, const std::array<int64_t, 1>& o) {
        double a = std::abs(double(base[o[0]]));
        if (inf_norm) fold_max(a);
        else if (norm_type == 2.0) acc += a * a;
        else if (norm_type == 1.0) acc += a;
        else acc += std::pow(a, norm_type);
      });
    });
  }
  const double total = inf_norm ? acc : norm_type == 2.0 ? std::sqrt(acc) : norm_type == 1.0 ? acc
                                                                           : std::pow(acc, 1.0 / norm_type);
  EMBER_CHECK(!error_if_nonfinite || std::isfinite(total), "clip_grad_norm_: the total ", norm_type,
              "-norm of the gradients is ", total, " (non-finite)");
  const double coef = max_norm / (total + 1e-6);
  // Written as !(coef >= 1) so a NaN norm poisons the gradients exactly as PyTorch's clamp does.
  if (!(coef >= 1.0))
    for (auto& g : grads) g.mul_(coef);
  return total;
}

}  // namespace ember
