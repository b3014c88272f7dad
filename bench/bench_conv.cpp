// conv2d throughput on VGG16's 13 3x3 convolution layers at batch 8 (224 px input): forward,
// backward-data and backward-weight of the active variant (EMBER_CONV2D_FWD=... etc. to switch).
// Counters: GFLOP/s (2*MACs per second, in 1e9) and pct_peak (of the measured all-core FMA peak).
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "bench/bench_common.h"
#include "bench/bench_peak.h"
#include "kernels/cpu/conv2d.h"

namespace {

using ember::cpu::Conv2dShape;

ember::bench::AlignedFloats random_floats(int64_t n) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  ember::bench::AlignedFloats v(static_cast<size_t>(n));
  for (auto& x : v) x = dist(rng);
  return v;
}

// arg 0: index into ember::bench::vgg16_conv_layers(); batch 8.
Conv2dShape layer_shape(benchmark::State& state) {
  const auto& layer = ember::bench::vgg16_conv_layers().at(size_t(state.range(0)));
  return ember::bench::vgg_conv_shape(layer, 8);
}

void set_counters(benchmark::State& state, const Conv2dShape& s, const std::string& variant) {
  const double flops = 2.0 * double(s.macs());
  ember::bench::set_flops(state, flops);
  state.counters["pct_peak"] = benchmark::Counter(100.0 * flops / ember::bench::machine_peak_flops(),
                                                  benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(std::string(ember::bench::vgg16_conv_layers().at(size_t(state.range(0))).name) + " " + variant);
}

void BM_Conv3x3Forward(benchmark::State& state) {
  const auto s = layer_shape(state);
  auto x = random_floats(s.N * s.C * s.H * s.W), w = random_floats(s.K * s.C * 9), b = random_floats(s.K);
  ember::bench::AlignedFloats y(static_cast<size_t>(s.N * s.K * s.P() * s.Q()));
  ember::cpu::conv2d_forward<float>(s, x.data(), w.data(), b.data(), y.data());  // warm-up, untimed: grows per-thread scratch, faults pages in
  for (auto _ : state) {
    ember::cpu::conv2d_forward<float>(s, x.data(), w.data(), b.data(), y.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, s, ember::cpu::conv2d_fwd_table().active());
}

void BM_Conv3x3BackwardData(benchmark::State& state) {
  const auto s = layer_shape(state);
  auto dy = random_floats(s.N * s.K * s.P() * s.Q()), w = random_floats(s.K * s.C * 9);
  ember::bench::AlignedFloats dx(static_cast<size_t>(s.N * s.C * s.H * s.W));
  ember::cpu::conv2d_backward_data<float>(s, dy.data(), w.data(), dx.data());  // warm-up, untimed: grows per-thread scratch, faults pages in
  for (auto _ : state) {
    ember::cpu::conv2d_backward_data<float>(s, dy.data(), w.data(), dx.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, s, ember::cpu::conv2d_bwd_data_table().active());
}

void BM_Conv3x3BackwardWeight(benchmark::State& state) {
  const auto s = layer_shape(state);
  auto x = random_floats(s.N * s.C * s.H * s.W), dy = random_floats(s.N * s.K * s.P() * s.Q());
  ember::bench::AlignedFloats dw(static_cast<size_t>(s.K * s.C * 9)), db(static_cast<size_t>(s.K));
  ember::cpu::conv2d_backward_weight<float>(s, x.data(), dy.data(), dw.data(), db.data());  // warm-up, untimed: grows per-thread scratch, faults pages in
  for (auto _ : state) {
    ember::cpu::conv2d_backward_weight<float>(s, x.data(), dy.data(), dw.data(), db.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, s, ember::cpu::conv2d_bwd_weight_table().active());
}

void vgg16_layers(benchmark::internal::Benchmark* b) {
  for (int i = 0; i < int(ember::bench::vgg16_conv_layers().size()); ++i) b->Arg(i);
  // Each layer is 0.1-3 s of work on this machine: two iterations keep the whole run near 2-3 min.
  b->ArgName("layer")->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(2);
}
BENCHMARK(BM_Conv3x3Forward)->Apply(vgg16_layers);
BENCHMARK(BM_Conv3x3BackwardData)->Apply(vgg16_layers);
BENCHMARK(BM_Conv3x3BackwardWeight)->Apply(vgg16_layers);

// MobileNet-v1 style 3x3 depthwise convolutions (groups == C == K), batch 8; args: C, spatial, stride.
// op 0 = forward, 1 = backward-data, 2 = backward-weight.
void BM_Depthwise3x3(benchmark::State& state) {
  Conv2dShape s;
  s.N = 8, s.C = s.K = s.groups = state.range(0), s.H = s.W = state.range(1), s.R = s.S = 3;
  s.stride_h = s.stride_w = state.range(2), s.pad_h = s.pad_w = 1;
  const int op = int(state.range(3));
  auto x = random_floats(s.N * s.C * s.H * s.W), w = random_floats(s.K * 9), dy = random_floats(s.N * s.K * s.P() * s.Q());
  ember::bench::AlignedFloats y(dy.size()), dx(x.size()), dw(w.size()), db(static_cast<size_t>(s.K));
  for (auto _ : state) {
    if (op == 0) ember::cpu::conv2d_forward<float>(s, x.data(), w.data(), nullptr, y.data());
    if (op == 1) ember::cpu::conv2d_backward_data<float>(s, dy.data(), w.data(), dx.data());
    if (op == 2) ember::cpu::conv2d_backward_weight<float>(s, x.data(), dy.data(), dw.data(), db.data());
    benchmark::ClobberMemory();
  }
  ember::bench::set_flops(state, 2.0 * double(s.macs()));
  state.SetLabel(op == 0 ? "fwd" : op == 1 ? "bwd_data" : "bwd_weight");
}
BENCHMARK(BM_Depthwise3x3)
    ->ArgsProduct({{32}, {112}, {1}, {0, 1, 2}})
    ->ArgsProduct({{64}, {112}, {2}, {0, 1, 2}})
    ->ArgsProduct({{256}, {28}, {1}, {0, 1, 2}})
    ->ArgsProduct({{1024}, {7}, {1}, {0, 1, 2}})
    ->ArgNames({"C", "hw", "stride", "op"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
