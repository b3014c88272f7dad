#include "engine/storage.h"

#include <cstdlib>
#include <new>

#include "engine/error.h"

namespace ember {

void* aligned_alloc64(size_t nbytes) {
  size_t rounded = (nbytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
  if (!p) throw std::bad_alloc();
  return p;
}
void aligned_free64(void* p) { std::free(p); }

namespace {
const DeviceBackend* g_cuda = nullptr;
}
void set_cuda_backend(const DeviceBackend* backend) { g_cuda = backend; }
const DeviceBackend* cuda_backend() { return g_cuda; }
const DeviceBackend& require_cuda(const char* what) {
  EMBER_CHECK(g_cuda != nullptr, what,
              ": CUDA is not available (ember built without EMBER_CUDA, or no CUDA device/driver present)");
  return *g_cuda;
}

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  if (device == Device::CPU)
    data_ = aligned_alloc64(nbytes);
  else
    data_ = require_cuda("Storage").alloc(nbytes);
}

Storage::~Storage() {
  if (device_ == Device::CPU)
    aligned_free64(data_);
  else if (g_cuda)
    g_cuda->free(data_);
}

}  // namespace ember
