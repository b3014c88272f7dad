// Shared helpers for the benchmark programs: VGG16 layer shapes, thread pinning, peak-RSS counters.
#pragma once
#include <benchmark/benchmark.h>
#include <omp.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <new>
#include <string>
#include <vector>

#include "kernels/cpu/conv2d.h"

namespace ember::bench {

// 64-byte aligned float buffers, as ember's tensors are: a plain std::vector of 100 MB comes from
// mmap at a 16-byte offset, so every 64-byte vector store of a kernel would straddle two cache lines
// and the benchmark would time an alignment no real tensor has (measured 5-10% on conv1_1 forward).
template <class T>
struct Aligned64 {
  using value_type = T;
  Aligned64() = default;
  template <class U>
  Aligned64(const Aligned64<U>&) {}
  T* allocate(size_t n) {
    void* p = std::aligned_alloc(64, (n * sizeof(T) + 63) / 64 * 64);
    if (!p) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t) { std::free(p); }
  template <class U>
  bool operator==(const Aligned64<U>&) const { return true; }
};
using AlignedFloats = std::vector<float, Aligned64<float>>;

struct VggConvLayer {
  const char* name;
  int64_t C, K, HW;
};
// VGG16's 13 3x3 convolutions (stride 1, padding 1) at 224 px input.
inline const std::vector<VggConvLayer>& vgg16_conv_layers() {
  static const std::vector<VggConvLayer> layers = {
      {"conv1_1", 3, 64, 224},    {"conv1_2", 64, 64, 224},   {"conv2_1", 64, 128, 112},  {"conv2_2", 128, 128, 112},
      {"conv3_1", 128, 256, 56},  {"conv3_2", 256, 256, 56},  {"conv3_3", 256, 256, 56},  {"conv4_1", 256, 512, 28},
      {"conv4_2", 512, 512, 28},  {"conv4_3", 512, 512, 28},  {"conv5_1", 512, 512, 14},  {"conv5_2", 512, 512, 14},
      {"conv5_3", 512, 512, 14}};
  return layers;
}
inline cpu::Conv2dShape vgg_conv_shape(const VggConvLayer& l, int64_t batch) {
  cpu::Conv2dShape s;
  s.N = batch;
  s.C = l.C;
  s.H = s.W = l.HW;
  s.K = l.K;
  s.R = s.S = 3;
  s.pad_h = s.pad_w = 1;
  return s;
}

// Threads for both libraries: EMBER_BENCH_THREADS, else all cores.
inline int bench_threads() {
  const char* v = std::getenv("EMBER_BENCH_THREADS");
  return v ? std::atoi(v) : omp_get_num_procs();
}

// Peak resident memory of this process, resettable (Linux: write 5 to /proc/self/clear_refs).
inline void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }
// A "VmXXX:  1234 kB" field of /proc/self/status, in MiB.
inline double proc_status_mib(const char* field) {
  std::ifstream f("/proc/self/status");
  std::string line;
  const std::string key = std::string(field) + ":";
  while (std::getline(f, line))
    if (line.rfind(key, 0) == 0) return std::atof(line.c_str() + key.size()) / 1024.0;
  return 0;
}
inline double peak_rss_mib() { return proc_status_mib("VmHWM"); }
inline double current_rss_mib() { return proc_status_mib("VmRSS"); }

inline void set_flops(benchmark::State& state, double flops_per_iter) {
  state.counters["GFLOP/s"] = benchmark::Counter(flops_per_iter * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace ember::bench
