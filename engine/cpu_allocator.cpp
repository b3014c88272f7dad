#include "engine/cpu_allocator.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

#include <sys/mman.h>

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

// Large blocks come straight from mmap, not from malloc. glibc raises its mmap threshold (up to
// 32 MiB) after the first large free, and from then on large blocks come from its heap, where freed
// ones stay resident: measured on the SmallCNN step (batch 64, 64 px), peak RSS 244-252 MiB with the
// block cache off against 168 MiB of live tensors; with mmap it is the 168 MiB. Blocks of 4 MiB and
// more are 2 MiB-aligned and marked MADV_HUGEPAGE, so a fresh block faults in 2 MiB at a time instead
// of 4 KiB (512x fewer page faults when the cache misses). Under ASan: malloc, so its heap checks hold.
constexpr size_t kHugePage = size_t(2) << 20, kHugeMin = size_t(4) << 20;
void* map_block(size_t bytes) {
#ifdef EMBER_ASAN
  return raw_alloc(bytes);
#else
  const size_t extra = bytes >= kHugeMin ? kHugePage : 0;
  void* base = mmap(nullptr, bytes + extra, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) throw std::bad_alloc();
  if (!extra) return base;
  // Trim the mapping to a 2 MiB-aligned start; the tail past `bytes` (rounded to a page) goes too.
  const uintptr_t b = reinterpret_cast<uintptr_t>(base), start = (b + kHugePage - 1) & ~uintptr_t(kHugePage - 1);
  const uintptr_t end = start + ((bytes + 4095) & ~size_t(4095)), map_end = b + bytes + extra;
  if (start > b) munmap(base, start - b);
  if (map_end > end) munmap(reinterpret_cast<void*>(end), map_end - end);
  madvise(reinterpret_cast<void*>(start), bytes, MADV_HUGEPAGE);  // advisory: failure only costs speed
  return reinterpret_cast<void*>(start);
#endif
}
void unmap_block(void* p, size_t bytes) {
#ifdef EMBER_ASAN
  (void)bytes;
  std::free(p);
#else
  munmap(p, bytes);
#endif
}

struct Cache {
  std::mutex mu;
  std::multimap<size_t, void*> free_blocks;   // class size -> block
  std::unordered_map<void*, size_t> live;     // cached-class blocks handed out -> class size
  CpuAllocatorStats stats;
  double slack = 0.0;  // footprint allowed above the peak live bytes (EMBER_CPU_CACHE_SLACK)

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
      unmap_block(it->second, it->first);
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
  const size_t cls = size_class(rounded);  // pages past `rounded` are never touched, so cost no RSS
  std::lock_guard<std::mutex> lock(c.mu);
  void* p = nullptr;
  if (!c.stats.enabled) {
    p = map_block(cls);
    ++c.stats.misses;
  } else if (auto it = c.free_blocks.find(cls); it != c.free_blocks.end()) {
    p = it->second;
    c.free_blocks.erase(it);
    c.stats.cached_bytes -= int64_t(cls);
    ++c.stats.hits;
  } else {
    const double need = double(c.stats.live_bytes) + double(cls);
    const double limit = std::max(need, double(c.stats.peak_live_bytes)) * (1 + c.slack);
    if (need + double(c.stats.cached_bytes) > limit) c.release(size_t(need + double(c.stats.cached_bytes) - limit));
    p = map_block(cls);
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
      } else {
        unmap_block(p, cls);
      }
      return;
    }
  }
  std::free(p);  // a small block
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
