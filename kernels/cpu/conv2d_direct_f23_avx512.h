// Shared by the two F(2,3)-along-rows kernels (conv2d_direct_f23_avx512.cpp: forward;
// conv2d_direct_f23_wgrad_avx512.cpp: weight gradient): the input row transform U. Included only by
// files compiled with AVX-512; internal linkage, so no AVX-512 code can leak into another path.
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace ember::cpu {
namespace {

constexpr int kF23Lanes = 16;  // output pairs per zmm
constexpr int kF23M = 4;       // products per output pair

// u[row * row_stride + m * m_stride + j] = U_m of output pair j read from slab row `row` (pairs padded
// to Tpad = 16 * vectors): d0..d3 = slab[2j .. 2j+3], U = (d0 - d2, d1 + d2, d2 - d1, d1 - d3). Even
// and odd slab columns are split by permutes, 16 pairs at a time. u and the strides 64-byte aligned.
inline void f23_transform_rows(const float* slab, int64_t rows, int64_t Wp, int64_t Tpad, int64_t row_stride,
                               int64_t m_stride, float* u) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  for (int64_t row = 0; row < rows; ++row) {
    const float* d = slab + row * Wp;
    float* ur = u + row * row_stride;
    for (int64_t j = 0; j < Tpad; j += kF23Lanes) {
      const __m512 a = _mm512_loadu_ps(d + 2 * j), b = _mm512_loadu_ps(d + 2 * j + 16);
      const __m512 c = _mm512_loadu_ps(d + 2 * j + 2), e = _mm512_loadu_ps(d + 2 * j + 18);
      const __m512 d0 = _mm512_permutex2var_ps(a, even, b), d1 = _mm512_permutex2var_ps(a, odd, b);
      const __m512 d2 = _mm512_permutex2var_ps(c, even, e), d3 = _mm512_permutex2var_ps(c, odd, e);
      _mm512_store_ps(ur + j, _mm512_sub_ps(d0, d2));
      _mm512_store_ps(ur + m_stride + j, _mm512_add_ps(d1, d2));
      _mm512_store_ps(ur + 2 * m_stride + j, _mm512_sub_ps(d2, d1));
      _mm512_store_ps(ur + 3 * m_stride + j, _mm512_sub_ps(d1, d3));
    }
  }
}

// Mask of the first n of 16 lanes (none for n <= 0).
inline __mmask16 f23_lanes_mask(int64_t n) {
  return n >= kF23Lanes ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
}

}  // namespace
}  // namespace ember::cpu
