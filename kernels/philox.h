// Philox4x32-10 counter-based random numbers (Salmon et al., "Parallel random numbers: as easy as
// 1, 2, 3", SC'11), shared by the CPU engine (engine/rng.cpp, CPU dropout) and the CUDA kernels
// (kernels/cuda/dropout.cu), so a mask drawn with the same (seed, offset) is identical on both.
//
// Mapping used everywhere in ember (change both sides together or not at all):
//   value i of a draw with (seed, offset) is lane i % 4 of the block
//     philox4x32_10(counter = offset + i / 4, key = seed)
//   where the 128-bit counter is {lo32, hi32, 0, 0} and the key is {lo32(seed), hi32(seed)};
//   a uniform float in [0, 1) is (bits >> 8) * 2^-24 (24 random mantissa bits, never 1.0).
// A draw of n values advances the offset by ceil(n / 4) (Generator::reserve).
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define EMBER_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define EMBER_HOST_DEVICE inline
#endif

namespace ember {

struct Philox4x32 {
  uint32_t v[4];
};

EMBER_HOST_DEVICE uint32_t philox_mulhi32(uint32_t a, uint32_t b) {
  return static_cast<uint32_t>((static_cast<uint64_t>(a) * b) >> 32);
}

// Ten Philox rounds on the 128-bit counter {lo32(counter), hi32(counter), 0, 0} with key = seed.
EMBER_HOST_DEVICE Philox4x32 philox4x32_10(uint64_t counter, uint64_t seed) {
  constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;    // round multipliers
  constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;  // key schedule increments
  uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    const uint32_t hi0 = philox_mulhi32(kMul0, c0), lo0 = kMul0 * c0;
    const uint32_t hi1 = philox_mulhi32(kMul1, c2), lo1 = kMul1 * c2;
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += kWeyl0;
    k1 += kWeyl1;
  }
  return Philox4x32{{c0, c1, c2, c3}};
}

// The 32 random bits of value i of the draw (seed, offset). Loops that walk values in fours should
// call philox4x32_10 once per block and use all four lanes instead.
EMBER_HOST_DEVICE uint32_t philox_bits(uint64_t seed, uint64_t offset, uint64_t i) {
  return philox4x32_10(offset + i / 4, seed).v[i % 4];
}

// Uniform float in [0, 1) from 32 random bits.
EMBER_HOST_DEVICE float philox_uniform(uint32_t bits) {
  return static_cast<float>(bits >> 8) * (1.0f / 16777216.0f);
}

// Dropout keeps value i when its uniform draw is >= p, so P(keep) = 1 - p (same rule on CPU and GPU).
EMBER_HOST_DEVICE bool philox_dropout_keep(uint32_t bits, float p) { return philox_uniform(bits) >= p; }

}  // namespace ember
