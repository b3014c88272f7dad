// Seeded, counter-based random numbers (Philox4x32-10, kernels/philox.h).
// A Generator is just (seed, offset): each draw of n values consumes ceil(n/4) counters, and value i
// depends only on (seed, offset + i/4), so results do not depend on the number of threads, and the
// state saves into a checkpoint as two integers.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/tensor.h"

namespace ember {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0x5eed) : seed_(seed) {}
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  void set_state(uint64_t seed, uint64_t offset) {
    seed_ = seed;
    offset_ = offset;
  }
  // Reserves n values: returns the starting counter and advances the offset.
  uint64_t reserve(uint64_t n) {
    uint64_t start = offset_;
    offset_ += (n + 3) / 4;
    return start;
  }
  void fill_uniform(Tensor& t, double lo, double hi);    // [lo, hi)
  void fill_normal(Tensor& t, double mean, double std);  // Box-Muller on pairs of uniforms
  // Fisher-Yates permutation of 0..n-1 (data shuffling).
  std::vector<int64_t> permutation(int64_t n);
  uint64_t next_u64();  // one 64-bit value (split seeds, sampling)

 private:
  uint64_t seed_;
  uint64_t offset_ = 0;
};

// The process-wide default generator (ember::manual_seed sets it).
Generator& default_generator();
void manual_seed(uint64_t seed);

}  // namespace ember
