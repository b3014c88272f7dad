// Watching a forward pass op by op, and the tape as it is replayed backwards.
//
// Two hooks cooperate: the engine's forward observer (engine/autograd.h) fires once per op, after
// it computed its output; nn's call observer (nn/module.h) fires after each module returns. When a
// leaf module (Conv2d, ReLU, ...) returns, the op that produced its output tensor is that layer's
// op; so are the unnamed ops run since the previous leaf whose output is NOT an input of that op
// (bookkeeping inside the layer, e.g. Linear's weight transpose view). Those whose output the op
// consumes were run by the model's own forward() before the layer (SmallCNN's flatten): they keep
// layer "-".
#include <algorithm>
#include <chrono>
#include <unordered_map>

#include "apps/driver/explain_trace.h"
#include "engine/autograd.h"
#include "engine/storage.h"
#include "nn/module.h"

namespace ember::driver {
namespace {

using Clock = std::chrono::steady_clock;
double ms_between(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double, std::milli>(b - a).count(); }

struct ForwardRecorder {
  const std::map<const nn::Module*, std::string>* names = nullptr;
  std::vector<ForwardOp> ops;
  std::unordered_map<const void*, size_t> op_of_output;  // TensorImpl* -> latest op that produced it
  std::vector<std::vector<const void*>> op_inputs;       // TensorImpl* of each op's inputs
  std::vector<const void*> op_output;                    // TensorImpl* of each op's output
  size_t first_unclaimed = 0;                            // ops before this were seen by a leaf already
  Clock::time_point last = Clock::now();
};

thread_local ForwardRecorder* t_recorder = nullptr;

// The host clock once the op's work is done: a GPU op only queues kernels, so wait for them first.
Clock::time_point settled_now(const Tensor& out) {
  if (out.defined()) synchronize_device_of(out.device());
  return Clock::now();
}

void on_op(const char* op, const Tensor& out, const std::vector<Tensor>& inputs) {
  ForwardRecorder& r = *t_recorder;
  const auto now = settled_now(out);
  ForwardOp f;
  f.index = int64_t(r.ops.size());
  f.layer = "-";
  f.op = op;
  f.kernel = kernel_for_op(f.op, false);
  f.device = out.defined() ? device_name(out.device()) : "cpu";
  for (const auto& t : inputs)
    if (t.defined()) f.input_shapes.push_back(t.shape());
  if (out.defined()) f.output_shape = out.shape();
  f.cost = op_cost(f.op, out, inputs);
  f.ms = ms_between(r.last, now);
  f.node = out.defined() && out.grad_fn() ? static_cast<const void*>(out.grad_fn().get()) : nullptr;
  if (out.defined()) r.op_of_output[out.impl_ptr().get()] = r.ops.size();
  std::vector<const void*> ins;
  for (const auto& t : inputs)
    if (t.defined()) ins.push_back(t.impl_ptr().get());
  r.op_inputs.push_back(std::move(ins));
  r.op_output.push_back(out.defined() ? out.impl_ptr().get() : nullptr);
  r.ops.push_back(std::move(f));
  r.last = Clock::now();  // the observer's own bookkeeping is not charged to the next op
}

void on_module(void* context, const nn::Module& m, const std::vector<Tensor>& outputs) {
  auto& r = *static_cast<ForwardRecorder*>(context);
  if (!m.children().empty()) return;  // containers: their leaves already named their ops
  std::string name = m.type_name();
  if (r.names) {
    auto it = r.names->find(&m);
    if (it != r.names->end()) name = it->second;
  }
  for (const auto& y : outputs) {
    if (!y.defined()) continue;
    auto it = r.op_of_output.find(y.impl_ptr().get());
    if (it == r.op_of_output.end() || r.ops[it->second].layer != "-") continue;
    const size_t last = it->second;
    const auto& consumed = r.op_inputs[last];
    for (size_t i = r.first_unclaimed; i <= last; ++i) {
      const bool feeds_layer = std::find(consumed.begin(), consumed.end(), r.op_output[i]) != consumed.end();
      if (i < last && (feeds_layer || r.ops[i].layer != "-")) continue;
      r.ops[i].layer = name;
      r.ops[i].module = m.type_name();
    }
  }
  r.first_unclaimed = r.ops.size();
}

// Installs both hooks for one scope and removes them even when the body throws.
struct ForwardScope {
  explicit ForwardScope(ForwardRecorder& r) {
    t_recorder = &r;
    set_forward_observer(&on_op);
    nn::detail::set_call_observer(&on_module, &r);
  }
  ~ForwardScope() {
    set_forward_observer(nullptr);
    nn::detail::set_call_observer(nullptr, nullptr);
    t_recorder = nullptr;
  }
};

}  // namespace

std::map<const nn::Module*, std::string> leaf_module_names(const nn::Module& model) {
  std::map<const nn::Module*, std::string> names;
  for (const auto& [name, m] : model.named_modules())
    if (m->children().empty()) names[m] = name.empty() ? m->type_name() : name;
  return names;
}

std::vector<ForwardOp> trace_forward(const std::function<void()>& body,
                                     const std::map<const nn::Module*, std::string>& names) {
  ForwardRecorder r;
  r.names = &names;
  {
    ForwardScope scope(r);
    r.last = Clock::now();
    body();
  }
  return std::move(r.ops);
}

std::vector<ForwardOp> trace_forward(const std::function<void()>& body) { return trace_forward(body, {}); }

std::vector<BackwardStep> trace_backward(const Tensor& loss, const std::vector<ForwardOp>& forward,
                                         const std::map<const void*, std::string>& param_names) {
  std::unordered_map<const void*, const ForwardOp*> by_node;
  for (const auto& f : forward)
    if (f.node) by_node[f.node] = &f;
  std::vector<BackwardStep> steps;
  Clock::time_point started = Clock::now();
  set_backward_observer([&](const Node& node, const Tensor& grad_output) {
    const auto now = settled_now(grad_output);  // the previous node's kernels (one stream: in order)
    if (!steps.empty()) steps.back().ms = ms_between(started, now);
    BackwardStep s;
    s.op = node.op;
    s.kernel = kernel_for_op(node.op, true);
    s.grad_output_shape = grad_output.shape();
    auto it = by_node.find(&node);
    const ForwardOp* f = it == by_node.end() ? nullptr : it->second;
    s.layer = f ? f->layer : "-";
    int64_t gemm_inputs = 0;
    for (size_t i = 0; i < node.inputs.size(); ++i) {
      if (!needs_grad(node, i)) continue;
      const Tensor& in = node.inputs[i];
      std::string what;
      auto p = param_names.find(in.impl_ptr().get());
      if (p != param_names.end()) {
        what = "param " + p->second;
      } else if (in.grad_fn()) {
        what = "from " + in.grad_fn()->op;
      } else {
        what = "leaf";
      }
      s.gradients.push_back("input " + std::to_string(i) + " " + shape_str(in.shape()) + " (" + what + ")");
      if (i < 2) ++gemm_inputs;  // conv/linear/matmul: input 0 (data) and 1 (weight) are GEMM-sized
    }
    const bool gemm_like = s.op == "conv2d" || s.op == "linear" || s.op == "matmul";
    if (f) s.flops = gemm_like ? 2 * f->cost.macs * gemm_inputs : f->cost.flops;
    steps.push_back(std::move(s));
    started = Clock::now();
  });
  try {
    loss.backward();
  } catch (...) {
    set_backward_observer(nullptr);
    throw;
  }
  if (!steps.empty()) steps.back().ms = ms_between(started, settled_now(loss));
  set_backward_observer(nullptr);
  return steps;
}

}  // namespace ember::driver
