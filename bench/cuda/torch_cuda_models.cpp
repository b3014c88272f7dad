// VGG16 train step on the GPU: ember (autograd ops on CUDA, engine/ops/cuda_ops.cpp) against LibTorch
// eager on the same device, same batch, same precision, in one process (issue 7's GPU target: ember
// >= 1.0x LibTorch). Arg 0: FP32 for both (LibTorch's TF32 switched off for cuDNN and cuBLAS);
// arg 1: TF32 convolutions for both (EMBER_CONV_PRECISION=tf32 semantics; ember's Linear layers stay
// FP32). Counters: images/s and the device's peak bytes of each library's caching allocator (ember:
// cuda::allocator_stats; LibTorch: not read here, its CUDA allocator headers are not in every build).
// Built when CUDA and LibTorch are both found: on the GPU machine, with CMAKE_PREFIX_PATH from
// torch.utils.cmake_prefix_path (tools/gpu-check.sh does it). Without a device every benchmark skips.
// Status: compiles; not yet run (no GPU has been lent since it was written).
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <cstdlib>
#include <string>

#include "bench/torch_common.h"
#include "engine/ops.h"
#include "kernels/cuda/cuda_api.h"
#include "nn/models/vgg.h"
#include "nn/optim.h"

namespace {
using ember::Device;
using ember::Tensor;

constexpr double kLr = 0.01, kMomentum = 0.9;

int64_t batch_size() {
  const char* env = std::getenv("EMBER_BENCH_VGG_BATCH");
  return env && std::atoi(env) > 0 ? std::atoi(env) : 32;
}
bool tf32(const benchmark::State& state) { return state.range(0) != 0; }

void BM_vgg16_train_cuda_ember(benchmark::State& state) {
  if (!ember::cuda::cuda_available()) return state.SkipWithError("no CUDA device");
  ember::cuda::set_conv_precision(tf32(state) ? "tf32" : "fp32");
  const int64_t batch = batch_size();
  ember::Generator gen(1);
  ember::nn::VGGConfig config;
  config.torchvision_init = false;
  ember::nn::VGG16 model(config, gen);
  model.to(Device::CUDA);
  model.train();
  Tensor x = Tensor::normal({batch, 3, 224, 224}, 0, 1, gen).to(Device::CUDA);
  std::vector<int64_t> labels(static_cast<size_t>(batch));
  for (int64_t i = 0; i < batch; ++i) labels[size_t(i)] = (i * 7 + 3) % 1000;
  Tensor y = Tensor::from_vector(labels, {batch}).to(Device::CUDA);
  ember::ParamGroup group;
  group.params = model.parameters();
  group.lr = kLr;
  ember::SGD opt({group}, ember::SGDOptions{.momentum = kMomentum});
  auto step = [&] {
    opt.zero_grad();
    Tensor loss = ember::cross_entropy(model(x), y);
    loss.backward();
    opt.step();
    return loss.item();  // copies to the host: waits for the step's kernels
  };
  step();  // warm-up: optimizer state, allocator cache, cuDNN/cuBLAS handles
  ember::cuda::reset_peak_bytes();
  for (auto _ : state) benchmark::DoNotOptimize(step());
  state.counters["images/s"] = benchmark::Counter(double(batch), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["peak_MiB"] = double(ember::cuda::allocator_stats().peak_bytes) / (1 << 20);
  state.SetLabel(std::string("batch ") + std::to_string(batch) + ", conv " +
                 ember::cuda::conv_algo_name(ember::cuda::active_conv_algo()) + " " +
                 ember::cuda::precision_name(ember::cuda::active_conv_precision()));
  ember::cuda::set_conv_precision("");
}

void BM_vgg16_train_cuda_torch(benchmark::State& state) {
  if (!torch::cuda::is_available()) return state.SkipWithError("no CUDA device for LibTorch");
  at::globalContext().setAllowTF32CuDNN(tf32(state));
  at::globalContext().setAllowTF32CuBLAS(false);  // ember's Linear layers are FP32 in both modes
  const int64_t batch = batch_size();
  torch::manual_seed(1);
  auto model = ember::bench::torch_vgg16();
  model->to(torch::kCUDA);
  model->train();
  auto x = torch::randn({batch, 3, 224, 224}).to(torch::kCUDA);
  auto y = torch::arange(batch, torch::kLong).mul(7).add(3).remainder(1000).to(torch::kCUDA);
  torch::optim::SGD opt(model->parameters(), torch::optim::SGDOptions(kLr).momentum(kMomentum));
  auto step = [&] {
    opt.zero_grad();
    auto loss = torch::nn::functional::cross_entropy(model->forward(x), y);
    loss.backward();
    opt.step();
    return loss.item<float>();  // waits for the step, like ember's loss.item()
  };
  step();
  for (auto _ : state) benchmark::DoNotOptimize(step());
  state.counters["images/s"] = benchmark::Counter(double(batch), benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(std::string("batch ") + std::to_string(batch) + ", cuDNN TF32 " +
                 (at::globalContext().allowTF32CuDNN() ? "on" : "off") + ", cuBLAS TF32 " +
                 (at::globalContext().allowTF32CuBLAS() ? "on" : "off"));
}

BENCHMARK(BM_vgg16_train_cuda_ember)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(5);
BENCHMARK(BM_vgg16_train_cuda_torch)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(5);

}  // namespace

int main(int argc, char** argv) {
  benchmark::AddCustomContext("cuda_device", ember::cuda::device_name());
  return ember::bench::run_torch_comparison(argc, argv);
}
