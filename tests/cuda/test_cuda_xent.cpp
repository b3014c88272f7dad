// The fused softmax + cross-entropy kernels' options (softmax_xent.cu: class weights, ignore_index,
// label smoothing, mean / sum / none): their per-row formulas on the host against the CPU op
// (engine/ops/loss.cpp, float64), and with a device the GPU op against the CPU op through autograd.
// The host test needs no GPU; the device test skips without one (written in a session without a GPU).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/ops.h"
#include "engine/rng.h"
#include "tests/cuda/cuda_test_util.h"

namespace ember {
namespace {

constexpr int64_t kN = 7, kC = 5, kIgnore = -100;
const std::vector<int64_t> kTargets = {2, 0, kIgnore, 4, 4, 1, 3};

struct Case {
  bool weighted;
  double smoothing;
  Reduction reduction;
  std::string name() const {
    return std::string(weighted ? "weighted" : "unweighted") + " eps " + std::to_string(smoothing) + " reduction " +
           (reduction == Reduction::Mean ? "mean" : reduction == Reduction::Sum ? "sum" : "none");
  }
};
std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (bool weighted : {false, true})
    for (double eps : {0.0, 0.2})
      for (Reduction r : {Reduction::Mean, Reduction::Sum, Reduction::None}) cases.push_back({weighted, eps, r});
  return cases;
}

CrossEntropyOptions options(const Case& c, const Tensor& weights) {
  CrossEntropyOptions o;
  o.ignore_index = kIgnore;
  o.label_smoothing = c.smoothing;
  o.reduction = c.reduction;
  if (c.weighted) o.class_weight = weights;
  return o;
}

std::vector<double> as_double(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }

void expect_close(const std::vector<double>& got, const std::vector<double>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 2e-5 * (1 + std::abs(want[i]))) << what << " [" << i << "]";
}

TEST(CudaSoftmaxXentHost, EmulatedOptionsMatchTheCpuOp) {
  Generator gen(61);
  const Tensor logits = Tensor::normal({kN, kC}, 0, 2, gen, DType::Float64);
  const Tensor weights = Tensor::uniform({kC}, 0.5, 2, gen, DType::Float64);
  const Tensor target = Tensor::from_vector(kTargets, {kN});
  for (const Case& c : all_cases()) {
    SCOPED_TRACE(c.name());
    // CPU op in float64, with an incoming gradient: [N] for none, a scalar otherwise.
    Tensor leaf = logits.detach();
    leaf.requires_grad_();
    const Tensor loss = cross_entropy(leaf, target, options(c, weights));
    const Tensor g = c.reduction == Reduction::None ? Tensor::uniform({kN}, -1, 1, gen, DType::Float64)
                                                    : Tensor::scalar(0.75, DType::Float64);
    loss.backward(g);
    // The kernels' formulas on float copies.
    cuda::XentArgs a;
    a.N = kN, a.C = kC, a.ignore_index = kIgnore, a.label_smoothing = float(c.smoothing);
    a.reduction = c.reduction == Reduction::None  ? cuda::XentReduction::None
                  : c.reduction == Reduction::Sum ? cuda::XentReduction::Sum
                                                  : cuda::XentReduction::Mean;
    const auto x = logits.to_vector<float>(), w = weights.to_vector<float>(), dl = g.to_vector<float>();
    std::vector<float> rows(kN), scalar(1), dx(kN * kC);
    cuda::host_emulate_softmax_xent(a, x.data(), kTargets.data(), c.weighted ? w.data() : nullptr, dl.data(), rows.data(),
                                    scalar.data(), dx.data());
    expect_close(c.reduction == Reduction::None ? as_double(rows) : as_double(scalar), loss.to_vector<double>(), "loss");
    expect_close(as_double(dx), leaf.grad().to_vector<double>(), "gradient");
  }
}

TEST(CudaSoftmaxXent, OptionsMatchTheCpuOpThroughAutograd) {
  EMBER_REQUIRE_CUDA();
  Generator gen(62);
  const Tensor logits = Tensor::normal({kN, kC}, 0, 2, gen), weights = Tensor::uniform({kC}, 0.5, 2, gen);
  const Tensor target = Tensor::from_vector(kTargets, {kN});
  for (const Case& c : all_cases()) {
    SCOPED_TRACE(c.name());
    Tensor out[2], grad[2];
    const Tensor g = c.reduction == Reduction::None ? Tensor::uniform({kN}, -1, 1, gen) : Tensor::scalar(0.75);
    for (int d = 0; d < 2; ++d) {
      const Device dev = d == 0 ? Device::CPU : Device::CUDA;
      Tensor leaf = logits.to(dev).detach();
      leaf.requires_grad_();
      out[d] = cross_entropy(leaf, target.to(dev), options(c, weights.to(dev)));
      out[d].backward(g.to(dev));
      grad[d] = leaf.grad();
    }
    EXPECT_EQ(out[1].shape(), out[0].shape());
    expect_close(out[1].to(Device::CPU).to_vector<double>(), out[0].to_vector<double>(), "loss");
    expect_close(grad[1].to(Device::CPU).to_vector<double>(), grad[0].to_vector<double>(), "gradient");
  }
}

}  // namespace
}  // namespace ember
