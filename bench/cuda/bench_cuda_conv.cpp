// CUDA benchmarks: conv forward / data gradient / weight gradient for VGG16's 13 conv layers
// (batch 64, 224 px; EMBER_BENCH_BATCH overrides the batch) for ember_simt, ember_tc (TF32, BF16; slice
// depths 32 and 16) and cuDNN (FP32, TF32, BF16 on float tensors, and BF16 on stored bf16 tensors),
// reported as GFLOP/s (2 * MACs per second); four of MobileNet v1's depthwise layers under ember's direct kernels,
// ember's implicit GEMMs (EMBER_DEPTHWISE=gemm) and cuDNN; pooling and batchnorm+ReLU as GB/s next to
// a measured device-to-device cudaMemcpy bandwidth.
// Every benchmark times single launches with a device synchronise (manual time), a few
// iterations each, so the whole suite fits in a few minutes on an H100.
// Without a device every benchmark reports SkipWithError("no CUDA device").
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "kernels/cuda/cuda_api.h"
#include "kernels/cuda/variants.h"
#include "kernels/registry.h"

namespace {
using namespace ember::cuda;

int64_t batch_size() {
  const char* env = std::getenv("EMBER_BENCH_BATCH");
  return env && std::atoi(env) > 0 ? std::atoi(env) : 64;
}

// A device buffer filled with a constant (values do not change the speed of these kernels).
struct Buffer {
  void* ptr = nullptr;
  Buffer(size_t bytes, float value) : ptr(cuda_alloc(bytes)) { fill(static_cast<float*>(ptr), value, int64_t(bytes / 4)); }
  ~Buffer() { cuda_free(ptr); }
  float* f() const { return static_cast<float*>(ptr); }
};

// Runs `body` once to warm up, then times each iteration around a device synchronise.
void time_gpu(benchmark::State& state, const std::function<void()>& body) {
  body();
  synchronize();
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    body();
    synchronize();
    state.SetIterationTime(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
}

bool skip_without_device(benchmark::State& state) {
  if (cuda_available()) return false;
  state.SkipWithError("no CUDA device (ember::cuda::cuda_available() is false)");
  return true;
}

// impl: a registry variant of op (e.g. "ember" or "cudnn" for "pool" and "bn", "direct" or "gemm" for
// "depthwise"); an unknown or unavailable one skips the benchmark.
bool select_impl(benchmark::State& state, const char* op, const std::string& impl) {
  cuda_variant_ops();
  try {
    ember::kernels::set_variant(op, impl);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return false;
  }
  return true;
}

// ---------------------------------------------------------------- conv
struct VggLayer {
  int64_t C, K, HW;
};
Conv2dShape vgg_shape(const VggLayer& layer) {
  Conv2dShape s;
  s.N = batch_size(), s.C = layer.C, s.H = s.W = layer.HW, s.K = layer.K, s.R = s.S = 3, s.pad_h = s.pad_w = 1;
  return s;
}
// MobileNet v1's 3x3 depthwise convs (224 px input): channels, input size, stride.
struct DepthwiseLayer {
  int64_t C, HW, stride;
};
const DepthwiseLayer kMobileNetDepthwise[4] = {{32, 112, 1}, {64, 112, 2}, {256, 28, 1}, {512, 14, 1}};
Conv2dShape depthwise_shape(const DepthwiseLayer& layer) {
  Conv2dShape s;
  s.N = batch_size(), s.C = s.K = s.groups = layer.C, s.H = s.W = layer.HW, s.R = s.S = 3, s.pad_h = s.pad_w = 1;
  s.stride_h = s.stride_w = layer.stride;
  return s;
}
const VggLayer kVgg16[13] = {{3, 64, 224},   {64, 64, 224},  {64, 128, 112}, {128, 128, 112}, {128, 256, 56},
                             {256, 256, 56}, {256, 256, 56}, {256, 512, 28}, {512, 512, 28},  {512, 512, 28},
                             {512, 512, 14}, {512, 512, 14}, {512, 512, 14}};

enum class Pass { Forward, BackwardData, BackwardWeight };

// bf16 copies of constant float buffers, made once outside the timing (for cuDNN on stored bf16).
struct Bf16Buffer {
  void* ptr;
  Bf16Buffer(const Buffer& from, int64_t n) : ptr(cuda_alloc(size_t(n) * 2)) {
    float_to_bf16(n, from.f(), static_cast<uint16_t*>(ptr));
  }
  ~Bf16Buffer() { cuda_free(ptr); }
};

// stored: cuDNN on tensors already in bf16 (cudnn_ref::conv2d_stored), without the float<->bf16
// conversions around every call of the float API; the baseline a cuDNN user would time.
// variants: registry choices to make first, {op, name} ("depthwise": direct | gemm; "conv_tc_depth":
// k32 | k16), reset to their defaults afterwards.
using Choices = std::vector<std::pair<std::string, std::string>>;
void bench_conv(benchmark::State& state, Conv2dShape s, Pass pass, ConvAlgo algo, Precision prec, bool stored,
                Choices variants) {
  if (skip_without_device(state)) return;
  if (algo == ConvAlgo::Cudnn && !cudnn_available()) return state.SkipWithError("built without cuDNN");
  for (const auto& [op, name] : variants)
    if (!select_impl(state, op.c_str(), name)) return;
  const int64_t nw = s.K * (s.C / s.groups) * s.R * s.S;
  {
    Buffer x(size_t(s.N * s.C * s.H * s.W) * 4, 0.01f), w(size_t(nw) * 4, 0.02f),
        y(size_t(s.N * s.K * s.P() * s.Q()) * 4, 0.03f);
    try {
      if (stored) {
        const Bf16Buffer xb(x, s.N * s.C * s.H * s.W), wb(w, nw), yb(y, s.N * s.K * s.P() * s.Q());
        time_gpu(state, [&] {
          switch (pass) {
            case Pass::Forward: return cudnn_ref::conv2d_stored(prec, 0, s, xb.ptr, wb.ptr, yb.ptr);
            case Pass::BackwardData: return cudnn_ref::conv2d_stored(prec, 1, s, yb.ptr, wb.ptr, xb.ptr);
            case Pass::BackwardWeight: return cudnn_ref::conv2d_stored(prec, 2, s, xb.ptr, yb.ptr, wb.ptr);
          }
        });
      } else {
        time_gpu(state, [&] {
          switch (pass) {
            case Pass::Forward: return conv2d_forward(algo, prec, s, x.f(), w.f(), nullptr, y.f());
            case Pass::BackwardData: return conv2d_backward_data(algo, prec, s, y.f(), w.f(), x.f());
            case Pass::BackwardWeight: return conv2d_backward_weight(algo, prec, s, x.f(), y.f(), w.f(), nullptr);
          }
        });
      }
    } catch (const std::exception& e) {
      state.SkipWithError(e.what());
    }
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(2e-9 * double(s.macs()), benchmark::Counter::kIsIterationInvariantRate);
  for (const auto& [op, name] : variants) ember::kernels::set_variant(op, "");
  empty_cache();  // layers differ in size classes: do not let the cache hold every one of them
}

// ---------------------------------------------------------------- memory-bound ops
double g_memcpy_gbps = 0;  // set by the memcpy benchmark, which is registered (and runs) first

void report_bandwidth(benchmark::State& state, double bytes_per_iter) {
  state.counters["GB/s"] = benchmark::Counter(bytes_per_iter * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  // Fraction of the measured cudaMemcpy D2D bandwidth (the rate divides by the manual time too).
  if (g_memcpy_gbps > 0)
    state.counters["vs_memcpy"] = benchmark::Counter(bytes_per_iter * 1e-9 / g_memcpy_gbps,
                                                     benchmark::Counter::kIsIterationInvariantRate);
}

void bench_memcpy(benchmark::State& state) {
  if (skip_without_device(state)) return;
  const size_t bytes = size_t(1) << 30;
  double total_seconds = 0;
  {
    Buffer a(bytes, 1.f), b(bytes, 2.f);
    memcpy_d2d(b.ptr, a.ptr, bytes);
    synchronize();
    for (auto _ : state) {
      const auto t0 = std::chrono::steady_clock::now();
      memcpy_d2d(b.ptr, a.ptr, bytes);
      synchronize();
      const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      state.SetIterationTime(dt);
      total_seconds += dt;
    }
  }
  const double moved = 2.0 * double(bytes);  // read + write
  if (state.iterations() > 0) g_memcpy_gbps = moved * double(state.iterations()) / total_seconds * 1e-9;
  state.counters["GB/s"] = benchmark::Counter(moved * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  empty_cache();
}

void bench_pool(benchmark::State& state, bool max_pool, bool backward, int64_t C, int64_t HW, std::string impl) {
  if (skip_without_device(state) || !select_impl(state, "pool", impl)) return;
  Pool2dShape s;
  s.N = batch_size(), s.C = C, s.H = s.W = HW, s.kernel_h = s.kernel_w = 2, s.stride_h = s.stride_w = 2;
  const size_t nx = size_t(s.N * s.C * s.H * s.W), ny = size_t(s.N * s.C * s.P() * s.Q());
  double bytes = 0;
  {
    Buffer x(nx * 4, 0.5f), y(ny * 4, 0.f), dy(ny * 4, 1.f), dx(nx * 4, 0.f), idx(ny * 8, 0.f);
    auto* indices = static_cast<int64_t*>(idx.ptr);
    try {  // like bench_conv: an error skips this benchmark instead of aborting the run (and its JSON)
      if (max_pool) max_pool2d_forward(s, x.f(), y.f(), indices);
      time_gpu(state, [&] {
        if (max_pool && !backward) max_pool2d_forward(s, x.f(), y.f(), indices);
        if (max_pool && backward) max_pool2d_backward(s, x.f(), y.f(), dy.f(), indices, dx.f());
        if (!max_pool && !backward) avg_pool2d_forward(s, x.f(), y.f());
        if (!max_pool && backward) avg_pool2d_backward(s, dy.f(), dx.f());
      });
    } catch (const std::exception& e) {
      state.SkipWithError(e.what());
    }
    // Compulsory traffic: forward reads x, writes y (+ int64 indices); backward reads dy (+ indices),
    // writes dx. Both are 4 (nx + ny) bytes plus the indices.
    bytes = 4.0 * double(nx + ny) + (max_pool ? 8.0 * double(ny) : 0.0);
  }
  report_bandwidth(state, bytes);
  empty_cache();
}

// slice: ember's statistics slice ("bn_slice": u4096 | u1024 | u16384; "" keeps the default); impl:
// "ember" or "cudnn".
void bench_bn_relu(benchmark::State& state, bool backward, int64_t C, int64_t HW, std::string slice, std::string impl) {
  if (skip_without_device(state) || !select_impl(state, "bn", impl)) return;
  if (!slice.empty() && !select_impl(state, "bn_slice", slice)) return;
  BatchNormArgs a;
  a.N = batch_size(), a.C = C, a.HW = HW * HW, a.relu = true;
  const size_t n = size_t(a.N * a.C * a.HW);
  double bytes = 0;
  {
    Buffer x(n * 4, 0.5f), y(n * 4, 0.f), dy(n * 4, 1.f), dx(n * 4, 0.f), gamma(size_t(C) * 4, 1.f),
        beta(size_t(C) * 4, 0.f), mean(size_t(C) * 4, 0.f), invstd(size_t(C) * 4, 1.f), rm(size_t(C) * 4, 0.f),
        rv(size_t(C) * 4, 1.f), dg(size_t(C) * 4, 0.f), db(size_t(C) * 4, 0.f);
    try {
      batchnorm_forward_train(a, x.f(), gamma.f(), beta.f(), y.f(), mean.f(), invstd.f(), rm.f(), rv.f());
      time_gpu(state, [&] {
        if (backward)
          batchnorm_backward(a, x.f(), y.f(), dy.f(), gamma.f(), mean.f(), invstd.f(), dx.f(), dg.f(), db.f());
        else
          batchnorm_forward_train(a, x.f(), gamma.f(), beta.f(), y.f(), mean.f(), invstd.f(), rm.f(), rv.f());
      });
    } catch (const std::exception& e) {
      state.SkipWithError(e.what());
    }
    // Compulsory traffic of a fused kernel: forward reads x and writes y; backward reads x, y, dy, writes dx.
    bytes = backward ? 16.0 * n : 8.0 * n;
  }
  report_bandwidth(state, bytes);
  if (!slice.empty()) ember::kernels::set_variant("bn_slice", "");
  empty_cache();
}

// ---------------------------------------------------------------- registration
bool register_all() {
  benchmark::RegisterBenchmark("memcpy_d2d/1GiB", bench_memcpy)->UseManualTime()->Iterations(10)->Unit(benchmark::kMillisecond);
  struct Impl {
    const char* name;
    ConvAlgo algo;
    Precision prec;
    bool stored = false;
    const char* tc_depth = "";  // ember_tc's slice depth variant; "" keeps the default (k32)
  };
  // cudnn_bf16 takes float tensors like ember's kernels (converted to bf16 and back around cuDNN);
  // cudnn_bf16_stored is cuDNN alone on bf16 tensors. Both are reported: the first is like for
  // like with ember's float API, the second is what cuDNN itself does.
  const Impl impls[] = {{"ember_simt", ConvAlgo::EmberSimt, Precision::FP32},
                        {"ember_tc_tf32", ConvAlgo::EmberTensorCore, Precision::TF32},
                        {"ember_tc_bf16", ConvAlgo::EmberTensorCore, Precision::BF16},
                        {"ember_tc_tf32_k16", ConvAlgo::EmberTensorCore, Precision::TF32, false, "k16"},
                        {"ember_tc_bf16_k16", ConvAlgo::EmberTensorCore, Precision::BF16, false, "k16"},
                        {"cudnn_fp32", ConvAlgo::Cudnn, Precision::FP32},
                        {"cudnn_tf32", ConvAlgo::Cudnn, Precision::TF32},
                        {"cudnn_bf16", ConvAlgo::Cudnn, Precision::BF16},
                        {"cudnn_bf16_stored", ConvAlgo::Cudnn, Precision::BF16, true}};
  const std::pair<const char*, Pass> passes[] = {
      {"fwd", Pass::Forward}, {"dgrad", Pass::BackwardData}, {"wgrad", Pass::BackwardWeight}};
  for (int l = 0; l < 13; ++l)
    for (const auto& [pass_name, pass] : passes)
      for (const Impl& impl : impls) {
        const VggLayer layer = kVgg16[l];
        const std::string name = std::string("conv_") + pass_name + "/vgg16_conv" + std::to_string(l + 1) + "_C" +
                                 std::to_string(layer.C) + "_K" + std::to_string(layer.K) + "_" +
                                 std::to_string(layer.HW) + "px/" + impl.name;
        Choices choices;
        if (*impl.tc_depth) choices.emplace_back("conv_tc_depth", impl.tc_depth);
        benchmark::RegisterBenchmark(name.c_str(), bench_conv, vgg_shape(layer), pass, impl.algo, impl.prec, impl.stored,
                                     choices)
            ->UseManualTime()
            ->Iterations(3)
            ->Unit(benchmark::kMillisecond);
      }
  struct DepthwiseImpl {
    const char* name;
    ConvAlgo algo;
    Precision prec;
    const char* variant;
  };
  const DepthwiseImpl dw_impls[] = {{"ember_direct", ConvAlgo::EmberSimt, Precision::FP32, "direct"},
                                    {"ember_simt_gemm", ConvAlgo::EmberSimt, Precision::FP32, "gemm"},
                                    {"ember_tc_tf32_gemm", ConvAlgo::EmberTensorCore, Precision::TF32, "gemm"},
                                    {"ember_tc_bf16_gemm", ConvAlgo::EmberTensorCore, Precision::BF16, "gemm"},
                                    {"cudnn_fp32", ConvAlgo::Cudnn, Precision::FP32, ""},
                                    {"cudnn_bf16", ConvAlgo::Cudnn, Precision::BF16, ""}};
  for (const DepthwiseLayer& layer : kMobileNetDepthwise)
    for (const auto& [pass_name, pass] : passes)
      for (const DepthwiseImpl& impl : dw_impls) {
        const std::string name = std::string("conv_") + pass_name + "/mobilenet_dw_C" + std::to_string(layer.C) + "_" +
                                 std::to_string(layer.HW) + "px_s" + std::to_string(layer.stride) + "/" + impl.name;
        Choices choices;
        if (*impl.variant) choices.emplace_back("depthwise", impl.variant);
        benchmark::RegisterBenchmark(name.c_str(), bench_conv, depthwise_shape(layer), pass, impl.algo, impl.prec, false,
                                     choices)
            ->UseManualTime()
            ->Iterations(3)
            ->Unit(benchmark::kMillisecond);
      }
  for (const char* impl : {"ember", "cudnn"})
    for (bool backward : {false, true}) {
      const std::string suffix = std::string(backward ? "bwd" : "fwd") + "/";
      auto add = [&](const std::string& name, auto fn, auto... args) {
        benchmark::RegisterBenchmark((name + suffix + impl).c_str(), fn, args..., std::string(impl))
            ->UseManualTime()
            ->Iterations(10)
            ->Unit(benchmark::kMillisecond);
      };
      add("max_pool2x2_C64_224px_", bench_pool, true, backward, int64_t(64), int64_t(224));
      add("avg_pool2x2_C64_224px_", bench_pool, false, backward, int64_t(64), int64_t(224));
      add("bn_relu_train_C64_224px_", bench_bn_relu, backward, int64_t(64), int64_t(224), std::string());
      add("bn_relu_train_C512_28px_", bench_bn_relu, backward, int64_t(512), int64_t(28), std::string());
    }
  // ember's batch norm at the other statistics slice sizes (the rows above use the default, u4096).
  for (const char* slice : {"u1024", "u16384"})
    for (bool backward : {false, true})
      for (const auto& [C, HW] : {std::pair<int64_t, int64_t>{64, 224}, {512, 28}}) {
        const std::string name = "bn_relu_train_C" + std::to_string(C) + "_" + std::to_string(HW) + "px_" +
                                 (backward ? "bwd" : "fwd") + "/ember_" + slice;
        benchmark::RegisterBenchmark(name.c_str(), bench_bn_relu, backward, C, HW, std::string(slice), std::string("ember"))
            ->UseManualTime()
            ->Iterations(10)
            ->Unit(benchmark::kMillisecond);
      }
  return true;
}
const bool registered = register_all();

}  // namespace

BENCHMARK_MAIN();
