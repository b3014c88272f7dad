// SGEMM throughput: the measured FMA peak of this machine, square problems, and the GEMM shapes that
// VGG16's 3x3 convolutions become under im2col at batch 8 (M = K_out, N = batch*P*Q, K = C*3*3).
// Counters: GFLOP/s (2*M*N*K per second, in 1e9) and pct_peak (of the measured all-core peak).
#include <benchmark/benchmark.h>
#include <omp.h>

#include <random>
#include <vector>

#include "bench/bench_common.h"
#include "bench/bench_peak.h"
#include "kernels/cpu/gemm.h"

namespace {

void set_flop_counters(benchmark::State& state, double flops_per_iter) {
  ember::bench::set_flops(state, flops_per_iter);
  state.counters["pct_peak"] = benchmark::Counter(100.0 * flops_per_iter / ember::bench::machine_peak_flops(),
                                                  benchmark::Counter::kIsIterationInvariantRate);
}

std::vector<float> random_floats(size_t n) {
  std::mt19937 rng(42);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// Register-only FMA loop: arg 0 = one thread (one core), arg 1 = all OpenMP threads.
void BM_PeakFma(benchmark::State& state) {
  const int threads = state.range(0) ? omp_get_max_threads() : 1;
  const int64_t iters = 20'000'000;
  for (auto _ : state) {
#pragma omp parallel num_threads(threads)
    benchmark::DoNotOptimize(ember::bench::fma_loop_avx2(iters));
  }
  state.counters["threads"] = threads;
  ember::bench::set_flops(state, threads * double(iters) * ember::bench::kFlopsPerIter);
}
BENCHMARK(BM_PeakFma)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();

void run_sgemm(benchmark::State& state, bool ta, bool tb, int64_t M, int64_t N, int64_t K) {
  auto A = random_floats(size_t(M * K)), B = random_floats(size_t(K * N));
  std::vector<float> C(size_t(M * N));
  const int64_t lda = ta ? M : K, ldb = tb ? K : N;
  for (auto _ : state) {
    ember::cpu::sgemm(ta, tb, M, N, K, 1.f, A.data(), lda, B.data(), ldb, 0.f, C.data(), N);
    benchmark::ClobberMemory();
  }
  state.SetLabel(ember::cpu::sgemm_table().active());
  set_flop_counters(state, 2.0 * M * N * K);
}

// args: n, trans_a, trans_b
void BM_SgemmSquare(benchmark::State& state) {
  const int64_t n = state.range(0);
  run_sgemm(state, state.range(1), state.range(2), n, n, n);
}
BENCHMARK(BM_SgemmSquare)
    ->ArgsProduct({{256, 512, 1024, 2048}, {0}, {0}})
    ->Args({1024, 1, 0})
    ->Args({1024, 0, 1})
    ->Args({1024, 1, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// args: C_in, K_out, spatial size (P = Q, stride 1 pad 1 keeps H = P); batch 8.
void BM_SgemmVgg16Im2col(benchmark::State& state) {
  const int64_t c = state.range(0), k = state.range(1), hw = state.range(2), batch = 8;
  run_sgemm(state, false, false, k, batch * hw * hw, c * 9);
}
BENCHMARK(BM_SgemmVgg16Im2col)
    ->Args({3, 64, 224})
    ->Args({64, 64, 224})
    ->Args({64, 128, 112})
    ->Args({128, 128, 112})
    ->Args({128, 256, 56})
    ->Args({256, 256, 56})
    ->Args({256, 512, 28})
    ->Args({512, 512, 28})
    ->Args({512, 512, 14})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(2);

}  // namespace

BENCHMARK_MAIN();
