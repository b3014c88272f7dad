// Conv shapes shared by the CUDA conv tests: hand-picked awkward cases (odd sizes, stride,
// padding, dilation, groups, depthwise) plus seeded random ones.
#pragma once
#include <algorithm>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/cpu/conv2d.h"

namespace ember::cuda::testing {

inline cpu::Conv2dShape make(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t R, int64_t S, int64_t stride,
                 int64_t pad, int64_t dil = 1, int64_t groups = 1) {
  cpu::Conv2dShape s;
  s.N = N, s.C = C, s.H = H, s.W = W, s.K = K, s.R = R, s.S = S;
  s.stride_h = s.stride_w = stride;
  s.pad_h = s.pad_w = pad;
  s.dil_h = s.dil_w = dil;
  s.groups = groups;
  return s;
}

// (ostringstream rather than string operator+: g++ 12 -O3 raises a false -Wrestrict on the latter.)
inline std::string describe(const cpu::Conv2dShape& s) {
  std::ostringstream out;
  out << "N" << s.N << " C" << s.C << " " << s.H << "x" << s.W << " K" << s.K << " " << s.R << "x" << s.S << " stride "
      << s.stride_h << "x" << s.stride_w << " pad " << s.pad_h << "x" << s.pad_w << " dil " << s.dil_h << "x"
      << s.dil_w << " groups " << s.groups;
  return out.str();
}

inline std::vector<cpu::Conv2dShape> test_shapes() {
  std::vector<cpu::Conv2dShape> shapes = {
      make(2, 3, 11, 13, 8, 3, 3, 1, 1),          // RGB stem-like, odd spatial sizes
      make(1, 16, 9, 7, 20, 3, 5, 2, 1),          // stride 2, non-square filter
      make(2, 8, 12, 10, 12, 3, 3, 2, 2, 2, 4),   // dilation 2, 4 groups
      make(2, 6, 10, 9, 12, 3, 3, 1, 1, 1, 6),    // depthwise with multiplier 2
      make(2, 4, 9, 11, 4, 3, 3, 2, 1, 1, 4),     // depthwise, stride 2 (MobileNet downsampling)
      make(3, 70, 5, 6, 33, 1, 1, 1, 0),          // 1x1, sizes not multiples of the tiles
      make(4, 32, 14, 14, 64, 3, 3, 1, 1),        // long weight-gradient depth (split path)
      make(1, 5, 4, 4, 7, 5, 5, 1, 2),            // filter as large as the padded input
  };
  shapes[1].stride_w = 1, shapes[1].pad_w = 2;  // asymmetric stride and padding
  std::mt19937 gen(20240607);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(gen); };
  for (int i = 0; i < 6; ++i) {
    const int64_t groups = pick(1, 3), R = pick(1, 4), S = pick(1, 4);
    cpu::Conv2dShape s = make(pick(1, 3), groups * pick(1, 9), pick(R, 15), pick(S, 15), groups * pick(1, 11), R, S,
                         pick(1, 3), pick(0, 2), pick(1, 2), groups);
    s.pad_h = std::min<int64_t>(s.pad_h, R - 1), s.pad_w = std::min<int64_t>(s.pad_w, S - 1);
    if (s.P() > 0 && s.Q() > 0) shapes.push_back(s);
  }
  return shapes;
}

}  // namespace ember::cuda::testing
