// Philox random numbers: known-answer vectors, the documented (seed, offset) -> value mapping,
// determinism across seeds, offsets and thread counts, and statistical sanity of the distributions.
// Statistical bounds are 5 standard errors of the estimate, so a correct generator fails with
// probability < 1e-6 per check (and the seeds are fixed, so the outcome is deterministic anyway).
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "engine/rng.h"
#include "kernels/philox.h"

namespace {

using namespace ember;

TEST(Philox, KnownAnswerVectors) {
  // Random123's published vector for Philox4x32-10 with counter 0 and key 0.
  Philox4x32 r = philox4x32_10(0, 0);
  EXPECT_EQ(r.v[0], 0x6627e8d5u);
  EXPECT_EQ(r.v[1], 0xe169c58du);
  EXPECT_EQ(r.v[2], 0xbc57ac4cu);
  EXPECT_EQ(r.v[3], 0x9b00dbd8u);
  // A 64-bit counter and key, from an independent implementation (Python, Random123's round function).
  r = philox4x32_10(0x0123456789abcdefull, 0xfedcba9876543210ull);
  EXPECT_EQ(r.v[0], 0x822ed603u);
  EXPECT_EQ(r.v[1], 0x19774975u);
  EXPECT_EQ(r.v[2], 0x4c78eba5u);
  EXPECT_EQ(r.v[3], 0xdc0ba28au);
}

TEST(Philox, UniformFollowsTheDocumentedMapping) {
  // Value i of a draw at (seed, offset) is lane i % 4 of block offset + i / 4, as (bits >> 8) / 2^24.
  Generator g(42);
  g.set_state(42, 17);
  Tensor u = Tensor::uniform({11}, 0, 1, g, DType::Float64);
  EXPECT_EQ(g.offset(), 17u + 3u);  // ceil(11 / 4) counters consumed
  for (int64_t i = 0; i < 11; ++i) {
    uint32_t bits = philox4x32_10(17 + uint64_t(i) / 4, 42).v[i % 4];
    EXPECT_EQ(u.at({i}), double(bits >> 8) / 16777216.0) << i;
  }
  // So a later part of a draw equals a draw started at a later offset.
  Generator a(9), b(9);
  b.set_state(9, 2);
  auto va = Tensor::uniform({20}, -1, 1, a).to_vector<float>();
  auto vb = Tensor::uniform({12}, -1, 1, b).to_vector<float>();
  EXPECT_TRUE(std::equal(vb.begin(), vb.end(), va.begin() + 8));
}

TEST(Philox, Float32UniformNeverReachesTheUpperBound) {
  // Find a counter whose draw has the largest uniform, 1 - 2^-24. In float32, 0.5 + 1.0 * (1 - 2^-24)
  // is a rounding tie that lands on 1.5, so [lo, hi) must be enforced after the conversion.
  uint64_t counter = 0;
  int lane = -1;
  for (; lane < 0; ++counter)
    for (int l = 0; l < 4; ++l)
      if ((philox4x32_10(counter, 1).v[l] >> 8) == 0xffffffu) lane = l;
  --counter;
  Generator g(1);
  g.set_state(1, counter);
  Tensor u = Tensor::uniform({4}, 0.5, 1.5, g);
  EXPECT_LT(u.at({lane}), 1.5);
  EXPECT_GT(u.at({lane}), 1.4999);
  g.set_state(1, counter);
  EXPECT_LT(Tensor::uniform({4}, -3, -2, g).at({lane}), -2.0);
}

TEST(Generator, SameSeedSameValuesDifferentSeedOrOffsetDiffers) {
  Generator g1(123), g2(123), g3(124);
  auto a = Tensor::normal({1000}, 0, 1, g1).to_vector<float>();
  auto b = Tensor::normal({1000}, 0, 1, g2).to_vector<float>();
  auto c = Tensor::normal({1000}, 0, 1, g3).to_vector<float>();
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  // The next draw continues at a new offset and differs from the first.
  auto a2 = Tensor::normal({1000}, 0, 1, g1).to_vector<float>();
  EXPECT_NE(a, a2);
  EXPECT_EQ(g1.offset(), g2.offset() + 500);  // normal uses two uniforms per value
  // Explicit offsets: a different offset gives different values, restoring the state repeats them.
  Generator h(7);
  h.set_state(7, 1000);
  auto x = Tensor::uniform({64}, 0, 1, h).to_vector<float>();
  h.set_state(7, 1001);
  auto y = Tensor::uniform({64}, 0, 1, h).to_vector<float>();
  h.set_state(7, 1000);
  auto z = Tensor::uniform({64}, 0, 1, h).to_vector<float>();
  EXPECT_NE(x, y);
  EXPECT_EQ(x, z);
  EXPECT_TRUE(std::equal(y.begin(), y.end() - 4, x.begin() + 4));  // one counter = four values later
  // float32 values are the float64 values rounded.
  Generator f64(5), f32(5);
  auto d = Tensor::uniform({100}, -3, 2, f64, DType::Float64).to_vector<double>();
  auto s = Tensor::uniform({100}, -3, 2, f32, DType::Float32).to_vector<float>();
  for (size_t i = 0; i < d.size(); ++i) EXPECT_EQ(s[i], float(d[i]));
  // next_u64: reproducible and changing.
  Generator n1(3), n2(3);
  uint64_t first = n1.next_u64();
  EXPECT_EQ(first, n2.next_u64());
  EXPECT_NE(first, n1.next_u64());
  // manual_seed resets the default generator.
  manual_seed(77);
  auto m1 = Tensor::uniform({8}, 0, 1, default_generator()).to_vector<float>();
  manual_seed(77);
  EXPECT_EQ(Tensor::uniform({8}, 0, 1, default_generator()).to_vector<float>(), m1);
}

TEST(Generator, IdenticalForOneOrTwoThreads) {
  const int64_t n = 300007;  // above the parallel threshold, not a multiple of 4
  const int saved = omp_get_max_threads();
  std::vector<float> u[2], v[2];
  for (int t = 1; t <= 2; ++t) {
    omp_set_num_threads(t);
    Generator g(2024);
    u[t - 1] = Tensor::uniform({n}, -2, 5, g).to_vector<float>();
    v[t - 1] = Tensor::normal({n}, 1, 2, g).to_vector<float>();
  }
  omp_set_num_threads(saved);
  EXPECT_EQ(u[0], u[1]);
  EXPECT_EQ(v[0], v[1]);
}

TEST(Distributions, UniformMomentsAndBuckets) {
  const int64_t n = 1000000;
  const double lo = -1, hi = 3;
  Generator g(31337);
  auto v = Tensor::uniform({n}, lo, hi, g, DType::Float64).to_vector<double>();
  double mean = 0, m2 = 0;
  std::vector<int64_t> buckets(10, 0);
  for (double x : v) {
    ASSERT_GE(x, lo);
    ASSERT_LT(x, hi);
    mean += x;
    buckets[size_t((x - lo) / (hi - lo) * 10)]++;
  }
  mean /= double(n);
  for (double x : v) m2 += (x - mean) * (x - mean);
  const double var = m2 / double(n - 1);
  const double true_var = (hi - lo) * (hi - lo) / 12;               // 4/3
  EXPECT_NEAR(mean, 1.0, 5 * std::sqrt(true_var / double(n)));      // 5 standard errors
  const double mu4 = std::pow(hi - lo, 4) / 80;                     // 4th central moment of U(lo, hi)
  EXPECT_NEAR(var, true_var, 5 * std::sqrt((mu4 - true_var * true_var) / double(n)));
  const double expect = double(n) / 10, sd = std::sqrt(double(n) * 0.1 * 0.9);
  for (int64_t c : buckets) EXPECT_NEAR(double(c), expect, 5 * sd);
  EXPECT_LT(*std::min_element(v.begin(), v.end()), lo + 1e-4);
  EXPECT_GT(*std::max_element(v.begin(), v.end()), hi - 1e-4);
}

TEST(Distributions, NormalMeanStdAndTails) {
  const int64_t n = 1000000;
  const double mu = 2, sigma = 3;
  Generator g(99);
  auto v = Tensor::normal({n}, mu, sigma, g, DType::Float64).to_vector<double>();
  double mean = 0, m2 = 0;
  int64_t within1 = 0, beyond3 = 0;
  for (double x : v) {
    ASSERT_TRUE(std::isfinite(x));
    mean += x;
  }
  mean /= double(n);
  for (double x : v) {
    m2 += (x - mean) * (x - mean);
    within1 += std::abs(x - mu) < sigma;
    beyond3 += std::abs(x - mu) > 3 * sigma;
  }
  const double sd = std::sqrt(m2 / double(n - 1));
  EXPECT_NEAR(mean, mu, 5 * sigma / std::sqrt(double(n)));
  EXPECT_NEAR(sd, sigma, 5 * sigma / std::sqrt(2.0 * double(n)));
  const double p1 = 0.682689492, p3 = 0.002699796;
  EXPECT_NEAR(double(within1) / double(n), p1, 5 * std::sqrt(p1 * (1 - p1) / double(n)));
  EXPECT_NEAR(double(beyond3) / double(n), p3, 5 * std::sqrt(p3 * (1 - p3) / double(n)));
  // Pairs of consecutive values are uncorrelated.
  double cov = 0;
  for (int64_t i = 0; i + 1 < n; i += 2) cov += (v[i] - mean) * (v[i + 1] - mean);
  EXPECT_NEAR(cov / double(n / 2) / (sigma * sigma), 0.0, 5 / std::sqrt(double(n / 2)));
}

TEST(Permutation, IsAPermutationSeedDependentAndUnbiased) {
  for (int64_t n : {0, 1, 2, 7, 1000}) {
    Generator g(uint64_t(n) + 1);
    auto p = g.permutation(n);
    ASSERT_EQ(int64_t(p.size()), n);
    std::vector<int64_t> sorted = p;
    std::sort(sorted.begin(), sorted.end());
    std::vector<int64_t> identity(static_cast<size_t>(n));
    std::iota(identity.begin(), identity.end(), 0);
    EXPECT_EQ(sorted, identity) << n;
  }
  Generator a(1), b(1), c(2);
  auto pa = a.permutation(1000), pb = b.permutation(1000), pc = c.permutation(1000);
  EXPECT_EQ(pa, pb);
  EXPECT_NE(pa, pc);
  EXPECT_NE(pa, a.permutation(1000));  // the next epoch's shuffle differs
  // Every element lands in every position about equally often: n=5, 50k shuffles.
  Generator g(555);
  const int kDraws = 50000;
  std::vector<std::vector<int>> count(5, std::vector<int>(5, 0));
  for (int t = 0; t < kDraws; ++t) {
    auto p = g.permutation(5);
    for (int pos = 0; pos < 5; ++pos) count[size_t(pos)][size_t(p[size_t(pos)])]++;
  }
  const double expect = kDraws / 5.0, sd = std::sqrt(kDraws * 0.2 * 0.8);
  for (const auto& row : count)
    for (int c5 : row) EXPECT_NEAR(c5, expect, 5 * sd);
}

}  // namespace
