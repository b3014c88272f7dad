// Module: the building block of ember models, shaped after torch.nn.Module so that state_dicts
// written by PyTorch load by name without renaming.
//
// A module owns parameters (trainable tensors) and buffers (state such as BatchNorm's running
// statistics) under short names, and child modules under names; the full, dotted name of a tensor
// is the path of child names down to it ("features.0.weight", "classifier.6.bias"). Sequential
// names its children 0, 1, 2, ... exactly like PyTorch, which is what makes the names line up.
//
// Tensors are registered by address: a layer keeps `Tensor weight;` as a member and registers
// &weight, so the layer computes with plain members while the base class can still enumerate,
// load and move them. That is why modules are neither copyable nor movable (always held by
// shared_ptr).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace ember::nn {

// What load_state_dict found. Names are full dotted names.
struct ShapeMismatch {
  std::string name;
  Shape expected;  // the module's tensor
  Shape found;     // the state_dict's tensor
};
struct LoadReport {
  std::vector<std::string> missing;     // in the module, absent from the state_dict
  std::vector<std::string> unexpected;  // in the state_dict, unknown to the module
  std::vector<ShapeMismatch> mismatched;
  std::vector<std::string> ignored;     // bookkeeping keys skipped on purpose (num_batches_tracked)
  int64_t loaded = 0;                   // tensors copied
  bool ok() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  std::string str() const;  // every problem, one per line
};

class Module {
 public:
  explicit Module(std::string type_name) : type_name_(std::move(type_name)) {}
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  const std::string& type_name() const { return type_name_; }

  // ---- calling --------------------------------------------------------------------------
  // Single-input modules implement forward(). Modules with several inputs or outputs (Concat,
  // MultiHead, Fusion) implement forward_many(); its default wraps forward().
  virtual Tensor forward(const Tensor& x);
  virtual std::vector<Tensor> forward_many(const std::vector<Tensor>& xs);
  // Always call children through these (not forward directly): they feed summary()'s recorder.
  Tensor operator()(const Tensor& x);
  std::vector<Tensor> call_many(const std::vector<Tensor>& xs);
  // The backbone's feature vector (models override; by default the module's output).
  virtual Tensor embed(const Tensor& x) { return (*this)(x); }

  // ---- tensors and children ---------------------------------------------------------------
  std::vector<std::pair<std::string, Tensor>> named_parameters() const;
  std::vector<Tensor> parameters() const;
  std::vector<std::pair<std::string, Tensor>> named_buffers() const;
  std::vector<std::pair<std::string, Module*>> named_modules() const;  // "" is this module
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const { return children_; }
  std::shared_ptr<Module> child(const std::string& name) const;  // throws naming the known children
  // Parameters then buffers, by full name. The tensors share storage with the module.
  std::map<std::string, Tensor> state_dict() const;
  // Copies every matching tensor (converting dtype). strict: any missing, unexpected or
  // mis-shaped tensor throws an ember::Error listing all of them, and nothing is copied.
  LoadReport load_state_dict(const std::map<std::string, Tensor>& state, bool strict = true);

  // ---- modes and placement ----------------------------------------------------------------
  void train(bool on = true);  // recursive
  void eval() { train(false); }
  bool is_training() const { return training_; }
  void to(Device device);  // moves parameters and buffers (keeps requires_grad and names)
  // requires_grad on every parameter whose name is `prefix` or starts with `prefix.`; "" is all.
  // Returns how many parameters changed; throws when the prefix names nothing.
  int64_t freeze(const std::string& prefix = "");
  int64_t unfreeze(const std::string& prefix = "");
  int64_t num_parameters() const;            // elements, all parameters
  int64_t num_trainable_parameters() const;  // elements with requires_grad
  void zero_grad();

  // Keras-style table: one row per leaf module called during a forward pass on zeros of the
  // given shape(s) (batch included), with its output shape and parameter count; then totals.
  // The pass runs in eval mode without gradients; the previous mode is restored.
  std::string summary(const Shape& input_shape);
  std::string summary(const std::vector<Shape>& input_shapes);

 protected:
  // Register a member tensor. The module must outlive nothing: the pointer is to a member.
  void register_parameter(const std::string& name, Tensor* slot, bool requires_grad = true);
  void register_buffer(const std::string& name, Tensor* slot);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    add_child(name, m);
    return m;
  }
  void add_child(const std::string& name, std::shared_ptr<Module> m);

 private:
  void collect(const std::string& prefix, bool params, std::vector<std::pair<std::string, Tensor*>>& out) const;
  int64_t set_requires_grad(const std::string& prefix, bool on);

  std::string type_name_;
  bool training_ = true;
  std::vector<std::pair<std::string, Tensor*>> params_;
  std::vector<std::pair<std::string, Tensor*>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

using ModulePtr = std::shared_ptr<Module>;

namespace detail {
// summary() listens to every module call on this thread through this hook (nullptr: off).
using CallObserver = void (*)(void* context, const Module& m, const std::vector<Tensor>& outputs);
void set_call_observer(CallObserver observer, void* context);
}  // namespace detail

// Formats 138357544 as "138,357,544" (summary tables, test messages).
std::string with_commas(int64_t n);

}  // namespace ember::nn
