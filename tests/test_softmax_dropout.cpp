// softmax / log_softmax (gradients over every dim, stability, normalisation) and dropout
// (Philox mask mapping, thread-count independence, kept fraction, scaling, eval identity).
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <string>

#include "gradcheck.h"
#include "kernels/philox.h"

namespace ember {
namespace {

using testing::gradcheck;
using testing::rand64;

// ---- softmax ------------------------------------------------------------------------------------

TEST(Softmax, GradcheckEveryDim) {
  Tensor x = rand64({3, 4, 5}, 1, -3, 3);
  for (int64_t dim : {0, 1, 2, -1}) {
    EXPECT_TRUE(gradcheck([dim](const std::vector<Tensor>& in) { return softmax(in[0], dim); }, {x})) << dim;
    EXPECT_TRUE(gradcheck([dim](const std::vector<Tensor>& in) { return log_softmax(in[0], dim); }, {x})) << dim;
  }
  Tensor v = rand64({7}, 2);
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& in) { return log_softmax(in[0], 0); }, {v}));
}

TEST(Softmax, NormalisedAndMatchesDefinition) {
  Tensor x = rand64({2, 5, 3}, 3, -4, 4);
  Tensor y = softmax(x, 1), ly = log_softmax(x, 1);
  for (int64_t a = 0; a < 2; ++a)
    for (int64_t c = 0; c < 3; ++c) {
      double denom = 0, total = 0;
      for (int64_t d = 0; d < 5; ++d) denom += std::exp(x.at({a, d, c}));
      for (int64_t d = 0; d < 5; ++d) {
        EXPECT_NEAR(y.at({a, d, c}), std::exp(x.at({a, d, c})) / denom, 1e-12);
        EXPECT_NEAR(ly.at({a, d, c}), x.at({a, d, c}) - std::log(denom), 1e-12);
        total += y.at({a, d, c});
      }
      EXPECT_NEAR(total, 1.0, 1e-12);
    }
}

TEST(Softmax, StableForHugeLogits) {
  Tensor x = Tensor::from_vector({1000.f, 1001.f, -1000.f, 0.f}, {1, 4});
  Tensor y = softmax(x, 1), ly = log_softmax(x, 1);
  for (double v : y.to_vector<double>()) EXPECT_TRUE(std::isfinite(v));
  EXPECT_NEAR(y.at({0, 1}), 1.0 / (1.0 + std::exp(-1.0)), 1e-6);
  EXPECT_NEAR(ly.at({0, 0}), -std::log1p(std::exp(1.0)), 1e-5);
  EXPECT_NEAR(ly.at({0, 2}), -2001.0 - std::log1p(std::exp(-1.0)), 1e-2);  // finite, not -inf
}

TEST(Softmax, BadDimThrows) { EXPECT_THROW(softmax(Tensor::zeros({2, 3}), 2), Error); }

// ---- dropout ------------------------------------------------------------------------------------

TEST(Dropout, IdentityInEvalOrWithZeroProbability) {
  Generator gen(5);
  Tensor x = rand64({4, 6}, 4);
  const uint64_t offset = gen.offset();
  EXPECT_EQ(dropout(x, 0.5, false, gen).to_vector<double>(), x.to_vector<double>());
  EXPECT_EQ(dropout(x, 0.0, true, gen).to_vector<double>(), x.to_vector<double>());
  EXPECT_EQ(gen.offset(), offset) << "an identity dropout must not consume random numbers";
  for (double v : dropout(x, 1.0, true, gen).to_vector<double>()) EXPECT_EQ(v, 0.0);
  EXPECT_THROW(dropout(x, 1.5, true, gen), Error);
}

TEST(Dropout, MaskFollowsPhiloxMappingAndScales) {
  const double p = 0.3;
  Generator gen(1234);
  gen.set_state(1234, 17);
  Tensor x = Tensor::uniform({1001}, 1, 2, gen);  // strictly positive: a zero output means dropped
  const uint64_t offset = gen.offset();
  Tensor y = dropout(x, p, true, gen);
  EXPECT_EQ(gen.offset(), offset + (1001 + 3) / 4);
  auto xv = x.to_vector<float>(), yv = y.to_vector<float>();
  for (int64_t i = 0; i < 1001; ++i) {
    const bool keep = philox_uniform(philox_bits(1234, offset, uint64_t(i))) >= float(p);
    if (keep)
      EXPECT_FLOAT_EQ(yv[i], xv[i] * float(1 / (1 - p))) << i;
    else
      EXPECT_EQ(yv[i], 0.0f) << i;
  }
}

TEST(Dropout, SameMaskForOneAndTwoThreadsAndKeptFraction) {
  const int64_t n = 300001;  // above the parallel threshold, not a multiple of 4
  const double p = 0.4;
  Tensor x = Tensor::ones({n});
  const int saved_threads = omp_get_max_threads();
  std::vector<float> masks[2];
  for (int t = 0; t < 2; ++t) {
    omp_set_num_threads(t + 1);
    Generator gen(99);
    masks[t] = dropout(x, p, true, gen).to_vector<float>();
  }
  omp_set_num_threads(saved_threads);
  EXPECT_EQ(masks[0], masks[1]);
  int64_t kept = 0;
  for (float v : masks[0]) {
    if (v != 0) {
      ++kept;
      ASSERT_FLOAT_EQ(v, float(1 / (1 - p)));
    }
  }
  // Binomial std of the kept fraction is sqrt(p(1-p)/n) ~ 0.0009: 0.005 is > 5 sigma.
  EXPECT_NEAR(double(kept) / double(n), 1 - p, 0.005);
}

TEST(Dropout, GradientIsTheMask) {
  Tensor x = rand64({5, 7}, 6);
  // A fresh generator per evaluation: every call of f draws the same mask.
  EXPECT_TRUE(gradcheck(
      [](const std::vector<Tensor>& in) {
        Generator gen(3);
        return dropout(in[0], 0.35, true, gen);
      },
      {x}));
  Tensor xr = x.clone().requires_grad_(true);
  Generator gen(3);
  Tensor y = dropout(xr, 0.35, true, gen);
  sum(y).backward();
  auto gx = xr.grad().to_vector<double>(), yv = y.to_vector<double>();
  for (size_t i = 0; i < gx.size(); ++i) EXPECT_EQ(gx[i], yv[i] == 0 ? 0.0 : 1 / (1 - 0.35));
}

}  // namespace
}  // namespace ember
