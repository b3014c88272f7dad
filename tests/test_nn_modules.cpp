// nn module system: names, counts, state_dict loading, freezing, modes, init, summary.
// Expected parameter counts come from PyTorch (python3-torch 1.13, the same layouts built with
// torch.nn and summed with sum(p.numel() for p in m.parameters())), not from ember itself.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <set>

#include "engine/ops.h"
#include "gradcheck.h"
#include "nn/init.h"
#include "nn/layers.h"
#include "nn/models/fusion.h"
#include "nn/models/mlp.h"
#include "nn/models/mobilenet.h"
#include "nn/models/multihead.h"
#include "nn/models/small_cnn.h"
#include "nn/models/vgg.h"

using namespace ember;
using namespace ember::nn;

namespace {

std::set<std::string> names_of(const std::vector<std::pair<std::string, Tensor>>& named) {
  std::set<std::string> out;
  for (auto& [n, _] : named) out.insert(n);
  return out;
}

// Direct 7-loop convolution with explicit per-side zero padding: the reference for tf_same.
Tensor naive_conv(const Tensor& x, const Tensor& w, const Tensor& b, int64_t stride, int64_t groups, int64_t top,
                  int64_t bottom, int64_t left, int64_t right) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), K = w.size(0), R = w.size(2), S = w.size(3);
  const int64_t P = (H + top + bottom - R) / stride + 1, Q = (W + left + right - S) / stride + 1, cg = C / groups;
  Tensor y = Tensor::zeros({N, K, P, Q}, DType::Float64);
  double* py = y.data<double>();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k)
      for (int64_t p = 0; p < P; ++p)
        for (int64_t q = 0; q < Q; ++q) {
          double acc = b.defined() ? b.at({k}) : 0.0;
          const int64_t g = k / (K / groups);
          for (int64_t c = 0; c < cg; ++c)
            for (int64_t r = 0; r < R; ++r)
              for (int64_t s = 0; s < S; ++s) {
                int64_t h = p * stride + r - top, ww = q * stride + s - left;
                if (h < 0 || h >= H || ww < 0 || ww >= W) continue;
                acc += x.at({n, g * cg + c, h, ww}) * w.at({k, c, r, s});
              }
          py[((n * K + k) * P + p) * Q + q] = acc;
        }
  return y;
}

// torchvision's VGG16 feature indices: conv at i, then (BN,) ReLU, "M" = one max pool module.
std::set<std::string> torchvision_vgg16_names(bool bn) {
  const int plan[] = {64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0};
  std::set<std::string> names;
  int index = 0;
  for (int item : plan) {
    if (item == 0) {
      ++index;
      continue;
    }
    names.insert("features." + std::to_string(index) + ".weight");
    names.insert("features." + std::to_string(index) + ".bias");
    if (bn) {
      names.insert("features." + std::to_string(index + 1) + ".weight");
      names.insert("features." + std::to_string(index + 1) + ".bias");
    }
    index += bn ? 3 : 2;
  }
  for (int i : {0, 3, 6}) {
    names.insert("classifier." + std::to_string(i) + ".weight");
    names.insert("classifier." + std::to_string(i) + ".bias");
  }
  return names;
}

}  // namespace

// ---- init -----------------------------------------------------------------------------------

TEST(NnInit, LinearAndConvDefaultsMatchPytorchBounds) {
  Generator gen(7);
  Linear fc(300, 200, true, gen);
  const double bound = 1.0 / std::sqrt(300.0);
  auto w = fc.weight.to_vector<double>();
  double lo = 1, hi = -1, sq = 0;
  for (double v : w) lo = std::min(lo, v), hi = std::max(hi, v), sq += v * v;
  EXPECT_GE(lo, -bound);
  EXPECT_LE(hi, bound);
  EXPECT_LT(lo, -0.95 * bound);  // the whole range is used
  EXPECT_GT(hi, 0.95 * bound);
  EXPECT_NEAR(sq / w.size(), bound * bound / 3.0, 0.03 * bound * bound / 3.0);  // U(-b,b) variance b^2/3
  for (double v : fc.bias.to_vector<double>()) EXPECT_LE(std::abs(v), bound);

  Conv2d conv(8, 16, 3, {}, gen);  // fan_in = 8 * 3 * 3
  const double cb = 1.0 / std::sqrt(72.0);
  for (double v : conv.weight.to_vector<double>()) EXPECT_LE(std::abs(v), cb);
  for (double v : conv.bias.to_vector<double>()) EXPECT_LE(std::abs(v), cb);

  Generator g1(3), g2(3), g3(4);
  Linear a(10, 5, true, g1), b(10, 5, true, g2), c(10, 5, true, g3);
  EXPECT_EQ(a.weight.to_vector<float>(), b.weight.to_vector<float>());
  EXPECT_NE(a.weight.to_vector<float>(), c.weight.to_vector<float>());
}

TEST(NnInit, KaimingNormalAndXavierStatistics) {
  Generator gen(11);
  EXPECT_EQ(init::fan_in_out(Tensor::empty({16, 8, 3, 3})), (std::pair<int64_t, int64_t>{72, 144}));
  Tensor w = Tensor::empty({256, 128, 3, 3});
  init::kaiming_normal_(w, gen, 0.0, init::FanMode::FanOut, init::Nonlinearity::ReLU);
  auto v = w.to_vector<double>();
  double sq = 0, mean = 0;
  for (double x : v) sq += x * x, mean += x;
  const double want = 2.0 / (256 * 9);
  EXPECT_NEAR(sq / v.size(), want, 0.02 * want);
  EXPECT_NEAR(mean / v.size(), 0.0, 0.01 * std::sqrt(want));

  Tensor x = Tensor::empty({100, 300});
  init::xavier_uniform_(x, gen);
  const double b = std::sqrt(6.0 / 400.0);
  for (double e : x.to_vector<double>()) EXPECT_LE(std::abs(e), b);
  init::xavier_normal_(x, gen, 2.0);
  sq = 0;
  for (double e : x.to_vector<double>()) sq += e * e;
  EXPECT_NEAR(sq / x.numel(), 4.0 * 2.0 / 400.0, 0.05 * 4.0 * 2.0 / 400.0);
}

// ---- layers ---------------------------------------------------------------------------------

TEST(NnLayers, LinearMatchesManualProduct) {
  Generator gen(1);
  Linear fc(4, 3, true, gen);
  Tensor x = Tensor::uniform({2, 4}, -1, 1, gen);
  Tensor y = fc(x);
  ASSERT_EQ(y.shape(), (Shape{2, 3}));
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t o = 0; o < 3; ++o) {
      double acc = fc.bias.at({o});
      for (int64_t i = 0; i < 4; ++i) acc += x.at({n, i}) * fc.weight.at({o, i});
      EXPECT_NEAR(y.at({n, o}), acc, 1e-5);
    }
  EXPECT_THROW(fc(Tensor::zeros({2, 5})), Error);
}

TEST(NnLayers, TfSamePaddingIsAsymmetricLikeTensorFlow) {
  Generator gen(5);
  for (int64_t size : {7, 8, 224 / 16}) {
    for (int64_t stride : {1, 2}) {
      for (int64_t groups : {1, 4}) {
        Conv2d conv(4, 8, 3, {.stride = stride, .groups = groups, .tf_same = true}, gen);
        Tensor x = Tensor::uniform({1, 4, size, size}, -1, 1, gen);
        Tensor y = conv(x);
        const int64_t out = (size + stride - 1) / stride;
        ASSERT_EQ(y.shape(), (Shape{1, 8, out, out})) << "size " << size << " stride " << stride;
        const int64_t total = std::max<int64_t>((out - 1) * stride + 3 - size, 0);
        Tensor ref = naive_conv(x, conv.weight, conv.bias, stride, groups, total / 2, total - total / 2, total / 2,
                                total - total / 2);
        EXPECT_LT(ember::testing::rel_error(y, ref), 1e-6) << "size " << size << " stride " << stride << " groups " << groups;
      }
    }
  }
  // Stride 2 on an even input pads only after: PyTorch-style symmetric padding would differ.
  Conv2d tf(2, 2, 3, {.stride = 2, .tf_same = true}, gen);
  Tensor x = Tensor::uniform({1, 2, 8, 8}, -1, 1, gen);
  Tensor sym = naive_conv(x, tf.weight, tf.bias, 2, 1, 1, 1, 1, 1);
  EXPECT_GT(ember::testing::rel_error(tf(x), sym), 1e-2);
}

TEST(NnLayers, ConvDilationGroupsAndNoBias) {
  Generator gen(9);
  Conv2d conv(6, 6, 3, {.stride = 1, .padding = 2, .dilation = 2, .groups = 3, .bias = false}, gen);
  EXPECT_EQ(conv.weight.shape(), (Shape{6, 2, 3, 3}));
  EXPECT_EQ(conv.named_parameters().size(), 1u);
  Tensor x = Tensor::uniform({2, 6, 9, 9}, -1, 1, gen);
  Tensor y = conv(x);
  EXPECT_EQ(y.shape(), (Shape{2, 6, 9, 9}));
  Tensor ref = conv2d(x, conv.weight, Tensor(), Conv2dOptions::make(1, 2, 2, 3));
  EXPECT_LT(ember::testing::rel_error(y, ref), 1e-6);
}

TEST(NnLayers, DropoutTrainEvalAndSeed) {
  Dropout d1(0.5, 42), d2(0.5, 42);
  Tensor x = Tensor::ones({1000});
  Tensor a = d1(x), b = d2(x);
  EXPECT_EQ(a.to_vector<float>(), b.to_vector<float>());  // same seed, same mask
  int zeros = 0;
  for (float v : a.to_vector<float>()) {
    if (v == 0.0f) ++zeros;
    else EXPECT_FLOAT_EQ(v, 2.0f);  // inverted dropout scale 1/(1-p)
  }
  EXPECT_GT(zeros, 400);
  EXPECT_LT(zeros, 600);
  d1.eval();
  EXPECT_EQ(d1(x).to_vector<float>(), x.to_vector<float>());
}

TEST(NnLayers, BatchNormTrainUsesBatchStatsEvalUsesRunning) {
  Generator gen(2);
  BatchNorm2d bn(3);
  Tensor x = Tensor::uniform({4, 3, 5, 5}, 0, 4, gen);
  Tensor y = bn(x);  // training
  // Reference: per-channel batch mean / biased variance.
  for (int64_t c = 0; c < 3; ++c) {
    double m = 0, v = 0, n = 4 * 25;
    for (int64_t i = 0; i < 4; ++i)
      for (int64_t h = 0; h < 5; ++h)
        for (int64_t w = 0; w < 5; ++w) m += x.at({i, c, h, w});
    m /= n;
    for (int64_t i = 0; i < 4; ++i)
      for (int64_t h = 0; h < 5; ++h)
        for (int64_t w = 0; w < 5; ++w) v += std::pow(x.at({i, c, h, w}) - m, 2);
    EXPECT_NEAR(y.at({1, c, 2, 3}), (x.at({1, c, 2, 3}) - m) / std::sqrt(v / n + 1e-5), 1e-4);
    EXPECT_NEAR(bn.running_mean.at({c}), 0.1 * m, 1e-5);                  // momentum 0.1 from 0
    EXPECT_NEAR(bn.running_var.at({c}), 0.9 + 0.1 * v / (n - 1), 1e-5);  // unbiased
  }
  bn.eval();
  Tensor before = bn.running_mean.clone();
  Tensor z = bn(x);
  EXPECT_EQ(bn.running_mean.to_vector<float>(), before.to_vector<float>());  // eval: no update
  const double expect = (x.at({0, 1, 0, 0}) - bn.running_mean.at({1})) / std::sqrt(bn.running_var.at({1}) + 1e-5);
  EXPECT_NEAR(z.at({0, 1, 0, 0}), expect, 1e-5);

  BatchNorm1d fused(3, {.fuse_relu = true});
  fused.eval();
  Tensor t = Tensor::from_vector({-1.f, 2.f, -3.f, 4.f, 5.f, -6.f}, {2, 3});
  auto out = fused(t).to_vector<float>();
  for (size_t i = 0; i < out.size(); ++i) EXPECT_NEAR(out[i], std::max(0.0, t.to_vector<float>()[i] / std::sqrt(1 + 1e-5)), 1e-5);
  EXPECT_THROW(fused(Tensor::zeros({2, 4})), Error);
}

TEST(NnLayers, ConcatRunsEachBranchOnItsInput) {
  Generator gen(3);
  auto a = std::make_shared<Linear>(4, 2, true, gen);
  auto b = std::make_shared<Linear>(6, 3, true, gen);
  Concat cat;
  cat.add("tab", a).add("img", b);
  Tensor xa = Tensor::uniform({5, 4}, -1, 1, gen), xb = Tensor::uniform({5, 6}, -1, 1, gen);
  Tensor y = cat.call_many({xa, xb})[0];
  ASSERT_EQ(y.shape(), (Shape{5, 5}));
  EXPECT_LT(ember::testing::rel_error(y.slice(1, 0, 2), (*a)(xa)), 1e-7);
  EXPECT_LT(ember::testing::rel_error(y.slice(1, 2, 5), (*b)(xb)), 1e-7);
  EXPECT_EQ(names_of(cat.named_parameters()), (std::set<std::string>{"tab.weight", "tab.bias", "img.weight", "img.bias"}));
  EXPECT_THROW(cat.call_many({xa}), Error);
}

// ---- names, state_dict, freezing -------------------------------------------------------------

TEST(NnModule, MlpNamesFollowSequentialIndices) {
  MLP mlp({.in_features = 8, .hidden = {16, 4}, .out_features = 2, .batch_norm = true, .dropout = 0.1});
  // 0 Linear, 1 BN, 2 ReLU, 3 Dropout, 4 Linear, 5 BN, 6 ReLU, 7 Dropout, 8 Linear
  EXPECT_EQ(names_of(mlp.named_parameters()),
            (std::set<std::string>{"0.weight", "0.bias", "1.weight", "1.bias", "4.weight", "4.bias", "5.weight", "5.bias",
                                   "8.weight", "8.bias"}));
  EXPECT_EQ(names_of(mlp.named_buffers()),
            (std::set<std::string>{"1.running_mean", "1.running_var", "5.running_mean", "5.running_var"}));
  EXPECT_EQ(mlp.state_dict().size(), 14u);
  EXPECT_EQ(mlp.num_parameters(), (8 * 16 + 16) + 32 + (16 * 4 + 4) + 8 + (4 * 2 + 2));
  EXPECT_EQ(mlp(Tensor::zeros({3, 8})).shape(), (Shape{3, 2}));
}

TEST(NnModule, LoadStateDictRoundTripAndReports) {
  Generator g1(1), g2(2);
  SmallCNN a({.channels = {4, 8}, .num_classes = 3}, g1), b({.channels = {4, 8}, .num_classes = 3}, g2);
  a.eval();
  b.eval();
  Tensor x = Tensor::uniform({2, 3, 8, 8}, -1, 1, g1);
  EXPECT_GT(ember::testing::rel_error(a(x), b(x)), 1e-3);
  LoadReport ok = b.load_state_dict(a.state_dict(), true);
  EXPECT_TRUE(ok.ok());
  EXPECT_EQ(ok.loaded, int64_t(a.state_dict().size()));
  EXPECT_LT(ember::testing::rel_error(a(x), b(x)), 1e-7);

  // Break the dict three ways (and add PyTorch's BN step counter, which is ignored).
  auto sd = a.state_dict();
  sd.erase("features.0.1.running_var");
  sd["head.extra"] = Tensor::zeros({2});
  sd["features.1.0.weight"] = Tensor::zeros({8, 4, 5, 5});
  sd["features.0.1.num_batches_tracked"] = Tensor::zeros({}, DType::Int64);
  Tensor before = b.child("classifier")->named_parameters()[0].second.clone();
  try {
    b.load_state_dict(sd, true);
    FAIL() << "strict load should throw";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("missing key: features.0.1.running_var"), std::string::npos) << msg;
    EXPECT_NE(msg.find("unexpected key: head.extra"), std::string::npos) << msg;
    EXPECT_NE(msg.find("features.1.0.weight: model expects [8, 4, 3, 3], state_dict has [8, 4, 5, 5]"), std::string::npos)
        << msg;
    EXPECT_EQ(msg.find("num_batches_tracked"), std::string::npos) << msg;
  }
  // strict failure copies nothing: zero the source classifier and check b kept its values
  EXPECT_EQ(b.child("classifier")->named_parameters()[0].second.to_vector<float>(), before.to_vector<float>());

  LoadReport r = b.load_state_dict(sd, false);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.missing, std::vector<std::string>{"features.0.1.running_var"});
  EXPECT_EQ(r.unexpected, std::vector<std::string>{"head.extra"});
  ASSERT_EQ(r.mismatched.size(), 1u);
  EXPECT_EQ(r.mismatched[0].expected, (Shape{8, 4, 3, 3}));
  EXPECT_EQ(r.mismatched[0].found, (Shape{8, 4, 5, 5}));
  EXPECT_EQ(r.ignored, std::vector<std::string>{"features.0.1.num_batches_tracked"});
  EXPECT_EQ(r.loaded, int64_t(a.state_dict().size()) - 2);
  // Non-strict loads what matches; dtype converts (float64 source into float32 params).
  std::map<std::string, Tensor> f64{{"classifier.0.bias", Tensor::full({3}, 0.25, DType::Float64)}};
  EXPECT_EQ(b.load_state_dict(f64, false).loaded, 1);
  EXPECT_FLOAT_EQ(float(b.child("classifier")->named_parameters()[1].second.at({2})), 0.25f);
}

TEST(NnModule, FreezeUnfreezeByPrefix) {
  Generator gen(4);
  SmallCNN m({.channels = {4, 8}, .hidden = 6, .num_classes = 3}, gen);
  const int64_t total = m.num_parameters(), head = m.child("classifier")->num_parameters();
  EXPECT_EQ(m.num_trainable_parameters(), total);
  EXPECT_EQ(m.freeze("features"), 6);  // 2 blocks x (conv weight (no bias with BN), BN weight, BN bias)
  EXPECT_EQ(m.num_trainable_parameters(), head);
  // Gradients reach only the trainable part.
  Tensor loss = sum(m(Tensor::uniform({2, 3, 8, 8}, -1, 1, gen)));
  loss.backward();
  for (auto& [name, p] : m.named_parameters()) EXPECT_EQ(p.grad().defined(), name.rfind("classifier", 0) == 0) << name;
  m.unfreeze("features.1");
  EXPECT_EQ(m.num_trainable_parameters(), head + m.child("features")->child("1")->num_parameters());
  m.unfreeze();
  EXPECT_EQ(m.num_trainable_parameters(), total);
  EXPECT_THROW(m.freeze("feat"), Error);  // a prefix must end at a name boundary
  EXPECT_EQ(m.freeze("classifier."), 4);
}

TEST(NnModels, SmallCnnDoubleConvBlocksNamesAndShapes) {
  Generator gen(5);
  SmallCNN m({.channels = {4, 8}, .convs_per_block = 2, .num_classes = 3}, gen);
  std::vector<std::string> names;
  for (auto& [name, p] : m.named_parameters()) names.push_back(name + " " + shape_str(p.shape()));
  // Block b: conv 3i, BN 3i+1 (ReLU 3i+2 has no parameters), pool at 6; the second conv maps out->out.
  const std::vector<std::string> expected{
      "features.0.0.weight [4, 3, 3, 3]", "features.0.1.weight [4]", "features.0.1.bias [4]",
      "features.0.3.weight [4, 4, 3, 3]", "features.0.4.weight [4]", "features.0.4.bias [4]",
      "features.1.0.weight [8, 4, 3, 3]", "features.1.1.weight [8]", "features.1.1.bias [8]",
      "features.1.3.weight [8, 8, 3, 3]", "features.1.4.weight [8]", "features.1.4.bias [8]",
      "classifier.0.weight [3, 8]",       "classifier.0.bias [3]"};
  EXPECT_EQ(names, expected);
  EXPECT_EQ(m(Tensor::uniform({2, 3, 8, 8}, -1, 1, gen)).shape(), (std::vector<int64_t>{2, 3}));
  EXPECT_THROW(SmallCNN({.channels = {4}, .convs_per_block = 0}, gen), Error);
}

TEST(NnModule, TrainEvalIsRecursive) {
  Generator gen(8);
  MLP mlp({.in_features = 6, .hidden = {32}, .out_features = 2, .batch_norm = true, .dropout = 0.5}, gen);
  Tensor x = Tensor::uniform({8, 6}, -1, 1, gen);
  mlp.train();
  Tensor t1 = mlp(x), t2 = mlp(x);
  EXPECT_GT(ember::testing::rel_error(t1, t2), 1e-3);  // dropout masks differ between calls
  mlp.eval();
  for (auto& [_, m] : mlp.named_modules()) EXPECT_FALSE(m->is_training());
  Tensor e1 = mlp(x), e2 = mlp(x);
  EXPECT_EQ(e1.to_vector<float>(), e2.to_vector<float>());
  // eval BN uses running stats: one sample alone gives the same row as inside the batch
  EXPECT_LT(ember::testing::rel_error(mlp(x.slice(0, 3, 4)), e1.slice(0, 3, 4)), 1e-6);
}

// ---- models ---------------------------------------------------------------------------------

TEST(NnModels, TorchvisionVggInit) {
  Generator gen(21);
  Sequential m{std::make_shared<Conv2d>(16, 64, 3, Conv2dArgs{}, gen), std::make_shared<Linear>(500, 300, true, gen)};
  torchvision_vgg_init(m, gen);
  auto conv = static_cast<Conv2d*>(m[0].get());
  auto fc = static_cast<Linear*>(m[1].get());
  auto mean_sq = [](const Tensor& t) {
    double s = 0;
    for (double v : t.to_vector<double>()) s += v * v;
    return s / double(t.numel());
  };
  const double conv_var = 2.0 / (64 * 9);  // kaiming_normal, fan_out, ReLU gain
  EXPECT_NEAR(mean_sq(conv->weight), conv_var, 0.05 * conv_var);
  EXPECT_NEAR(mean_sq(fc->weight), 1e-4, 0.02 * 1e-4);  // N(0, 0.01)
  EXPECT_EQ(mean_sq(conv->bias), 0.0);
  EXPECT_EQ(mean_sq(fc->bias), 0.0);
}

TEST(NnModels, Vgg16NamesCountsEmbeddingsAndSummary) {
  // Plain layer defaults: torchvision's normal init costs several CPU seconds more on 138M
  // weights and is checked on a small model above.
  auto t0 = std::chrono::steady_clock::now();
  auto c0 = std::clock();
  VGG16 vgg({.num_classes = 1000, .torchvision_init = false});
  std::printf("VGG16 construction (138M params, default init): %.2f s wall, %.2f s CPU\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
              double(std::clock() - c0) / CLOCKS_PER_SEC);
  EXPECT_EQ(vgg.num_parameters(), 138357544);  // torch: vgg16 layout, sum of numel
  EXPECT_EQ(names_of(vgg.named_parameters()), torchvision_vgg16_names(false));
  EXPECT_TRUE(vgg.named_buffers().empty());

  Tensor x = Tensor::uniform({1, 3, 32, 32}, -1, 1, default_generator());
  vgg.eval();
  EXPECT_EQ(vgg.embed_at(x, VggCut::Pool).shape(), (Shape{1, 25088}));
  EXPECT_EQ(vgg.embed_at(x, VggCut::Fc7).shape(), (Shape{1, 4096}));
  EXPECT_EQ(vgg.embedding_width(), 25088);  // embed() cuts at VggCut::Pool by default
  EXPECT_EQ(vgg(x).shape(), (Shape{1, 1000}));

  EXPECT_EQ(vgg.freeze("features"), 26);
  EXPECT_EQ(vgg.num_trainable_parameters(), 138357544 - 14714688);  // conv stack: 14,714,688 in Keras' table
  vgg.train();
  std::string s = vgg.summary(Shape{1, 3, 32, 32});
  EXPECT_TRUE(vgg.is_training());  // summary ran in eval mode, then restored training mode
  EXPECT_NE(s.find("Non-trainable params: 14,714,688"), std::string::npos);
  std::printf("%s", s.c_str());
  EXPECT_NE(s.find("Total params: 138,357,544"), std::string::npos);
  EXPECT_NE(s.find("features.0 (Conv2d)"), std::string::npos);
  EXPECT_NE(s.find("[1, 64, 32, 32]"), std::string::npos);
  EXPECT_NE(s.find("1,792"), std::string::npos);  // 64*3*3*3 + 64
  EXPECT_NE(s.find("avgpool (AdaptiveAvgPool2d)"), std::string::npos);
  EXPECT_NE(s.find("[1, 512, 7, 7]"), std::string::npos);
  EXPECT_NE(s.find("classifier.6 (Linear)"), std::string::npos);
  EXPECT_NE(s.find("4,097,000"), std::string::npos);  // 4096*1000 + 1000
}

TEST(NnModels, Vgg16BnNamesAndCounts) {
  VGG16 vgg({.num_classes = 10, .batch_norm = true, .torchvision_init = false});
  // torch: vgg16_bn layout has 138,365,992 params with 1000 classes; the head here has 10.
  EXPECT_EQ(vgg.num_parameters(), 138365992 - 4096 * 990 - 990);
  auto names = torchvision_vgg16_names(true);
  names.erase("classifier.6.weight");
  names.erase("classifier.6.bias");
  auto got = names_of(vgg.named_parameters());
  EXPECT_EQ(got.count("classifier.6.weight"), 1u);
  got.erase("classifier.6.weight");
  got.erase("classifier.6.bias");
  EXPECT_EQ(got, names);
  auto buffers = names_of(vgg.named_buffers());
  EXPECT_EQ(buffers.size(), 26u);
  EXPECT_TRUE(buffers.count("features.1.running_mean") && buffers.count("features.41.running_var"));
  EXPECT_EQ(vgg.classifier->named_parameters()[4].second.shape(), (Shape{10, 4096}));
}

TEST(NnModels, MobileNetV1NamesCountsAndShapes) {
  MobileNetV1 m;  // BN, 1001 classes
  EXPECT_EQ(m.num_parameters(), 4233001);  // torch: same layout (bias-free convs + BN affine + Linear)
  int64_t running = 0;
  for (auto& [_, b] : m.named_buffers()) running += b.numel();
  EXPECT_EQ(running, 21888);  // torch: running_mean + running_var elements
  auto names = names_of(m.named_parameters());
  for (const char* n : {"features.0.0.weight", "features.0.1.weight", "features.1.0.weight", "features.1.1.bias",
                        "features.1.3.weight", "features.13.4.weight", "classifier.weight", "classifier.bias"})
    EXPECT_TRUE(names.count(n)) << n;
  EXPECT_EQ(m.features->child("1")->named_parameters()[0].second.shape(), (Shape{32, 1, 3, 3}));
  EXPECT_EQ(m.features->child("13")->child("3")->named_parameters()[0].second.shape(), (Shape{1024, 1024, 1, 1}));

  MobileNetV1 f({.folded_bn = true});
  EXPECT_EQ(f.num_parameters(), 4222057);  // torch: conv with bias, no BN
  EXPECT_TRUE(f.named_buffers().empty());
  auto fnames = names_of(f.named_parameters());
  EXPECT_EQ(fnames.size(), 2u * 27 + 2);
  EXPECT_TRUE(fnames.count("features.0.0.bias") && fnames.count("features.7.0.bias") && fnames.count("features.13.3.bias"));
  EXPECT_FALSE(fnames.count("features.1.1.weight"));

  f.eval();
  Tensor x = Tensor::uniform({2, 3, 64, 64}, -1, 1, default_generator());
  EXPECT_EQ(f.embed(x).shape(), (Shape{2, 1024}));
  EXPECT_EQ(f(x).shape(), (Shape{2, 1001}));
  std::string s = f.summary(Shape{1, 3, 224, 224});
  EXPECT_NE(s.find("Total params: 4,222,057"), std::string::npos) << s;
  EXPECT_NE(s.find("features.0.0 (Conv2d)"), std::string::npos);
  EXPECT_NE(s.find("[1, 32, 112, 112]"), std::string::npos);  // tf_same, stride 2 on 224
  EXPECT_NE(s.find("[1, 1024, 7, 7]"), std::string::npos);
  EXPECT_EQ(f.freeze("features"), 2 * 27);
  EXPECT_EQ(f.num_trainable_parameters(), 1024 * 1001 + 1001);
}

TEST(NnModels, MultiHeadSharesTrunk) {
  Generator gen(6);
  auto trunk = std::make_shared<SmallCNN>(SmallCNNConfig{.channels = {4, 8}, .num_classes = 3}, gen);
  MultiHead mh(trunk, {.embedding_width = 8, .hidden = 5}, gen);
  Tensor x = Tensor::uniform({3, 3, 16, 16}, -1, 1, gen);
  auto out = mh.forward_heads(x);
  EXPECT_EQ(out.age.shape(), (Shape{3}));
  EXPECT_EQ(out.gender_logits.shape(), (Shape{3, 2}));
  auto names = names_of(mh.named_parameters());
  EXPECT_TRUE(names.count("trunk.features.0.0.weight") && names.count("age_head.2.bias") && names.count("gender_head.0.weight"));
  // Both losses reach the shared trunk.
  Tensor loss = sum(out.age) + sum(out.gender_logits);
  loss.backward();
  EXPECT_TRUE(trunk->features->named_parameters()[0].second.grad().defined());
  mh.freeze("trunk");
  EXPECT_EQ(mh.num_trainable_parameters(), mh.num_parameters() - trunk->num_parameters());
  auto many = mh.call_many({x});
  EXPECT_EQ(many.size(), 2u);
  EXPECT_NE(mh.summary(Shape{2, 3, 16, 16}).find("gender_head.2 (Linear)"), std::string::npos);
}

TEST(NnModels, FusionProjectsBothBranchesToCommonWidth) {
  Generator gen(12);
  FusionConfig c{.tabular_features = 5, .tabular_hidden = {16}, .image_features = 1024, .common_width = 32,
                 .head_hidden = {16}, .num_classes = 2};
  Fusion f(c, gen);
  Tensor tab = Tensor::uniform({4, 5}, -1, 1, gen), img = Tensor::uniform({4, 1024}, 0, 3, gen);
  EXPECT_EQ(f.fused(tab, img).shape(), (Shape{4, 64}));
  Tensor y = f.call_many({tab, img})[0];
  EXPECT_EQ(y.shape(), (Shape{4, 2}));
  sum(y).backward();
  for (auto& [name, p] : f.named_parameters()) EXPECT_TRUE(p.grad().defined()) << name;
  EXPECT_THROW(f(tab), Error);
  auto names = names_of(f.named_parameters());
  EXPECT_TRUE(names.count("fuse.tabular.mlp.0.weight") && names.count("fuse.tabular.proj.0.weight") &&
              names.count("fuse.image.proj.1.weight") && names.count("head.2.bias"));

  // With a backbone the image input is the backbone's input, and its weights can be frozen.
  auto backbone = std::make_shared<SmallCNN>(SmallCNNConfig{.channels = {4, 8}}, gen);
  c.image_features = backbone->embedding_width();
  Fusion fb(c, gen, backbone);
  EXPECT_EQ(fb.call_many({tab, Tensor::uniform({4, 3, 16, 16}, -1, 1, gen)})[0].shape(), (Shape{4, 2}));
  EXPECT_GT(fb.freeze("fuse.image.backbone"), 0);
  EXPECT_EQ(fb.num_trainable_parameters(), fb.num_parameters() - backbone->num_parameters());
  std::string s = fb.summary(std::vector<Shape>{{2, 5}, {2, 3, 16, 16}});
  EXPECT_NE(s.find("fuse.image.backbone.features.0.0 (Conv2d)"), std::string::npos) << s;
  EXPECT_NE(s.find("Total params: " + with_commas(fb.num_parameters())), std::string::npos);
}

TEST(NnModule, ToCpuKeepsParametersAndFlags) {
  Generator gen(13);
  MLP m({.in_features = 3, .hidden = {4}, .out_features = 1}, gen);
  m.freeze("0");
  auto before = m.state_dict();
  m.to(Device::CPU);
  auto after = m.state_dict();
  for (auto& [n, t] : before) EXPECT_TRUE(after[n].same(t)) << n;  // already there: untouched
  EXPECT_FALSE(m.named_parameters()[0].second.requires_grad());
  EXPECT_EQ(with_commas(1234567), "1,234,567");
  EXPECT_EQ(with_commas(12), "12");
}
