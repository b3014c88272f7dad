// `ember explain`: one training step of a small model, narrated. It follows one batch from image
// files on disk to updated weights and reports, in order:
//   1. the data path of one sample: file -> decoded uint8 -> resized -> normalised float tensor;
//   2. every forward op: layer, op, kernel variant, device, shapes, FLOPs, bytes moved, time;
//   3. the autograd tape replayed backwards: each Node and the gradients it hands to its inputs;
//   4. the optimizer update per parameter: gradient norm, step size ||dw||, learning rate;
//   5. totals: FLOPs, bytes, arithmetic intensity, achieved GFLOP/s against the machine's peak.
//
// Nothing here is special-cased into the ops: the forward side comes from the engine's forward
// observer (engine/autograd.h, set_forward_observer), layer names from nn's module call observer
// (nn/module.h), the backward side from set_backward_observer. Costs follow the conventions in
// explain_cost.cpp (printed with every report): 1 MAC = 2 FLOPs, bias adds not counted, bytes =
// every input (weights included) read once + the output written once.
#pragma once
#include <cstdint>
#include <cstdio>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace ember::driver {

struct ExplainOptions {
  std::string model = "cnn";  // mlp | cnn | vgg16
  int image_size = 32;        // network input is image_size x image_size
  int64_t batch = 4;
  int64_t num_classes = 0;  // classifier outputs; 0 = the dataset target's classes (at least 2)
  std::string dataset;   // dataset config JSON; "" = the synthetic dataset
  std::string work_dir;  // where the synthetic dataset is written; "" = a fresh temporary directory
  std::string optimizer = "sgd";  // sgd (momentum 0.9) | adam | adamw
  double lr = 0.01;
  std::string normalization = "imagenet";  // none | imagenet | minus_one_one | caffe
  bool forward_only = false;  // stop after the forward pass and the loss (no tape, no update)
  bool warmup = true;         // one untimed forward first, so op times are steady-state
  std::vector<int64_t> channels{16, 32, 64};  // cnn: one conv block per entry
  int64_t convs_per_block = 1;                 // cnn: conv-BN-ReLU units per block
  bool fuse_bn_relu = false;  // cnn: BatchNorm applies the ReLU itself (one pass instead of two)
  std::string freeze;         // parameter-name prefix to freeze (e.g. "features"); "" = train all
  double peak_gflops = 0;     // the machine's peak; 0 = measure an FMA loop now
  uint64_t seed = 0;
  bool json = false;
  std::string device = "cpu";  // cpu | cuda: where the model and batch live (op times wait for the GPU)
};

// One stage of the data path of the first sample.
struct DataStage {
  std::string name;    // file | decoded | resized | normalised | batch
  std::string detail;  // path, resize mode, normalisation preset, ...
  Shape shape;
  double min = 0, max = 0, mean = 0;
  double ms = 0;
};

// The analytic cost of one forward op (see op_cost()).
struct OpCost {
  int64_t macs = 0;   // multiply-adds (conv, linear, matmul); 0 for other ops
  int64_t flops = 0;  // 2 per MAC, or the per-element counts of explain_cost.cpp
  int64_t bytes = 0;  // inputs (weights included) read once + output written once; 0 for views
  std::string rule;   // the convention used, in words
};

struct ForwardOp {
  int64_t index = 0;
  std::string layer;   // dotted module name of the leaf that produced it; "-" for glue between layers
  std::string module;  // module type ("Conv2d"), "" for glue
  std::string op;      // engine op name ("conv2d")
  std::string kernel;  // "conv2d_fwd=im2col", or "-" for ops without variants
  std::string device;
  std::vector<Shape> input_shapes;  // undefined inputs (no bias) are left out
  Shape output_shape;
  OpCost cost;
  double ms = 0;  // wall time since the previous op finished (ops run back to back on this thread)
  const void* node = nullptr;  // the autograd Node it recorded, if any (matches backward steps)
};

struct BackwardStep {
  std::string op, layer, kernel;
  Shape grad_output_shape;
  std::vector<std::string> gradients;  // "input 0 [4, 3, 32, 32]" for each input that receives one
  int64_t flops = 0;  // conv/linear/matmul: 2 GEMM-sized products per input gradient; else forward's count
  double ms = 0;      // until the next Node starts (its backward closure + gradient accumulation)
};

struct ParamUpdate {
  std::string name;
  Shape shape;
  double grad_norm = 0, step_norm = 0, weight_norm = 0, lr = 0;
};

struct ExplainTotals {
  int64_t forward_macs = 0, forward_flops = 0, forward_bytes = 0;
  double forward_ms = 0;
  int64_t backward_flops = 0;
  double backward_ms = 0, optimizer_ms = 0;
  double peak_gflops = 0;
  std::string peak_source;  // "measured: ..." or "--peak-gflops"
  double intensity() const { return forward_bytes ? double(forward_flops) / double(forward_bytes) : 0; }
  double forward_gflops() const { return forward_ms > 0 ? forward_flops / (forward_ms * 1e6) : 0; }
  double backward_gflops() const { return backward_ms > 0 ? backward_flops / (backward_ms * 1e6) : 0; }
};

struct ExplainResult {
  ExplainOptions options;
  std::string model_name, isa, dataset_dir;
  int64_t num_parameters = 0, trainable_parameters = 0, num_classes = 0;
  std::vector<DataStage> data;
  std::vector<ForwardOp> forward;
  double loss = 0;
  std::vector<BackwardStep> backward;
  std::vector<ParamUpdate> updates;
  ExplainTotals totals;
};

// Runs the step. Throws ember::Error naming the option or file at fault.
ExplainResult run_explain(const ExplainOptions& options);

// Lists (and costs and times) every op `body` runs on this thread, with layer names for ops made
// by nn modules. Usable on any code, e.g. a single layer in a test.
std::vector<ForwardOp> trace_forward(const std::function<void()>& body);

// The cost of one op from its name, output and inputs, by the conventions above.
OpCost op_cost(const std::string& op, const Tensor& out, const std::vector<Tensor>& inputs);
// The registry op whose variant runs `op` (forward or backward), e.g. "conv2d" -> "conv2d_fwd=im2col".
std::string kernel_for_op(const std::string& op, bool backward);
std::string cost_conventions();  // the rules, one per line

// Peak FP32 FLOP/s of all cores, best of a few short register-only FMA loops (AVX2 + FMA needed;
// 0 when the CPU lacks them).
double measure_peak_gflops();

void print_explain(const ExplainResult& r, std::FILE* out);
nlohmann::json explain_json(const ExplainResult& r);

// The subcommand: runs, prints text or JSON to stdout, returns the exit code.
int cmd_explain(const ExplainOptions& options);

}  // namespace ember::driver
