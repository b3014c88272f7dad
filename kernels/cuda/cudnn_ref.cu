// cuDNN baselines for conv, pooling and batch norm (variant "cudnn" of the ops "conv", "pool",
// "bn"). Used as the reference in tests and the speed baseline in benchmarks. Algorithms come
// from cuDNN's heuristics (the _v7 queries: what PyTorch uses with benchmark=False): the first one
// they report usable, cached per shape, pass and precision. BF16 converts the float tensors to bf16
// copies first, since cuDNN computes in the storage type (conv2d_stored skips that, for timing);
// FP32 forbids tensor cores (CUDNN_FMA_MATH), TF32 allows them (DEFAULT_MATH).
#include "kernels/cuda/variants.h"

#if EMBER_HAVE_CUDNN
#include <cudnn.h>

#include <array>
#include <map>
#include <mutex>
#include <string>

#include "kernels/cuda/conv2d_gemm.cuh"
#include "kernels/cuda/cudnn_util.h"

namespace ember::cuda::cudnn_ref {

bool compiled_in() { return true; }

namespace {

// Descriptors for one conv call, built in the precision's storage type.
struct ConvDescs {
  TensorDesc x, y;
  FilterDesc w;
  ConvDesc conv;
  ConvDescs(const Conv2dShape& s, Precision prec) {
    const cudnnDataType_t t = prec == Precision::BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
    x.set(t, s.N, s.C, s.H, s.W);
    y.set(t, s.N, s.K, s.P(), s.Q());
    w.set(t, s.K, s.C / s.groups, s.R, s.S);
    conv.set(s, prec);
  }
};

// The heuristics' pick for a shape, pass and precision, queried once: `query(perf, &found)` fills
// cuDNN's ranked list, which may include algorithms it reports as not usable (status != SUCCESS).
template <class Perf, class Query>
auto cached_algo(const Conv2dShape& s, Precision prec, int pass, const char* what, Query query) {
  using Algo = decltype(Perf{}.algo);
  using Key = std::array<int64_t, 16>;
  static std::mutex mutex;
  static std::map<Key, Algo> cache;
  const Key key{s.N, s.C, s.H, s.W, s.K, s.R, s.S, s.stride_h, s.stride_w, s.pad_h, s.pad_w, s.dil_h, s.dil_w,
                s.groups, int64_t(prec), pass};
  std::lock_guard<std::mutex> lock(mutex);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  static_assert(CUDNN_CONVOLUTION_FWD_ALGO_COUNT <= 16 && CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT <= 16 &&
                CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT <= 16);
  Perf perf[16];
  int found = 0;
  query(perf, &found);
  for (int i = 0; i < found; ++i)
    if (perf[i].status == CUDNN_STATUS_SUCCESS) return cache[key] = perf[i].algo;
  throw_error(std::string("cudnn ") + what + ": no usable algorithm among " + std::to_string(found), __FILE__, __LINE__);
}

// float <-> bf16 staging for Precision::BF16 (inputs converted in, the output converted back).
struct Bf16Copy {
  DeviceScratch<uint16_t> buffer;
  int64_t count;
  Bf16Copy(int64_t n, const float* src) : buffer(n), count(n) {
    if (src) float_to_bf16(n, src, buffer.get());
  }
  void* ptr() const { return buffer.get(); }
  void to_float(float* dst) const { bf16_to_float(count, buffer.get(), dst); }
};

// The three convolutions on tensors in the precision's storage type (bf16 bits for BF16, float
// otherwise): the heuristics' algorithm, its workspace, one cuDNN call.
void forward_stored(Precision prec, const Conv2dShape& s, const void* x, const void* w, void* y) {
  ConvDescs d(s, prec);
  const auto algo = cached_algo<cudnnConvolutionFwdAlgoPerf_t>(s, prec, 0, "conv forward", [&](auto* perf, int* found) {
    EMBER_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(handle(), d.x.get(), d.w.get(), d.conv.get(), d.y.get(),
                                                             CUDNN_CONVOLUTION_FWD_ALGO_COUNT, found, perf));
  });
  size_t ws_bytes = 0;
  EMBER_CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(handle(), d.x.get(), d.w.get(), d.conv.get(), d.y.get(),
                                                            algo, &ws_bytes));
  DeviceScratch<unsigned char> ws{int64_t(ws_bytes)};
  const float one = 1.f, zero = 0.f;
  EMBER_CUDNN_CHECK(cudnnConvolutionForward(handle(), &one, d.x.get(), x, d.w.get(), w, d.conv.get(), algo, ws.get(),
                                            ws_bytes, &zero, d.y.get(), y));
}

void backward_data_stored(Precision prec, const Conv2dShape& s, const void* dy, const void* w, void* dx) {
  ConvDescs d(s, prec);
  const auto algo =
      cached_algo<cudnnConvolutionBwdDataAlgoPerf_t>(s, prec, 1, "conv backward data", [&](auto* perf, int* found) {
        EMBER_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(handle(), d.w.get(), d.y.get(), d.conv.get(),
                                                                      d.x.get(), CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
                                                                      found, perf));
      });
  size_t ws_bytes = 0;
  EMBER_CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(handle(), d.w.get(), d.y.get(), d.conv.get(),
                                                                 d.x.get(), algo, &ws_bytes));
  DeviceScratch<unsigned char> ws{int64_t(ws_bytes)};
  const float one = 1.f, zero = 0.f;
  EMBER_CUDNN_CHECK(cudnnConvolutionBackwardData(handle(), &one, d.w.get(), w, d.y.get(), dy, d.conv.get(), algo,
                                                 ws.get(), ws_bytes, &zero, d.x.get(), dx));
}

void backward_weight_stored(Precision prec, const Conv2dShape& s, const void* x, const void* dy, void* dw) {
  ConvDescs d(s, prec);
  const auto algo =
      cached_algo<cudnnConvolutionBwdFilterAlgoPerf_t>(s, prec, 2, "conv backward weight", [&](auto* perf, int* found) {
        EMBER_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
            handle(), d.x.get(), d.y.get(), d.conv.get(), d.w.get(), CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, found,
            perf));
      });
  size_t ws_bytes = 0;
  EMBER_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(handle(), d.x.get(), d.y.get(), d.conv.get(),
                                                                   d.w.get(), algo, &ws_bytes));
  DeviceScratch<unsigned char> ws{int64_t(ws_bytes)};
  const float one = 1.f, zero = 0.f;
  EMBER_CUDNN_CHECK(cudnnConvolutionBackwardFilter(handle(), &one, d.x.get(), x, d.y.get(), dy, d.conv.get(), algo,
                                                   ws.get(), ws_bytes, &zero, d.w.get(), dw));
}

int64_t x_count(const Conv2dShape& s) { return s.N * s.C * s.H * s.W; }
int64_t w_count(const Conv2dShape& s) { return s.K * (s.C / s.groups) * s.R * s.S; }
int64_t y_count(const Conv2dShape& s) { return s.N * s.K * s.P() * s.Q(); }

}  // namespace

// Float tensors: for BF16 converted to bf16 copies first and the result converted back, since cuDNN
// computes in the storage type (conv2d_stored times cuDNN alone).
void conv2d_forward(Precision prec, const Conv2dShape& s, const float* x, const float* w, const float* bias, float* y) {
  conv::make_geom(s, "forward (cudnn)");
  if (prec == Precision::BF16) {
    Bf16Copy xb(x_count(s), x), wb(w_count(s), w), yb(y_count(s), nullptr);
    forward_stored(prec, s, xb.ptr(), wb.ptr(), yb.ptr());
    yb.to_float(y);
  } else {
    forward_stored(prec, s, x, w, y);
  }
  if (bias) {
    TensorDesc yf, bf;
    yf.set(CUDNN_DATA_FLOAT, s.N, s.K, s.P(), s.Q());
    bf.set(CUDNN_DATA_FLOAT, 1, s.K, 1, 1);
    const float one = 1.f;
    EMBER_CUDNN_CHECK(cudnnAddTensor(handle(), &one, bf.get(), bias, &one, yf.get(), y));
  }
}

void conv2d_backward_data(Precision prec, const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  conv::make_geom(s, "backward data (cudnn)");
  if (prec == Precision::BF16) {
    Bf16Copy dyb(y_count(s), dy), wb(w_count(s), w), dxb(x_count(s), nullptr);
    backward_data_stored(prec, s, dyb.ptr(), wb.ptr(), dxb.ptr());
    dxb.to_float(dx);
  } else {
    backward_data_stored(prec, s, dy, w, dx);
  }
}

void conv2d_backward_weight(Precision prec, const Conv2dShape& s, const float* x, const float* dy, float* dw,
                            float* dbias) {
  const conv::Geom g = conv::make_geom(s, "backward weight (cudnn)");
  if (prec == Precision::BF16) {
    Bf16Copy xb(x_count(s), x), dyb(y_count(s), dy), dwb(w_count(s), nullptr);
    backward_weight_stored(prec, s, xb.ptr(), dyb.ptr(), dwb.ptr());
    dwb.to_float(dw);
  } else {
    backward_weight_stored(prec, s, x, dy, dw);
  }
  // cudnnConvolutionBackwardBias is deprecated in cuDNN 9; the bias sum is a plain reduction anyway.
  if (dbias) conv::bias_grad(g, dy, dbias);
}

void conv2d_stored(Precision prec, int pass, const Conv2dShape& s, const void* a, const void* b, void* out) {
  conv::make_geom(s, "conv (cudnn, stored type)");
  switch (pass) {
    case 0: return forward_stored(prec, s, a, b, out);
    case 1: return backward_data_stored(prec, s, a, b, out);
    case 2: return backward_weight_stored(prec, s, a, b, out);
  }
  throw_error("cudnn conv2d_stored: pass " + std::to_string(pass) + " is not 0, 1 or 2", __FILE__, __LINE__);
}

}  // namespace ember::cuda::cudnn_ref

#else  // built without cuDNN: every entry point says so

namespace ember::cuda::cudnn_ref {
namespace {
[[noreturn]] void missing(const char* op) {
  throw std::runtime_error(std::string("ember CUDA: ") + op +
                           ": this build has no cuDNN (configure with CUDNN_ROOT=... to enable the cudnn variants)");
}
}  // namespace
bool compiled_in() { return false; }
void conv2d_forward(Precision, const Conv2dShape&, const float*, const float*, const float*, float*) { missing("cudnn conv2d_forward"); }
void conv2d_backward_data(Precision, const Conv2dShape&, const float*, const float*, float*) { missing("cudnn conv2d_backward_data"); }
void conv2d_backward_weight(Precision, const Conv2dShape&, const float*, const float*, float*, float*) { missing("cudnn conv2d_backward_weight"); }
void max_pool2d_forward(const Pool2dShape&, const float*, float*) { missing("cudnn max_pool2d_forward"); }
void max_pool2d_backward(const Pool2dShape&, const float*, const float*, const float*, float*) { missing("cudnn max_pool2d_backward"); }
void avg_pool2d_forward(const Pool2dShape&, const float*, float*) { missing("cudnn avg_pool2d_forward"); }
void avg_pool2d_backward(const Pool2dShape&, const float*, const float*, const float*, float*) { missing("cudnn avg_pool2d_backward"); }
void conv2d_stored(Precision, int, const Conv2dShape&, const void*, const void*, void*) { missing("cudnn conv2d_stored"); }
void batchnorm_forward_train(const BatchNormArgs&, const float*, const float*, const float*, float*, float*, float*, float*, float*) { missing("cudnn batchnorm_forward_train"); }
void batchnorm_forward_eval(const BatchNormArgs&, const float*, const float*, const float*, const float*, const float*, float*) { missing("cudnn batchnorm_forward_eval"); }
void batchnorm_backward(const BatchNormArgs&, const float*, const float*, const float*, const float*, const float*, const float*, float*, float*, float*) { missing("cudnn batchnorm_backward"); }
}  // namespace ember::cuda::cudnn_ref

#endif
