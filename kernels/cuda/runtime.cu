// Device discovery, ember's stream, the caching allocator and pinned-staging copies.
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "kernels/cuda/runtime.h"

namespace ember::cuda {

void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line) {
  throw std::runtime_error(std::string("ember CUDA: ") + call + " failed at " + file + ":" + std::to_string(line) +
                           ": " + cudaGetErrorName(err) + ": " + cudaGetErrorString(err));
}
void throw_error(const std::string& what, const char* file, int line) {
  throw std::runtime_error("ember CUDA: " + what + " (" + file + ":" + std::to_string(line) + ")");
}

namespace {
struct DeviceProbe {
  int count = 0;
  std::string reason;  // why count is 0: cudaGetDeviceCount's error, or "no device"
};
// Without a driver cudaGetDeviceCount fails (cudaErrorInsufficientDriver / NoDevice): that means
// "no CUDA" for us, not an error. Probed once: the answer cannot change.
const DeviceProbe& probe() {
  static const DeviceProbe p = [] {
    DeviceProbe r;
    const cudaError_t err = cudaGetDeviceCount(&r.count);
    if (err != cudaSuccess) {
      (void)cudaGetLastError();  // clear the error so later calls start clean
      r.count = 0;
      r.reason = std::string("cudaGetDeviceCount: ") + cudaGetErrorName(err) + ": " + cudaGetErrorString(err);
    } else if (r.count == 0) {
      r.reason = "cudaGetDeviceCount found no device";
    }
    return r;
  }();
  return p;
}
}  // namespace

int device_count() { return probe().count; }
std::string cuda_unavailable_reason() { return probe().reason; }
bool cuda_available() { return device_count() > 0; }

std::string device_name() {
  if (!cuda_available()) return "";
  int dev = 0;
  cudaDeviceProp prop{};
  EMBER_CUDA_CHECK(cudaGetDevice(&dev));
  EMBER_CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
  return prop.name;
}

cudaStream_t stream() {
  static cudaStream_t s = [] {
    if (!cuda_available()) throw_error("no CUDA device (cuda_available() is false)", __FILE__, __LINE__);
    cudaStream_t created = nullptr;
    EMBER_CUDA_CHECK(cudaStreamCreateWithFlags(&created, cudaStreamNonBlocking));
    return created;
  }();
  return s;
}
void synchronize() { EMBER_CUDA_CHECK(cudaStreamSynchronize(stream())); }

// ---------------------------------------------------------------------------------------------
// Caching allocator. cudaMalloc/cudaFree synchronise the device and cost ~10-100 us, so freed
// blocks go to a free list per size class and are handed out again. Size classes: multiples of
// 512 B up to 1 MiB, powers of two above (at most 2x waste on big blocks, few classes to search).
// Reuse is safe without events because every ember kernel runs on the one stream.
namespace {

constexpr size_t kSmallQuantum = 512, kLargeThreshold = size_t(1) << 20;

struct CachingAllocator {
  std::mutex mutex;
  std::unordered_map<size_t, std::vector<void*>> free_lists;  // size class -> cached blocks
  std::unordered_map<void*, size_t> live;                     // handed-out block -> size class
  AllocatorStats stats;

  void* allocate(size_t bytes) {
    if (bytes == 0) return nullptr;
    const size_t size = allocation_size(bytes);
    std::lock_guard<std::mutex> lock(mutex);
    void* ptr = nullptr;
    auto& list = free_lists[size];
    if (!list.empty()) {
      ptr = list.back();
      list.pop_back();
      stats.cached_bytes -= size;
    } else {
      cudaError_t err = cudaMalloc(&ptr, size);
      if (err == cudaErrorMemoryAllocation) {  // out of memory: give the cache back and retry once
        (void)cudaGetLastError();
        release_cached_locked();
        err = cudaMalloc(&ptr, size);
      }
      if (err != cudaSuccess) {
        (void)cudaGetLastError();  // else the next EMBER_CUDA_CHECK_LAUNCH() would report this failure
        throw_error("cudaMalloc(" + std::to_string(size) + " bytes) failed: " + cudaGetErrorString(err) +
                        " (in use " + std::to_string(stats.current_bytes) + " bytes)",
                    __FILE__, __LINE__);
      }
      ++stats.malloc_count;
    }
    live[ptr] = size;
    stats.current_bytes += size;
    if (stats.current_bytes > stats.peak_bytes) stats.peak_bytes = stats.current_bytes;
    return ptr;
  }

  void release(void* ptr) {
    if (!ptr) return;
    std::lock_guard<std::mutex> lock(mutex);
    auto it = live.find(ptr);
    if (it == live.end()) throw_error("cuda_free of a pointer ember did not allocate", __FILE__, __LINE__);
    const size_t size = it->second;
    live.erase(it);
    stats.current_bytes -= size;
    stats.cached_bytes += size;
    free_lists[size].push_back(ptr);
  }

  void release_cached_locked() {
    // Blocks may still be in use by queued kernels of their previous owner: wait first.
    EMBER_CUDA_CHECK(cudaDeviceSynchronize());
    for (auto& [size, list] : free_lists) {
      for (void* p : list) {
        EMBER_CUDA_CHECK(cudaFree(p));
        ++stats.free_count;
      }
      list.clear();
    }
    stats.cached_bytes = 0;
  }
};

CachingAllocator& allocator() {
  static auto* a = new CachingAllocator;  // never destroyed: frees at exit would race the driver
  return *a;
}

}  // namespace

size_t allocation_size(size_t bytes) {
  if (bytes <= kLargeThreshold) return (bytes + kSmallQuantum - 1) / kSmallQuantum * kSmallQuantum;
  size_t size = kLargeThreshold;
  while (size < bytes) size <<= 1;
  return size;
}
void* cuda_alloc(size_t bytes) { return allocator().allocate(bytes); }
void cuda_free(void* ptr) { allocator().release(ptr); }
AllocatorStats allocator_stats() {
  std::lock_guard<std::mutex> lock(allocator().mutex);
  return allocator().stats;
}
void reset_peak_bytes() {
  std::lock_guard<std::mutex> lock(allocator().mutex);
  allocator().stats.peak_bytes = allocator().stats.current_bytes;
}
void empty_cache() {
  std::lock_guard<std::mutex> lock(allocator().mutex);
  allocator().release_cached_locked();
}

// ---------------------------------------------------------------------------------------------
// Host <-> device copies through one pinned staging buffer: pageable copies would be staged by
// the driver anyway, and a pinned buffer lets the DMA engine run at full PCIe/NVLink speed.
// Large copies go through it in chunks; the mutex serialises users of the buffer.
namespace {

constexpr size_t kStagingBytes = size_t(32) << 20;

// A pinned host buffer of Capacity bytes that uploads go through. Before overwriting it the host
// waits for the last DMA out of it (its event), not for every kernel queued since.
template <size_t Capacity>
struct PinnedBuffer {
  void* buffer = nullptr;
  cudaEvent_t uploaded = nullptr;  // recorded after each host-to-device DMA out of the buffer

  void* get() {
    if (!buffer) {
      EMBER_CUDA_CHECK(cudaMallocHost(&buffer, Capacity));
      EMBER_CUDA_CHECK(cudaEventCreateWithFlags(&uploaded, cudaEventDisableTiming));
      EMBER_CUDA_CHECK(cudaEventRecord(uploaded, stream()));
    }
    return buffer;
  }
  // Copies src (bytes <= Capacity) into the buffer and queues its DMA to dst; returns at once.
  void upload(void* dst, const void* src, size_t bytes) {
    void* pinned = get();
    EMBER_CUDA_CHECK(cudaEventSynchronize(uploaded));
    std::memcpy(pinned, src, bytes);
    EMBER_CUDA_CHECK(cudaMemcpyAsync(dst, pinned, bytes, cudaMemcpyHostToDevice, stream()));
    EMBER_CUDA_CHECK(cudaEventRecord(uploaded, stream()));
  }
};

struct PinnedStaging {
  std::mutex mutex;
  PinnedBuffer<kStagingBytes> pinned;
};
PinnedStaging& staging() {
  static auto* s = new PinnedStaging;
  return *s;
}

}  // namespace

// Returns once src is in the staging buffer; the DMA runs in stream order.
void memcpy_h2d(void* dst, const void* src, size_t bytes) {
  PinnedStaging& s = staging();
  std::lock_guard<std::mutex> lock(s.mutex);
  for (size_t done = 0; done < bytes; done += kStagingBytes)
    s.pinned.upload(static_cast<char*>(dst) + done, static_cast<const char*>(src) + done,
                    std::min(kStagingBytes, bytes - done));
}

// Small uploads that must not stall the host (the optimizer's tensor table each step, per-channel
// constants): a ring of pinned slots, each reused only once the copy that last read it has run, so
// the host waits for at most that one earlier copy, not for the kernels queued before.
namespace {

constexpr int kUploadSlots = 8;
constexpr size_t kUploadSlotBytes = size_t(1) << 20;

struct UploadRing {
  std::mutex mutex;
  PinnedBuffer<kUploadSlotBytes> slots[kUploadSlots];
  int next = 0;
};
UploadRing& upload_ring() {
  static auto* r = new UploadRing;
  return *r;
}

}  // namespace

void memcpy_h2d_async(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  if (bytes > kUploadSlotBytes) return memcpy_h2d(dst, src, bytes);
  UploadRing& r = upload_ring();
  std::lock_guard<std::mutex> lock(r.mutex);
  auto& slot = r.slots[r.next];
  r.next = (r.next + 1) % kUploadSlots;
  slot.upload(dst, src, bytes);
}

// Synchronises: the DMA into the staging buffer is queued after every earlier upload out of it (one
// stream), and the host reads the buffer only after the stream has caught up.
void memcpy_d2h(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  std::lock_guard<std::mutex> lock(staging().mutex);
  char* pinned = static_cast<char*>(staging().pinned.get());
  for (size_t done = 0; done < bytes; done += kStagingBytes) {
    const size_t chunk = std::min(kStagingBytes, bytes - done);
    EMBER_CUDA_CHECK(cudaMemcpyAsync(pinned, static_cast<const char*>(src) + done, chunk, cudaMemcpyDeviceToHost, stream()));
    EMBER_CUDA_CHECK(cudaStreamSynchronize(stream()));
    std::memcpy(static_cast<char*>(dst) + done, pinned, chunk);
  }
}

void memcpy_d2d(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  EMBER_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream()));
}

void memset_zero(void* dst, size_t bytes) {
  if (bytes == 0) return;
  EMBER_CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, stream()));
}

namespace {
__global__ void fill_kernel(float* dst, float value, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = value;
}
}  // namespace

void fill(float* dst, float value, int64_t n) {
  if (n <= 0) return;
  fill_kernel<<<blocks_for(n, 256), 256, 0, stream()>>>(dst, value, n);
  EMBER_CUDA_CHECK_LAUNCH();
}

}  // namespace ember::cuda
