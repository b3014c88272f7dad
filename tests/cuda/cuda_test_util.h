// Helpers for the CUDA kernel tests: device buffers, NaN poisoning, random data, error norms.
// Every GPU test starts with EMBER_REQUIRE_CUDA() so machines without a device skip cleanly.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "kernels/cuda/cuda_api.h"

#define EMBER_REQUIRE_CUDA()                                                     \
  do {                                                                           \
    if (!ember::cuda::cuda_available())                                          \
      GTEST_SKIP() << "no CUDA device: ember::cuda::cuda_available() is false (" \
                   << ember::cuda::cuda_unavailable_reason() << ")";             \
  } while (0)

namespace ember::cuda::testing {

// A device array of T from the caching allocator.
template <class T>
class DeviceArray {
 public:
  explicit DeviceArray(size_t n) : n_(n), ptr_(static_cast<T*>(cuda_alloc(n * sizeof(T)))) {}
  explicit DeviceArray(const std::vector<T>& host) : DeviceArray(host.size()) { upload(host); }
  ~DeviceArray() { cuda_free(ptr_); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  T* get() const { return ptr_; }
  size_t size() const { return n_; }
  void upload(const std::vector<T>& host) { memcpy_h2d(ptr_, host.data(), n_ * sizeof(T)); }
  std::vector<T> download() const {
    std::vector<T> host(n_);
    memcpy_d2h(host.data(), ptr_, n_ * sizeof(T));
    return host;
  }
  // Fill with NaN (floats) or 0x7f.. bytes so a kernel that skips an output element is caught.
  void poison() {
    if constexpr (std::is_same_v<T, float>) {
      fill(reinterpret_cast<float*>(ptr_), std::numeric_limits<float>::quiet_NaN(), int64_t(n_));
    } else {
      const std::vector<unsigned char> junk(n_ * sizeof(T), 0x7f);  // T(0x7f) would be 127, a valid index
      memcpy_h2d(ptr_, junk.data(), junk.size());
    }
  }

 private:
  size_t n_;
  T* ptr_;
};

inline std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

// ||got - want||_2 / ||want||_2 in double; infinite if got holds a NaN (a poisoned, unwritten slot).
inline double rel_norm_err(const std::vector<float>& got, const std::vector<float>& want) {
  EXPECT_EQ(got.size(), want.size());
  double diff = 0, ref = 0;
  for (size_t i = 0; i < got.size() && i < want.size(); ++i) {
    if (std::isnan(got[i]) != std::isnan(want[i])) return std::numeric_limits<double>::infinity();
    if (std::isnan(want[i])) continue;
    const double d = double(got[i]) - double(want[i]);
    diff += d * d;
    ref += double(want[i]) * double(want[i]);
  }
  return std::sqrt(diff) / std::max(std::sqrt(ref), 1e-30);
}

inline double tolerance(Precision p) {
  switch (p) {
    case Precision::TF32: return 2e-3;
    case Precision::BF16: return 2e-2;
    default: return 1e-5;
  }
}

}  // namespace ember::cuda::testing
