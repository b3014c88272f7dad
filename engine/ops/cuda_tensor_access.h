// Device pointers of CUDA tensors for the GPU op files (cuda_ops.cpp, cuda_elementwise.cpp), with the
// checks every kernel call needs. Included only in builds with CUDA (EMBER_WITH_CUDA).
#pragma once
#include "engine/error.h"
#include "engine/tensor.h"
#include "kernels/cuda/cuda_api.h"

namespace ember::cuda_ops::detail {

// Pointer to the first element of a float32 CUDA tensor, strides as they are.
inline const float* strided_f32(const Tensor& t, const char* op) {
  EMBER_CHECK(t.dtype() == DType::Float32, op, " on cuda: only float32 is supported, got ", t.str());
  // A host pointer handed to a kernel is an illegal address (e.g. backward(grad) with a CPU grad).
  EMBER_CHECK(t.device() == Device::CUDA, op, " on cuda: tensor ", t.str(), " must be on cuda");
  return static_cast<const float*>(t.raw_data());
}
// The same for a contiguous tensor (most kernels index densely).
inline const float* cf(const Tensor& t, const char* op) {
  const float* p = strided_f32(t, op);
  EMBER_CHECK(t.is_contiguous(), op, " on cuda: tensor ", t.str(), " must be contiguous");
  return p;
}
inline float* mf(const Tensor& t, const char* op) { return const_cast<float*>(cf(t, op)); }
// The conversion kernel's name for a dtype (kernels/cuda/convert.cu).
inline cuda::ElemType elem_type_of(DType t) {
  switch (t) {
    case DType::Float64: return cuda::ElemType::F64;
    case DType::Int64: return cuda::ElemType::I64;
    case DType::BFloat16: return cuda::ElemType::BF16;
    default: return cuda::ElemType::F32;
  }
}
inline Tensor empty_like_cuda(const Shape& shape, DType dtype = DType::Float32) {
  return Tensor::empty(shape, dtype, Device::CUDA);
}

}  // namespace ember::cuda_ops::detail
