// Define-by-run reverse-mode autograd.
//
// Each differentiable op computes its output, then calls record() with its inputs and a backward
// closure written right beside the forward code. record() hangs a Node on the output; backward()
// walks the Nodes in reverse topological order, calls each closure once with the gradient of its
// output, and accumulates the returned input gradients. After a pass the graph is freed (closures
// and saved tensors released) unless retain_graph is set.
//
// Saved tensors: a closure must never capture its own output Tensor (that is a reference cycle
// output -> Node -> closure -> output). Capture out.detach() instead, which shares the storage.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace ember {

// Given dL/d(output), returns dL/d(input_i) for each recorded input, in order. An entry may be
// left undefined when that input does not need a gradient (see needs_grad()).
using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

struct Node {
  std::string op;                 // "conv2d", "add", ...: shown by explain and in errors
  std::vector<Tensor> inputs;     // the op's tensor inputs (strong refs keep the graph alive)
  std::vector<bool> needs_grad;   // per input: requires_grad at record time
  BackwardFn backward;
  Shape output_shape;
  DType output_dtype = DType::Float32;
  bool released = false;          // set after a backward pass without retain_graph
  uint64_t sequence = 0;          // creation order, for a deterministic walk
};

// Grad mode is thread-local (like PyTorch): a loader thread never disables it for the trainer.
bool grad_enabled();
struct NoGradGuard {
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// Attaches history to `out` when grad mode is on and any input requires grad; returns `out`.
Tensor record(const char* op, Tensor out, std::vector<Tensor> inputs, BackwardFn backward);

// True when input i of the op that produced `grad_fn` needs a gradient (lets a backward skip work).
inline bool needs_grad(const Node& n, size_t i) { return i < n.needs_grad.size() && n.needs_grad[i]; }

// Observers, used by `ember explain` to print the tape as it is replayed. Called before each Node's
// backward runs; nullptr to remove.
using BackwardObserver = std::function<void(const Node& node, const Tensor& grad_output)>;
void set_backward_observer(BackwardObserver obs);

// Forward observer (thread-local: it sees the ops run on the thread that set it). Called by record()
// for every op that reaches it, after the op computed `out`, whether or not history is attached
// (grad mode off, or no input needing a gradient): `out.grad_fn()` is set when it was. `inputs` are
// the op's recorded tensor inputs (weights included). One hook, so explain can list, cost and time
// each forward op without the ops knowing about it. nullptr to remove.
using ForwardObserver = std::function<void(const char* op, const Tensor& out, const std::vector<Tensor>& inputs)>;
void set_forward_observer(ForwardObserver obs);

}  // namespace ember
