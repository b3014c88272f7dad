// Pooling and batch norm: gradients by finite differences (float64), semantics checked against
// hand computations, and every fast float32 kernel against the reference on NaN-poisoned outputs.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "gradcheck.h"
#include "kernels/cpu/batchnorm.h"
#include "kernels/cpu/pool.h"

namespace ember {
namespace {

using testing::gradcheck;
using testing::rand64;
using testing::rel_error;

// Values that are pairwise at least 0.01 apart (a shuffled ramp plus small noise): the max of a
// window never ties, and a 1e-6 finite-difference step never changes the argmax.
Tensor distinct64(const Shape& shape, uint64_t seed) {
  Generator g(seed);
  const int64_t n = shape_numel(shape);
  std::vector<int64_t> perm = g.permutation(n);
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = 0.02 * double(perm[i]) - 0.01 * double(n);
  return Tensor::from_vector(v, shape);
}

Pool2dOptions pool_opts(int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw, bool include_pad = true) {
  return Pool2dOptions{kh, kw, sh, sw, ph, pw, include_pad};
}

// ---- pooling: gradients ------------------------------------------------------------------------

TEST(MaxPool2d, GradcheckOddSizesStridesPadding) {
  const std::vector<Pool2dOptions> cases = {Pool2dOptions::make(2), Pool2dOptions::make(3, 2, 1),
                                            pool_opts(3, 2, 1, 2, 1, 0), pool_opts(2, 3, 2, 1, 0, 1)};
  for (const auto& o : cases) {
    Tensor x = distinct64({2, 3, 7, 5}, 11);
    EXPECT_TRUE(gradcheck([&](const std::vector<Tensor>& in) { return max_pool2d(in[0], o); }, {x}))
        << "kernel " << o.kernel_h << "x" << o.kernel_w << " stride " << o.stride_h << "x" << o.stride_w;
  }
}

TEST(AvgPool2d, GradcheckWithAndWithoutPaddingCount) {
  for (bool include : {true, false}) {
    for (const auto& o : {pool_opts(3, 3, 2, 2, 1, 1, include), pool_opts(2, 3, 1, 2, 1, 1, include),
                          pool_opts(2, 2, 2, 2, 0, 0, include)}) {
      Tensor x = rand64({2, 2, 7, 6}, 5);
      EXPECT_TRUE(gradcheck([&](const std::vector<Tensor>& in) { return avg_pool2d(in[0], o); }, {x}))
          << "count_include_pad=" << include;
    }
  }
}

TEST(AdaptiveAvgPool2d, Gradcheck) {
  for (auto [oh, ow] : {std::pair<int64_t, int64_t>{3, 2}, {5, 4}, {1, 1}, {7, 5}}) {
    Tensor x = rand64({2, 3, 7, 5}, 9);
    EXPECT_TRUE(gradcheck([&](const std::vector<Tensor>& in) { return adaptive_avg_pool2d(in[0], oh, ow); }, {x}))
        << oh << "x" << ow;
  }
  Tensor x = rand64({3, 2, 5, 3}, 10);
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& in) { return global_avg_pool2d(in[0]); }, {x}));
}

// ---- pooling: semantics --------------------------------------------------------------------------

TEST(MaxPool2d, PaddingNeverWinsAndValuesMatchBruteForce) {
  Tensor x = rand64({1, 2, 5, 4}, 3, -5, -1);  // all negative: a zero pad would win if it counted
  Tensor y = max_pool2d(x, Pool2dOptions::make(3, 2, 1));
  ASSERT_EQ(y.shape(), (Shape{1, 2, 3, 2}));
  for (int64_t c = 0; c < 2; ++c)
    for (int64_t p = 0; p < 3; ++p)
      for (int64_t q = 0; q < 2; ++q) {
        double best = -INFINITY;
        for (int64_t h = 2 * p - 1; h <= 2 * p + 1; ++h)
          for (int64_t w = 2 * q - 1; w <= 2 * q + 1; ++w)
            if (h >= 0 && h < 5 && w >= 0 && w < 4) best = std::max(best, x.at({0, c, h, w}));
        EXPECT_EQ(y.at({0, c, p, q}), best);
      }
}

TEST(AvgPool2d, CountIncludePadDivisor) {
  Tensor x = Tensor::ones({1, 1, 4, 4}, DType::Float64);
  Tensor with_pad = avg_pool2d(x, pool_opts(3, 3, 2, 2, 1, 1, true));
  Tensor without = avg_pool2d(x, pool_opts(3, 3, 2, 2, 1, 1, false));
  EXPECT_NEAR(with_pad.at({0, 0, 0, 0}), 4.0 / 9.0, 1e-12);  // corner window holds 4 real values of 9
  EXPECT_NEAR(without.at({0, 0, 0, 0}), 1.0, 1e-12);
  EXPECT_NEAR(with_pad.at({0, 0, 1, 1}), 1.0, 1e-12);  // interior window
}

TEST(AdaptiveAvgPool2d, PyTorchBinRule) {
  // H = 5 -> 3 bins: rows [0, 2), [1, 4), [3, 5) (bins overlap when the size does not divide).
  Tensor x = rand64({1, 1, 5, 1}, 4);
  Tensor y = adaptive_avg_pool2d(x, 3, 1);
  auto v = x.to_vector<double>();
  EXPECT_NEAR(y.at({0, 0, 0, 0}), (v[0] + v[1]) / 2, 1e-12);
  EXPECT_NEAR(y.at({0, 0, 1, 0}), (v[1] + v[2] + v[3]) / 3, 1e-12);
  EXPECT_NEAR(y.at({0, 0, 2, 0}), (v[3] + v[4]) / 2, 1e-12);
  Tensor g = global_avg_pool2d(rand64({2, 3, 4, 5}, 8));
  EXPECT_EQ(g.shape(), (Shape{2, 3}));
}

TEST(Pool2d, BadArgumentsThrowNamingTheInput) {
  Tensor x = Tensor::zeros({2, 3, 4});
  try {
    max_pool2d(x, Pool2dOptions::make(2));
    FAIL() << "3-d input accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("max_pool2d"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("[2, 3, 4]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(avg_pool2d(Tensor::zeros({1, 1, 2, 2}), Pool2dOptions::make(3)), Error);  // window > input
  EXPECT_THROW(avg_pool2d(Tensor::zeros({1, 1, 5, 2}), Pool2dOptions::make(3, 1)), Error);
  EXPECT_THROW(max_pool2d(Tensor::zeros({1, 1, 8, 8}), Pool2dOptions::make(2, 2, 2)), Error);  // pad > kernel/2
}

// ---- pooling: fast vs reference (float32) ------------------------------------------------------

constexpr double kFastTol = 1e-5;  // relative norm error bound of fast vs ref (float32)
const float kNaN = std::numeric_limits<float>::quiet_NaN();

std::vector<float> random_floats(int64_t n, uint64_t seed) {
  Generator g(seed);
  return Tensor::uniform({n}, -2, 2, g).to_vector<float>();
}
double rel_err(const std::vector<float>& a, const std::vector<float>& b) {
  return rel_error(Tensor::from_vector(a, {int64_t(a.size())}), Tensor::from_vector(b, {int64_t(b.size())}));
}
bool all_finite(const std::vector<float>& v) {
  for (float f : v)
    if (!std::isfinite(f)) return false;
  return true;
}

struct VariantGuard {  // restores the default variant choice even when an assertion fails
  std::string op;
  ~VariantGuard() { kernels::set_variant(op, ""); }
};

TEST(PoolKernels, FastMatchesReference) {
  std::vector<cpu::Pool2dShape> shapes;
  for (auto [k, st, p] : {std::tuple{2, 2, 0}, {3, 2, 1}, {3, 1, 1}, {2, 1, 0}}) {
    cpu::Pool2dShape s;
    s.N = 3, s.C = 5, s.H = 13, s.W = 11, s.kernel_h = s.kernel_w = k, s.stride_h = s.stride_w = st;
    s.pad_h = s.pad_w = p;
    shapes.push_back(s);
    s.count_include_pad = false;
    s.H = 16, s.W = 16;
    shapes.push_back(s);
  }
  VariantGuard g1{"max_pool2d"}, g2{"avg_pool2d"}, g3{"adaptive_avg_pool2d"};
  for (const auto& s : shapes) {
    const int64_t in = s.planes() * s.H * s.W, out = s.planes() * s.P() * s.Q();
    auto x = random_floats(in, 21), dy = random_floats(out, 22);
    std::vector<float> y[2], dx[2], ay[2], adx[2];
    std::vector<int64_t> idx[2];
    const char* names[2] = {"ref", "fast"};
    for (int v = 0; v < 2; ++v) {
      kernels::set_variant("max_pool2d", names[v]);
      kernels::set_variant("avg_pool2d", names[v]);
      y[v].assign(out, kNaN), dx[v].assign(in, kNaN), ay[v].assign(out, kNaN), adx[v].assign(in, kNaN);
      idx[v].assign(out, -7);
      cpu::max_pool2d_forward<float>(s, x.data(), y[v].data(), idx[v].data());
      cpu::max_pool2d_backward<float>(s, dy.data(), idx[v].data(), dx[v].data());
      cpu::avg_pool2d_forward<float>(s, x.data(), ay[v].data());
      cpu::avg_pool2d_backward<float>(s, dy.data(), adx[v].data());
      ASSERT_TRUE(all_finite(y[v]) && all_finite(dx[v]) && all_finite(ay[v]) && all_finite(adx[v])) << names[v];
    }
    EXPECT_EQ(idx[0], idx[1]) << "argmax differs, kernel " << s.kernel_h << " stride " << s.stride_h;
    EXPECT_EQ(y[0], y[1]);  // max is exact
    EXPECT_LT(rel_err(dx[1], dx[0]), kFastTol);
    EXPECT_LT(rel_err(ay[1], ay[0]), kFastTol);
    EXPECT_LT(rel_err(adx[1], adx[0]), kFastTol);
  }
  for (auto [H, W, OH, OW] : {std::tuple{13, 11, 5, 3}, {56, 56, 1, 1}, {7, 7, 7, 7}, {9, 10, 4, 6}}) {
    const int64_t planes = 6, in = planes * H * W, out = planes * OH * OW;
    auto x = random_floats(in, 31), dy = random_floats(out, 32);
    std::vector<float> y[2], dx[2];
    for (int v = 0; v < 2; ++v) {
      kernels::set_variant("adaptive_avg_pool2d", v == 0 ? "ref" : "fast");
      y[v].assign(out, kNaN), dx[v].assign(in, kNaN);
      cpu::adaptive_avg_pool2d_forward<float>(planes, H, W, OH, OW, x.data(), y[v].data());
      cpu::adaptive_avg_pool2d_backward<float>(planes, H, W, OH, OW, dy.data(), dx[v].data());
      ASSERT_TRUE(all_finite(y[v]) && all_finite(dx[v]));
    }
    EXPECT_LT(rel_err(y[1], y[0]), kFastTol);
    EXPECT_LT(rel_err(dx[1], dx[0]), kFastTol);
  }
}

TEST(PoolKernels, VariantsAreRegistered) {
  for (const char* op : {"max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "batchnorm"})
    EXPECT_EQ(kernels::variants(op), (std::vector<std::string>{"fast", "ref"})) << op;
}

// ---- batch norm: gradients ---------------------------------------------------------------------

Tensor bn(const std::vector<Tensor>& in, bool training, bool relu, bool affine, const Tensor& rm = Tensor(),
          const Tensor& rv = Tensor()) {
  return batch_norm(in[0], affine ? in[1] : Tensor(), affine ? in[2] : Tensor(), rm, rv, training, 0.1, 1e-5, relu);
}

TEST(BatchNorm, GradcheckTrainAndEvalWithAndWithoutAffine) {
  for (Shape shape : {Shape{5, 3}, Shape{3, 4, 3, 5}, Shape{2, 3, 1, 1}}) {
    const int64_t C = shape[1];
    Tensor x = rand64(shape, 1, -2, 2), w = rand64({C}, 2, 0.5, 1.5), b = rand64({C}, 3);
    Tensor rm = rand64({C}, 4), rv = rand64({C}, 5, 0.5, 2);
    for (bool affine : {true, false}) {
      // Without affine only x is an input (an unused leaf would get no gradient).
      const std::vector<Tensor> inputs = affine ? std::vector<Tensor>{x, w, b} : std::vector<Tensor>{x};
      EXPECT_TRUE(gradcheck([&](const std::vector<Tensor>& in) { return bn(in, true, false, affine); }, inputs))
          << "train affine=" << affine << " " << shape_str(shape);
      EXPECT_TRUE(gradcheck([&](const std::vector<Tensor>& in) { return bn(in, false, false, affine, rm, rv); },
                            inputs))
          << "eval affine=" << affine << " " << shape_str(shape);
    }
  }
}

// Picks a seed whose pre-ReLU outputs all stay at least `margin` away from the ReLU kink at 0.
Tensor input_away_from_kink(const Shape& shape, const Tensor& w, const Tensor& b, bool training, const Tensor& rm,
                            const Tensor& rv, double margin) {
  for (uint64_t seed = 100; seed < 400; ++seed) {
    Tensor x = rand64(shape, seed, -2, 2);
    NoGradGuard ng;
    Tensor pre = batch_norm(x, w, b, rm.defined() ? rm.clone() : rm, rv.defined() ? rv.clone() : rv, training, 0.1,
                            1e-5, false);
    bool ok = true;
    for (double v : pre.to_vector<double>()) ok = ok && std::abs(v) > margin;
    if (ok) return x;
  }
  ADD_FAILURE() << "no input away from the ReLU kink";
  return rand64(shape, 1);
}

TEST(BatchNorm, GradcheckFusedRelu) {
  for (Shape shape : {Shape{6, 3}, Shape{2, 3, 3, 2}}) {
    const int64_t C = shape[1];
    Tensor w = rand64({C}, 2, 0.5, 1.5), b = rand64({C}, 3, -0.5, 0.5);
    Tensor rm = rand64({C}, 4), rv = rand64({C}, 5, 0.5, 2);
    for (bool training : {true, false}) {
      Tensor x = input_away_from_kink(shape, w, b, training, rm, rv, 1e-3);
      EXPECT_TRUE(gradcheck([&](const std::vector<Tensor>& in) { return bn(in, training, true, true, rm, rv); },
                            {x, w, b}))
          << "training=" << training << " " << shape_str(shape);
      Tensor y = batch_norm(x, w, b, rm.clone(), rv.clone(), training, 0.1, 1e-5, true);
      for (double v : y.to_vector<double>()) ASSERT_GE(v, 0.0);
    }
  }
}

// ---- batch norm: semantics ---------------------------------------------------------------------

TEST(BatchNorm, RunningStatsUpdateMatchesHandComputation) {
  const int64_t N = 3, C = 2, HW = 4;
  Tensor x = rand64({N, C, 2, 2}, 7, -3, 5);
  Tensor rm = Tensor::from_vector(std::vector<double>{0.5, -1.0}, {C});
  Tensor rv = Tensor::from_vector(std::vector<double>{2.0, 0.25}, {C});
  const auto rm0 = rm.to_vector<double>(), rv0 = rv.to_vector<double>();
  Tensor y = batch_norm(x, Tensor(), Tensor(), rm, rv, true, 0.3, 1e-5);
  for (int64_t c = 0; c < C; ++c) {
    double sum = 0, sq = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < HW; ++i) sum += x.at({n, c, i / 2, i % 2});
    const double mean = sum / double(N * HW);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < HW; ++i) sq += std::pow(x.at({n, c, i / 2, i % 2}) - mean, 2);
    const double biased = sq / double(N * HW), unbiased = sq / double(N * HW - 1);
    EXPECT_NEAR(rm.at({c}), 0.7 * rm0[c] + 0.3 * mean, 1e-12);
    EXPECT_NEAR(rv.at({c}), 0.7 * rv0[c] + 0.3 * unbiased, 1e-12);
    // The output itself is normalised with the biased batch variance.
    EXPECT_NEAR(y.at({1, c, 1, 0}), (x.at({1, c, 1, 0}) - mean) / std::sqrt(biased + 1e-5), 1e-10);
  }
}

TEST(BatchNorm, EvalUsesRunningStatsAndLeavesThemAlone) {
  Tensor x = rand64({4, 3}, 8), w = rand64({3}, 9), b = rand64({3}, 10);
  Tensor rm = rand64({3}, 11), rv = rand64({3}, 12, 0.5, 2);
  const auto rm0 = rm.to_vector<double>(), rv0 = rv.to_vector<double>();
  Tensor y = batch_norm(x, w, b, rm, rv, false, 0.1, 1e-3);
  for (int64_t n = 0; n < 4; ++n)
    for (int64_t c = 0; c < 3; ++c)
      EXPECT_NEAR(y.at({n, c}), (x.at({n, c}) - rm0[c]) / std::sqrt(rv0[c] + 1e-3) * w.at({c}) + b.at({c}), 1e-12);
  EXPECT_EQ(rm.to_vector<double>(), rm0);
  EXPECT_EQ(rv.to_vector<double>(), rv0);
}

TEST(BatchNorm, ShapeMismatchesThrowNamingBothShapes) {
  Tensor x = Tensor::zeros({4, 3, 2, 2});
  try {
    batch_norm(x, Tensor::ones({5}), Tensor(), Tensor(), Tensor(), true);
    FAIL() << "weight [5] accepted for 3 channels";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("batch_norm"), std::string::npos) << m;
    EXPECT_NE(m.find("[5]"), std::string::npos) << m;
    EXPECT_NE(m.find("[4, 3, 2, 2]"), std::string::npos) << m;
  }
  EXPECT_THROW(batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), false), Error);       // eval needs stats
  EXPECT_THROW(batch_norm(Tensor::zeros({1, 3}), Tensor(), Tensor(), Tensor(), Tensor(), true), Error);  // M = 1
}

// ---- batch norm: fast vs reference (float32) ----------------------------------------------------

TEST(BatchNormKernels, FastMatchesReference) {
  VariantGuard guard{"batchnorm"};
  for (cpu::BatchNormShape s : {cpu::BatchNormShape{4, 5, 63}, cpu::BatchNormShape{16, 13, 1},
                                cpu::BatchNormShape{2, 64, 28 * 28}}) {
    const int64_t n = s.N * s.C * s.HW;
    auto x = random_floats(n, 41), dy = random_floats(n, 42), w = random_floats(s.C, 43), b = random_floats(s.C, 44);
    for (float& v : x) v = 3.0f + 2.0f * v;  // a mean far from 0 exercises the shifted statistics
    auto rv = random_floats(s.C, 45);
    for (float& v : rv) v = 1.5f + 0.5f * v;
    for (bool relu : {false, true})
      for (bool training : {true, false}) {
        std::vector<float> y[2], mean[2], var[2], dx[2], dw[2], db[2];
        for (int v = 0; v < 2; ++v) {
          kernels::set_variant("batchnorm", v == 0 ? "ref" : "fast");
          y[v].assign(n, kNaN), dx[v].assign(n, kNaN), dw[v].assign(s.C, kNaN), db[v].assign(s.C, kNaN);
          mean[v].assign(s.C, kNaN), var[v].assign(s.C, kNaN);
          if (training) {
            cpu::batchnorm_forward_train<float>(s, x.data(), w.data(), b.data(), 1e-5, relu, y[v].data(),
                                                mean[v].data(), var[v].data());
          } else {
            mean[v] = w, var[v] = rv;  // arbitrary "running" statistics
            cpu::batchnorm_forward_eval<float>(s, x.data(), w.data(), b.data(), mean[v].data(), var[v].data(), 1e-5,
                                               relu, y[v].data());
          }
          cpu::batchnorm_backward<float>(s, x.data(), y[v].data(), dy.data(), w.data(), mean[v].data(),
                                         var[v].data(), 1e-5, training, relu, dx[v].data(), dw[v].data(),
                                         db[v].data());
          ASSERT_TRUE(all_finite(y[v]) && all_finite(dx[v]) && all_finite(dw[v]) && all_finite(db[v]) &&
                      all_finite(mean[v]) && all_finite(var[v]));
        }
        const std::string what = "N=" + std::to_string(s.N) + " C=" + std::to_string(s.C) +
                                 " HW=" + std::to_string(s.HW) + " relu=" + std::to_string(relu) +
                                 " training=" + std::to_string(training);
        EXPECT_LT(rel_err(mean[1], mean[0]), kFastTol) << what;
        EXPECT_LT(rel_err(var[1], var[0]), kFastTol) << what;
        EXPECT_LT(rel_err(y[1], y[0]), kFastTol) << what;
        EXPECT_LT(rel_err(dx[1], dx[0]), 1e-4) << what;  // dx cancels three terms: a looser bound
        EXPECT_LT(rel_err(dw[1], dw[0]), kFastTol) << what;
        EXPECT_LT(rel_err(db[1], db[0]), kFastTol) << what;
      }
  }
}

}  // namespace
}  // namespace ember
