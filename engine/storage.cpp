#include "engine/storage.h"

#include <cstdlib>
#include <new>

#include "engine/error.h"

namespace ember {

namespace detail {
const DeviceBackend* make_cuda_backend();  // engine/cuda_bridge.cpp
}
namespace {
const DeviceBackend* g_cuda = nullptr;
bool g_cuda_probed = false;
}
void set_cuda_backend(const DeviceBackend* backend) {
  g_cuda = backend;
  g_cuda_probed = true;
}
const DeviceBackend* cuda_backend() {
  if (!g_cuda_probed) {  // first use: ask the CUDA build (if any) whether a device is there
    g_cuda = detail::make_cuda_backend();
    g_cuda_probed = true;
  }
  return g_cuda;
}
void synchronize_device_of(Device device) {
  if (device == Device::CUDA) require_cuda("synchronize").synchronize();
}

const DeviceBackend& require_cuda(const char* what) {
  EMBER_CHECK(cuda_backend() != nullptr, what,
              ": CUDA is not available (ember built without EMBER_CUDA, or no CUDA device/driver present)");
  return *g_cuda;
}

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  if (device == Device::CPU)
    data_ = aligned_alloc64(nbytes);
  else
    data_ = require_cuda("Storage").alloc(nbytes);
}

Storage::Storage(void* external, size_t nbytes, Device device, std::function<void(void*)> release)
    : data_(external), nbytes_(nbytes), device_(device), release_(std::move(release)) {}

Storage::~Storage() {
  if (release_)
    release_(data_);
  else if (device_ == Device::CPU)
    aligned_free64(data_);
  else if (g_cuda)
    g_cuda->free(data_);
}

}  // namespace ember
