// Connects Tensor storage to the CUDA backend (kernels/cuda/cuda_api.h) when ember is built with
// it. The bridge installs itself on first use (cuda_backend()), and only when a device is present,
// so a CUDA build still runs CPU-only on a machine without a driver.
#include "engine/storage.h"

#ifdef EMBER_WITH_CUDA
#include "kernels/cuda/cuda_api.h"

namespace ember::detail {

const DeviceBackend* make_cuda_backend() {
  if (!cuda::cuda_available()) return nullptr;
  static const DeviceBackend backend{
      [](size_t n) { return cuda::cuda_alloc(n); },
      [](void* p) { cuda::cuda_free(p); },
      [](void* d, const void* s, size_t n) { cuda::memcpy_h2d(d, s, n); },
      [](void* d, const void* s, size_t n) { cuda::memcpy_d2h(d, s, n); },
      [](void* d, const void* s, size_t n) { cuda::memcpy_d2d(d, s, n); },
      [](void* p, size_t n) { cuda::memset_zero(p, n); },
      [](void* d, const std::vector<int64_t>& ds, const void* s, const std::vector<int64_t>& ss,
         const std::vector<int64_t>& shape, size_t elem_size) {
        cuda::copy_strided(cuda::make_strided_copy(shape, ds, ss), elem_size, s, d);
      },
      [] { cuda::synchronize(); },
  };
  return &backend;
}

}  // namespace ember::detail
#else
namespace ember::detail {
const DeviceBackend* make_cuda_backend() { return nullptr; }
}  // namespace ember::detail
#endif
