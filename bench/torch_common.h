// Shared main() of the LibTorch comparison programs (bench/torch_*.cpp): pins ember (OpenMP) and
// LibTorch (at::set_num_threads, which also sets its OpenMP pool) to the same thread count and
// records in the benchmark context what each library runs with: threads, precision, ember's ISA
// and GEMM variant, LibTorch's version, BLAS and CPU capability, and which libblas.so.3 the
// Debian alternatives point at (LibTorch's mm goes through it: openblas, not the reference BLAS).
#pragma once
#include <torch/torch.h>
#include <unistd.h>

#include <string>

#include "bench/bench_common.h"
#include "kernels/registry.h"

namespace ember::bench {

// "KEY=value, ..." or "KEY: value\n" lookups in at::show_config()'s text.
inline std::string torch_config_value(const std::string& cfg, const std::string& key, char end) {
  auto at = cfg.find(key);
  if (at == std::string::npos) return "?";
  at += key.size();
  auto stop = cfg.find(end, at);
  return cfg.substr(at, stop == std::string::npos ? std::string::npos : stop - at);
}

inline std::string libblas_target() {
  char target[512] = {0};
  ssize_t len = readlink("/etc/alternatives/libblas.so.3-x86_64-linux-gnu", target, sizeof target - 1);
  return len > 0 ? std::string(target, size_t(len)) : "unknown";
}

// torchvision's vgg16 (configuration D, no BN), ReLU in place as torchvision has it.
inline torch::nn::Sequential torch_vgg16() {
  torch::nn::Sequential m;
  int64_t in = 3;
  for (int64_t v : {64, 64, -1, 128, 128, -1, 256, 256, 256, -1, 512, 512, 512, -1, 512, 512, 512, -1}) {
    if (v < 0) {
      m->push_back(torch::nn::MaxPool2d(2));
      continue;
    }
    m->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(in, v, 3).padding(1)));
    m->push_back(torch::nn::ReLU(torch::nn::ReLUOptions(true)));
    in = v;
  }
  m->push_back(torch::nn::AdaptiveAvgPool2d(torch::nn::AdaptiveAvgPool2dOptions({7, 7})));
  m->push_back(torch::nn::Flatten());
  m->push_back(torch::nn::Linear(512 * 7 * 7, 4096));
  m->push_back(torch::nn::ReLU(torch::nn::ReLUOptions(true)));
  m->push_back(torch::nn::Dropout(0.5));
  m->push_back(torch::nn::Linear(4096, 4096));
  m->push_back(torch::nn::ReLU(torch::nn::ReLUOptions(true)));
  m->push_back(torch::nn::Dropout(0.5));
  m->push_back(torch::nn::Linear(4096, 1000));
  return m;
}

inline int run_torch_comparison(int argc, char** argv) {
  const int threads = bench_threads();
  omp_set_num_threads(threads);
  at::set_num_threads(threads);
  at::set_num_interop_threads(1);
  const std::string cfg = at::show_config();
  benchmark::AddCustomContext("threads", std::to_string(threads));
  benchmark::AddCustomContext("precision", "float32");
  benchmark::AddCustomContext("ember_isa", kernels::isa_name(kernels::cpu_isa()));
  benchmark::AddCustomContext("ember_gemm", kernels::active_variant("gemm"));
  benchmark::AddCustomContext("ember_conv2d_fwd", kernels::active_variant("conv2d_fwd"));
  benchmark::AddCustomContext("torch_version", TORCH_VERSION);
  benchmark::AddCustomContext("torch_threads", std::to_string(at::get_num_threads()));
  benchmark::AddCustomContext("torch_blas", torch_config_value(cfg, "BLAS_INFO=", ','));
  benchmark::AddCustomContext("torch_cpu_capability", torch_config_value(cfg, "CPU capability usage: ", '\n'));
  benchmark::AddCustomContext("torch_mkldnn", torch_config_value(cfg, "USE_MKLDNN=", ','));
  benchmark::AddCustomContext("libblas.so.3", libblas_target());
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace ember::bench
