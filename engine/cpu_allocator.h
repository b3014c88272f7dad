// CPU memory for tensors: 64-byte aligned, with a cache of large freed blocks.
//
// Why a cache: a training step allocates the same activation and gradient buffers every step. Large
// blocks come from mmap, so without reuse every step pays a page fault (and the kernel's zeroing) on
// each fresh 4 KiB page: measured 134k minor faults in one SmallCNN step at batch 64, 64 px, which is
// where most of BatchNorm/ReLU/pool's time went. Freed blocks of >= 128 KiB are kept in size classes
// (powers of two split into 8 steps, so at most 12.5% rounding) and handed out again.
//
// Footprint bound: live + cached bytes may exceed the largest live total seen so far by at most the
// slack (default 0: the cache never makes the process bigger than its own high-water mark of live
// tensors; EMBER_CPU_CACHE_SLACK overrides); a miss that would go past it first releases cached
// blocks, largest first. Large blocks are mmapped (2 MiB-aligned with MADV_HUGEPAGE from 4 MiB), so a
// miss costs few page faults and a released block leaves the process at once. Measured 2026-11-23
// (Zen 4, 2 threads, three interleaved rounds), SmallCNN train step, batch 64, 64 px: slack 1.0
// gave 270 MiB peak RSS at a median 476 images/s, 0.25 206 MiB / 465, 0.1 182 MiB / 437, 0 168 MiB
// (= the peak of live tensors) / 446: about 6% slower, within the run-to-run spread. VGG16 forward,
// batch 8: 974 MiB at 1.0, 729-782 MiB at 0, same speed. LibTorch 1.13 in the same benchmark:
// 216-260 MiB and 853-925 MiB, so 0 is the default; EMBER_CPU_CACHE_SLACK=1 buys the 6% back.
// The cost grows with the data loader's threads allocating beside the step: a UTKFace multitask
// epoch took 70 s at slack 0 (7,034 misses) against 61 s at 1 (71 misses), so `ember run` (long
// training runs, apps/driver/commands.cpp) sets slack 1 unless the environment variable is given.
// EMBER_CPU_CACHE=0 turns the cache off (plain aligned_alloc/free) so research can compare both;
// EMBER_CPU_CACHE_STATS=1 prints hits, misses and peak bytes at exit.
#pragma once
#include <cstddef>
#include <cstdint>

namespace ember {

// 64-byte aligned so AVX-512 loads of a fresh tensor never split a cache line. Never returns null.
void* aligned_alloc64(size_t nbytes);
void aligned_free64(void* p);

struct CpuAllocatorStats {
  int64_t live_bytes = 0;     // handed out and not yet freed (cached-class blocks at class size)
  int64_t peak_live_bytes = 0;
  int64_t cached_bytes = 0;   // freed, kept for reuse
  int64_t hits = 0, misses = 0;  // large requests served from / not from the cache
  bool enabled = true;
};
CpuAllocatorStats cpu_allocator_stats();
void cpu_allocator_release_cache();  // frees every cached block
void cpu_allocator_set_enabled(bool on);  // default: on unless EMBER_CPU_CACHE=0
void cpu_allocator_set_slack(double slack);  // footprint allowed above peak live bytes (default 0)

}  // namespace ember
