// Internals shared by ember's .cu files: error checking, the one stream, launch helpers.
// Engine code uses cuda_api.h instead; this header pulls in the CUDA runtime.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "kernels/cuda/cuda_api.h"

namespace ember::cuda {

[[noreturn]] void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line);
[[noreturn]] void throw_error(const std::string& what, const char* file, int line);

// EMBER_CUDA_CHECK(cudaMalloc(...)) throws std::runtime_error("ember CUDA: cudaMalloc(...) failed at
// file:line: <error name>: <error string>").
#define EMBER_CUDA_CHECK(call)                                                              \
  do {                                                                                      \
    cudaError_t ember_cuda_err_ = (call);                                                   \
    if (ember_cuda_err_ != cudaSuccess)                                                     \
      ::ember::cuda::throw_cuda_error(ember_cuda_err_, #call, __FILE__, __LINE__);          \
  } while (0)
// Checks a kernel launch (configuration errors show up here; faults show up at the next sync).
#define EMBER_CUDA_CHECK_LAUNCH() EMBER_CUDA_CHECK(cudaGetLastError())
// Argument checks in launchers: EMBER_CUDA_REQUIRE(n > 0, "conv2d: bad N " + std::to_string(n)).
#define EMBER_CUDA_REQUIRE(cond, what)                                                \
  do {                                                                                \
    if (!(cond)) ::ember::cuda::throw_error(std::string(what), __FILE__, __LINE__); \
  } while (0)

cudaStream_t stream();  // ember's one stream (created on first use, non-blocking)

// Blocks of `threads` threads covering n items, capped so grid-stride loops stay efficient.
inline unsigned blocks_for(int64_t n, int threads, int64_t cap = 65535LL * 8) {
  int64_t b = (n + threads - 1) / threads;
  if (b < 1) b = 1;
  return static_cast<unsigned>(b < cap ? b : cap);
}

// float4 (16-byte) loads and stores need 16-byte aligned pointers (nullptr counts as aligned).
inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// Kernels index with int32 where it pays; launchers refuse tensors that do not fit.
inline void require_int32(int64_t elements, const char* what) {
  if (elements >= (int64_t(1) << 31))
    throw_error(std::string(what) + ": " + std::to_string(elements) + " elements exceed the int32 indexing of this kernel",
                __FILE__, __LINE__);
}

// RAII scratch buffer from the caching allocator (stream-ordered: freeing after enqueueing the
// kernels that use it is safe because every kernel runs on the same stream).
template <class T>
class DeviceScratch {
 public:
  explicit DeviceScratch(int64_t count) : ptr_(static_cast<T*>(cuda_alloc(size_t(count) * sizeof(T)))) {}
  ~DeviceScratch() { cuda_free(ptr_); }
  DeviceScratch(const DeviceScratch&) = delete;
  DeviceScratch& operator=(const DeviceScratch&) = delete;
  T* get() const { return ptr_; }

 private:
  T* ptr_;
};

}  // namespace ember::cuda
