// Every differentiable core op: forward against plain loops written here, backward against float64
// central finite differences (tests/gradcheck.h). Inputs are drawn away from kinks (relu at 0, clamp
// bounds, max ties) where a finite difference is meaningless.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "engine/ops.h"
#include "engine/rng.h"
#include "gradcheck.h"
#include "kernels/cpu/conv2d.h"

namespace {

using namespace ember;
using ember::testing::gradcheck;
using ember::testing::rand64;
using ember::testing::rel_error;
using V = std::vector<Tensor>;

// Moves values closer than `margin` to any kink by 2*margin, so no finite difference straddles one.
Tensor avoid_kinks(Tensor x, const std::vector<double>& kinks, double margin = 0.05) {
  double* p = x.data<double>();
  for (int64_t i = 0; i < x.numel(); ++i)
    for (double k : kinks)
      if (std::abs(p[i] - k) < margin) p[i] = k + (p[i] >= k ? 2 : -2) * margin;
  return x;
}
// Values with |v| in [lo, hi) and random sign (divisors, abs).
Tensor nonzero64(const Shape& s, uint64_t seed, double lo = 0.5, double hi = 2) {
  Tensor x = rand64(s, seed, -1, 1);
  double* p = x.data<double>();
  for (int64_t i = 0; i < x.numel(); ++i) p[i] = (p[i] >= 0 ? 1 : -1) * (lo + (hi - lo) * std::abs(p[i]));
  return x;
}

// ---- elementwise ---------------------------------------------------------------------------------

struct BinaryCase {
  Shape a, b;
};
const std::vector<BinaryCase> kBroadcastCases = {
    {{3, 4}, {3, 4}},     {{3, 1, 4}, {2, 4}}, {{4}, {2, 3, 4}}, {{2, 3, 4}, {}},
    {{}, {2, 3}},         {{5, 1}, {1, 6}},    {{1}, {3, 1}},
};

TEST(GradcheckElementwise, AddSubMulDivWithBroadcasting) {
  uint64_t seed = 1;
  for (const auto& c : kBroadcastCases) {
    SCOPED_TRACE(shape_str(c.a) + " op " + shape_str(c.b));
    Tensor a = rand64(c.a, seed++), b = rand64(c.b, seed++), bnz = nonzero64(c.b, seed++);
    EXPECT_TRUE(gradcheck([](const V& v) { return add(v[0], v[1]); }, {a, b}));
    EXPECT_TRUE(gradcheck([](const V& v) { return sub(v[0], v[1]); }, {a, b}));
    EXPECT_TRUE(gradcheck([](const V& v) { return mul(v[0], v[1]); }, {a, b}));
    EXPECT_TRUE(gradcheck([](const V& v) { return div(v[0], v[1]); }, {a, bnz}));
    // The reversed operand order broadcasts the other way.
    EXPECT_TRUE(gradcheck([](const V& v) { return sub(v[1], v[0]); }, {a, b}));
    EXPECT_TRUE(gradcheck([](const V& v) { return div(v[1], v[0]); }, {nonzero64(c.a, seed++), b}));
  }
}

TEST(ForwardElementwise, BroadcastValuesMatchIndexArithmetic) {
  Tensor a = rand64({3, 1, 4}, 1), b = rand64({2, 4}, 2);
  Tensor y = div(sub(mul(a, b), b), b + 3.0);
  ASSERT_EQ(y.shape(), (Shape{3, 2, 4}));
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 2; ++j)
      for (int64_t k = 0; k < 4; ++k) {
        double av = a.at({i, 0, k}), bv = b.at({j, k});
        EXPECT_NEAR(y.at({i, j, k}), (av * bv - bv) / (bv + 3), 1e-14);
      }
  // Strided (transposed) operands take the general path.
  Tensor m = rand64({4, 3}, 3), n = rand64({3, 4}, 4);
  Tensor s = add(m.t(), n);
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 4; ++j) EXPECT_EQ(s.at({i, j}), m.at({j, i}) + n.at({i, j}));
  // float32 agrees with float64.
  EXPECT_LT(rel_error(mul(a.to(DType::Float32), b.to(DType::Float32)), mul(a, b)), 1e-6);
}

// ---- unary ----------------------------------------------------------------------------------------

struct UnaryCase {
  std::string name;
  std::function<Tensor(const Tensor&)> op;
  std::function<double(double)> ref;
  double lo, hi;
  std::vector<double> kinks;
};

TEST(GradcheckUnary, AllActivationsAwayFromKinks) {
  const std::vector<UnaryCase> cases = {
      {"neg", [](const Tensor& x) { return neg(x); }, [](double v) { return -v; }, -2, 2, {}},
      {"exp", [](const Tensor& x) { return exp(x); }, [](double v) { return std::exp(v); }, -2, 2, {}},
      {"log", [](const Tensor& x) { return log(x); }, [](double v) { return std::log(v); }, 0.2, 3, {}},
      {"pow2.5", [](const Tensor& x) { return pow(x, 2.5); }, [](double v) { return std::pow(v, 2.5); }, 0.2, 2, {}},
      {"pow3", [](const Tensor& x) { return pow(x, 3); }, [](double v) { return v * v * v; }, -2, 2, {}},
      {"pow-1.5", [](const Tensor& x) { return pow(x, -1.5); }, [](double v) { return std::pow(v, -1.5); }, 0.3, 2, {}},
      {"sqrt", [](const Tensor& x) { return sqrt(x); }, [](double v) { return std::sqrt(v); }, 0.1, 3, {}},
      {"abs", [](const Tensor& x) { return abs(x); }, [](double v) { return std::abs(v); }, -2, 2, {0}},
      {"clamp", [](const Tensor& x) { return clamp(x, -0.5, 0.7); },
       [](double v) { return std::min(std::max(v, -0.5), 0.7); }, -2, 2, {-0.5, 0.7}},
      {"relu", [](const Tensor& x) { return relu(x); }, [](double v) { return v > 0 ? v : 0; }, -2, 2, {0}},
      {"relu6", [](const Tensor& x) { return relu6(x); }, [](double v) { return std::min(std::max(v, 0.0), 6.0); }, -2,
       8, {0, 6}},
      {"leaky_relu", [](const Tensor& x) { return leaky_relu(x, 0.1); }, [](double v) { return v > 0 ? v : 0.1 * v; },
       -2, 2, {0}},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }, [](double v) { return 1 / (1 + std::exp(-v)); }, -6, 6,
       {}},
      {"tanh", [](const Tensor& x) { return tanh(x); }, [](double v) { return std::tanh(v); }, -3, 3, {}},
  };
  uint64_t seed = 100;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Tensor x = avoid_kinks(rand64({3, 5}, seed++, c.lo, c.hi), c.kinks);
    Tensor y = c.op(x);
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t j = 0; j < 5; ++j) EXPECT_NEAR(y.at({i, j}), c.ref(x.at({i, j})), 1e-13);
    EXPECT_TRUE(gradcheck([&](const V& v) { return c.op(v[0]); }, {x}));
    // A non-contiguous input (transposed view) gives the same values and gradients.
    EXPECT_TRUE(gradcheck([&](const V& v) { return c.op(v[0].t()); }, {x}));
    // float32 forward agrees with float64.
    EXPECT_LT(rel_error(c.op(x.to(DType::Float32)), y), 1e-6);
  }
  // x^0 has derivative 0 everywhere, also at 0 (not 0 * inf = NaN).
  Tensor z = Tensor::from_vector<double>({0, 2, -1}, {3});
  z.requires_grad_(true);
  sum(pow(z, 0)).backward();
  EXPECT_EQ(z.grad().to_vector<double>(), (std::vector<double>{0, 0, 0}));
  // sigmoid does not overflow for large |x|.
  auto s = sigmoid(Tensor::from_vector<double>({-800, 800}, {2})).to_vector<double>();
  EXPECT_EQ(s[0], 0.0);
  EXPECT_EQ(s[1], 1.0);
}

// ---- reductions -----------------------------------------------------------------------------------

TEST(GradcheckReduce, SumMeanOverDims) {
  Tensor x = rand64({3, 4, 5}, 7);
  const std::vector<std::vector<int64_t>> dim_sets = {{0}, {1}, {-1}, {0, 2}, {2, 0}, {0, 1, 2}, {}};
  for (const auto& dims : dim_sets)
    for (bool keep : {false, true}) {
      SCOPED_TRACE(shape_str(dims) + (keep ? " keepdim" : ""));
      EXPECT_TRUE(gradcheck([&](const V& v) { return sum(v[0], dims, keep); }, {x}));
      EXPECT_TRUE(gradcheck([&](const V& v) { return mean(v[0], dims, keep); }, {x}));
    }
  EXPECT_TRUE(gradcheck([](const V& v) { return sum(v[0]); }, {x}));
  EXPECT_TRUE(gradcheck([](const V& v) { return mean(v[0].permute({2, 0, 1})); }, {x}));
}

TEST(ForwardReduce, SumMeanMaxMatchLoops) {
  Tensor x = rand64({3, 4, 5}, 8);
  Tensor s = sum(x, {0, 2});
  Tensor m = mean(x, {1}, true);
  Tensor mx = max(x, 1);
  Tensor am = argmax(x, 1, true);
  ASSERT_EQ(s.shape(), (Shape{4}));
  ASSERT_EQ(m.shape(), (Shape{3, 1, 5}));
  ASSERT_EQ(mx.shape(), (Shape{3, 5}));
  ASSERT_EQ(am.shape(), (Shape{3, 1, 5}));
  EXPECT_EQ(am.dtype(), DType::Int64);
  for (int64_t j = 0; j < 4; ++j) {
    double acc = 0;
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t k = 0; k < 5; ++k) acc += x.at({i, j, k});
    EXPECT_NEAR(s.at({j}), acc, 1e-13);
  }
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t k = 0; k < 5; ++k) {
      double acc = 0, best = -1e300;
      int64_t best_j = -1;
      for (int64_t j = 0; j < 4; ++j) {
        acc += x.at({i, j, k});
        if (x.at({i, j, k}) > best) best = x.at({i, j, k}), best_j = j;
      }
      EXPECT_NEAR(m.at({i, 0, k}), acc / 4, 1e-14);
      EXPECT_EQ(mx.at({i, k}), best);
      EXPECT_EQ(am.at({i, 0, k}), double(best_j));
    }
  EXPECT_NEAR(mean(x).item(), sum(x).item() / 60, 1e-14);
  // Ties go to the first index; NaN counts as the maximum.
  Tensor t = Tensor::from_vector({1.f, 3.f, 3.f, NAN, 2.f, 5.f}, {2, 3});
  EXPECT_EQ(argmax(t, 1).to_vector<int64_t>(), (std::vector<int64_t>{1, 0}));
}

TEST(GradcheckReduce, MaxOverDimWithDistinctValues) {
  // A shuffled grid: values 0.1 apart, so a perturbation of 1e-6 never changes the argmax.
  Generator g(9);
  auto perm = g.permutation(60);
  std::vector<double> v(60);
  for (int i = 0; i < 60; ++i) v[i] = 0.1 * double(perm[i]) - 3;
  Tensor x = Tensor::from_vector(v, {3, 4, 5});
  for (int64_t d : {0, 1, 2, -1})
    for (bool keep : {false, true}) {
      SCOPED_TRACE("dim " + std::to_string(d) + (keep ? " keepdim" : ""));
      EXPECT_TRUE(gradcheck([&](const V& in) { return max(in[0], d, keep); }, {x}));
    }
  EXPECT_TRUE(gradcheck([](const V& in) { return max(in[0].transpose(0, 2), 1); }, {x}));
}

// ---- matmul and linear ----------------------------------------------------------------------------

// Plain triple loop on the logical values (any layout, 2-D operand broadcast over the batch).
Tensor matmul_loops(const Tensor& a, const Tensor& b) {
  const bool batched = a.dim() == 3 || b.dim() == 3;
  const int64_t B = a.dim() == 3 ? a.size(0) : b.dim() == 3 ? b.size(0) : 1;
  const int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  std::vector<double> out(size_t(B * M * N), 0.0);
  for (int64_t z = 0; z < B; ++z) {
    Tensor az = a.dim() == 3 ? a.select(0, z) : a, bz = b.dim() == 3 ? b.select(0, z) : b;
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double acc = 0;
        for (int64_t k = 0; k < K; ++k) acc += az.at({i, k}) * bz.at({k, j});
        out[size_t((z * M + i) * N + j)] = acc;
      }
  }
  return Tensor::from_vector(out, batched ? Shape{B, M, N} : Shape{M, N});
}

TEST(GradcheckMatmul, TwoDBatchedBroadcastAndTransposedViews) {
  using Views = std::function<std::pair<Tensor, Tensor>(const V&)>;
  struct Case {
    std::string name;
    Shape a, b;
    Views views;  // the operands handed to matmul, built from the (contiguous) inputs
  };
  const std::vector<Case> cases = {
      {"2d", {3, 4}, {4, 5}, [](const V& v) { return std::pair{v[0], v[1]}; }},
      {"2d a^T", {4, 3}, {4, 5}, [](const V& v) { return std::pair{v[0].t(), v[1]}; }},
      {"2d b^T", {3, 4}, {5, 4}, [](const V& v) { return std::pair{v[0], v[1].t()}; }},
      {"2d a^T b^T", {4, 3}, {5, 4}, [](const V& v) { return std::pair{v[0].t(), v[1].t()}; }},
      {"2d strided", {3, 8}, {4, 5}, [](const V& v) { return std::pair{v[0].slice(1, 0, 8, 2), v[1]}; }},
      {"2d broadcast row", {1, 4}, {4, 5}, [](const V& v) { return std::pair{v[0].expand({3, 4}), v[1]}; }},
      {"batched", {2, 3, 4}, {2, 4, 5}, [](const V& v) { return std::pair{v[0], v[1]}; }},
      {"batched, 2d b", {2, 3, 4}, {4, 5}, [](const V& v) { return std::pair{v[0], v[1]}; }},
      {"batched, 2d a", {3, 4}, {2, 4, 5}, [](const V& v) { return std::pair{v[0], v[1]}; }},
      {"batched a^T", {2, 4, 3}, {2, 4, 5}, [](const V& v) { return std::pair{v[0].transpose(1, 2), v[1]}; }},
      {"batched b^T, 2d a^T", {4, 3}, {2, 5, 4},
       [](const V& v) { return std::pair{v[0].t(), v[1].transpose(-1, -2)}; }},
      {"batched permuted", {3, 2, 4}, {4, 5}, [](const V& v) { return std::pair{v[0].permute({1, 0, 2}), v[1]}; }},
      {"1x1", {1, 1}, {1, 1}, [](const V& v) { return std::pair{v[0], v[1]}; }},
      {"odd sizes", {2, 17, 9}, {9, 13}, [](const V& v) { return std::pair{v[0], v[1]}; }},
  };
  uint64_t seed = 200;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Tensor a = rand64(c.a, seed++), b = rand64(c.b, seed++);
    auto [av, bv] = c.views({a, b});
    Tensor want = matmul_loops(av, bv);
    EXPECT_LT(rel_error(matmul(av, bv), want), 1e-14);
    EXPECT_LT(rel_error(matmul(av.to(DType::Float32), bv.to(DType::Float32)), want), 1e-6);  // fast GEMM
    EXPECT_TRUE(gradcheck(
        [&](const V& v) {
          auto [x, y] = c.views(v);
          return matmul(x, y);
        },
        {a, b}));
  }
  Tensor big_a = rand64({37, 29}, 302), big_b = rand64({29, 41}, 303);
  EXPECT_LT(rel_error(matmul(big_a.to(DType::Float32), big_b.to(DType::Float32)), matmul_loops(big_a, big_b)), 1e-6);
}

TEST(GradcheckLinear, WithAndWithoutBias) {
  Tensor x = rand64({5, 4}, 20), w = rand64({3, 4}, 21), b = rand64({3}, 22);
  EXPECT_TRUE(gradcheck([](const V& v) { return linear(v[0], v[1], v[2]); }, {x, w, b}));
  EXPECT_TRUE(gradcheck([](const V& v) { return linear(v[0], v[1]); }, {x, w}));
  EXPECT_TRUE(gradcheck([](const V& v) { return linear(v[0].t(), v[1], v[2]); }, {rand64({4, 5}, 23), w, b}));
  // Forward: x w^T + b by loops, float64 and float32.
  Tensor y = linear(x, w, b);
  for (int64_t n = 0; n < 5; ++n)
    for (int64_t o = 0; o < 3; ++o) {
      double acc = b.at({o});
      for (int64_t i = 0; i < 4; ++i) acc += x.at({n, i}) * w.at({o, i});
      EXPECT_NEAR(y.at({n, o}), acc, 1e-14);
    }
  EXPECT_LT(rel_error(linear(x.to(DType::Float32), w.to(DType::Float32), b.to(DType::Float32)), y), 1e-6);
  EXPECT_LT(rel_error(linear(x, w), matmul(x, w.t())), 1e-14);
}

// ---- conv2d, pad2d, concat ------------------------------------------------------------------------

// Direct convolution (cross-correlation) on logical values, float64.
Tensor conv2d_loops(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dOptions& o) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t K = w.size(0), Cg = w.size(1), R = w.size(2), S = w.size(3);
  const int64_t P = (H + 2 * o.pad_h - o.dil_h * (R - 1) - 1) / o.stride_h + 1;
  const int64_t Q = (W + 2 * o.pad_w - o.dil_w * (S - 1) - 1) / o.stride_w + 1;
  const int64_t Kg = K / o.groups;
  (void)C;
  std::vector<double> xv = x.to_vector<double>(), wv = w.to_vector<double>();
  std::vector<double> y(size_t(N * K * P * Q));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k)
      for (int64_t p = 0; p < P; ++p)
        for (int64_t q = 0; q < Q; ++q) {
          double acc = b.defined() ? b.at({k}) : 0.0;
          const int64_t g = k / Kg;
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t r = 0; r < R; ++r)
              for (int64_t t = 0; t < S; ++t) {
                int64_t h = p * o.stride_h - o.pad_h + r * o.dil_h, ww = q * o.stride_w - o.pad_w + t * o.dil_w;
                if (h < 0 || h >= H || ww < 0 || ww >= W) continue;
                acc += xv[size_t(((n * x.size(1) + g * Cg + c) * H + h) * W + ww)] *
                       wv[size_t(((k * Cg + c) * R + r) * S + t)];
              }
          y[size_t(((n * K + k) * P + p) * Q + q)] = acc;
        }
  return Tensor::from_vector(y, {N, K, P, Q});
}

struct ConvCase {
  int64_t N, C, H, W, K, R, S;
  Conv2dOptions opt;
  bool bias;
};
std::string describe(const ConvCase& c) {
  const auto& o = c.opt;
  return detail::cat("x[", c.N, ",", c.C, ",", c.H, ",", c.W, "] w[", c.K, ",", c.C / o.groups, ",", c.R, ",", c.S,
                     "] stride ", o.stride_h, "x", o.stride_w, " pad ", o.pad_h, "x", o.pad_w, " dil ", o.dil_h, "x",
                     o.dil_w, " groups ", o.groups, c.bias ? " bias" : "");
}

std::vector<ConvCase> conv_cases() {
  std::vector<ConvCase> cases = {
      {1, 1, 5, 5, 1, 3, 3, Conv2dOptions::make(1, 0), false},
      {2, 3, 7, 6, 4, 3, 3, Conv2dOptions::make(1, 1), true},
      {2, 4, 9, 7, 6, 3, 2, Conv2dOptions::make(2, 2), true},
      {1, 2, 11, 10, 3, 3, 3, Conv2dOptions::make(3, 1, 2), false},
      {2, 4, 8, 9, 4, 3, 3, Conv2dOptions::make(1, 1, 1, 2), true},   // groups 2
      {1, 6, 7, 7, 6, 3, 3, Conv2dOptions::make(2, 1, 1, 6), true},   // depthwise
      {2, 3, 6, 5, 6, 3, 3, Conv2dOptions::make(1, 2, 2, 3), false},  // depthwise, multiplier 2, dilated
      {1, 3, 5, 5, 2, 1, 1, Conv2dOptions::make(1, 0), true},         // 1x1
      {1, 2, 8, 7, 3, 5, 5, Conv2dOptions::make(1, 2), false},        // 5x5, 'same'
      {1, 2, 6, 9, 2, 2, 3, Conv2dOptions{2, 1, 0, 1, 1, 2, 1}, true}, // anisotropic
  };
  // Seeded random shapes on top: stride 1-3, padding 0-2, dilation 1-2, groups 1/2/depthwise.
  Generator g(1234);
  auto pick = [&](int64_t lo, int64_t hi) { return lo + int64_t(g.next_u64() % uint64_t(hi - lo + 1)); };
  while (cases.size() < 22) {
    ConvCase c;
    c.N = pick(1, 2);
    int64_t groups_kind = pick(0, 2);
    c.C = groups_kind == 0 ? pick(1, 3) : 2 * pick(1, 2);
    int64_t groups = groups_kind == 0 ? 1 : groups_kind == 1 ? 2 : c.C;
    c.K = groups * pick(1, 2);
    c.R = pick(1, 3);
    c.S = pick(1, 3);
    c.H = pick(3, 9);
    c.W = pick(3, 9);
    c.opt = Conv2dOptions{pick(1, 3), pick(1, 3), pick(0, 2), pick(0, 2), pick(1, 2), pick(1, 2), groups};
    c.bias = pick(0, 1) == 1;
    cpu::Conv2dShape s;
    s.H = c.H, s.W = c.W, s.R = c.R, s.S = c.S, s.stride_h = c.opt.stride_h, s.stride_w = c.opt.stride_w;
    s.pad_h = c.opt.pad_h, s.pad_w = c.opt.pad_w, s.dil_h = c.opt.dil_h, s.dil_w = c.opt.dil_w;
    if (s.P() > 0 && s.Q() > 0) cases.push_back(c);
  }
  return cases;
}

TEST(GradcheckConv2d, RandomShapesStridesPaddingDilationGroups) {
  uint64_t seed = 500;
  for (const auto& c : conv_cases()) {
    SCOPED_TRACE(describe(c));
    Tensor x = rand64({c.N, c.C, c.H, c.W}, seed++), w = rand64({c.K, c.C / c.opt.groups, c.R, c.S}, seed++);
    Tensor b = c.bias ? rand64({c.K}, seed++) : Tensor();
    Tensor want = conv2d_loops(x, w, b, c.opt);
    EXPECT_LT(rel_error(conv2d(x, w, b, c.opt), want), 1e-13);
    Tensor b32 = c.bias ? b.to(DType::Float32) : Tensor();
    EXPECT_LT(rel_error(conv2d(x.to(DType::Float32), w.to(DType::Float32), b32, c.opt), want), 2e-6);
    Conv2dOptions o = c.opt;
    if (c.bias)
      EXPECT_TRUE(gradcheck([o](const V& v) { return conv2d(v[0], v[1], v[2], o); }, {x, w, b}));
    else
      EXPECT_TRUE(gradcheck([o](const V& v) { return conv2d(v[0], v[1], Tensor(), o); }, {x, w}));
  }
}

TEST(GradcheckConv2d, NonContiguousInputAndWeight) {
  Tensor x = rand64({5, 2, 4, 3}, 600), w = rand64({3, 2, 3, 2}, 601);  // x is [N,C,W,H] transposed below
  const auto o = Conv2dOptions::make(1, 1);
  auto f = [o](const V& v) { return conv2d(v[0].transpose(2, 3), v[1].slice(0, 0, 3, 2), Tensor(), o); };
  EXPECT_TRUE(gradcheck(f, {x, w}));
  Tensor want = conv2d_loops(x.transpose(2, 3).contiguous(), w.slice(0, 0, 3, 2).contiguous(), Tensor(), o);
  EXPECT_LT(rel_error(f({x, w}), want), 1e-13);
}

TEST(GradcheckPad2d, AsymmetricPadding) {
  Tensor x = rand64({2, 3, 4, 5}, 700);
  Tensor y = pad2d(x, 1, 2, 0, 3);
  ASSERT_EQ(y.shape(), (Shape{2, 3, 7, 8}));
  for (int64_t h = 0; h < 7; ++h)
    for (int64_t w = 0; w < 8; ++w) {
      bool inside = h >= 1 && h < 5 && w < 5;
      EXPECT_EQ(y.at({1, 2, h, w}), inside ? x.at({1, 2, h - 1, w}) : 0.0);
    }
  EXPECT_TRUE(gradcheck([](const V& v) { return pad2d(v[0], 1, 2, 0, 3); }, {x}));
  EXPECT_TRUE(gradcheck([](const V& v) { return pad2d(v[0].transpose(2, 3), 0, 0, 2, 1); }, {x}));
}

TEST(GradcheckConcat, SeveralDims) {
  Tensor a = rand64({2, 3, 4}, 800), b = rand64({2, 3, 4}, 801), c = rand64({2, 3, 4}, 802);
  for (int64_t d : {0, 1, 2, -1}) {
    SCOPED_TRACE("dim " + std::to_string(d));
    // Unequal sizes along `d`: slice the second input.
    auto f = [d](const V& v) {
      int64_t dd = d < 0 ? d + 3 : d;
      return concat({v[0], v[1].slice(dd, 0, 1), v[2]}, d);
    };
    EXPECT_TRUE(gradcheck(f, {a, b, c}));
    Tensor y = f({a, b, c});
    int64_t dd = d < 0 ? d + 3 : d;
    EXPECT_EQ(y.size(dd), a.size(dd) * 2 + 1);
    // Values: the middle block is b's first slice along d.
    EXPECT_EQ(y.select(dd, a.size(dd)).to_vector<double>(), b.select(dd, 0).to_vector<double>());
    EXPECT_EQ(y.slice(dd, 0, a.size(dd)).to_vector<double>(), a.to_vector<double>());
    EXPECT_EQ(y.slice(dd, a.size(dd) + 1, 2 * a.size(dd) + 1).to_vector<double>(), c.to_vector<double>());
  }
  // A transposed input and a single input.
  EXPECT_TRUE(gradcheck([](const V& v) { return concat({v[0].transpose(0, 1), v[1]}, 1); },
                        {rand64({3, 2}, 803), a.select(2, 0)}));
  EXPECT_TRUE(gradcheck([](const V& v) { return concat({v[0]}, 0); }, {a}));
}

}  // namespace
