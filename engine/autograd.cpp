#include "engine/autograd.h"

#include <algorithm>
#include <atomic>
#include <unordered_map>
#include <unordered_set>

#include "engine/ops.h"

namespace ember {
namespace {
thread_local bool t_grad_enabled = true;
std::atomic<uint64_t> g_sequence{0};
BackwardObserver g_observer;
thread_local ForwardObserver t_forward_observer;

// Passes an op's output to the forward observer (if any) and returns it.
Tensor notify_forward(const char* op, const Tensor& out, const std::vector<Tensor>& inputs) {
  if (t_forward_observer) t_forward_observer(op, out, inputs);
  return out;
}

// Depth-first post-order over the Node graph, iterative so deep nets cannot overflow the stack.
// Returns owning pointers: releasing a Node (clearing its inputs) may drop the last reference to a
// child Node that is still to be visited in this pass, so the pass itself must keep them alive.
std::vector<std::shared_ptr<Node>> topo_order(const std::shared_ptr<Node>& root) {
  std::vector<std::shared_ptr<Node>> order;
  std::unordered_set<Node*> seen;
  std::vector<std::pair<std::shared_ptr<Node>, size_t>> stack{{root, 0}};
  seen.insert(root.get());
  while (!stack.empty()) {
    auto& [node, next] = stack.back();
    if (next < node->inputs.size()) {
      const Tensor& in = node->inputs[next++];
      std::shared_ptr<Node> child = in.defined() ? in.grad_fn() : nullptr;
      if (child && seen.insert(child.get()).second) stack.push_back({std::move(child), 0});
    } else {
      order.push_back(std::move(node));
      stack.pop_back();
    }
  }
  return order;  // children before parents; reverse for the backward walk
}

// Frees a Node without recursing once per node of the chain behind it. A plain destructor would
// release inputs -> TensorImpl -> grad_fn -> Node -> inputs ... recursively, and an un-run graph of
// ~10^4-10^5 ops (an RNN unrolled, or a long loop) overflows a thread's stack. Instead, the inputs of
// every Node that dies here are moved onto a work list first, so each nested release is shallow.
struct NodeDeleter {
  void operator()(Node* node) const {
    std::vector<Tensor> work = std::move(node->inputs);
    delete node;
    while (!work.empty()) {
      Tensor t = std::move(work.back());
      work.pop_back();
      if (!t.defined() || t.impl_ptr().use_count() != 1) continue;
      const std::shared_ptr<Node>& child = t.impl().grad_fn;
      if (child && child.use_count() == 1) {
        for (auto& in : child->inputs) work.push_back(std::move(in));
        child->inputs.clear();
      }
      // `t` dies here; its Node (now input-less) is freed by a shallow nested call.
    }
  }
};

void accumulate(std::shared_ptr<TensorImpl>& slot, const Tensor& g) {
  if (!slot) {
    // The slot is added into later, so it must own its buffer. A fresh contiguous gradient that
    // nothing else references can be taken as is; anything else (e.g. add's backward returning the
    // same tensor for both inputs, or a view of a saved tensor) is copied first.
    bool unique = g.impl_ptr().use_count() == 1 && g.impl().storage.use_count() == 1 && g.is_contiguous() &&
                  !g.grad_fn();
    slot = unique ? g.impl_ptr() : g.clone().detach().impl_ptr();
  } else {
    Tensor(slot).add_(g);
  }
}
}  // namespace

bool grad_enabled() { return t_grad_enabled; }
NoGradGuard::NoGradGuard() : previous_(t_grad_enabled) { t_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { t_grad_enabled = previous_; }
void set_backward_observer(BackwardObserver obs) { g_observer = std::move(obs); }
void set_forward_observer(ForwardObserver obs) { t_forward_observer = std::move(obs); }

namespace {
// The graph needs of a non-leaf input only its grad_fn and shape (where its gradient goes, and a
// check of it). Keeping the whole tensor would hold every activation of the forward pass until the
// backward, including those no backward saved (a ReLU's input, a max pool's input): a handle
// without storage lets them be freed as soon as the forward moves on, like PyTorch's graph.
// Leaves stay as they are: their gradient accumulates in the leaf's own TensorImpl.
std::vector<Tensor> hollow_non_leaves(const std::vector<Tensor>& inputs) {
  std::vector<Tensor> out;
  out.reserve(inputs.size());
  for (const Tensor& in : inputs) {
    if (!in.defined() || !in.grad_fn()) {
      out.push_back(in);
      continue;
    }
    auto h = std::make_shared<TensorImpl>();
    const TensorImpl& src = in.impl();
    // An empty storage of the same device (device() still answers; data is gone on purpose).
    h->storage = std::make_shared<Storage>(nullptr, 0, in.device(), [](void*) {});
    h->offset = src.offset;
    h->shape = src.shape;
    h->strides = src.strides;
    h->dtype = src.dtype;
    h->requires_grad = src.requires_grad;
    h->grad_fn = src.grad_fn;
    h->name = src.name;
    out.push_back(Tensor(h));
  }
  return out;
}
}  // namespace

Tensor record(const char* op, Tensor out, std::vector<Tensor> inputs, BackwardFn backward) {
  if (!t_grad_enabled) return notify_forward(op, out, inputs);
  bool any = false;
  std::vector<bool> needs(inputs.size(), false);
  for (size_t i = 0; i < inputs.size(); ++i) {
    needs[i] = inputs[i].defined() && inputs[i].requires_grad();
    any = any || needs[i];
  }
  if (!any) return notify_forward(op, out, inputs);
  std::shared_ptr<Node> node(new Node(), NodeDeleter{});
  node->op = op;
  node->inputs = hollow_non_leaves(inputs);
  node->needs_grad = std::move(needs);
  node->backward = std::move(backward);
  node->output_shape = out.shape();
  node->output_dtype = out.dtype();
  node->sequence = g_sequence++;
  out.impl().grad_fn = std::move(node);
  out.impl().requires_grad = true;
  return notify_forward(op, out, inputs);  // the real inputs: observers match them by identity
}

Tensor& Tensor::requires_grad_(bool on) {
  EMBER_CHECK(!on || is_floating(dtype()), "requires_grad_: tensor ", str(), " is not floating point");
  EMBER_CHECK(is_leaf() || on, "requires_grad_(false) on a non-leaf tensor ", str(), ": use detach()");
  impl().requires_grad = on;
  return *this;
}

Tensor Tensor::detach() const {
  auto d = std::make_shared<TensorImpl>();
  d->storage = impl().storage;
  d->offset = impl().offset;
  d->shape = impl().shape;
  d->strides = impl().strides;
  d->dtype = impl().dtype;
  d->name = impl().name;
  return Tensor(d);
}

void Tensor::backward(const Tensor& grad, bool retain_graph) const {
  EMBER_CHECK(requires_grad(), "backward: tensor ", str(), " does not require grad (no parameter in its history?)");
  Tensor seed = grad;
  if (!seed.defined()) {
    EMBER_CHECK(numel() == 1, "backward: called on non-scalar tensor ", str(),
                " without a gradient; pass backward(grad) with the same shape");
    seed = Tensor::ones(shape(), dtype(), device());
  }
  EMBER_CHECK(seed.shape() == shape(), "backward: gradient shape ", shape_str(seed.shape()),
              " does not match tensor shape ", shape_str(shape()));
  if (is_leaf()) {
    accumulate(impl().grad, seed);
    return;
  }
  Node* root = grad_fn().get();
  EMBER_CHECK(!root->released, "backward: the graph of ", str(), " (op '", root->op,
              "') was already freed by an earlier backward(); pass retain_graph=true to call it twice");

  std::vector<std::shared_ptr<Node>> order = topo_order(grad_fn());
  std::unordered_map<Node*, std::shared_ptr<TensorImpl>> pending;  // dL/d(output of node)
  pending[root] = seed.impl_ptr();
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Node* node = it->get();
    auto found = pending.find(node);
    if (found == pending.end()) continue;  // no gradient flows to this node
    Tensor gout(found->second);
    pending.erase(found);
    EMBER_CHECK(!node->released, "backward: op '", node->op, "' in this graph was already freed by an earlier backward()");
    if (g_observer) g_observer(*node, gout);
    std::vector<Tensor> gins;
    {
      NoGradGuard no_grad;  // gradients are plain values: no graph of the backward pass
      gins = node->backward(gout);
    }
    EMBER_CHECK(gins.size() == node->inputs.size(), "backward of '", node->op, "' returned ", gins.size(),
                " gradients for ", node->inputs.size(), " inputs");
    for (size_t i = 0; i < gins.size(); ++i) {
      if (!node->needs_grad[i] || !gins[i].defined()) continue;
      const Tensor& in = node->inputs[i];
      EMBER_CHECK(gins[i].shape() == in.shape(), "backward of '", node->op, "': gradient for input ", i, " has shape ",
                  shape_str(gins[i].shape()), " but the input has shape ", shape_str(in.shape()));
      if (in.is_leaf())
        accumulate(in.impl().grad, gins[i]);
      else
        accumulate(pending[in.grad_fn().get()], gins[i]);
    }
    if (!retain_graph) {
      node->backward = nullptr;  // drops saved tensors
      node->inputs.clear();
      node->released = true;
    }
  }
}

}  // namespace ember
