// Reference-counted raw memory. Tensors share a Storage through std::shared_ptr, so views cost
// nothing and memory is freed when the last view goes away.
#pragma once
#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

#include "engine/cpu_allocator.h"
#include "engine/dtype.h"

namespace ember {


// What a device backend provides. The CUDA backend installs one at start-up (engine/cuda_bridge.cpp);
// without it, asking for a CUDA tensor throws a clear error.
struct DeviceBackend {
  void* (*alloc)(size_t nbytes);
  void (*free)(void* p);
  void (*copy_h2d)(void* dst, const void* src, size_t nbytes);
  void (*copy_d2h)(void* dst, const void* src, size_t nbytes);
  void (*copy_d2d)(void* dst, const void* src, size_t nbytes);
  void (*memset_zero)(void* p, size_t nbytes);
  // dst[i at dst_strides] = src[i at src_strides] over `shape` (strides in elements of elem_size bytes).
  void (*copy_strided)(void* dst, const std::vector<int64_t>& dst_strides, const void* src,
                       const std::vector<int64_t>& src_strides, const std::vector<int64_t>& shape, size_t elem_size);
  void (*synchronize)();  // waits for every kernel and copy queued so far (timing, e.g. ember explain)
};
void set_cuda_backend(const DeviceBackend* backend);
const DeviceBackend* cuda_backend();  // nullptr when not built or no device; see require_cuda()
const DeviceBackend& require_cuda(const char* what);
// Waits for the GPU's queued work when `device` is the GPU (so a host clock read afterwards includes it);
// nothing for CPU tensors, and no CUDA context is created for them.
void synchronize_device_of(Device device);

class Storage {
 public:
  Storage(size_t nbytes, Device device);
  // Wraps memory owned elsewhere (e.g. a read-only file mapping): `release(data)` runs when the last
  // tensor using it goes away, so a mapping can stay alive exactly as long as its tensors.
  Storage(void* external, size_t nbytes, Device device, std::function<void(void*)> release);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_ = Device::CPU;
  std::function<void(void*)> release_;  // set only for wrapped external memory
};

}  // namespace ember
