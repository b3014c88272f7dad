// Helpers shared by the kernel-vs-reference tests (test_gemm_kernels, test_conv_kernels): random
// inputs and the relative Frobenius error every fast variant is held to.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace ember::testing {

// n values uniform in [-1, 1), drawn in double and rounded to T.
template <class T = float>
std::vector<T> random_vector(int64_t n, std::mt19937& rng) {
  std::uniform_real_distribution<double> dist(-1.0, 1.0);
  std::vector<T> v(static_cast<size_t>(n));
  for (auto& x : v) x = T(dist(rng));
  return v;
}

// ||got - want|| / ||want|| (the absolute norm when want is all zeros); infinity when got has a NaN,
// so a NaN can never pass a "<= tolerance" check.
inline double relative_error(const std::vector<float>& got, const std::vector<float>& want) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double d = double(got[i]) - double(want[i]);
    diff += d * d;
    norm += double(want[i]) * want[i];
  }
  if (std::isnan(diff)) return std::numeric_limits<double>::infinity();
  return norm == 0 ? std::sqrt(diff) : std::sqrt(diff / norm);
}

// The first 64-byte aligned float of v (size v with 15 floats to spare): for kernels that need
// aligned buffers (non-temporal stores, packed GEMM panels).
inline float* aligned64(std::vector<float>& v) {
  return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(v.data()) + 63) / 64 * 64);
}

}  // namespace ember::testing
