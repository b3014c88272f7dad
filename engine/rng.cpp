#include "engine/rng.h"

#include <cmath>

#include "engine/strided.h"
#include "kernels/philox.h"

namespace ember {

// A GPU tensor is filled on the CPU and copied over: the same values as a CPU tensor from the same
// generator state (initialisation is not a hot path).
namespace {
template <class Fill>
bool filled_via_cpu(Tensor& t, Fill fill) {
  if (t.device() != Device::CUDA) return false;
  Tensor host = Tensor::empty(t.shape(), t.dtype());
  fill(host);
  t.copy_(host);
  return true;
}
}  // namespace

void Generator::fill_uniform(Tensor& t, double lo, double hi) {
  if (filled_via_cpu(t, [&](Tensor& h) { fill_uniform(h, lo, hi); })) return;
  check_cpu("fill_uniform", t);
  EMBER_CHECK(t.is_contiguous(), "fill_uniform: tensor ", t.str(), " must be contiguous");
  const int64_t n = t.numel();
  const uint64_t base = reserve(uint64_t(n)), seed = seed_;
  dispatch_float(t.dtype(), "fill_uniform", [&]<class T>() {
    T* p = t.data<T>();
    // Rounding lo + (hi - lo) * u to T can land on hi (e.g. float 0.5 + (1 - 2^-24) is a tie that
    // rounds to 1.5): clamp to the largest T below hi so the range stays [lo, hi).
    const T top = std::nextafter(T(hi), T(lo));
#pragma omp parallel for if (n > 65536) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const T v = T(lo + (hi - lo) * double(philox_uniform(philox_bits(seed, base, uint64_t(i)))));
      p[i] = v < T(hi) ? v : top;
    }
  });
}

void Generator::fill_normal(Tensor& t, double mean, double std) {
  if (filled_via_cpu(t, [&](Tensor& h) { fill_normal(h, mean, std); })) return;
  check_cpu("fill_normal", t);
  EMBER_CHECK(t.is_contiguous(), "fill_normal: tensor ", t.str(), " must be contiguous");
  const int64_t n = t.numel();
  const uint64_t base = reserve(uint64_t(2 * n)), seed = seed_;
  dispatch_float(t.dtype(), "fill_normal", [&]<class T>() {
    T* p = t.data<T>();
#pragma omp parallel for if (n > 65536) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      // u1 in (0, 1] so log(u1) is finite.
      double u1 = 1.0 - double(philox_uniform(philox_bits(seed, base, uint64_t(2 * i))));
      double u2 = double(philox_uniform(philox_bits(seed, base, uint64_t(2 * i + 1))));
      p[i] = T(mean + std * std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2));
    }
  });
}

uint64_t Generator::next_u64() {
  Philox4x32 r = philox4x32_10(reserve(4), seed_);
  return (uint64_t(r.v[0]) << 32) | r.v[1];
}

std::vector<int64_t> Generator::permutation(int64_t n) {
  std::vector<int64_t> p(size_t(std::max<int64_t>(n, 0)));
  for (int64_t i = 0; i < n; ++i) p[i] = i;
  const uint64_t base = reserve(uint64_t(2 * std::max<int64_t>(n, 0))), seed = seed_;
  for (int64_t i = n - 1; i > 0; --i) {
    uint64_t r = (uint64_t(philox_bits(seed, base, uint64_t(2 * i))) << 32) | philox_bits(seed, base, uint64_t(2 * i + 1));
    std::swap(p[i], p[r % uint64_t(i + 1)]);
  }
  return p;
}

Generator& default_generator() {
  static Generator g;
  return g;
}
void manual_seed(uint64_t seed) { default_generator().set_state(seed, 0); }

}  // namespace ember
