// Shared by the two direct weight-gradient kernels (conv2d_direct_wgrad_avx512.cpp and
// conv2d_direct_f23_wgrad_avx512.cpp): the per-thread lane sums and their reduction, the list of dy
// cache lines to prefetch, and the table of register-block functions. Plain C++ (the AVX-512 code
// stays in the kernels); internal linkage like the other conv_detail helpers.
#pragma once
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

#include "kernels/cpu/conv2d_im2col.h"

namespace ember::cpu::conv_detail {
namespace {

constexpr int64_t kSumLanes = 16;  // one zmm of partial sums per weight

// Each thread accumulates `values` weights (or transformed weights) as 16 float lanes and the bias as
// 16 double lanes per output channel; the totals are summed over lanes and threads in double. Which
// thread sums what depends only on the thread count (the kernels use static schedules), so results
// are reproducible run to run.
class LaneSums {
 public:
  LaneSums(int threads, int64_t values, int64_t channels)
      : values_(values), channels_(channels), value_part_(size_t(threads), nullptr), bias_part_(size_t(threads), nullptr) {}
  // Inside the parallel region: this thread's zeroed buffers (scratch slot 0 for the values).
  float* thread_values() {
    float* mine = thread_scratch<0>(values_ * kSumLanes);
    std::fill(mine, mine + values_ * kSumLanes, 0.f);
    value_part_[size_t(omp_get_thread_num())] = mine;
    return mine;
  }
  double* thread_bias() {
    static thread_local std::vector<double> buf;
    buf.assign(size_t(channels_ * kSumLanes), 0.0);
    bias_part_[size_t(omp_get_thread_num())] = buf.data();
    return buf.data();
  }
  double value(int64_t i) const {
    double sum = 0;
    for (const float* p : value_part_)
      for (int64_t l = 0; p && l < kSumLanes; ++l) sum += double(p[i * kSumLanes + l]);
    return sum;
  }
  void bias(float* dbias) const {
    for (int64_t k = 0; k < channels_; ++k) {
      double sum = 0;
      for (const double* p : bias_part_)
        for (int64_t l = 0; p && l < kSumLanes; ++l) sum += p[k * kSumLanes + l];
      dbias[k] = float(sum);
    }
  }

 private:
  int64_t values_, channels_;
  std::vector<float*> value_part_;
  std::vector<double*> bias_part_;
};

// Adds a float vector of per-lane partial bias sums of channel k to its double lanes.
inline void add_bias_lanes(__m512 sum, int64_t k, double* bias_lanes) {
  alignas(64) float part[kSumLanes];
  _mm512_store_ps(part, sum);
  for (int l = 0; l < kSumLanes; ++l) bias_lanes[k * kSumLanes + l] += double(part[l]);
}

// The cache lines of dy rows [p0, p0 + rows) of channels [k_begin, min(k_end, K)) of image n, in
// reading order, into `line` (sized by dy_lines_capacity); returns how many.
inline int64_t dy_lines_capacity(const Conv2dShape& s, int64_t channels, int64_t rows) {
  return channels * ((rows * s.Q() * int64_t(sizeof(float)) + 63) / 64 + 1);  // + 1: a misaligned run
}
// The cache lines covering `floats` contiguous floats from `run`, appended at `line`; returns how many.
inline int64_t run_lines(const float* run, int64_t floats, const char** line) {
  const char* begin = reinterpret_cast<const char*>(run);
  const int64_t misalign = int64_t(reinterpret_cast<uintptr_t>(begin) % 64), bytes = floats * int64_t(sizeof(float));
  int64_t count = 0;
  for (int64_t off = -misalign; off < bytes; off += 64) line[count++] = begin + off;
  return count;
}
inline int64_t dy_lines(const Conv2dShape& s, const float* dy, int64_t n, int64_t k_begin, int64_t k_end, int64_t p0,
                        int64_t rows, const char** line) {
  int64_t count = 0;
  for (int64_t k = k_begin; k < std::min(s.K, k_end); ++k)
    count += run_lines(dy + ((n * s.K + k) * s.P() + p0) * s.Q(), rows * s.Q(), line + count);
  return count;
}

// The cache lines of the input rows that task rows [p0, p1) of image n read (fill_slab's source), all
// channels, into `line` (sized by x_lines_capacity); returns how many.
inline int64_t x_lines_capacity(const Conv2dShape& s, int64_t rows) {
  const int64_t in_rows = std::min(s.H, (rows - 1) * s.stride_h + (s.R - 1) * s.dil_h + 1);
  return s.C * ((in_rows * s.W * int64_t(sizeof(float)) + 63) / 64 + 1);
}
inline int64_t x_lines(const Conv2dShape& s, const float* x, int64_t n, int64_t p0, int64_t p1, const char** line) {
  const int64_t h0 = std::max<int64_t>(0, p0 * s.stride_h - s.pad_h);
  const int64_t h1 = std::min(s.H, (p1 - 1) * s.stride_h - s.pad_h + (s.R - 1) * s.dil_h + 1);
  if (h1 <= h0) return 0;
  int64_t count = 0;
  for (int64_t c = 0; c < s.C; ++c) count += run_lines(x + ((n * s.C + c) * s.H + h0) * s.W, (h1 - h0) * s.W, line + count);
  return count;
}

// table[KB-1][RB-1] = make.template operator()<KB, RB>() for KB <= KMax, RB <= RMax: the function of
// every full and partial register block, e.g. make = []<int K, int R>() { return &run_block<K, R>; }.
template <int KMax, int RMax, class Make>
constexpr auto block_table(Make make) {
  return [&]<int... K>(std::integer_sequence<int, K...>) {
    return std::array{[&]<int... R>(auto kb, std::integer_sequence<int, R...>) {
      return std::array{make.template operator()<decltype(kb)::value, R + 1>()...};
    }(std::integral_constant<int, K + 1>{}, std::make_integer_sequence<int, RMax>{})...};
  }(std::make_integer_sequence<int, KMax>{});
}

}  // namespace
}  // namespace ember::cpu::conv_detail
