// `ember explain` (apps/driver/explain.h): the costs it reports must equal counts derived here from
// the layer definitions (not from explain's own formulas), and its training step must be the real one.
#include <gtest/gtest.h>

#include <cmath>

#include "apps/driver/explain.h"
#include "engine/ops.h"
#include "engine/storage.h"
#include "nn/layers.h"

namespace ember::driver {
namespace {

// Output size of a convolution along one axis.
int64_t conv_out(int64_t in, int64_t k, int64_t stride, int64_t pad) { return (in + 2 * pad - k) / stride + 1; }

TEST(ExplainCost, GroupedStridedConvLayerMatchesAnalyticCount) {
  const int64_t N = 2, C = 4, H = 9, W = 11, K = 6, R = 3, S = 3, stride = 2, pad = 1, groups = 2;
  nn::Conv2d conv(C, K, R, nn::Conv2dArgs{.stride = stride, .padding = pad, .groups = groups});
  Tensor x = Tensor::ones({N, C, H, W});
  auto ops = trace_forward([&] { conv(x); });
  ASSERT_EQ(ops.size(), 1u);
  const ForwardOp& op = ops[0];
  EXPECT_EQ(op.op, "conv2d");
  EXPECT_EQ(op.module, "Conv2d");
  const int64_t P = conv_out(H, R, stride, pad), Q = conv_out(W, S, stride, pad);
  const int64_t macs = N * K * P * Q * (C / groups) * R * S;  // N*K*P*Q*(C/g)*R*S
  EXPECT_EQ(op.cost.macs, macs);
  EXPECT_EQ(op.cost.flops, 2 * macs);
  EXPECT_EQ(op.output_shape, (Shape{N, K, P, Q}));
  const int64_t elems = N * C * H * W + K * (C / groups) * R * S + K + N * K * P * Q;
  EXPECT_EQ(op.cost.bytes, elems * 4);  // float32: input, weight, bias read once, output written once
  EXPECT_NE(op.kernel.find("conv2d_fwd="), std::string::npos) << op.kernel;
}

TEST(ExplainCost, LinearAndViewsFollowTheConventions) {
  nn::Linear fc(5, 3);
  Tensor x = Tensor::ones({7, 5});
  auto ops = trace_forward([&] { fc(x).view({21}); });
  ASSERT_GE(ops.size(), 2u);
  const ForwardOp& lin = ops[ops.size() - 2];
  EXPECT_EQ(lin.op, "linear");
  EXPECT_EQ(lin.module, "Linear");
  EXPECT_EQ(lin.cost.macs, 7 * 3 * 5);
  EXPECT_EQ(lin.cost.bytes, (7 * 5 + 3 * 5 + 3 + 7 * 3) * 4);
  for (size_t i = 0; i + 2 < ops.size(); ++i) {  // bookkeeping inside Linear (its weight transpose view)
    EXPECT_EQ(ops[i].module, "Linear") << ops[i].op;
    EXPECT_EQ(ops[i].cost.flops, 0) << ops[i].op;
  }
  EXPECT_EQ(ops.back().op, "view");
  EXPECT_EQ(ops.back().module, "");  // called outside any module
  EXPECT_EQ(ops.back().cost.bytes, 0);  // a view moves no data
  EXPECT_EQ(ops.back().cost.flops, 0);
}

// VGG16 (torchvision cfg D) at 224 px, batch 1: 13 3x3 convs (padding 1) and 3 FCs.
int64_t vgg16_macs_224() {
  const int64_t plan[] = {64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0};
  int64_t macs = 0, c = 3, hw = 224;
  for (int64_t k : plan) {
    if (k == 0) {
      hw /= 2;
      continue;
    }
    macs += k * hw * hw * c * 9;
    c = k;
  }
  return macs + 512 * 7 * 7 * 4096 + 4096 * 4096 + 4096 * 1000;
}

TEST(ExplainRun, Vgg16ForwardAt224IsThe15_47GMacNetwork) {
  ExplainOptions o;
  o.model = "vgg16";
  o.image_size = 224;
  o.batch = 1;
  o.num_classes = 1000;  // ImageNet's head, as in the published count
  o.forward_only = true;
  o.warmup = false;  // one forward is enough to count
  o.peak_gflops = 100;  // skip the peak measurement
  ExplainResult r = run_explain(o);
  EXPECT_EQ(r.totals.forward_macs, vgg16_macs_224());
  EXPECT_EQ(r.totals.forward_flops - 2 * r.totals.forward_macs, [&] {
    int64_t other = 0;  // FLOPs of ops that are not multiply-adds
    for (const auto& f : r.forward) other += f.cost.flops - 2 * f.cost.macs;
    return other;
  }());
  EXPECT_NEAR(double(vgg16_macs_224()) / 1e9, 15.47, 0.005);
  int convs = 0, fcs = 0;
  for (const auto& f : r.forward) {
    convs += f.op == "conv2d";
    fcs += f.op == "linear";
  }
  EXPECT_EQ(convs, 13);
  EXPECT_EQ(fcs, 3);
  EXPECT_TRUE(r.backward.empty());
}

// One training step of the small CNN at 16 px, batch 2 (the smallest BatchNorm accepts).
ExplainOptions small_cnn_step() {
  ExplainOptions o;
  o.model = "cnn";
  o.image_size = 16;
  o.batch = 2;
  o.peak_gflops = 100;
  return o;
}

TEST(ExplainRun, CnnTrainingStepReportsEveryStage) {
  ExplainOptions o = small_cnn_step();
  o.lr = 0.05;
  ExplainResult r = run_explain(o);

  // Data path: decoded 48x48 synthetic PNG -> resized -> normalised [3, 16, 16].
  ASSERT_GE(r.data.size(), 4u);
  EXPECT_EQ(r.data[1].name, "decoded");
  EXPECT_EQ(r.data[1].shape, (Shape{48, 48, 3}));
  EXPECT_EQ(r.data[2].shape, (Shape{16, 16, 3}));
  EXPECT_EQ(r.data[3].shape, (Shape{3, 16, 16}));
  EXPECT_LE(r.data[1].max, 255);

  // SmallCNN channels {16, 32, 64}: 3x3 convs, padding 1, each followed by a 2x2 max pool.
  const int64_t chans[] = {3, 16, 32, 64};
  int conv = 0;
  for (const auto& f : r.forward) {
    if (f.op != "conv2d") continue;
    const int64_t hw = 16 >> conv;
    EXPECT_EQ(f.cost.macs, 2 * chans[conv + 1] * hw * hw * chans[conv] * 9) << f.layer;
    EXPECT_EQ(f.layer, "features." + std::to_string(conv) + ".0");
    ++conv;
  }
  EXPECT_EQ(conv, 3);
  EXPECT_EQ(r.forward.back().layer, "(loss)");

  // Backward: every conv node hands a gradient to its weight; the first does not need dL/dimage.
  int conv_nodes = 0;
  for (const auto& b : r.backward) {
    if (b.op != "conv2d") continue;
    ++conv_nodes;
    const bool has_input_grad = b.gradients.front().rfind("input 0", 0) == 0;
    EXPECT_EQ(has_input_grad, b.layer != "features.0.0") << b.layer;
  }
  EXPECT_EQ(conv_nodes, 3);

  // SGD with momentum, first step: the momentum buffer starts as the gradient, so dw = lr * grad.
  ASSERT_FALSE(r.updates.empty());
  for (const auto& u : r.updates) EXPECT_NEAR(u.step_norm, o.lr * u.grad_norm, 1e-4 * u.step_norm + 1e-7) << u.name;

  auto j = explain_json(r);
  EXPECT_EQ(j["forward"].size(), r.forward.size());
  EXPECT_EQ(j["totals"]["forward_flops"].get<int64_t>(), r.totals.forward_flops);
}

TEST(ExplainRun, FrozenBackboneUpdatesOnlyTheHead) {
  ExplainOptions o = small_cnn_step();
  o.freeze = "features";
  ExplainResult r = run_explain(o);
  ASSERT_FALSE(r.updates.empty());
  for (const auto& u : r.updates) EXPECT_EQ(u.name.rfind("features", 0), std::string::npos) << u.name;
  for (const auto& b : r.backward) EXPECT_NE(b.op, "conv2d");  // no gradient flows into the frozen trunk
}

// --device cuda: without a device, a clear error; with one (written in a session without a GPU), the
// same step on the GPU: every forward op runs there, and the loss and the parameter updates match
// the CPU run's (same weights, same batch, fp32 GEMMs and convolutions).
TEST(ExplainRun, CudaDeviceMatchesTheCpuStepOrSaysWhyNot) {
  ExplainOptions o = small_cnn_step();
  o.device = "cuda";
  if (ember::cuda_backend() == nullptr) {
    try {
      run_explain(o);
      FAIL() << "explain --device cuda ran without a device";
    } catch (const std::exception& e) {
      EXPECT_NE(std::string(e.what()).find("explain --device cuda: CUDA is not available"), std::string::npos) << e.what();
    }
    return;
  }
  const ExplainResult gpu = run_explain(o);
  o.device = "cpu";
  const ExplainResult cpu = run_explain(o);
  for (const auto& f : gpu.forward) EXPECT_EQ(f.device, "cuda") << f.index << " " << f.op;
  EXPECT_NEAR(gpu.loss, cpu.loss, 1e-5 * std::abs(cpu.loss));
  ASSERT_EQ(gpu.updates.size(), cpu.updates.size());
  for (size_t i = 0; i < cpu.updates.size(); ++i)
    EXPECT_NEAR(gpu.updates[i].step_norm, cpu.updates[i].step_norm, 1e-4 * cpu.updates[i].step_norm + 1e-8)
        << cpu.updates[i].name;
}

TEST(ExplainRun, UnknownModelIsAnErrorNamingIt) {
  ExplainOptions o;
  o.model = "resnet";
  try {
    run_explain(o);
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("resnet"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ember::driver
