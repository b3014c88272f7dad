// Element-wise, reductions, fused softmax cross-entropy, dropout (bit-exact vs the CPU Philox
// mapping), fused optimizers and the cuBLAS GEMM, each against a plain CPU loop.
#include <gtest/gtest.h>

#include <memory>

#include "kernels/cpu/gemm.h"
#include "kernels/philox.h"
#include "tests/cuda/cuda_test_util.h"

namespace ember::cuda {
namespace {
using testing::DeviceArray;
using testing::rel_norm_err;

TEST(CudaElementwise, BroadcastBinaryOps) {
  EMBER_REQUIRE_CUDA();
  // out[2,3,5] = a[2,3,5] op b[1,3,1] (b broadcast along dims 0 and 2)
  const auto a_host = testing::random_floats(30, 1), b_host = testing::random_floats(3, 2, 0.5f, 2.f);
  BroadcastArgs args;
  args.ndim = 3;
  int64_t shape[3] = {2, 3, 5}, as[3] = {15, 5, 1}, bs[3] = {0, 1, 0};
  for (int d = 0; d < 3; ++d) args.shape[d] = shape[d], args.a_strides[d] = as[d], args.b_strides[d] = bs[d];
  DeviceArray<float> a(a_host), b(b_host), out(30);
  for (BinaryOp op : {BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div}) {
    std::vector<float> want(30);
    for (int i = 0; i < 30; ++i) {
      const float x = a_host[size_t(i)], y = b_host[size_t((i / 5) % 3)];
      want[size_t(i)] = op == BinaryOp::Add ? x + y : op == BinaryOp::Sub ? x - y : op == BinaryOp::Mul ? x * y : x / y;
    }
    out.poison();
    binary(op, args, a.get(), b.get(), out.get());
    EXPECT_LE(rel_norm_err(out.download(), want), 1e-6) << "op " << int(op);
  }
}

TEST(CudaElementwise, ContiguousVectorisedAndUnary) {
  EMBER_REQUIRE_CUDA();
  const size_t n = 1027;  // not a multiple of 4: the scalar tail runs too
  const auto a_host = testing::random_floats(n, 3, 0.1f, 2.f), b_host = testing::random_floats(n, 4, 0.1f, 2.f);
  DeviceArray<float> a(a_host), b(b_host), out(n);
  out.poison();
  binary_contiguous(BinaryOp::Mul, int64_t(n), a.get(), b.get(), out.get());
  std::vector<float> want(n);
  for (size_t i = 0; i < n; ++i) want[i] = a_host[i] * b_host[i];
  EXPECT_LE(rel_norm_err(out.download(), want), 1e-7);
  for (UnaryOp op : {UnaryOp::Neg, UnaryOp::Exp, UnaryOp::Log, UnaryOp::Sqrt, UnaryOp::Tanh, UnaryOp::Sigmoid,
                     UnaryOp::Relu, UnaryOp::Abs, UnaryOp::Sign}) {
    for (size_t i = 0; i < n; ++i) {
      const double x = a_host[i] - 1.0;  // negatives too, except where the op needs x > 0
      const double v = (op == UnaryOp::Log || op == UnaryOp::Sqrt) ? a_host[i] : x;
      switch (op) {
        case UnaryOp::Neg: want[i] = float(-v); break;
        case UnaryOp::Exp: want[i] = float(std::exp(v)); break;
        case UnaryOp::Log: want[i] = float(std::log(v)); break;
        case UnaryOp::Sqrt: want[i] = float(std::sqrt(v)); break;
        case UnaryOp::Tanh: want[i] = float(std::tanh(v)); break;
        case UnaryOp::Sigmoid: want[i] = float(1 / (1 + std::exp(-v))); break;
        case UnaryOp::Relu: want[i] = float(std::max(v, 0.0)); break;
        case UnaryOp::Abs: want[i] = float(std::fabs(v)); break;
        case UnaryOp::Sign: want[i] = float((v > 0) - (v < 0)); break;
      }
    }
    std::vector<float> input(n);
    for (size_t i = 0; i < n; ++i) input[i] = (op == UnaryOp::Log || op == UnaryOp::Sqrt) ? a_host[i] : a_host[i] - 1.f;
    DeviceArray<float> in(input);
    out.poison();
    unary(op, int64_t(n), in.get(), out.get());
    EXPECT_LE(rel_norm_err(out.download(), want), 1e-6) << "unary op " << int(op);
  }
}

TEST(CudaReduce, SumMeanMaxOverEachDim) {
  EMBER_REQUIRE_CUDA();
  const int64_t A = 5, B = 37, C = 3;  // reduce over dim 1 (inner 3) and over the last dim (inner 1)
  const auto x_host = testing::random_floats(size_t(A * B * C), 9);
  DeviceArray<float> x(x_host);
  struct View {
    int64_t outer, dim, inner;
  };
  for (View v : {View{A, B, C}, View{A * B, C, 1}, View{1, A * B * C, 1}}) {
    for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max}) {
      std::vector<float> want(size_t(v.outer * v.inner));
      std::vector<int64_t> want_arg(want.size());
      for (int64_t o = 0; o < v.outer; ++o)
        for (int64_t in = 0; in < v.inner; ++in) {
          double sum = 0, best = -INFINITY;
          int64_t arg = 0;
          for (int64_t j = 0; j < v.dim; ++j) {
            const float e = x_host[size_t((o * v.dim + j) * v.inner + in)];
            sum += e;
            if (e > best) best = e, arg = j;
          }
          const size_t k = size_t(o * v.inner + in);
          want[k] = float(op == ReduceOp::Sum ? sum : op == ReduceOp::Mean ? sum / v.dim : best);
          want_arg[k] = arg;
        }
      DeviceArray<float> out(want.size());
      DeviceArray<int64_t> arg(want.size());
      out.poison(), arg.poison();
      reduce_dim(op, v.outer, v.dim, v.inner, x.get(), out.get(), op == ReduceOp::Max ? arg.get() : nullptr);
      EXPECT_LE(rel_norm_err(out.download(), want), 1e-5) << "op " << int(op) << " dim " << v.dim;
      if (op == ReduceOp::Max) {
        EXPECT_EQ(arg.download(), want_arg);
      }
    }
  }
}

TEST(CudaSoftmaxXent, ForwardBackwardWithWeightsAndIgnoreIndex) {
  EMBER_REQUIRE_CUDA();
  const int64_t N = 9, C = 300, ignore = -100;  // C > block size: strided row loops
  const auto logits_host = testing::random_floats(size_t(N * C), 21, -4.f, 4.f);
  const auto weights_host = testing::random_floats(size_t(C), 22, 0.5f, 2.f);
  std::vector<int64_t> targets_host = {3, 299, ignore, 0, 17, 17, 150, ignore, 42};
  // CPU reference in double.
  double total_w = 0, total_loss = 0;
  std::vector<double> lse(N);
  for (int64_t i = 0; i < N; ++i) {
    double m = -INFINITY, s = 0;
    for (int64_t j = 0; j < C; ++j) m = std::max(m, double(logits_host[size_t(i * C + j)]));
    for (int64_t j = 0; j < C; ++j) s += std::exp(logits_host[size_t(i * C + j)] - m);
    lse[size_t(i)] = m + std::log(s);
    const int64_t t = targets_host[size_t(i)];
    if (t == ignore) continue;
    total_w += weights_host[size_t(t)];
    total_loss += weights_host[size_t(t)] * (lse[size_t(i)] - logits_host[size_t(i * C + t)]);
  }
  const float dloss_host = 0.75f;
  std::vector<float> dlogits_ref(size_t(N * C), 0.f);
  for (int64_t i = 0; i < N; ++i) {
    const int64_t t = targets_host[size_t(i)];
    if (t == ignore) continue;
    for (int64_t j = 0; j < C; ++j)
      dlogits_ref[size_t(i * C + j)] = float(dloss_host * weights_host[size_t(t)] / total_w *
                                             (std::exp(logits_host[size_t(i * C + j)] - lse[size_t(i)]) - (j == t)));
  }
  DeviceArray<float> logits(logits_host), weights(weights_host), loss(1), row_loss{size_t(N)}, row_lse{size_t(N)},
      tw(1), dloss(std::vector<float>{dloss_host});
  DeviceArray<int64_t> targets(targets_host);
  DeviceArray<float> dlogits(size_t(N * C));
  loss.poison(), row_loss.poison(), row_lse.poison(), tw.poison(), dlogits.poison();
  XentArgs a;
  a.N = N, a.C = C, a.ignore_index = ignore;
  softmax_xent_forward(a, logits.get(), targets.get(), weights.get(), row_loss.get(), loss.get(), row_lse.get(), tw.get());
  softmax_xent_backward(a, logits.get(), targets.get(), weights.get(), row_lse.get(), tw.get(), dloss.get(), dlogits.get());
  EXPECT_NEAR(loss.download()[0], total_loss / total_w, 1e-5 * std::abs(total_loss / total_w));
  EXPECT_NEAR(tw.download()[0], total_w, 1e-5 * total_w);
  EXPECT_LE(rel_norm_err(dlogits.download(), dlogits_ref), 1e-5);
  // A label outside [0, C) that is not ignore_index is an error naming the class count.
  targets.upload({3, 300, ignore, 0, 17, 17, 150, ignore, 42});
  EXPECT_THROW(
      softmax_xent_forward(a, logits.get(), targets.get(), nullptr, row_loss.get(), loss.get(), row_lse.get(), tw.get()),
      std::runtime_error);
}

TEST(CudaDropout, MaskMatchesCpuPhiloxMapping) {
  EMBER_REQUIRE_CUDA();
  const int64_t n = 10003;
  const float p = 0.3f;
  const uint64_t seed = 0xdeadbeefcafeull, offset = 12345;
  const auto x_host = testing::random_floats(size_t(n), 31);
  DeviceArray<float> x(x_host), y{size_t(n)}, dx{size_t(n)};
  DeviceArray<uint8_t> mask{size_t(n)};
  y.poison(), dx.poison(), mask.poison();
  dropout_forward(n, p, seed, offset, x.get(), y.get(), mask.get());
  dropout_backward(n, p, mask.get(), x.get(), dx.get());  // dy = x
  const auto y_host = y.download(), dx_host = dx.download();
  const auto mask_host = mask.download();
  int64_t kept = 0;
  for (int64_t i = 0; i < n; ++i) {
    const bool keep = philox_dropout_keep(philox_bits(seed, offset, uint64_t(i)), p);
    ASSERT_EQ(mask_host[size_t(i)], keep ? 1 : 0) << "element " << i;
    const float want = keep ? x_host[size_t(i)] / (1.f - p) : 0.f;
    ASSERT_NEAR(y_host[size_t(i)], want, 1e-6f);
    ASSERT_NEAR(dx_host[size_t(i)], want, 1e-6f);
    kept += keep;
  }
  EXPECT_NEAR(double(kept) / n, 1.0 - p, 0.02);
}

TEST(CudaOptimizer, FusedSgdAndAdamWMatchPerElementLoops) {
  EMBER_REQUIRE_CUDA();
  const std::vector<int64_t> sizes = {1, 16384, 40000, 7};  // chunk edges and tiny tensors
  std::vector<std::vector<float>> p, g, s0, s1;
  for (size_t t = 0; t < sizes.size(); ++t) {
    p.push_back(testing::random_floats(size_t(sizes[t]), 40 + uint32_t(t)));
    g.push_back(testing::random_floats(size_t(sizes[t]), 50 + uint32_t(t)));
    s0.push_back(testing::random_floats(size_t(sizes[t]), 60 + uint32_t(t)));
    s1.push_back(testing::random_floats(size_t(sizes[t]), 70 + uint32_t(t), 0.f, 1.f));
  }
  auto run = [&](bool adam) {
    std::vector<std::unique_ptr<DeviceArray<float>>> dp, dg, d0, d1;
    std::vector<float*> pp, p0, p1;
    std::vector<const float*> pg;
    for (size_t t = 0; t < sizes.size(); ++t) {
      dp.push_back(std::make_unique<DeviceArray<float>>(p[t])), pp.push_back(dp.back()->get());
      dg.push_back(std::make_unique<DeviceArray<float>>(g[t])), pg.push_back(dg.back()->get());
      d0.push_back(std::make_unique<DeviceArray<float>>(s0[t])), p0.push_back(d0.back()->get());
      d1.push_back(std::make_unique<DeviceArray<float>>(s1[t])), p1.push_back(d1.back()->get());
    }
    SgdArgs sgd;
    sgd.lr = 0.1f, sgd.momentum = 0.9f, sgd.weight_decay = 1e-2f, sgd.nesterov = true;
    AdamWArgs adamw;
    adamw.step = 3;
    if (adam) adamw_step(adamw, int(sizes.size()), pp.data(), pg.data(), p0.data(), p1.data(), sizes.data());
    else sgd_step(sgd, int(sizes.size()), pp.data(), pg.data(), p0.data(), sizes.data());
    for (size_t t = 0; t < sizes.size(); ++t) {
      std::vector<float> want_p(p[t]), want_s0(s0[t]), want_s1(s1[t]);
      for (size_t i = 0; i < want_p.size(); ++i) {
        if (adam) {
          const double bc1 = 1 - std::pow(0.9, 3), bc2 = 1 - std::pow(0.999, 3);
          double pi = p[t][i] * (1 - 1e-3 * 1e-2);
          const double m = 0.9 * s0[t][i] + 0.1 * g[t][i], v = 0.999 * s1[t][i] + 0.001 * g[t][i] * g[t][i];
          pi -= 1e-3 * (m / bc1) / (std::sqrt(v / bc2) + 1e-8);
          want_p[i] = float(pi), want_s0[i] = float(m), want_s1[i] = float(v);
        } else {
          const double gi = g[t][i] + 1e-2 * p[t][i], buf = 0.9 * s0[t][i] + gi;
          want_p[i] = float(p[t][i] - 0.1 * (gi + 0.9 * buf)), want_s0[i] = float(buf);
        }
      }
      EXPECT_LE(rel_norm_err(dp[t]->download(), want_p), 1e-6) << (adam ? "adamw" : "sgd") << " tensor " << t;
      EXPECT_LE(rel_norm_err(d0[t]->download(), want_s0), 1e-6);
      if (adam) {
        EXPECT_LE(rel_norm_err(d1[t]->download(), want_s1), 1e-6);
      }
    }
  };
  run(false);
  run(true);
}

TEST(CudaGemm, CublasMatchesCpuReferenceAllTransposes) {
  EMBER_REQUIRE_CUDA();
  const int64_t M = 37, N = 29, K = 53;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      const int64_t lda = ta ? M : K, ldb = tb ? K : N, ldc = N;
      const auto a_host = testing::random_floats(size_t(M * K), 80), b_host = testing::random_floats(size_t(K * N), 81);
      const auto bias_host = testing::random_floats(size_t(N), 82);
      std::vector<float> want(size_t(M * N)), want_bias(size_t(M * N));
      cpu::gemm_ref<float>(ta, tb, M, N, K, 1.f, a_host.data(), lda, b_host.data(), ldb, 0.f, want.data(), ldc);
      for (int64_t i = 0; i < M * N; ++i) want_bias[size_t(i)] = want[size_t(i)] + bias_host[size_t(i % N)];
      DeviceArray<float> a(a_host), b(b_host), bias(bias_host), c(size_t(M * N));
      for (Precision prec : {Precision::FP32, Precision::TF32, Precision::BF16}) {
        SCOPED_TRACE(std::string("ta ") + std::to_string(ta) + " tb " + std::to_string(tb) + " " + precision_name(prec));
        c.poison();
        sgemm(prec, ta, tb, M, N, K, 1.f, a.get(), lda, b.get(), ldb, 0.f, c.get(), ldc);
        EXPECT_LE(rel_norm_err(c.download(), want), testing::tolerance(prec));
        c.poison();
        sgemm_lt_bias(prec, ta, tb, M, N, K, a.get(), lda, b.get(), ldb, bias.get(), c.get(), ldc);
        EXPECT_LE(rel_norm_err(c.download(), want_bias), testing::tolerance(prec));
      }
    }
}

}  // namespace
}  // namespace ember::cuda
