// cuDNN handle, error check and RAII descriptors for cudnn_ref.cu / cudnn_pool_bn.cu.
#pragma once
#include <cudnn.h>

#include "kernels/cuda/runtime.h"

namespace ember::cuda::cudnn_ref {

#define EMBER_CUDNN_CHECK(call)                                                                             \
  do {                                                                                                      \
    cudnnStatus_t st_ = (call);                                                                             \
    if (st_ != CUDNN_STATUS_SUCCESS)                                                                        \
      ::ember::cuda::throw_error(std::string(#call) + " failed: " + cudnnGetErrorString(st_), __FILE__, __LINE__); \
  } while (0)

inline cudnnHandle_t handle() {
  static cudnnHandle_t h = [] {
    cudnnHandle_t created = nullptr;
    EMBER_CUDNN_CHECK(cudnnCreate(&created));
    EMBER_CUDNN_CHECK(cudnnSetStream(created, stream()));
    return created;
  }();
  return h;
}

inline int as_int(int64_t v, const char* what) {
  EMBER_CUDA_REQUIRE(v >= 0 && v <= INT32_MAX, std::string("cuDNN descriptor: ") + what + " = " + std::to_string(v) +
                                                   " does not fit in int");
  return int(v);
}

class TensorDesc {
 public:
  TensorDesc() { EMBER_CUDNN_CHECK(cudnnCreateTensorDescriptor(&d_)); }
  ~TensorDesc() { cudnnDestroyTensorDescriptor(d_); }
  TensorDesc(const TensorDesc&) = delete;
  TensorDesc& operator=(const TensorDesc&) = delete;
  void set(cudnnDataType_t t, int64_t n, int64_t c, int64_t h, int64_t w) {
    EMBER_CUDNN_CHECK(cudnnSetTensor4dDescriptor(d_, CUDNN_TENSOR_NCHW, t, as_int(n, "N"), as_int(c, "C"),
                                                 as_int(h, "H"), as_int(w, "W")));
  }
  cudnnTensorDescriptor_t get() const { return d_; }

 private:
  cudnnTensorDescriptor_t d_ = nullptr;
};

class FilterDesc {
 public:
  FilterDesc() { EMBER_CUDNN_CHECK(cudnnCreateFilterDescriptor(&d_)); }
  ~FilterDesc() { cudnnDestroyFilterDescriptor(d_); }
  FilterDesc(const FilterDesc&) = delete;
  FilterDesc& operator=(const FilterDesc&) = delete;
  void set(cudnnDataType_t t, int64_t k, int64_t c, int64_t r, int64_t s) {
    EMBER_CUDNN_CHECK(cudnnSetFilter4dDescriptor(d_, t, CUDNN_TENSOR_NCHW, as_int(k, "K"), as_int(c, "C/groups"),
                                                 as_int(r, "R"), as_int(s, "S")));
  }
  cudnnFilterDescriptor_t get() const { return d_; }

 private:
  cudnnFilterDescriptor_t d_ = nullptr;
};

class ConvDesc {
 public:
  ConvDesc() { EMBER_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&d_)); }
  ~ConvDesc() { cudnnDestroyConvolutionDescriptor(d_); }
  ConvDesc(const ConvDesc&) = delete;
  ConvDesc& operator=(const ConvDesc&) = delete;
  void set(const Conv2dShape& s, Precision prec) {
    EMBER_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(d_, as_int(s.pad_h, "pad_h"), as_int(s.pad_w, "pad_w"),
                                                      as_int(s.stride_h, "stride_h"), as_int(s.stride_w, "stride_w"),
                                                      as_int(s.dil_h, "dil_h"), as_int(s.dil_w, "dil_w"),
                                                      CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    EMBER_CUDNN_CHECK(cudnnSetConvolutionGroupCount(d_, as_int(s.groups, "groups")));
    const cudnnMathType_t math = prec == Precision::FP32   ? CUDNN_FMA_MATH
                                 : prec == Precision::TF32 ? CUDNN_DEFAULT_MATH
                                                           : CUDNN_TENSOR_OP_MATH;
    EMBER_CUDNN_CHECK(cudnnSetConvolutionMathType(d_, math));
  }
  cudnnConvolutionDescriptor_t get() const { return d_; }

 private:
  cudnnConvolutionDescriptor_t d_ = nullptr;
};

}  // namespace ember::cuda::cudnn_ref
