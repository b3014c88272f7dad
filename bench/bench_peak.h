// Measured peak FP32 FMA throughput of this machine (register-only loop, no memory traffic), so that
// the GEMM / conv benchmarks report "% of peak" against what the cores really do, not a datasheet.
#pragma once
#include <immintrin.h>
#include <omp.h>

#include <chrono>
#include <cstdint>

namespace ember::bench {

// 10 independent accumulator chains hide the 4-cycle FMA latency on two FMA pipes (needs >= 8).
// Written out as separate variables: GCC keeps them in registers (an array got spilled).
__attribute__((target("avx2,fma"))) inline float fma_loop_avx2(int64_t iters) {
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  __m256 c0 = _mm256_set1_ps(0.0f), c1 = _mm256_set1_ps(0.1f), c2 = _mm256_set1_ps(0.2f),
         c3 = _mm256_set1_ps(0.3f), c4 = _mm256_set1_ps(0.4f), c5 = _mm256_set1_ps(0.5f),
         c6 = _mm256_set1_ps(0.6f), c7 = _mm256_set1_ps(0.7f), c8 = _mm256_set1_ps(0.8f),
         c9 = _mm256_set1_ps(0.9f);
  for (int64_t it = 0; it < iters; ++it) {
    c0 = _mm256_fmadd_ps(c0, a, b);
    c1 = _mm256_fmadd_ps(c1, a, b);
    c2 = _mm256_fmadd_ps(c2, a, b);
    c3 = _mm256_fmadd_ps(c3, a, b);
    c4 = _mm256_fmadd_ps(c4, a, b);
    c5 = _mm256_fmadd_ps(c5, a, b);
    c6 = _mm256_fmadd_ps(c6, a, b);
    c7 = _mm256_fmadd_ps(c7, a, b);
    c8 = _mm256_fmadd_ps(c8, a, b);
    c9 = _mm256_fmadd_ps(c9, a, b);
  }
  __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(c0, c1), _mm256_add_ps(c2, c3)),
                           _mm256_add_ps(_mm256_add_ps(c4, c5), _mm256_add_ps(c6, c7)));
  s = _mm256_add_ps(s, _mm256_add_ps(c8, c9));
  return _mm256_cvtss_f32(s);
}
constexpr double kFlopsPerIter = 10 * 8 * 2;  // 10 FMAs x 8 lanes x (mul + add)

// FLOP/s of `threads` OpenMP threads together (each running the loop on its own core). The machine
// may be shared, so take the best of many short runs: contention only ever lowers the number.
inline double measure_peak_flops(int threads, int64_t iters = 2'000'000, int reps = 15) {
  double best = 0;
  for (int rep = 0; rep < reps; ++rep) {
    volatile float sink = 0;
    auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads)
    { sink = sink + fma_loop_avx2(iters); }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double flops = threads * iters * kFlopsPerIter / s;
    if (flops > best) best = flops;
  }
  return best;
}

// Cached two-core (all threads) peak, measured once per process.
inline double machine_peak_flops() {
  static const double peak = measure_peak_flops(omp_get_max_threads());
  return peak;
}

}  // namespace ember::bench
