// Losses: gradients by finite differences (float64) for every option, values against independent
// hand computations, numerical stability, and the error messages for bad targets and shapes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>

#include "gradcheck.h"

namespace ember {
namespace {

using testing::gradcheck;
using testing::rand64;

Tensor targets(const std::vector<int64_t>& v) { return Tensor::from_vector(v, {int64_t(v.size())}); }

// ---- cross entropy ------------------------------------------------------------------------------

TEST(CrossEntropy, GradcheckAllOptions) {
  Tensor logits = rand64({6, 5}, 1, -3, 3);
  Tensor t = targets({0, 4, 2, 2, 1, 3});
  Tensor t_ignore = targets({0, 4, -1, 2, 1, -1});
  Tensor w = rand64({5}, 2, 0.2, 2.0);
  for (Reduction red : {Reduction::Mean, Reduction::Sum, Reduction::None})
    for (bool weighted : {false, true})
      for (double smoothing : {0.0, 0.2})
        for (bool ignore : {false, true}) {
          CrossEntropyOptions o;
          o.reduction = red;
          o.class_weight = weighted ? w : Tensor();
          o.label_smoothing = smoothing;
          o.ignore_index = -1;
          const Tensor& tg = ignore ? t_ignore : t;
          EXPECT_TRUE(gradcheck([&](const std::vector<Tensor>& in) { return cross_entropy(in[0], tg, o); }, {logits}))
              << "reduction " << int(red) << " weighted " << weighted << " smoothing " << smoothing << " ignore "
              << ignore;
        }
}

// Independent per-sample computation of PyTorch's definition.
struct CeCase {
  double nll_sum = 0, smooth_sum = 0, weight_sum = 0;
};
CeCase hand_ce(const Tensor& z, const std::vector<int64_t>& t, const std::vector<double>& w, int64_t ignore) {
  CeCase r;
  const int64_t N = z.shape()[0], C = z.shape()[1];
  for (int64_t n = 0; n < N; ++n) {
    if (t[n] == ignore) continue;
    double denom = 0;
    for (int64_t c = 0; c < C; ++c) denom += std::exp(z.at({n, c}));
    for (int64_t c = 0; c < C; ++c) r.smooth_sum += -w[c] * (z.at({n, c}) - std::log(denom));
    r.nll_sum += -w[t[n]] * (z.at({n, t[n]}) - std::log(denom));
    r.weight_sum += w[t[n]];
  }
  return r;
}

TEST(CrossEntropy, WeightedMeanIgnoreIndexAndSmoothingMatchDefinition) {
  Tensor z = rand64({5, 4}, 3, -2, 2);
  const std::vector<int64_t> t = {3, 7, 0, 1, 3};  // 7 is ignore_index
  const std::vector<double> w = {0.5, 2.0, 1.0, 3.0};
  const CeCase h = hand_ce(z, t, w, 7);
  CrossEntropyOptions o;
  o.class_weight = Tensor::from_vector(w, {4});
  o.ignore_index = 7;
  EXPECT_NEAR(cross_entropy(z, targets(t), o).item(), h.nll_sum / h.weight_sum, 1e-12);
  o.reduction = Reduction::Sum;
  EXPECT_NEAR(cross_entropy(z, targets(t), o).item(), h.nll_sum, 1e-12);
  o.reduction = Reduction::Mean;
  o.label_smoothing = 0.1;
  EXPECT_NEAR(cross_entropy(z, targets(t), o).item(), (0.9 * h.nll_sum + 0.1 / 4 * h.smooth_sum) / h.weight_sum, 1e-12);
  o.reduction = Reduction::None;
  Tensor per = cross_entropy(z, targets(t), o);
  EXPECT_EQ(per.shape(), (Shape{5}));
  EXPECT_EQ(per.at({1}), 0.0);  // the ignored sample
  // Unweighted mean divides by the number of non-ignored samples.
  CrossEntropyOptions plain;
  plain.ignore_index = 7;
  const CeCase u = hand_ce(z, t, {1, 1, 1, 1}, 7);
  EXPECT_NEAR(cross_entropy(z, targets(t), plain).item(), u.nll_sum / 4, 1e-12);
}

TEST(CrossEntropy, StableForHugeLogits) {
  Tensor z = Tensor::from_vector({1000.f, -1000.f, 0.f}, {1, 3});
  EXPECT_NEAR(cross_entropy(z, targets({0})).item(), 0.0, 1e-6);
  EXPECT_NEAR(cross_entropy(z, targets({2})).item(), 1000.0, 1e-3);
}

TEST(CrossEntropy, BadTargetThrowsNamingIndexAndPosition) {
  Tensor z = Tensor::zeros({5, 5});
  try {
    cross_entropy(z, targets({0, 1, 2, 7, 4}));
    FAIL() << "target 7 accepted for 5 classes";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("cross_entropy: target[3] = 7 is outside [0, 5)"), std::string::npos) << m;
  }
  try {
    cross_entropy(z, targets({0, -3, 2, 1, 4}));
    FAIL() << "negative target accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("target[1] = -3"), std::string::npos) << e.what();
  }
  EXPECT_THROW(cross_entropy(z, targets({0, 1})), Error);                      // wrong N
  EXPECT_THROW(cross_entropy(z, Tensor::zeros({5})), Error);                   // float targets
  CrossEntropyOptions o;
  o.class_weight = Tensor::ones({4});
  EXPECT_THROW(cross_entropy(z, targets({0, 1, 2, 3, 4}), o), Error);          // weight [4] for 5 classes
}

// ---- binary cross entropy with logits --------------------------------------------------------------

TEST(BceWithLogits, GradcheckLogitsTargetAndPosWeight) {
  Tensor x = rand64({4, 3}, 4, -3, 3), t = rand64({4, 3}, 5, 0, 1), pw = rand64({3}, 6, 0.5, 3);
  for (Reduction red : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
    EXPECT_TRUE(gradcheck(
        [red](const std::vector<Tensor>& in) { return binary_cross_entropy_with_logits(in[0], in[1], Tensor(), red); },
        {x, t}));
    EXPECT_TRUE(gradcheck(
        [red](const std::vector<Tensor>& in) { return binary_cross_entropy_with_logits(in[0], in[1], in[2], red); },
        {x, t, pw}));
  }
}

TEST(BceWithLogits, MatchesDefinitionAndIsStable) {
  Tensor x = rand64({2, 3}, 7, -4, 4), t = rand64({2, 3}, 8, 0, 1);
  Tensor pw = Tensor::from_vector(std::vector<double>{0.5, 1.0, 4.0}, {3});
  double expect = 0;
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 3; ++j) {
      const double xv = x.at({i, j}), tv = t.at({i, j}), s = 1 / (1 + std::exp(-xv));
      expect += -(pw.at({j}) * tv * std::log(s) + (1 - tv) * std::log(1 - s));
    }
  EXPECT_NEAR(binary_cross_entropy_with_logits(x, t, pw, Reduction::Sum).item(), expect, 1e-10);
  EXPECT_NEAR(binary_cross_entropy_with_logits(x, t, pw).item(), expect / 6, 1e-10);
  Tensor big = Tensor::from_vector({100.f, -100.f}, {2}), tb = Tensor::from_vector({0.f, 1.f}, {2});
  Tensor l = binary_cross_entropy_with_logits(big, tb, Tensor(), Reduction::None);
  EXPECT_NEAR(l.at({0}), 100.0, 1e-4);
  EXPECT_NEAR(l.at({1}), 100.0, 1e-4);
}

// ---- regression losses --------------------------------------------------------------------------

TEST(RegressionLosses, Gradcheck) {
  // Differences kept away from the kinks: |d| >= 0.2 for l1, and |d| far from beta = 0.5 for smooth_l1.
  Tensor p = rand64({3, 5}, 9, -1, 1);
  std::vector<double> off = rand64({3, 5}, 10, 0.2, 1.5).to_vector<double>();
  for (size_t i = 0; i < off.size(); i += 2) off[i] = -off[i];
  Tensor t = sub(p, Tensor::from_vector(off, {3, 5}));
  std::vector<double> near_smooth = rand64({3, 5}, 11, 0.05, 0.4).to_vector<double>();
  for (size_t i = 0; i < near_smooth.size(); i += 3) near_smooth[i] = 0.6 + near_smooth[i];
  Tensor ts = sub(p, Tensor::from_vector(near_smooth, {3, 5}));
  for (Reduction red : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
    EXPECT_TRUE(gradcheck([red](const std::vector<Tensor>& in) { return mse_loss(in[0], in[1], red); }, {p, t}));
    EXPECT_TRUE(gradcheck([red](const std::vector<Tensor>& in) { return l1_loss(in[0], in[1], red); }, {p, t}));
    EXPECT_TRUE(gradcheck([red](const std::vector<Tensor>& in) { return smooth_l1_loss(in[0], in[1], 0.5, red); },
                          {p, ts}));
  }
}

TEST(RegressionLosses, MatchDefinitions) {
  Tensor p = rand64({4, 3}, 12, -2, 2), t = rand64({4, 3}, 13, -2, 2);
  auto pv = p.to_vector<double>(), tv = t.to_vector<double>();
  double mse = 0, l1 = 0, sl1 = 0;
  const double beta = 0.7;
  for (size_t i = 0; i < pv.size(); ++i) {
    const double d = pv[i] - tv[i];
    mse += d * d;
    l1 += std::abs(d);
    sl1 += std::abs(d) < beta ? 0.5 * d * d / beta : std::abs(d) - 0.5 * beta;
  }
  EXPECT_NEAR(mse_loss(p, t).item(), mse / 12, 1e-12);
  EXPECT_NEAR(l1_loss(p, t, Reduction::Sum).item(), l1, 1e-12);
  EXPECT_NEAR(smooth_l1_loss(p, t, beta).item(), sl1 / 12, 1e-12);
  EXPECT_NEAR(smooth_l1_loss(p, t, 0.0).item(), l1 / 12, 1e-12);  // beta = 0 is L1
  EXPECT_EQ(mse_loss(p, t, Reduction::None).shape(), (Shape{4, 3}));
}

TEST(RegressionLosses, LargeInputsUseTheParallelPath) {
  Tensor p = rand64({300, 250}, 14, -2, 2), t = rand64({300, 250}, 15, -2, 2);
  auto pv = p.to_vector<double>(), tv = t.to_vector<double>();
  double mse = 0;
  for (size_t i = 0; i < pv.size(); ++i) mse += (pv[i] - tv[i]) * (pv[i] - tv[i]);
  EXPECT_NEAR(mse_loss(p, t, Reduction::Sum).item(), mse, 1e-9 * mse);
  Tensor pr = p.clone().requires_grad_(true);
  mse_loss(pr, t).backward();
  auto g = pr.grad().to_vector<double>();
  for (size_t i = 0; i < g.size(); i += 997) EXPECT_NEAR(g[i], 2 * (pv[i] - tv[i]) / double(pv.size()), 1e-15);
}

TEST(RegressionLosses, ShapeMismatchNamesBothShapes) {
  for (auto loss : {+[](const Tensor& a, const Tensor& b) { return mse_loss(a, b); },
                    +[](const Tensor& a, const Tensor& b) { return l1_loss(a, b); },
                    +[](const Tensor& a, const Tensor& b) { return smooth_l1_loss(a, b); },
                    +[](const Tensor& a, const Tensor& b) { return binary_cross_entropy_with_logits(a, b); }}) {
    try {
      loss(Tensor::zeros({4, 3}), Tensor::zeros({4, 2}));
      ADD_FAILURE() << "shape mismatch accepted";
    } catch (const Error& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("[4, 3]"), std::string::npos) << m;
      EXPECT_NE(m.find("[4, 2]"), std::string::npos) << m;
      EXPECT_TRUE(m.find("loss") != std::string::npos || m.find("entropy") != std::string::npos) << m;  // op named
    }
  }
}

// ---- optional golden values from PyTorch (skipped when python3 + torch is missing) ----------------

#ifndef EMBER_PYTHON
#define EMBER_PYTHON "python3"
#endif

// Runs a Python snippet and returns its stdout ("" on failure).
std::string run_python(const std::string& script) {
  const std::string cmd = std::string(EMBER_PYTHON) + " -c \"" + script + "\" 2>/dev/null";
  FILE* f = popen(cmd.c_str(), "r");
  if (!f) return "";
  std::string out;
  char buf[256];
  while (fgets(buf, sizeof buf, f)) out += buf;
  return pclose(f) == 0 ? out : "";
}

std::string py_list(const Tensor& t) {
  std::ostringstream os;
  os.precision(17);
  os << "[";
  for (double v : t.to_vector<double>()) os << v << ",";
  os << "]";
  return os.str();
}

TEST(CrossEntropy, MatchesPyTorchWithWeightsIgnoreAndSmoothing) {
  Tensor z = rand64({6, 4}, 21, -3, 3), w = rand64({4}, 22, 0.2, 2);
  Tensor x = rand64({3, 4}, 23, -4, 4), t = rand64({3, 4}, 24, 0, 1), pw = rand64({4}, 25, 0.5, 3);
  const std::vector<int64_t> tg = {1, 3, 2, 0, 2, 3};  // sample 2 and 4 ignored (ignore_index 2)
  const std::string script =
      "import torch, torch.nn.functional as F; d=torch.float64; "
      "z=torch.tensor(" + py_list(z) + ",dtype=d).view(6,4); w=torch.tensor(" + py_list(w) + ",dtype=d); "
      "t=torch.tensor([1,3,2,0,2,3]); "
      "x=torch.tensor(" + py_list(x) + ",dtype=d).view(3,4); y=torch.tensor(" + py_list(t) + ",dtype=d).view(3,4); "
      "pw=torch.tensor(" + py_list(pw) + ",dtype=d); "
      "print(repr(F.cross_entropy(z,t,weight=w,ignore_index=2,label_smoothing=0.15).item())); "
      "print(repr(F.cross_entropy(z,t,label_smoothing=0.3,reduction='sum').item())); "
      "print(repr(F.binary_cross_entropy_with_logits(x,y,pos_weight=pw).item()))";
  const std::string out = run_python(script);
  if (out.empty()) GTEST_SKIP() << "python3 with torch not available";
  std::istringstream is(out);
  double ce_weighted = 0, ce_sum = 0, bce = 0;
  is >> ce_weighted >> ce_sum >> bce;
  CrossEntropyOptions o;
  o.class_weight = w;
  o.ignore_index = 2;
  o.label_smoothing = 0.15;
  EXPECT_NEAR(cross_entropy(z, targets(tg), o).item(), ce_weighted, 1e-10);
  CrossEntropyOptions s;
  s.label_smoothing = 0.3;
  s.reduction = Reduction::Sum;
  EXPECT_NEAR(cross_entropy(z, targets(tg), s).item(), ce_sum, 1e-10);
  EXPECT_NEAR(binary_cross_entropy_with_logits(x, t, pw).item(), bce, 1e-10);
}

}  // namespace
}  // namespace ember
