// Model-level comparison with LibTorch, same process, same threads (bench/torch_common.h pins
// both), float32, the same architecture and batch on each side:
//   mlp_train        MLP 256 -> 512 -> 512 -> 10, batch 256: forward, cross-entropy, backward, SGD momentum
//   small_cnn_train  3 x (conv3x3 -> BN -> ReLU -> maxpool2) with 32/64/128 channels, global average
//                    pool, Linear(128, 10); 64x64 RGB, batch 64, SGD momentum
//   vgg16_fwd        VGG16 (torchvision layout) eval forward, 224 px, batch 8, no autograd
//   vgg16_train      VGG16 train step (dropout on), 224 px, batch EMBER_BENCH_VGG_BATCH (default 8)
// Counters: images/s and peak_MiB = VmHWM (after resetting it) minus the RSS before the model was
// built, so it covers weights, gradients, optimizer state, activations and workspaces of that side.
// Each benchmark builds its model inside the function, so one library's memory is gone before the
// other's is measured; still, memory a library keeps between calls (ember's per-thread im2col
// scratch, LibTorch's caches) lands in the next baseline, so bench/RESULTS.md runs each benchmark
// in its own process (--benchmark_filter) for the peak figures. ember's SmallCNN uses fuse_bn_relu (same maths, BN applies the ReLU).
#include <malloc.h>
#include <torch/torch.h>

#include "bench/bench_common.h"
#include "bench/torch_common.h"
#include "engine/cpu_allocator.h"
#include "engine/ops.h"
#include "engine/rng.h"
#include "nn/models/mlp.h"
#include "nn/models/small_cnn.h"
#include "nn/models/vgg.h"
#include "nn/optim.h"

namespace {
namespace nn = ember::nn;
using ember::Tensor;

constexpr double kLr = 0.01, kMomentum = 0.9;

// Peak memory of one benchmark: the baseline is taken (and the high-water mark reset) before the
// model is built; report() runs after the timed loop.
struct PeakMemory {
  double before;
  PeakMemory() {
    // ember's CPU caching allocator keeps freed blocks for reuse: without this, the blocks of the
    // benchmark's previous call (Google Benchmark calls the function more than once) would sit in
    // the baseline and the peak of every call after the first would read near zero.
    ember::cpu_allocator_release_cache();
    malloc_trim(0);  // hand freed heap pages back, so the baseline holds live memory only
    ember::bench::reset_peak_rss();
    before = ember::bench::current_rss_mib();
  }
  void report(benchmark::State& state, int64_t batch) const {
    state.counters["peak_MiB"] = ember::bench::peak_rss_mib() - before;
    state.counters["images/s"] = benchmark::Counter(double(batch), benchmark::Counter::kIsIterationInvariantRate);
  }
};

int64_t vgg_train_batch() {
  const char* v = std::getenv("EMBER_BENCH_VGG_BATCH");
  return v ? std::atoll(v) : 8;
}

// ---- ember side ------------------------------------------------------------------------------
Tensor ember_labels(int64_t n, int64_t classes) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = (i * 7 + 3) % classes;
  return Tensor::from_vector(v, {n});
}

void ember_train_loop(benchmark::State& state, ember::nn::Module& model, const Tensor& x, const Tensor& y) {
  ember::ParamGroup group;
  group.params = model.parameters();
  group.lr = kLr;
  ember::SGD opt({group}, ember::SGDOptions{.momentum = kMomentum});
  model.train();
  auto step = [&] {
    opt.zero_grad();
    Tensor loss = ember::cross_entropy(model(x), y);
    loss.backward();
    opt.step();
  };
  step();  // warm-up: optimizer state and first-touch of every buffer
  for (auto _ : state) step();
}

void BM_mlp_train_ember(benchmark::State& state) {
  PeakMemory mem;
  ember::Generator gen(1);
  nn::MLP model(nn::MLPConfig{.in_features = 256, .hidden = {512, 512}, .out_features = 10}, gen);
  Tensor x = Tensor::normal({256, 256}, 0, 1, gen), y = ember_labels(256, 10);
  ember_train_loop(state, model, x, y);
  mem.report(state, 256);
}

void BM_small_cnn_train_ember(benchmark::State& state) {
  PeakMemory mem;
  ember::Generator gen(1);
  nn::SmallCNN model(nn::SmallCNNConfig{.in_channels = 3, .channels = {32, 64, 128}, .batch_norm = true,
                                        .fuse_bn_relu = state.range(0) != 0, .num_classes = 10},
                     gen);
  Tensor x = Tensor::normal({64, 3, 64, 64}, 0, 1, gen), y = ember_labels(64, 10);
  ember_train_loop(state, model, x, y);
  state.SetLabel(state.range(0) ? "fused BN+ReLU" : "BN, ReLU");
  mem.report(state, 64);
}

nn::VGGConfig ember_vgg_config() {
  nn::VGGConfig c;
  c.torchvision_init = false;  // init cost is not timed; the plain defaults build faster
  return c;
}

void BM_vgg16_fwd_ember(benchmark::State& state) {
  PeakMemory mem;
  ember::Generator gen(1);
  nn::VGG16 model(ember_vgg_config(), gen);
  model.eval();
  Tensor x = Tensor::normal({8, 3, 224, 224}, 0, 1, gen);
  ember::NoGradGuard no_grad;
  benchmark::DoNotOptimize(model(x).data<float>());  // warm-up
  for (auto _ : state) benchmark::DoNotOptimize(model(x).data<float>());
  mem.report(state, 8);
}

void BM_vgg16_train_ember(benchmark::State& state) {
  PeakMemory mem;
  const int64_t batch = vgg_train_batch();
  ember::Generator gen(1);
  nn::VGG16 model(ember_vgg_config(), gen);
  Tensor x = Tensor::normal({batch, 3, 224, 224}, 0, 1, gen), y = ember_labels(batch, 1000);
  ember_train_loop(state, model, x, y);
  state.SetLabel("batch " + std::to_string(batch));
  mem.report(state, batch);
}

// ---- LibTorch side ---------------------------------------------------------------------------
torch::Tensor torch_labels(int64_t n, int64_t classes) { return torch::arange(n, torch::kLong).mul(7).add(3).remainder(classes); }

void torch_train_loop(benchmark::State& state, torch::nn::Sequential& model, const torch::Tensor& x,
                      const torch::Tensor& y) {
  torch::optim::SGD opt(model->parameters(), torch::optim::SGDOptions(kLr).momentum(kMomentum));
  model->train();
  auto step = [&] {
    opt.zero_grad();
    auto loss = torch::nn::functional::cross_entropy(model->forward(x), y);
    loss.backward();
    opt.step();
  };
  step();
  for (auto _ : state) step();
}

void BM_mlp_train_torch(benchmark::State& state) {
  PeakMemory mem;
  torch::manual_seed(1);
  torch::nn::Sequential model(torch::nn::Linear(256, 512), torch::nn::ReLU(), torch::nn::Linear(512, 512),
                              torch::nn::ReLU(), torch::nn::Linear(512, 10));
  auto x = torch::randn({256, 256}), y = torch_labels(256, 10);
  torch_train_loop(state, model, x, y);
  mem.report(state, 256);
}

void BM_small_cnn_train_torch(benchmark::State& state) {
  PeakMemory mem;
  torch::manual_seed(1);
  torch::nn::Sequential model;
  int64_t in = 3;
  for (int64_t out : {32, 64, 128}) {
    model->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).padding(1).bias(false)));
    model->push_back(torch::nn::BatchNorm2d(out));
    model->push_back(torch::nn::ReLU(torch::nn::ReLUOptions(true)));
    model->push_back(torch::nn::MaxPool2d(2));
    in = out;
  }
  model->push_back(torch::nn::AdaptiveAvgPool2d(1));
  model->push_back(torch::nn::Flatten());
  model->push_back(torch::nn::Linear(in, 10));
  auto x = torch::randn({64, 3, 64, 64}), y = torch_labels(64, 10);
  torch_train_loop(state, model, x, y);
  mem.report(state, 64);
}

void BM_vgg16_fwd_torch(benchmark::State& state) {
  PeakMemory mem;
  torch::manual_seed(1);
  auto model = ember::bench::torch_vgg16();
  model->eval();
  auto x = torch::randn({8, 3, 224, 224});
  torch::NoGradGuard no_grad;
  benchmark::DoNotOptimize(model->forward(x).data_ptr());
  for (auto _ : state) benchmark::DoNotOptimize(model->forward(x).data_ptr());
  mem.report(state, 8);
}

void BM_vgg16_train_torch(benchmark::State& state) {
  PeakMemory mem;
  const int64_t batch = vgg_train_batch();
  torch::manual_seed(1);
  auto model = ember::bench::torch_vgg16();
  auto x = torch::randn({batch, 3, 224, 224}), y = torch_labels(batch, 1000);
  torch_train_loop(state, model, x, y);
  state.SetLabel("batch " + std::to_string(batch));
  mem.report(state, batch);
}

BENCHMARK(BM_mlp_train_ember)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(1.0);
BENCHMARK(BM_mlp_train_torch)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(1.0);
BENCHMARK(BM_small_cnn_train_ember)->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_small_cnn_train_torch)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_vgg16_fwd_ember)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);
BENCHMARK(BM_vgg16_fwd_torch)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);
BENCHMARK(BM_vgg16_train_ember)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(2);
BENCHMARK(BM_vgg16_train_torch)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(2);

}  // namespace

int main(int argc, char** argv) { return ember::bench::run_torch_comparison(argc, argv); }
