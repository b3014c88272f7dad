// CUDA paths of the differentiable ops (see engine/ops/cuda_ops.h): forward and backward side by
// side, like the CPU ops they stand in for. Argument checks stay in the op files; what is checked
// here is only what the GPU path adds (float32, contiguity). Compiles; not yet run on a GPU.
#include "engine/ops/cuda_ops.h"

#include "engine/autograd.h"
#include "engine/error.h"

#ifdef EMBER_WITH_CUDA
#include <cmath>
#include <vector>

#include "engine/ops/cuda_tensor_access.h"
#include "kernels/cuda/cuda_api.h"

namespace ember::cuda_ops {
namespace {

using detail::cf;
using detail::empty_like_cuda;
using detail::mf;

std::vector<float> to_host(const Tensor& t, const char* op) {
  std::vector<float> h(size_t(t.numel()));
  cuda::memcpy_d2h(h.data(), cf(t, op), h.size() * sizeof(float));
  return h;
}
Tensor to_device(const std::vector<float>& h) {
  Tensor t = empty_like_cuda({int64_t(h.size())});
  cuda::memcpy_h2d_async(t.raw_data(), h.data(), h.size() * sizeof(float));
  return t;
}

// Per-channel sums of t[N, C, HW]: over HW, then over N.
Tensor channel_sums(const cuda::BatchNormArgs& a, const Tensor& t, const char* op) {
  Tensor per_nc = empty_like_cuda({a.N * a.C}), per_c = empty_like_cuda({a.C});
  cuda::reduce_dim(cuda::ReduceOp::Sum, a.N * a.C, a.HW, 1, cf(t, op), mf(per_nc, op), nullptr);
  cuda::reduce_dim(cuda::ReduceOp::Sum, 1, a.N, a.C, cf(per_nc, op), mf(per_c, op), nullptr);
  return per_c;
}

// Eval mode: y = relu?(gamma * (x - mean) * invstd + beta) with frozen mean and invstd = 1/sqrt(var + eps),
// a per-channel affine map (fine-tuning a backbone kept in eval mode). With dy' = dy masked by y > 0:
// dx = dy' * gamma * invstd, dbeta = sum dy', dgamma = invstd * sum dy' * (x - mean), sums over N and HW.
// Built from the elementwise and reduction kernels; the C per-channel numbers go through the host.
std::vector<Tensor> batch_norm_eval_backward(const cuda::BatchNormArgs& a, const Tensor& x, const Tensor& w,
                                             const Tensor& y, const Tensor& mean, const Tensor& var, const Tensor& g) {
  const char* op = "batch_norm_backward";
  const int64_t n = x.numel();
  Tensor gm = g;
  if (a.relu) {
    gm = empty_like_cuda(x.shape());
    cuda::relu_backward(n, cf(y, op), cf(g, op), mf(gm, op));
  }
  const std::vector<float> gamma = to_host(w, op), var_h = to_host(var, op);
  std::vector<float> invstd(size_t(a.C)), scale(size_t(a.C));
  for (size_t c = 0; c < invstd.size(); ++c) {
    invstd[c] = 1.f / std::sqrt(var_h[c] + a.eps);
    scale[c] = gamma[c] * invstd[c];
  }
  cuda::BroadcastArgs per_channel;  // [N, C, HW] op [1, C, 1]
  per_channel.ndim = 3;
  per_channel.shape[0] = a.N, per_channel.shape[1] = a.C, per_channel.shape[2] = a.HW;
  per_channel.a_strides[0] = a.C * a.HW, per_channel.a_strides[1] = a.HW, per_channel.a_strides[2] = 1;
  per_channel.b_strides[1] = 1;
  Tensor gx = empty_like_cuda(x.shape()), centred = empty_like_cuda(x.shape()), weighted = empty_like_cuda(x.shape());
  cuda::binary(cuda::BinaryOp::Mul, per_channel, cf(gm, op), cf(to_device(scale), op), mf(gx, op));
  cuda::binary(cuda::BinaryOp::Sub, per_channel, cf(x, op), cf(mean, op), mf(centred, op));
  // Not in place: the kernels take their operands __restrict__.
  cuda::binary_contiguous(cuda::BinaryOp::Mul, n, cf(centred, op), cf(gm, op), mf(weighted, op));
  std::vector<float> gw = to_host(channel_sums(a, weighted, op), op);
  for (size_t c = 0; c < gw.size(); ++c) gw[c] *= invstd[c];
  return {gx, to_device(gw), channel_sums(a, gm, op)};
}

}  // namespace

Tensor conv2d(const Tensor& x_in, const Tensor& w_in, const Tensor& b_in, const cpu::Conv2dShape& s) {
  Tensor x = x_in.detach(), w = w_in.detach(), b = b_in.defined() ? b_in.detach() : Tensor();
  Tensor y = empty_like_cuda({s.N, s.K, s.P(), s.Q()});
  cuda::conv2d_forward(s, cf(x, "conv2d"), cf(w, "conv2d"), b.defined() ? cf(b, "conv2d") : nullptr, mf(y, "conv2d"));
  const bool need_gx = x_in.requires_grad();
  return record("conv2d", y, {x_in, w_in, b_in}, [x, w, s, has_b = b.defined(), need_gx](const Tensor& g) {
    Tensor gx = need_gx ? empty_like_cuda(x.shape()) : Tensor(), gw = empty_like_cuda(w.shape());
    Tensor gb = has_b ? empty_like_cuda({s.K}) : Tensor();
    if (need_gx) cuda::conv2d_backward_data(s, cf(g, "conv2d_backward"), cf(w, "conv2d_backward"), mf(gx, "conv2d_backward"));
    cuda::conv2d_backward_weight(s, cf(x, "conv2d_backward"), cf(g, "conv2d_backward"), mf(gw, "conv2d_backward"),
                                 has_b ? mf(gb, "conv2d_backward") : nullptr);
    return std::vector<Tensor>{gx, gw, gb};
  });
}

Tensor relu(const Tensor& x_in) {
  Tensor y = empty_like_cuda(x_in.shape());
  cuda::unary(cuda::UnaryOp::Relu, x_in.numel(), cf(x_in, "relu"), mf(y, "relu"));
  return record("relu", y, {x_in}, [y = y.detach()](const Tensor& g) {
    Tensor gx = empty_like_cuda(y.shape());
    cuda::relu_backward(y.numel(), cf(y, "relu_backward"), cf(g, "relu_backward"), mf(gx, "relu_backward"));
    return std::vector<Tensor>{gx};
  });
}

namespace {
cuda::Pool2dShape cuda_pool_shape(const cpu::Pool2dShape& cs) {  // the same geometry in the CUDA API's struct
  cuda::Pool2dShape s;
  s.N = cs.N, s.C = cs.C, s.H = cs.H, s.W = cs.W;
  s.kernel_h = cs.kernel_h, s.kernel_w = cs.kernel_w, s.stride_h = cs.stride_h, s.stride_w = cs.stride_w;
  s.pad_h = cs.pad_h, s.pad_w = cs.pad_w;
  s.count_include_pad = cs.count_include_pad;
  return s;
}
}  // namespace

Tensor max_pool2d(const Tensor& x_in, const cpu::Pool2dShape& cs) {
  const cuda::Pool2dShape s = cuda_pool_shape(cs);
  Tensor x = x_in.detach();
  Tensor y = empty_like_cuda({s.N, s.C, s.P(), s.Q()});
  Tensor idx = empty_like_cuda({s.N, s.C, s.P(), s.Q()}, DType::Int64);
  cuda::max_pool2d_forward(s, cf(x, "max_pool2d"), mf(y, "max_pool2d"), static_cast<int64_t*>(idx.raw_data()));
  // cuDNN's backward reads x and y, ember's the indices: keep all three so either variant works.
  return record("max_pool2d", y, {x_in}, [s, x, y = y.detach(), idx](const Tensor& g) {
    Tensor gx = empty_like_cuda(x.shape());
    cuda::max_pool2d_backward(s, cf(x, "max_pool2d_backward"), cf(y, "max_pool2d_backward"), cf(g, "max_pool2d_backward"),
                              static_cast<const int64_t*>(idx.raw_data()), mf(gx, "max_pool2d_backward"));
    return std::vector<Tensor>{gx};
  });
}

Tensor avg_pool2d(const Tensor& x_in, const cpu::Pool2dShape& cs) {
  const cuda::Pool2dShape s = cuda_pool_shape(cs);
  Tensor y = empty_like_cuda({s.N, s.C, s.P(), s.Q()});
  cuda::avg_pool2d_forward(s, cf(x_in, "avg_pool2d"), mf(y, "avg_pool2d"));
  return record("avg_pool2d", y, {x_in}, [s](const Tensor& g) {
    Tensor gx = empty_like_cuda({s.N, s.C, s.H, s.W});
    cuda::avg_pool2d_backward(s, cf(g, "avg_pool2d_backward"), mf(gx, "avg_pool2d_backward"));
    return std::vector<Tensor>{gx};
  });
}

Tensor adaptive_avg_pool2d(const Tensor& x_in, int64_t out_h, int64_t out_w) {
  const int64_t N = x_in.shape()[0], C = x_in.shape()[1], H = x_in.shape()[2], W = x_in.shape()[3];
  if (out_h == H && out_w == W) return x_in;  // every window is one element
  const Tensor x = dense(x_in);
  if (out_h != 1 || out_w != 1) {  // PyTorch's (possibly overlapping) bins; 1x1 below is a plain plane mean
    Tensor y = empty_like_cuda({N, C, out_h, out_w});
    cuda::adaptive_avg_pool2d_forward(N * C, H, W, out_h, out_w, cf(x, "adaptive_avg_pool2d"), mf(y, "adaptive_avg_pool2d"));
    return record("adaptive_avg_pool2d", y, {x_in}, [N, C, H, W, out_h, out_w](const Tensor& g_in) {
      const Tensor g = dense(g_in);
      Tensor gx = empty_like_cuda({N, C, H, W});
      cuda::adaptive_avg_pool2d_backward(N * C, H, W, out_h, out_w, cf(g, "adaptive_avg_pool2d_backward"),
                                         mf(gx, "adaptive_avg_pool2d_backward"));
      return std::vector<Tensor>{gx};
    });
  }
  Tensor y = empty_like_cuda({N, C, 1, 1});
  cuda::global_avg_pool_forward(N, C, H * W, cf(x, "adaptive_avg_pool2d"), mf(y, "adaptive_avg_pool2d"));
  return record("adaptive_avg_pool2d", y, {x_in}, [N, C, H, W](const Tensor& g) {
    Tensor gx = empty_like_cuda({N, C, H, W});
    cuda::global_avg_pool_backward(N, C, H * W, cf(g, "adaptive_avg_pool2d_backward"),
                                   mf(gx, "adaptive_avg_pool2d_backward"));
    return std::vector<Tensor>{gx};
  });
}

// y[N,O] = x[N,I] w[O,I]^T + b: row-major sgemm with B transposed (cuBLAS, EMBER_GEMM_PRECISION).
Tensor linear(const Tensor& x_in, const Tensor& w_in, const Tensor& b_in) {
  Tensor x = x_in.detach(), w = w_in.detach(), b = b_in.defined() ? b_in.detach() : Tensor();
  const int64_t N = x.shape()[0], I = x.shape()[1], O = w.shape()[0];
  Tensor y = empty_like_cuda({N, O});
  const auto prec = cuda::active_gemm_precision();
  cuda::sgemm_lt_bias(prec, false, true, N, O, I, cf(x, "linear"), I, cf(w, "linear"), I,
                      b.defined() ? cf(b, "linear") : nullptr, mf(y, "linear"), O);
  return record("linear", y, {x_in, w_in, b_in}, [x, w, N, I, O, prec, has_b = b.defined()](const Tensor& g) {
    Tensor gx = empty_like_cuda({N, I}), gw = empty_like_cuda({O, I});
    // gx = g w (N x O times O x I); gw = g^T x (O x N times N x I); gb = column sums of g.
    cuda::sgemm(prec, false, false, N, I, O, 1.f, cf(g, "linear_backward"), O, cf(w, "linear_backward"), I, 0.f,
                mf(gx, "linear_backward"), I);
    cuda::sgemm(prec, true, false, O, I, N, 1.f, cf(g, "linear_backward"), O, cf(x, "linear_backward"), I, 0.f,
                mf(gw, "linear_backward"), I);
    Tensor gb;
    if (has_b) {
      gb = empty_like_cuda({O});
      cuda::reduce_dim(cuda::ReduceOp::Sum, 1, N, O, cf(g, "linear_backward"), mf(gb, "linear_backward"), nullptr);
    }
    return std::vector<Tensor>{gx, gw, gb};
  });
}

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const Tensor& a, int64_t lda, const Tensor& b,
          int64_t ldb, double beta, Tensor& c, int64_t ldc) {
  cuda::sgemm(cuda::active_gemm_precision(), trans_a, trans_b, M, N, K, 1.f, detail::strided_f32(a, "matmul"), lda,
              detail::strided_f32(b, "matmul"), ldb, float(beta), mf(c, "matmul"), ldc);
}

// Same Philox stream as the CPU op (kernels/philox.h, 4 values per counter), so masks agree.
Tensor dropout(const Tensor& x_in, double p, Generator& gen) {
  const int64_t n = x_in.numel();
  const uint64_t seed = gen.seed(), offset = gen.reserve(uint64_t(n));
  Tensor y = empty_like_cuda(x_in.shape());
  // One byte per element; ember has no uint8 dtype, so the bytes live in a float32 buffer of n/4.
  Tensor mask = empty_like_cuda({(n + 3) / 4});
  cuda::dropout_forward(n, float(p), seed, offset, cf(x_in, "dropout"), mf(y, "dropout"),
                        static_cast<uint8_t*>(mask.raw_data()));
  return record("dropout", y, {x_in}, [mask, p, n, shape = x_in.shape()](const Tensor& g) {
    Tensor gx = empty_like_cuda(shape);
    cuda::dropout_backward(n, float(p), static_cast<const uint8_t*>(mask.raw_data()), cf(g, "dropout_backward"),
                           mf(gx, "dropout_backward"));
    return std::vector<Tensor>{gx};
  });
}

// Fused softmax + cross-entropy with the CPU op's options (class weights, ignore_index, label
// smoothing, mean / sum / none).
Tensor cross_entropy(const Tensor& logits_in, const Tensor& target, const CrossEntropyOptions& opt) {
  EMBER_CHECK(opt.label_smoothing >= 0 && opt.label_smoothing <= 1, "cross_entropy: label_smoothing=",
              opt.label_smoothing, " must be in [0, 1]");
  EMBER_CHECK(target.device() == Device::CUDA && target.dtype() == DType::Int64,
              "cross_entropy on cuda: target must be an int64 CUDA tensor, got ", target.str());
  const Tensor z = dense(logits_in), t = target.detach().contiguous();
  const Tensor cw = opt.class_weight.defined() ? dense(opt.class_weight) : Tensor();
  cuda::XentArgs a;
  a.N = z.shape()[0], a.C = z.shape()[1], a.ignore_index = opt.ignore_index, a.label_smoothing = float(opt.label_smoothing);
  a.reduction = opt.reduction == Reduction::None  ? cuda::XentReduction::None
                : opt.reduction == Reduction::Sum ? cuda::XentReduction::Sum
                                                  : cuda::XentReduction::Mean;
  // The op checks the weights' shape only on its CPU path; the kernels index them by target.
  EMBER_CHECK(!cw.defined() || (cw.dim() == 1 && cw.shape()[0] == a.C), "cross_entropy on cuda: class_weight ",
              cw.defined() ? cw.str() : "", " must be [C] = [", a.C, "] for logits ", logits_in.str());
  Tensor rows = empty_like_cuda({a.N}), loss = empty_like_cuda({}), lse = empty_like_cuda({a.N}),
         total = empty_like_cuda({});
  const auto* tp = static_cast<const int64_t*>(t.raw_data());
  const float* wp = cw.defined() ? cf(cw, "cross_entropy") : nullptr;
  cuda::softmax_xent_forward(a, cf(z, "cross_entropy"), tp, wp, mf(rows, "cross_entropy"), mf(loss, "cross_entropy"),
                             mf(lse, "cross_entropy"), mf(total, "cross_entropy"));
  const Tensor out = a.reduction == cuda::XentReduction::None ? rows : loss;
  return record("cross_entropy", out, {logits_in}, [z, t, cw, lse, total, a](const Tensor& g_in) {
    const Tensor g = dense(g_in);
    Tensor gz = empty_like_cuda({a.N, a.C});
    cuda::softmax_xent_backward(a, cf(z, "cross_entropy_backward"), static_cast<const int64_t*>(t.raw_data()),
                                cw.defined() ? cf(cw, "cross_entropy_backward") : nullptr,
                                cf(lse, "cross_entropy_backward"), cf(total, "cross_entropy_backward"),
                                cf(g, "cross_entropy_backward"), mf(gz, "cross_entropy_backward"));
    return std::vector<Tensor>{gz};
  });
}

Tensor batch_norm(const Tensor& x_in, const Tensor& weight_in, const Tensor& bias_in, Tensor running_mean,
                  Tensor running_var, bool training, double momentum, double eps, bool fuse_relu) {
  EMBER_CHECK(weight_in.defined() && bias_in.defined(), "batch_norm on cuda: needs weight and bias (affine), input ",
              x_in.str());
  cuda::BatchNormArgs a;
  a.N = x_in.shape()[0], a.C = x_in.shape()[1], a.HW = a.N * a.C == 0 ? 0 : x_in.numel() / (a.N * a.C);
  a.eps = float(eps), a.momentum = float(momentum), a.relu = fuse_relu;
  Tensor x = x_in.detach(), w = weight_in.detach(), b = bias_in.detach();
  Tensor y = empty_like_cuda(x.shape());
  Tensor mean = empty_like_cuda({a.C}), invstd = empty_like_cuda({a.C});
  float* rm = running_mean.defined() ? mf(running_mean, "batch_norm") : nullptr;
  float* rv = running_var.defined() ? mf(running_var, "batch_norm") : nullptr;
  if (!training) {
    EMBER_CHECK(rm && rv, "batch_norm on cuda: eval mode needs running statistics (input ", x_in.str(), ")");
    cuda::batchnorm_forward_eval(a, cf(x, "batch_norm"), cf(w, "batch_norm"), cf(b, "batch_norm"), rm, rv,
                                 mf(y, "batch_norm"));
    if (!grad_enabled() || !(x_in.requires_grad() || weight_in.requires_grad() || bias_in.requires_grad())) return y;
    // A snapshot of the statistics y was normalised with, as on the CPU: an optimiser step may update
    // the running buffers before backward.
    Tensor mean_s = running_mean.detach().clone(), var_s = running_var.detach().clone();
    return record(fuse_relu ? "batch_norm_relu" : "batch_norm", y, {x_in, weight_in, bias_in},
                  [a, x, w, y = fuse_relu ? y.detach() : Tensor(), mean_s, var_s](const Tensor& g) {
                    return batch_norm_eval_backward(a, x, w, y, mean_s, var_s, g);
                  });
  }
  cuda::batchnorm_forward_train(a, cf(x, "batch_norm"), cf(w, "batch_norm"), cf(b, "batch_norm"), mf(y, "batch_norm"),
                                mf(mean, "batch_norm"), mf(invstd, "batch_norm"), rm, rv);
  return record(fuse_relu ? "batch_norm_relu" : "batch_norm", y, {x_in, weight_in, bias_in},
                [a, x, w, y = y.detach(), mean, invstd](const Tensor& g) {
                  Tensor gx = empty_like_cuda(x.shape()), gw = empty_like_cuda({a.C}), gb = empty_like_cuda({a.C});
                  cuda::batchnorm_backward(a, cf(x, "batch_norm_backward"), cf(y, "batch_norm_backward"),
                                           cf(g, "batch_norm_backward"), cf(w, "batch_norm_backward"),
                                           cf(mean, "batch_norm_backward"), cf(invstd, "batch_norm_backward"),
                                           mf(gx, "batch_norm_backward"), mf(gw, "batch_norm_backward"),
                                           mf(gb, "batch_norm_backward"));
                  return std::vector<Tensor>{gx, gw, gb};
                });
}

void add_(Tensor& dst, const Tensor& src, double alpha) {
  cuda::axpby(dst.numel(), float(alpha), cf(src, "add_"), 1.f, mf(dst, "add_"));
}

namespace {
// Device pointers and sizes of parallel tensor lists, as the fused kernels take them.
struct PointerLists {
  std::vector<float*> params, state0, state1;
  std::vector<const float*> grads;
  std::vector<int64_t> sizes;
};
PointerLists pointer_lists(const char* op, const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                           const std::vector<Tensor>& state0, const std::vector<Tensor>& state1) {
  PointerLists l;
  for (size_t i = 0; i < params.size(); ++i) {
    EMBER_CHECK(grads[i].numel() == params[i].numel(), op, " on cuda: parameter ", i, " ", params[i].str(),
                " has gradient ", grads[i].str());
    l.params.push_back(mf(params[i], op));
    l.grads.push_back(cf(grads[i], op));
    l.state0.push_back(i < state0.size() ? mf(state0[i], op) : nullptr);
    l.state1.push_back(i < state1.size() ? mf(state1[i], op) : nullptr);
    l.sizes.push_back(params[i].numel());
  }
  return l;
}
}  // namespace

void sgd_step(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
              const std::vector<Tensor>& momentum_buffers, bool first_step, const SgdHyper& h) {
  cuda::SgdArgs a;
  a.lr = float(h.lr), a.momentum = float(h.momentum), a.dampening = float(h.dampening);
  a.weight_decay = float(h.weight_decay), a.nesterov = h.nesterov, a.first_step = first_step;
  const PointerLists l = pointer_lists("sgd", params, grads, h.momentum != 0.0 ? momentum_buffers : std::vector<Tensor>{}, {});
  cuda::sgd_step(a, int(l.params.size()), l.params.data(), l.grads.data(), h.momentum != 0.0 ? l.state0.data() : nullptr,
                 l.sizes.data());
}

void adamw_step(const std::vector<Tensor>& params, const std::vector<Tensor>& grads, const std::vector<Tensor>& exp_avg,
                const std::vector<Tensor>& exp_avg_sq, const AdamWHyper& h) {
  cuda::AdamWArgs a;
  a.lr = float(h.lr), a.beta1 = float(h.beta1), a.beta2 = float(h.beta2), a.eps = float(h.eps);
  a.weight_decay = float(h.weight_decay), a.step = h.step;
  const PointerLists l = pointer_lists("adamw", params, grads, exp_avg, exp_avg_sq);
  cuda::adamw_step(a, int(l.params.size()), l.params.data(), l.grads.data(), l.state0.data(), l.state1.data(),
                   l.sizes.data());
}

}  // namespace ember::cuda_ops

#else  // no CUDA in this build: no tensor can be on the GPU, so nothing below is reachable.

namespace ember::cuda_ops {
namespace detail {
void unreachable(const char* op) {
  throw Error(std::string(op) + ": a CUDA tensor in a build without CUDA (rebuild with -DEMBER_CUDA=ON)");
}
}  // namespace detail
using detail::unreachable;
Tensor conv2d(const Tensor&, const Tensor&, const Tensor&, const cpu::Conv2dShape&) { unreachable("conv2d"); }
Tensor relu(const Tensor&) { unreachable("relu"); }
Tensor max_pool2d(const Tensor&, const cpu::Pool2dShape&) { unreachable("max_pool2d"); }
Tensor avg_pool2d(const Tensor&, const cpu::Pool2dShape&) { unreachable("avg_pool2d"); }
Tensor adaptive_avg_pool2d(const Tensor&, int64_t, int64_t) { unreachable("adaptive_avg_pool2d"); }
Tensor linear(const Tensor&, const Tensor&, const Tensor&) { unreachable("linear"); }
void gemm(bool, bool, int64_t, int64_t, int64_t, const Tensor&, int64_t, const Tensor&, int64_t, double, Tensor&, int64_t) {
  unreachable("matmul");
}
Tensor dropout(const Tensor&, double, Generator&) { unreachable("dropout"); }
Tensor cross_entropy(const Tensor&, const Tensor&, const CrossEntropyOptions&) { unreachable("cross_entropy"); }
Tensor batch_norm(const Tensor&, const Tensor&, const Tensor&, Tensor, Tensor, bool, double, double, bool) {
  unreachable("batch_norm");
}
void add_(Tensor&, const Tensor&, double) { unreachable("add_"); }
void sgd_step(const std::vector<Tensor>&, const std::vector<Tensor>&, const std::vector<Tensor>&, bool, const SgdHyper&) {
  unreachable("sgd");
}
void adamw_step(const std::vector<Tensor>&, const std::vector<Tensor>&, const std::vector<Tensor>&,
                const std::vector<Tensor>&, const AdamWHyper&) {
  unreachable("adamw");
}
}  // namespace ember::cuda_ops

#endif
