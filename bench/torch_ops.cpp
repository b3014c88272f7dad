// Op-level comparison with LibTorch, same process, same threads, float32:
// SGEMM; conv2d forward / data-grad / weight-grad on VGG16's layer shapes; 2x2 max pooling and
// training-mode BatchNorm+ReLU (forward + backward) at VGG16's activation shapes.
// Counters: GFLOP/s (GEMM, conv) or GB/s (pool, BN: bytes each direction must at least touch).
// ember's side calls the float32 kernels through their variant tables (what the ops use); LibTorch's
// side calls the ATen ops without autograd. tools/bench-report turns the JSON into ratio tables.
#include <torch/torch.h>

#include "bench/bench_common.h"
#include "bench/torch_common.h"
#include "kernels/cpu/batchnorm.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/pool.h"
#include "kernels/registry.h"

namespace {
using namespace ember;
using ember::bench::set_flops;

constexpr int64_t kConvBatch = 4;

void BM_sgemm_ember(benchmark::State& state) {
  const int64_t n = state.range(0);
  auto a = torch::randn({n, n}), b = torch::randn({n, n}), c = torch::empty({n, n});
  for (auto _ : state)
    ember::cpu::sgemm(false, false, n, n, n, 1.f, a.data_ptr<float>(), n, b.data_ptr<float>(), n, 0.f, c.data_ptr<float>(), n);
  set_flops(state, 2.0 * n * n * n);
}
void BM_sgemm_torch(benchmark::State& state) {
  const int64_t n = state.range(0);
  auto a = torch::randn({n, n}), b = torch::randn({n, n}), c = torch::empty({n, n});
  for (auto _ : state) torch::mm_out(c, a, b);
  benchmark::ClobberMemory();
  set_flops(state, 2.0 * n * n * n);
}

enum class Dir { Fwd, Dgrad, Wgrad };

void conv_ember(benchmark::State& state, Dir dir) {
  const auto& layer = bench::vgg16_conv_layers()[size_t(state.range(0))];
  auto s = bench::vgg_conv_shape(layer, kConvBatch);
  auto x = torch::randn({s.N, s.C, s.H, s.W}), w = torch::randn({s.K, s.C, 3, 3}) * 0.05;
  auto y = torch::randn({s.N, s.K, s.P(), s.Q()}), dx = torch::empty_like(x), dw = torch::empty_like(w);
  torch::NoGradGuard no_grad;
  for (auto _ : state) {
    if (dir == Dir::Fwd) cpu::conv2d_forward<float>(s, x.data_ptr<float>(), w.data_ptr<float>(), nullptr, y.data_ptr<float>());
    if (dir == Dir::Dgrad) cpu::conv2d_backward_data<float>(s, y.data_ptr<float>(), w.data_ptr<float>(), dx.data_ptr<float>());
    if (dir == Dir::Wgrad)
      cpu::conv2d_backward_weight<float>(s, x.data_ptr<float>(), y.data_ptr<float>(), dw.data_ptr<float>(), nullptr);
  }
  state.SetLabel(layer.name);
  set_flops(state, 2.0 * double(s.macs()));
}

void conv_torch(benchmark::State& state, Dir dir) {
  const auto& layer = bench::vgg16_conv_layers()[size_t(state.range(0))];
  auto s = bench::vgg_conv_shape(layer, kConvBatch);
  auto x = torch::randn({s.N, s.C, s.H, s.W}), w = torch::randn({s.K, s.C, 3, 3}) * 0.05;
  auto gy = torch::randn({s.N, s.K, s.P(), s.Q()});
  torch::NoGradGuard no_grad;
  for (auto _ : state) {
    if (dir == Dir::Fwd) {
      auto y = torch::conv2d(x, w, {}, 1, 1);
      benchmark::DoNotOptimize(y.data_ptr());
    } else {
      std::array<bool, 3> mask = {dir == Dir::Dgrad, dir == Dir::Wgrad, false};
      auto grads = at::convolution_backward(gy, x, w, c10::nullopt, {1, 1}, {1, 1}, {1, 1}, false, {0, 0}, 1, mask);
      benchmark::DoNotOptimize(std::get<0>(grads).defined() ? std::get<0>(grads).data_ptr() : nullptr);
    }
  }
  state.SetLabel(layer.name);
  set_flops(state, 2.0 * double(s.macs()));
}

void BM_conv_fwd_ember(benchmark::State& s) { conv_ember(s, Dir::Fwd); }
void BM_conv_fwd_torch(benchmark::State& s) { conv_torch(s, Dir::Fwd); }
void BM_conv_dgrad_ember(benchmark::State& s) { conv_ember(s, Dir::Dgrad); }
void BM_conv_dgrad_torch(benchmark::State& s) { conv_torch(s, Dir::Dgrad); }
void BM_conv_wgrad_ember(benchmark::State& s) { conv_ember(s, Dir::Wgrad); }
void BM_conv_wgrad_torch(benchmark::State& s) { conv_torch(s, Dir::Wgrad); }

// ---- pooling and BN+ReLU at VGG16's activation shapes (inputs of its 5 pools) ----------------
struct Act {
  const char* name;
  int64_t C, HW;
};
const Act kActs[] = {{"64x224", 64, 224}, {"128x112", 128, 112}, {"256x56", 256, 56}, {"512x28", 512, 28}, {"512x14", 512, 14}};

// Bytes a 2x2/2 max pool must touch: forward reads x, writes y (+ indices, counted as in each
// library's own format is not comparable, so left out); backward reads dy, writes dx.
void BM_maxpool_ember(benchmark::State& state) {
  const Act a = kActs[state.range(0)];
  cpu::Pool2dShape s;
  s.N = kConvBatch, s.C = a.C, s.H = s.W = a.HW;
  auto x = torch::randn({s.N, s.C, s.H, s.W}), y = torch::empty({s.N, s.C, s.P(), s.Q()});
  auto idx = torch::empty({s.N, s.C, s.P(), s.Q()}, torch::kLong), dx = torch::empty_like(x);
  for (auto _ : state) {
    cpu::max_pool2d_forward<float>(s, x.data_ptr<float>(), y.data_ptr<float>(), idx.data_ptr<int64_t>());
    cpu::max_pool2d_backward<float>(s, y.data_ptr<float>(), idx.data_ptr<int64_t>(), dx.data_ptr<float>());
  }
  state.SetLabel(a.name);
  state.counters["GB/s"] = benchmark::Counter(2.0 * 4 * (x.numel() + y.numel()) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
void BM_maxpool_torch(benchmark::State& state) {
  const Act a = kActs[state.range(0)];
  torch::NoGradGuard no_grad;
  auto x = torch::randn({kConvBatch, a.C, a.HW, a.HW});
  int64_t numel_y = 0;
  for (auto _ : state) {
    auto [y, idx] = at::max_pool2d_with_indices(x, {2, 2}, {2, 2}, {0, 0}, {1, 1}, false);
    auto dx = at::max_pool2d_with_indices_backward(y, x, {2, 2}, {2, 2}, {0, 0}, {1, 1}, false, idx);
    benchmark::DoNotOptimize(dx.data_ptr());
    numel_y = y.numel();
  }
  state.SetLabel(a.name);
  state.counters["GB/s"] = benchmark::Counter(2.0 * 4 * (x.numel() + numel_y) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// Training-mode BatchNorm2d + ReLU, forward then backward (ember: one fused kernel each way;
// LibTorch: native_batch_norm + relu, threshold_backward + native_batch_norm_backward).
// Bytes: forward reads x twice-or-once and writes y; counted as the minimum, read x + write y;
// backward reads x, y, dy and writes dx.
void BM_bn_relu_ember(benchmark::State& state) {
  const Act a = kActs[state.range(0)];
  cpu::BatchNormShape s{kConvBatch, a.C, a.HW * a.HW};
  auto x = torch::randn({s.N, s.C, a.HW, a.HW}), y = torch::empty_like(x), dy = torch::randn_like(x), dx = torch::empty_like(x);
  auto w = torch::rand({s.C}) + 0.5, b = torch::randn({s.C}) * 0.1;
  auto mean = torch::empty({s.C}), var = torch::empty({s.C}), dw = torch::empty({s.C}), db = torch::empty({s.C});
  for (auto _ : state) {
    cpu::batchnorm_forward_train<float>(s, x.data_ptr<float>(), w.data_ptr<float>(), b.data_ptr<float>(), 1e-5, true,
                                        y.data_ptr<float>(), mean.data_ptr<float>(), var.data_ptr<float>());
    cpu::batchnorm_backward<float>(s, x.data_ptr<float>(), y.data_ptr<float>(), dy.data_ptr<float>(), w.data_ptr<float>(),
                                   mean.data_ptr<float>(), var.data_ptr<float>(), 1e-5, true, true, dx.data_ptr<float>(),
                                   dw.data_ptr<float>(), db.data_ptr<float>());
  }
  state.SetLabel(a.name);
  state.counters["GB/s"] = benchmark::Counter(6.0 * 4 * x.numel() * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
void BM_bn_relu_torch(benchmark::State& state) {
  const Act a = kActs[state.range(0)];
  torch::NoGradGuard no_grad;
  auto x = torch::randn({kConvBatch, a.C, a.HW, a.HW}), dy = torch::randn_like(x);
  auto w = torch::rand({a.C}) + 0.5, b = torch::randn({a.C}) * 0.1;
  auto rm = torch::zeros({a.C}), rv = torch::ones({a.C});
  for (auto _ : state) {
    auto [z, save_mean, save_invstd] = at::native_batch_norm(x, w, b, rm, rv, true, 0.1, 1e-5);
    auto y = at::relu(z);
    auto g = at::threshold_backward(dy, y, 0);
    auto grads = at::native_batch_norm_backward(g, x, w, rm, rv, save_mean, save_invstd, true, 1e-5, {true, true, true});
    benchmark::DoNotOptimize(std::get<0>(grads).data_ptr());
  }
  state.SetLabel(a.name);
  state.counters["GB/s"] = benchmark::Counter(6.0 * 4 * x.numel() * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void gemm_args(benchmark::internal::Benchmark* b) {
  for (int n : {256, 512, 1024, 2048}) b->Arg(n);
  b->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(0.3);
}
void conv_args(benchmark::internal::Benchmark* b) {
  for (int i = 0; i < 13; ++i) b->Arg(i);
  b->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(0.2);
}

void act_args(benchmark::internal::Benchmark* b) {
  for (int i = 0; i < 5; ++i) b->Arg(i);
  b->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(0.2);
}

BENCHMARK(BM_sgemm_ember)->Apply(gemm_args);
BENCHMARK(BM_sgemm_torch)->Apply(gemm_args);
BENCHMARK(BM_conv_fwd_ember)->Apply(conv_args);
BENCHMARK(BM_conv_fwd_torch)->Apply(conv_args);
BENCHMARK(BM_conv_dgrad_ember)->Apply(conv_args);
BENCHMARK(BM_conv_dgrad_torch)->Apply(conv_args);
BENCHMARK(BM_conv_wgrad_ember)->Apply(conv_args);
BENCHMARK(BM_conv_wgrad_torch)->Apply(conv_args);
BENCHMARK(BM_maxpool_ember)->Apply(act_args);
BENCHMARK(BM_maxpool_torch)->Apply(act_args);
BENCHMARK(BM_bn_relu_ember)->Apply(act_args);
BENCHMARK(BM_bn_relu_torch)->Apply(act_args);

}  // namespace

int main(int argc, char** argv) { return ember::bench::run_torch_comparison(argc, argv); }
