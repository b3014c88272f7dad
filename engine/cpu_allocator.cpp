#include "engine/cpu_allocator.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

// Under AddressSanitizer a cached block is poisoned while it sits in the cache, and the rounding tail
// past the request stays poisoned while it is in use, so use-after-free and overflow into the tail
// are still reported although the memory is not returned to the system.
#if defined(__SANITIZE_ADDRESS__)
#define EMBER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EMBER_ASAN 1
#endif
#endif
#ifdef EMBER_ASAN
#include <sanitizer/asan_interface.h>
#define EMBER_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define EMBER_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define EMBER_POISON(p, n) ((void)(p), (void)(n))
#define EMBER_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace ember {
namespace {

constexpr size_t kMinCached = size_t(128) << 10;  // glibc's default mmap threshold

// The smallest class >= n: 2^k * (8 + j) / 8 for j in 0..7, a multiple of 64.
size_t size_class(size_t n) {
  size_t pow = 1;
  while (pow * 2 <= n) pow *= 2;
  const size_t step = pow / 8;
  return (n + step - 1) / step * step;
}

void* raw_alloc(size_t bytes) {
  void* p = std::aligned_alloc(64, bytes);
  if (!p) throw std::bad_alloc();
  return p;
}

struct Cache {
  std::mutex mu;
  std::multimap<size_t, void*> free_blocks;   // class size -> block
  std::unordered_map<void*, size_t> live;     // cached-class blocks handed out -> class size
  CpuAllocatorStats stats;
  double slack = 1.0;  // footprint allowed above the peak live bytes (EMBER_CPU_CACHE_SLACK)

  Cache() {
    const char* env = std::getenv("EMBER_CPU_CACHE");
    stats.enabled = !(env && env[0] == '0');
    if (const char* s = std::getenv("EMBER_CPU_CACHE_SLACK")) slack = std::max(0.0, std::atof(s));
    if (const char* s = std::getenv("EMBER_CPU_CACHE_STATS"); s && s[0] == '1') std::atexit(print_stats);
  }
  static void print_stats();
  // Frees cached blocks, largest first, until `want` bytes are gone (all of them for SIZE_MAX).
  void release(size_t want) {
    size_t freed = 0;
    while (freed < want && !free_blocks.empty()) {
      auto it = std::prev(free_blocks.end());
      freed += it->first;
      stats.cached_bytes -= int64_t(it->first);
      EMBER_UNPOISON(it->second, it->first);
      std::free(it->second);
      free_blocks.erase(it);
    }
  }
};
Cache& cache() {
  static Cache* c = new Cache;  // never destroyed: tensors may be freed during static destruction
  return *c;
}

void Cache::print_stats() {
  const CpuAllocatorStats s = cpu_allocator_stats();
  std::fprintf(stderr, "ember cpu allocator: %s, large blocks %lld hits / %lld misses, peak live %.1f MiB, cached %.1f MiB\n",
               s.enabled ? "cache on" : "cache off", (long long)s.hits, (long long)s.misses,
               double(s.peak_live_bytes) / 1048576.0, double(s.cached_bytes) / 1048576.0);
}

}  // namespace

void* aligned_alloc64(size_t nbytes) {
  const size_t rounded = nbytes == 0 ? 64 : (nbytes + 63) / 64 * 64;
  Cache& c = cache();
  if (rounded < kMinCached) return raw_alloc(rounded);
  const size_t cls = size_class(rounded);
  std::lock_guard<std::mutex> lock(c.mu);
  if (!c.stats.enabled) return raw_alloc(rounded);
  void* p = nullptr;
  if (auto it = c.free_blocks.find(cls); it != c.free_blocks.end()) {
    p = it->second;
    c.free_blocks.erase(it);
    c.stats.cached_bytes -= int64_t(cls);
    ++c.stats.hits;
  } else {
    const double need = double(c.stats.live_bytes) + double(cls);
    const double limit = std::max(need, double(c.stats.peak_live_bytes)) * (1 + c.slack);
    if (need + double(c.stats.cached_bytes) > limit) c.release(size_t(need + double(c.stats.cached_bytes) - limit));
    p = raw_alloc(cls);
    ++c.stats.misses;
  }
  EMBER_UNPOISON(p, cls);
  EMBER_POISON(static_cast<char*>(p) + rounded, cls - rounded);
  c.live.emplace(p, cls);
  c.stats.live_bytes += int64_t(cls);
  if (c.stats.live_bytes > c.stats.peak_live_bytes) c.stats.peak_live_bytes = c.stats.live_bytes;
  return p;
}

void aligned_free64(void* p) {
  if (!p) return;
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    if (auto it = c.live.find(p); it != c.live.end()) {
      const size_t cls = it->second;
      c.live.erase(it);
      c.stats.live_bytes -= int64_t(cls);
      EMBER_UNPOISON(p, cls);
      if (c.stats.enabled) {
        EMBER_POISON(p, cls);
        c.free_blocks.emplace(cls, p);
        c.stats.cached_bytes += int64_t(cls);
        return;
      }
    }
  }
  std::free(p);
}

CpuAllocatorStats cpu_allocator_stats() {
  std::lock_guard<std::mutex> lock(cache().mu);
  return cache().stats;
}

void cpu_allocator_release_cache() {
  std::lock_guard<std::mutex> lock(cache().mu);
  cache().release(SIZE_MAX);
}

void cpu_allocator_set_slack(double slack) {
  std::lock_guard<std::mutex> lock(cache().mu);
  cache().slack = std::max(0.0, slack);
}

void cpu_allocator_set_enabled(bool on) {
  std::lock_guard<std::mutex> lock(cache().mu);
  if (!on) cache().release(SIZE_MAX);
  cache().stats.enabled = on;
}

}  // namespace ember
