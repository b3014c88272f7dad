// The cost model of `ember explain`: FLOPs, MACs and bytes of one op, from its name and the shapes
// of its inputs and output alone, plus the kernel variant that runs it and a measured FMA peak.
//
// Conventions (also printed by cost_conventions()):
//   * conv2d: MACs = N*K*P*Q*(C/g)*R*S = numel(out) * weight[1] * weight[2] * weight[3]; this is why
//     stride, padding and dilation are not needed: they only change P and Q, which `out` already has.
//   * linear / matmul: MACs = numel(out) * inner dimension.
//   * 1 MAC = 2 FLOPs (a multiply and an add, as a fused multiply-add counts on the hardware).
//     Bias additions are not counted, so FLOPs = 2 * MACs exactly (the usual published numbers,
//     e.g. VGG16's 15.47 GMAC at 224 px, count the same way).
//   * Per-element ops: 1 FLOP per output element (relu, add, mul, dropout's mask multiply, ...).
//   * batch_norm: 4 FLOPs per element to normalise and scale ((x - mean) * invstd * w + b), +3 in
//     training for the batch statistics (sum, square, sum), +1 when it applies the ReLU itself.
//   * max pooling: numel(in) - numel(out) comparisons (exact for non-overlapping windows); average
//     pooling: numel(in) additions. softmax / log_softmax / cross-entropy: ~4 per logit.
//   * Bytes: every defined input (weights included) read once + the output written once, at its dtype
//     size: the least traffic an op can get away with. Views (view, permute, slice, ...) move nothing.
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <set>

#include "apps/driver/explain.h"
#include "kernels/registry.h"

namespace ember::driver {
namespace {

const std::set<std::string> kViews = {"view", "permute", "slice", "expand", "unsqueeze", "squeeze"};
const std::set<std::string> kPerLogit = {"softmax", "log_softmax", "cross_entropy", "binary_cross_entropy_with_logits"};

int64_t in_numel(const std::vector<Tensor>& inputs, size_t i) {
  return i < inputs.size() && inputs[i].defined() ? inputs[i].numel() : 0;
}

}  // namespace

OpCost op_cost(const std::string& op, const Tensor& out, const std::vector<Tensor>& inputs) {
  OpCost c;
  const int64_t n_out = out.defined() ? out.numel() : 0;
  if (kViews.count(op)) {
    c.rule = "view: no data moved";
    return c;
  }
  for (const auto& t : inputs)
    if (t.defined()) c.bytes += int64_t(t.nbytes());
  if (out.defined()) c.bytes += int64_t(out.nbytes());

  if (op == "conv2d" && inputs.size() >= 2 && inputs[1].dim() == 4) {
    const Shape& w = inputs[1].shape();  // [K, C/groups, R, S]
    c.macs = n_out * w[1] * w[2] * w[3];
    c.flops = 2 * c.macs;
    c.rule = "N*K*P*Q*(C/g)*R*S MACs, 2 FLOPs each";
  } else if ((op == "linear" || op == "matmul") && inputs.size() >= 2 && inputs[0].defined()) {
    const Tensor& a = inputs[0];
    c.macs = n_out * a.shape().back();
    c.flops = 2 * c.macs;
    c.rule = "rows*out*in MACs, 2 FLOPs each";
  } else if (op == "batch_norm" || op == "batch_norm_relu") {
    // Training or eval is not visible from shapes; explain runs training, so count the statistics.
    const int64_t per = 4 + 3 + (op == "batch_norm_relu" ? 1 : 0);
    c.flops = per * n_out;
    c.rule = std::to_string(per) + " FLOPs/element (normalise 4, batch stats 3" +
             (op == "batch_norm_relu" ? ", relu 1)" : ")");
  } else if (op == "max_pool2d") {
    c.flops = in_numel(inputs, 0) - n_out;
    c.rule = "in - out comparisons";
  } else if (op == "avg_pool2d" || op == "adaptive_avg_pool2d") {
    c.flops = in_numel(inputs, 0);
    c.rule = "1 add per input element";
  } else if (kPerLogit.count(op)) {
    c.flops = 4 * in_numel(inputs, 0);
    c.rule = "~4 FLOPs per logit";
  } else if (op == "clone" || op == "to_dtype" || op == "to_device" || op == "concat" || op == "pad2d") {
    c.rule = "copy: bytes only";
  } else if (op == "sum" || op == "max" || op == "mse_loss" || op == "l1_loss" || op == "smooth_l1_loss") {
    c.flops = in_numel(inputs, 0);
    c.rule = "1 FLOP per input element";
  } else {
    c.flops = n_out;
    c.rule = "1 FLOP per output element";
  }
  return c;
}

std::string kernel_for_op(const std::string& op, bool backward) {
  auto with = [](const std::string& table) { return table + "=" + kernels::active_variant(table); };
  if (op == "conv2d") return backward ? with("conv2d_bwd_data") + " " + with("conv2d_bwd_weight") : with("conv2d_fwd");
  if (op == "linear" || op == "matmul") return with("gemm");
  if (op == "max_pool2d" || op == "avg_pool2d" || op == "adaptive_avg_pool2d") return with(op);
  if (op == "batch_norm" || op == "batch_norm_relu") return with("batchnorm");
  return "-";  // a plain loop in engine/ops (engine/strided.h), no variants
}

std::string cost_conventions() {
  return "conv2d: MACs = N*K*P*Q*(C/g)*R*S; linear/matmul: MACs = rows*out*in; FLOPs = 2*MACs (bias adds not "
         "counted)\n"
         "elementwise: 1 FLOP/element; batch_norm: 7/element in training (+1 fused relu); max pool: in-out "
         "comparisons; avg pool: in adds; softmax/cross-entropy: ~4/logit\n"
         "bytes = each input (weights included) read once + output written once; views move 0 bytes\n"
         "op time = wall time since the previous op finished (ops run back to back on one thread)\n"
         "backward FLOPs: conv/linear/matmul 2*MACs per input that gets a gradient; other ops as their forward";
}

namespace {
// Ten independent FMA chains hide the FMA latency on two pipes; all in registers, no memory traffic.
__attribute__((target("avx2,fma"))) float fma_chains(int64_t iters) {
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  __m256 c0 = _mm256_set1_ps(0.f), c1 = _mm256_set1_ps(.1f), c2 = _mm256_set1_ps(.2f), c3 = _mm256_set1_ps(.3f),
         c4 = _mm256_set1_ps(.4f), c5 = _mm256_set1_ps(.5f), c6 = _mm256_set1_ps(.6f), c7 = _mm256_set1_ps(.7f),
         c8 = _mm256_set1_ps(.8f), c9 = _mm256_set1_ps(.9f);
  for (int64_t i = 0; i < iters; ++i) {
    c0 = _mm256_fmadd_ps(c0, a, b), c1 = _mm256_fmadd_ps(c1, a, b), c2 = _mm256_fmadd_ps(c2, a, b);
    c3 = _mm256_fmadd_ps(c3, a, b), c4 = _mm256_fmadd_ps(c4, a, b), c5 = _mm256_fmadd_ps(c5, a, b);
    c6 = _mm256_fmadd_ps(c6, a, b), c7 = _mm256_fmadd_ps(c7, a, b), c8 = _mm256_fmadd_ps(c8, a, b);
    c9 = _mm256_fmadd_ps(c9, a, b);
  }
  __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(c0, c1), _mm256_add_ps(c2, c3)),
                           _mm256_add_ps(_mm256_add_ps(c4, c5), _mm256_add_ps(c6, c7)));
  return _mm256_cvtss_f32(_mm256_add_ps(s, _mm256_add_ps(c8, c9)));
}
}  // namespace

double measure_peak_gflops() {
  if (!kernels::has_avx2()) return 0;
  const int64_t iters = 1'000'000;
  const double flops_per_iter = 10 * 8 * 2;  // chains x lanes x (mul + add)
  double best = 0;
  // Best of several short runs: on a shared machine contention only ever lowers the number.
  for (int rep = 0; rep < 10; ++rep) {
    volatile float sink = 0;
    const int threads = omp_get_max_threads();
    auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads)
    { sink = sink + fma_chains(iters); }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, threads * iters * flops_per_iter / s);
  }
  return best / 1e9;
}

}  // namespace ember::driver
