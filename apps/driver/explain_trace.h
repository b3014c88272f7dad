// Internal to `ember explain`: op tracing with layer names, and the backward replay.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "apps/driver/explain.h"
#include "nn/module.h"

namespace ember::driver {

// Dotted names of the leaf modules of `model` (what ForwardOp::layer shows).
std::map<const nn::Module*, std::string> leaf_module_names(const nn::Module& model);

// trace_forward with layer names for the leaves of a known model.
std::vector<ForwardOp> trace_forward(const std::function<void()>& body,
                                     const std::map<const nn::Module*, std::string>& names);

// Runs loss.backward() while recording each Node as it is replayed. `param_names` maps a
// parameter's TensorImpl* to its dotted name, so gradients that land in weights are named.
std::vector<BackwardStep> trace_backward(const Tensor& loss, const std::vector<ForwardOp>& forward,
                                         const std::map<const void*, std::string>& param_names);

}  // namespace ember::driver
