// Optimizers: SGD (momentum, Nesterov, L2 weight decay), Adam (L2 weight decay) and AdamW (decoupled
// weight decay), with exactly PyTorch's update formulas (torch.optim, 1.13) so runs and checkpoints
// can be compared with PyTorch step by step. Parameters are plain Tensors (leaves with
// requires_grad); a parameter whose grad is undefined at step() is skipped, its state untouched.
// Parameters may live on the CPU or (SGD, AdamW) on the GPU, each with its state on its own device.
//
// State: per parameter a step count and named buffers ("momentum_buffer", "exp_avg", ...), saved
// by state_dict() as tensors keyed "<group>.<param>.<buffer>" plus JSON scalars (step counts, group
// lr / weight_decay, parameter shapes for validation on load).
#pragma once
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace ember {

struct ParamGroup {
  std::vector<Tensor> params;
  double lr = 1e-3;
  double weight_decay = 0.0;
  std::string name;
};

struct OptimizerState {
  std::map<std::string, Tensor> tensors;  // "<group>.<param>.<buffer>" -> buffer
  nlohmann::json scalars;                 // kind, per-group lr/weight_decay, per-param step + shape
};

class Optimizer {
 public:
  Optimizer(std::string kind, std::vector<ParamGroup> groups);
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a gradient (runs without recording autograd history).
  void step();
  // Drops the gradients (like PyTorch's zero_grad(set_to_none=True)).
  void zero_grad();

  const std::string& kind() const { return kind_; }
  std::vector<ParamGroup>& param_groups() { return groups_; }
  const std::vector<ParamGroup>& param_groups() const { return groups_; }
  void set_lr(double lr);  // every group
  void set_lr(size_t group, double lr);
  double lr(size_t group = 0) const;

  // The tensors are the live buffers (no copy): save or clone them before the next step().
  OptimizerState state_dict() const;
  // Restores buffers, step counts and each group's lr / weight_decay. The parameters must have the
  // same grouping and shapes as when the state was saved (errors name the mismatching entry).
  void load_state_dict(const OptimizerState& state);

 protected:
  struct ParamState {
    int64_t step = 0;
    std::map<std::string, Tensor> buffers;
  };
  // Updates `param` in place from `grad` (same shape, dtype and device; contiguous).
  virtual void update(const ParamGroup& group, Tensor& param, const Tensor& grad, ParamState& state) = 0;
  // The CUDA parameters of one group, updated together after its CPU ones: SGD and AdamW in one
  // fused kernel launch (kernels/cuda/optimizer.cu); the default throws (no CUDA update).
  struct CudaParam {
    Tensor param, grad;  // float32, contiguous, on the GPU
    ParamState* state;
    std::string label;   // for error messages: "group 0 param 3 ('conv1.weight')"
  };
  virtual void update_cuda(const ParamGroup& group, std::vector<CudaParam>& params);
  virtual nlohmann::json hyperparameters() const = 0;  // recorded in state_dict for reference

 private:
  std::string kind_;
  std::vector<ParamGroup> groups_;
  std::vector<std::vector<ParamState>> state_;
};

struct SGDOptions {
  double momentum = 0.0;
  double dampening = 0.0;
  bool nesterov = false;
};
class SGD : public Optimizer {
 public:
  SGD(std::vector<ParamGroup> groups, SGDOptions options = {});
  const SGDOptions& options() const { return opt_; }

 protected:
  void update(const ParamGroup& group, Tensor& param, const Tensor& grad, ParamState& state) override;
  void update_cuda(const ParamGroup& group, std::vector<CudaParam>& params) override;
  nlohmann::json hyperparameters() const override;

 private:
  // The parameter's momentum buffer (created, uninitialised, at its first step: `first` is then true).
  Tensor momentum_buffer(const Tensor& param, ParamState& state, bool& first) const;
  SGDOptions opt_;
};

struct AdamOptions {
  double beta1 = 0.9, beta2 = 0.999;
  double eps = 1e-8;
  bool amsgrad = false;
};
// Adam: weight_decay is L2 (added to the gradient). AdamW: weight_decay is decoupled (the
// parameter shrinks by lr * weight_decay before the Adam step). PyTorch's AdamW default
// weight_decay is 1e-2; here it is whatever the ParamGroup says.
class Adam : public Optimizer {
 public:
  Adam(std::vector<ParamGroup> groups, AdamOptions options = {});
  const AdamOptions& options() const { return opt_; }

 protected:
  Adam(std::string kind, std::vector<ParamGroup> groups, AdamOptions options, bool decoupled);
  void update(const ParamGroup& group, Tensor& param, const Tensor& grad, ParamState& state) override;
  // AdamW without amsgrad only (the fused kernel's rule); Adam (L2) or amsgrad on the GPU throw.
  void update_cuda(const ParamGroup& group, std::vector<CudaParam>& params) override;
  nlohmann::json hyperparameters() const override;

 private:
  AdamOptions opt_;
  bool decoupled_weight_decay_ = false;
};
class AdamW : public Adam {
 public:
  AdamW(std::vector<ParamGroup> groups, AdamOptions options = {});
};

// Scales the gradients of `params` in place so that their global norm (the `norm_type`-norm of all
// gradient elements together; inf for the max-abs norm) is at most `max_norm`, exactly like
// torch.nn.utils.clip_grad_norm_ (coefficient max_norm / (total + 1e-6), clamped at 1). Returns
// the total norm before clipping. Parameters without a gradient are ignored. With
// error_if_nonfinite, a NaN/inf total norm throws instead of scaling.
double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type = 2.0,
                       bool error_if_nonfinite = false);

}  // namespace ember
