// Division by a divisor fixed before launch, for index splits in kernels (the conv gathers split
// every staged element's row into (n, p, q) and depth index into (c, r, s); batch norm finds an
// element's channel). A GPU has no integer divider: `x / d` with a run-time d compiles to a
// ~20-instruction reciprocal-and-correct sequence. A precomputed multiplier turns it into a
// multiply-high, an add and a shift (Granlund & Montgomery, "Division by invariant integers using
// multiplication", 1994, round-up variant).
//
// With p = ceil(log2 d) and m = floor(2^32 (2^p - d) / d) + 1 (fits in 32 bits),
//   x / d = (mulhi(x, m) + x) >> p   for 0 <= x < 2^31,
// and mulhi(x, m) < x keeps the sum below 2^32. d = 1 gives p = 0, m = 1: mulhi = 0, x / 1 = x.
// The host path computes the same bits (a 64-bit product's high half), so the host emulation and
// the test of FastDiv run the device arithmetic exactly.
#pragma once
#include <cstdint>

namespace ember::cuda {

struct FastDiv {
  int d = 1;
  uint32_t mul = 1, shift = 0;

  FastDiv() = default;
  explicit FastDiv(int divisor) : d(divisor) {  // 1 <= divisor < 2^31 (make_geom's int32 checks)
    uint32_t p = 0;
    while ((uint64_t(1) << p) < uint64_t(divisor)) ++p;
    shift = p;
    mul = uint32_t((uint64_t(1) << 32) * ((uint64_t(1) << p) - uint64_t(divisor)) / uint64_t(divisor) + 1);
  }
  __host__ __device__ int div(int x) const {  // 0 <= x < 2^31
#ifdef __CUDA_ARCH__
    const uint32_t hi = __umulhi(uint32_t(x), mul);
#else
    const uint32_t hi = uint32_t((uint64_t(uint32_t(x)) * mul) >> 32);
#endif
    return int((hi + uint32_t(x)) >> shift);
  }
  // quotient and remainder
  __host__ __device__ void divmod(int x, int& q, int& r) const {
    q = div(x);
    r = x - q * d;
  }
};

// x = (hi * b.d + mid) * a.d + lo -> (hi, mid, lo): e.g. a flat NCHW position into (n*C + c, h, w)
// with a = W, b = H, or an output row into (n, p, q) with a = Q, b = P.
__host__ __device__ inline void split3(int x, const FastDiv& a, const FastDiv& b, int& hi, int& mid, int& lo) {
  int t;
  a.divmod(x, t, lo);
  b.divmod(t, hi, mid);
}

}  // namespace ember::cuda
