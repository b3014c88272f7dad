// Runtime pieces: device discovery without a driver, the caching allocator, copies, Philox.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>

#include "kernels/philox.h"
#include "tests/cuda/cuda_test_util.h"

namespace ember::cuda {
namespace {
using testing::DeviceArray;

// Runs everywhere: without a driver the answer is 0, never an exception.
TEST(CudaRuntime, DeviceCountNeverThrows) {
  int n = -1;
  EXPECT_NO_THROW(n = device_count());
  EXPECT_GE(n, 0);
  EXPECT_EQ(cuda_available(), n > 0);
  if (n == 0) {
    EXPECT_EQ(device_name(), "");
  }
}

TEST(CudaRuntime, SizeClassesRoundTo512BytesThenPowersOfTwo) {
  EXPECT_EQ(allocation_size(1), 512u);
  EXPECT_EQ(allocation_size(512), 512u);
  EXPECT_EQ(allocation_size(513), 1024u);
  EXPECT_EQ(allocation_size(size_t(1) << 20), size_t(1) << 20);
  EXPECT_EQ(allocation_size((size_t(1) << 20) + 1), size_t(2) << 20);
  EXPECT_EQ(allocation_size((size_t(3) << 20)), size_t(4) << 20);
}

// Philox4x32-10 known answer from the Random123 reference vectors: all-zero counter and key.
TEST(Philox, KnownAnswerZeroCounterZeroKey) {
  const Philox4x32 r = philox4x32_10(0, 0);
  EXPECT_EQ(r.v[0], 0x6627e8d5u);
  EXPECT_EQ(r.v[1], 0xe169c58du);
  EXPECT_EQ(r.v[2], 0xbc57ac4cu);
  EXPECT_EQ(r.v[3], 0x9b00dbd8u);
}

TEST(Philox, ElementMappingUsesCounterOffsetPlusIDiv4) {
  const uint64_t seed = 1234, offset = 77;
  for (uint64_t i = 0; i < 16; ++i) EXPECT_EQ(philox_bits(seed, offset, i), philox4x32_10(offset + i / 4, seed).v[i % 4]);
  EXPECT_LT(philox_uniform(0xffffffffu), 1.0f);
  EXPECT_EQ(philox_uniform(0u), 0.0f);
}

TEST(CudaRuntime, CopiesRoundTripThroughStaging) {
  EMBER_REQUIRE_CUDA();
  // Larger than the 32 MiB pinned staging buffer, so the chunked path runs too.
  const size_t n = (size_t(40) << 20) / sizeof(float) + 3;
  std::vector<float> host = testing::random_floats(n, 1);
  DeviceArray<float> a(host), b(n);
  memcpy_d2d(b.get(), a.get(), n * sizeof(float));
  std::vector<float> back = b.download();
  EXPECT_EQ(0, std::memcmp(back.data(), host.data(), n * sizeof(float)));
}

// Uploads return before their DMA has run: back-to-back uploads that reuse the staging buffer and
// every slot of the small-upload ring (more uploads than slots, the host buffer overwritten after
// each call), queued behind a large copy, must each land intact.
TEST(CudaRuntime, QueuedUploadsReuseStagingWithoutCorruption) {
  EMBER_REQUIRE_CUDA();
  const size_t big = (size_t(40) << 20) / sizeof(float);
  DeviceArray<float> a(testing::random_floats(big, 2)), b(big);
  memcpy_d2d(b.get(), a.get(), big * sizeof(float));  // keeps the stream busy while uploads queue
  std::vector<std::unique_ptr<DeviceArray<float>>> small, large;
  std::vector<std::vector<float>> want;
  std::vector<float> host;
  for (int i = 0; i < 20; ++i) {
    host = testing::random_floats(size_t(1000 + 37 * i), uint32_t(100 + i));
    want.push_back(host);
    small.push_back(std::make_unique<DeviceArray<float>>(host.size()));
    memcpy_h2d_async(small.back()->get(), host.data(), host.size() * sizeof(float));
    if (i % 5 == 0) {  // larger than a ring slot: through the staging buffer
      host = testing::random_floats(size_t(300000), uint32_t(500 + i));
      want.push_back(host);
      large.push_back(std::make_unique<DeviceArray<float>>(host.size()));
      memcpy_h2d(large.back()->get(), host.data(), host.size() * sizeof(float));
    }
    std::fill(host.begin(), host.end(), -1.f);  // the caller may reuse its buffer at once
  }
  size_t w = 0, l = 0;
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(small[size_t(i)]->download(), want[w++]) << "small upload " << i;
    if (i % 5 == 0) {
      EXPECT_EQ(large[l++]->download(), want[w++]) << "large upload " << i;
    }
  }
}

TEST(CudaRuntime, CachingAllocatorReusesFreedBlocks) {
  EMBER_REQUIRE_CUDA();
  empty_cache();
  const AllocatorStats before = allocator_stats();
  void* p = cuda_alloc(1000);
  EXPECT_EQ(allocator_stats().current_bytes, before.current_bytes + 1024);
  cuda_free(p);
  EXPECT_EQ(allocator_stats().cached_bytes, 1024u);
  void* q = cuda_alloc(700);  // same 1024-byte class: must come from the cache
  EXPECT_EQ(q, p);
  EXPECT_EQ(allocator_stats().malloc_count, before.malloc_count + 1);
  EXPECT_GE(allocator_stats().peak_bytes, before.current_bytes + 1024);
  cuda_free(q);
  empty_cache();
  EXPECT_EQ(allocator_stats().cached_bytes, 0u);
  EXPECT_EQ(allocator_stats().current_bytes, before.current_bytes);
  EXPECT_THROW(cuda_free(reinterpret_cast<void*>(0x1234)), std::runtime_error);
}

TEST(CudaRuntime, FillWritesEveryElement) {
  EMBER_REQUIRE_CUDA();
  DeviceArray<float> a(1001);
  fill(a.get(), 2.5f, 1001);
  for (float v : a.download()) ASSERT_EQ(v, 2.5f);
}

}  // namespace
}  // namespace ember::cuda
