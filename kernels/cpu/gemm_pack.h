// Internal to the fast SGEMM variants (gemm_avx2.cpp, gemm_avx512.cpp): packing of A/B panels and the
// cache-blocked, OpenMP-parallel driver around a register-blocked micro-kernel (the BLIS loop nest).
//
// Everything lives in an anonymous namespace on purpose: each ISA translation unit compiles its own
// copy with its own -m flags, so the linker can never merge the AVX-512 build of a helper into the
// AVX2 path (which would crash on a CPU without AVX-512).
//
// A micro-kernel is a type with
//   static constexpr int MR, NR;   // register tile (rows of C x columns of C)
//   static void run(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float beta);
// computing the full MR x NR tile C = a_panel * b_panel + beta * C (beta == 0: C is write-only).
//
// The AVX2 packing paths are compiled when the including file is built with -mavx2, or when it
// defines EMBER_GEMM_PACK_FORCE_AVX2 inside a `#pragma GCC target("avx2,fma")` region (the test does).
#pragma once
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <new>

namespace ember::cpu::gemm_detail {
namespace {

struct Blocking {
  int64_t MC, KC, NC;  // rows of A kept in L2, depth kept in L1 per micro-panel, columns of B kept in L3
};

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// Depth per block: evened out over K, and a depth up to a third over KC stays one block, so the C
// tile is loaded and stored once instead of twice (K = 196, the weight gradient of a 14x14 layer per
// image: 15-20% faster than 2 x 98).
inline int64_t depth_step(int64_t K, int64_t KC) { return 3 * K <= 4 * KC ? K : ceil_div(K, ceil_div(K, KC)); }

// A grow-only, 64-byte aligned scratch buffer; one per thread, reused across calls so that the hot
// path never allocates.
struct ScratchBuffer {
  float* data = nullptr;
  int64_t capacity = 0;
  ~ScratchBuffer() { std::free(data); }
  float* get(int64_t floats) {
    if (floats > capacity) {
      std::free(data);
      capacity = round_up(floats, 16);
      data = static_cast<float*>(std::aligned_alloc(64, size_t(capacity) * sizeof(float)));
      if (!data) throw std::bad_alloc();
    }
    return data;
  }
};
inline ScratchBuffer& packed_a_buffer() {
  static thread_local ScratchBuffer buf;
  return buf;
}
inline ScratchBuffer& packed_b_buffer() {
  static thread_local ScratchBuffer buf;
  return buf;
}

#if defined(__AVX2__) || defined(EMBER_GEMM_PACK_FORCE_AVX2)
// dst[i*ld_dst + j] = src[j*ld_src + i] for an 8x8 block.
inline void transpose8x8(const float* src, int64_t ld_src, float* dst, int64_t ld_dst) {
  __m256 r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * ld_src);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    _mm256_storeu_ps(dst + i * ld_dst, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
    _mm256_storeu_ps(dst + (i + 4) * ld_dst, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
  }
}

// dst[i*8 + j] = alpha * rows[j][i] for an 8x8 block given by row pointers.
inline void transpose8x8_rows(const float* const rows[8], __m256 alpha, float* dst) {
  __m256 r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_mul_ps(alpha, _mm256_loadu_ps(rows[i]));
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    _mm256_store_ps(dst + i * 8, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
    _mm256_store_ps(dst + (i + 4) * 8, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
  }
}
#endif

// Packs alpha * op(A)[i0:i0+mc, p0:p0+kc] into row panels of MR: panel layout [k][MR], rows past the
// matrix edge zero-filled so the micro-kernel always runs a full tile.
template <int MR>
void pack_a(bool trans_a, const float* A, int64_t lda, int64_t i0, int64_t mc, int64_t p0, int64_t kc, float alpha,
            float* dst) {
  for (int64_t ir = 0; ir < mc; ir += MR) {
    const int64_t mr = std::min<int64_t>(MR, mc - ir);
    float* d = dst + ir * kc;
    if (!trans_a) {  // op(A)(i,k) = A[i*lda + k]: each row is contiguous in k
#if defined(__AVX2__) || defined(EMBER_GEMM_PACK_FORCE_AVX2)
      // 8 k at a time: 8x8 register transposes of up to 8 rows (missing rows read as zeros).
      alignas(32) static const float zeros[8] = {};
      alignas(32) float block[8 * 8];
      const __m256 va = _mm256_set1_ps(alpha);
      int64_t k0 = 0;
      for (; k0 + 8 <= kc; k0 += 8)
        for (int64_t r0 = 0; r0 < MR; r0 += 8) {
          const float* rows[8];
          for (int64_t i = 0; i < 8; ++i)
            rows[i] = r0 + i < mr ? A + (i0 + ir + r0 + i) * lda + p0 + k0 : zeros;
          transpose8x8_rows(rows, va, block);
          const int64_t width = std::min<int64_t>(8, MR - r0);
          for (int64_t kk = 0; kk < 8; ++kk) std::memcpy(d + (k0 + kk) * MR + r0, block + kk * 8, sizeof(float) * width);
        }
      for (int64_t r = 0; r < MR; ++r) {
        const float* src = A + (i0 + ir + r) * lda + p0;
        for (int64_t k = k0; k < kc; ++k) d[k * MR + r] = r < mr ? alpha * src[k] : 0.f;
      }
      continue;
#endif
      for (int64_t r = 0; r < mr; ++r) {
        const float* src = A + (i0 + ir + r) * lda + p0;
        for (int64_t k = 0; k < kc; ++k) d[k * MR + r] = alpha * src[k];
      }
      for (int64_t r = mr; r < MR; ++r)
        for (int64_t k = 0; k < kc; ++k) d[k * MR + r] = 0.f;
    } else {  // op(A)(i,k) = A[k*lda + i]: for fixed k the MR rows are contiguous
      for (int64_t k = 0; k < kc; ++k) {
        const float* src = A + (p0 + k) * lda + i0 + ir;
        float* dk = d + k * MR;
        for (int64_t r = 0; r < mr; ++r) dk[r] = alpha * src[r];
        for (int64_t r = mr; r < MR; ++r) dk[r] = 0.f;
      }
    }
  }
}


// Packs one NR-wide column panel of op(B) = B^T, i.e. op(B)[p0:p0+kc, j0:j0+nr] with
// op(B)(k,j) = B[j*ldb + k], as [k][NR], zero-filling columns past nr.
template <int NR>
void pack_bt_panel(const float* B, int64_t ldb, int64_t p0, int64_t kc, int64_t j0, int64_t nr, float* d) {
#if defined(__AVX2__) || defined(EMBER_GEMM_PACK_FORCE_AVX2)
  if (nr == NR && NR % 8 == 0) {  // 8x8 register transposes instead of strided scalar stores
    int64_t k = 0;
    for (; k + 8 <= kc; k += 8)
      for (int64_t c = 0; c < NR; c += 8) transpose8x8(B + (j0 + c) * ldb + p0 + k, ldb, d + k * NR + c, NR);
    for (; k < kc; ++k)
      for (int64_t c = 0; c < NR; ++c) d[k * NR + c] = B[(j0 + c) * ldb + p0 + k];
    return;
  }
#endif
  for (int64_t c = 0; c < nr; ++c) {
    const float* src = B + (j0 + c) * ldb + p0;
    for (int64_t k = 0; k < kc; ++k) d[k * NR + c] = src[k];
  }
  for (int64_t c = nr; c < NR; ++c)
    for (int64_t k = 0; k < kc; ++k) d[k * NR + c] = 0.f;
}

// Packs row k of op(B) = B (not transposed) into every panel at once: the source row is read front to
// back (prefetcher-friendly, unlike walking down a panel's rows ldb apart, which measured slower on
// the conv shapes); dst = panel 0's row k.
template <int NR>
void pack_b_row(const float* src, int64_t nc, int64_t kc, float* dst) {
  int64_t j = 0;
  for (; j + NR <= nc; j += NR, dst += NR * kc) std::memcpy(dst, src + j, sizeof(float) * NR);
  if (j < nc) {
    for (int64_t c = 0; c < NR; ++c) dst[c] = j + c < nc ? src[j + c] : 0.f;
  }
}

// C = beta * C for the degenerate cases (K == 0 or alpha == 0); beta == 0 overwrites NaN too.
inline void scale_c(int64_t M, int64_t N, float beta, float* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i) {
    float* c = C + i * ldc;
    if (beta == 0.f)
      std::fill(c, c + N, 0.f);
    else if (beta != 1.f)
      for (int64_t j = 0; j < N; ++j) c[j] *= beta;
  }
}

// Runs the micro-kernel on a tile that may be cut by the matrix edge (mr <= MR, nr <= NR): partial
// tiles are computed into a local buffer and merged so the kernel itself has no edge logic.
template <class Kernel>
inline void run_tile(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float beta, int64_t mr,
                     int64_t nr) {
  constexpr int MR = Kernel::MR, NR = Kernel::NR;
  if (mr == MR && nr == NR) {
    Kernel::run(kc, a, b, c, ldc, beta);
    return;
  }
  alignas(64) float tile[MR * NR];
  Kernel::run(kc, a, b, tile, NR, 0.f);
  for (int64_t i = 0; i < mr; ++i)
    for (int64_t j = 0; j < nr; ++j)
      c[i * ldc + j] = (beta == 0.f ? 0.f : beta * c[i * ldc + j]) + tile[i * NR + j];
}

// Tuning hook: EMBER_GEMM_BLOCKING="MC,KC,NC" replaces the built-in cache blocking (read once).
inline Blocking blocking_override(Blocking fallback) {
  static const char* env = std::getenv("EMBER_GEMM_BLOCKING");
  Blocking b = fallback;
  if (env && std::sscanf(env, "%ld,%ld,%ld", &b.MC, &b.KC, &b.NC) == 3 && b.MC > 0 && b.KC > 0 && b.NC > 0) return b;
  return fallback;
}

// Minimum multiply-adds before a second thread is worth waking up.
constexpr double kParallelMinMacs = 64.0 * 64.0 * 64.0;

template <class Kernel>
void gemm_blocked(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                  int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc, Blocking blk) {
  constexpr int MR = Kernel::MR, NR = Kernel::NR;
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == 0.f) {
    scale_c(M, N, beta, C, ldc);
    return;
  }
  blk = blocking_override(blk);
  // Nested calls (e.g. from a convolution that already splits images across threads) stay serial.
  const bool go_parallel = !omp_in_parallel() && omp_get_max_threads() > 1 && double(M) * N * K >= kParallelMinMacs;
  const int nthreads = go_parallel ? omp_get_max_threads() : 1;
  // Block sizes are evened out over the problem so that the last block is not a sliver. With enough
  // rows, the row-block count is made a multiple of the thread count so that threads split rows
  // (each packs only its own A blocks) rather than columns.
  int64_t m_blocks0 = ceil_div(M, blk.MC);
  if (nthreads > 1 && M >= nthreads * blk.MC) m_blocks0 = round_up(m_blocks0, nthreads);
  const int64_t mc_step = round_up(ceil_div(M, m_blocks0), MR);
  const int64_t m_blocks = ceil_div(M, mc_step);
  const int64_t kc_step = depth_step(K, blk.KC);
  const int64_t nc_step = round_up(ceil_div(N, ceil_div(N, blk.NC)), NR);
  float* packed_b = packed_b_buffer().get(kc_step * nc_step);

#pragma omp parallel num_threads(nthreads) if (nthreads > 1)
  {
    float* packed_a = packed_a_buffer().get(mc_step * kc_step);
    const int nt = omp_get_num_threads();
    // When the row blocks do not divide evenly among threads (small M above all), every row block is
    // also split by columns so that all cores get work.
    const int64_t n_splits = (m_blocks % nt == 0) ? 1 : nt;
    for (int64_t jc = 0; jc < N; jc += nc_step) {
      const int64_t nc = std::min(nc_step, N - jc);
      const int64_t n_panels = ceil_div(nc, NR);
      for (int64_t pc = 0; pc < K; pc += kc_step) {
        const int64_t kc = std::min(kc_step, K - pc);
        if (trans_b) {
#pragma omp for schedule(static)
          for (int64_t jp = 0; jp < n_panels; ++jp)
            pack_bt_panel<NR>(B, ldb, pc, kc, jc + jp * NR, std::min<int64_t>(NR, nc - jp * NR),
                              packed_b + jp * NR * kc);
        } else {
#pragma omp for schedule(static)
          for (int64_t k = 0; k < kc; ++k) pack_b_row<NR>(B + (pc + k) * ldb + jc, nc, kc, packed_b + k * NR);
        }
        // Later depth blocks accumulate onto the first one's result.
        const float beta_k = pc == 0 ? beta : 1.f;
        int64_t packed_block = -1;
#pragma omp for schedule(static)
        for (int64_t item = 0; item < m_blocks * n_splits; ++item) {
          const int64_t ib = item / n_splits, split = item % n_splits;
          const int64_t i0 = ib * mc_step, mc = std::min(mc_step, M - i0);
          if (ib != packed_block) {
            pack_a<MR>(trans_a, A, lda, i0, mc, pc, kc, alpha, packed_a);
            packed_block = ib;
          }
          const int64_t jp_begin = n_panels * split / n_splits, jp_end = n_panels * (split + 1) / n_splits;
          for (int64_t jp = jp_begin; jp < jp_end; ++jp) {  // B micro-panel stays in L1 ...
            const int64_t j0 = jc + jp * NR, nr = std::min<int64_t>(NR, N - j0);
            for (int64_t ir = 0; ir < mc; ir += MR)  // ... while A micro-panels stream from L2
              run_tile<Kernel>(kc, packed_a + ir * kc, packed_b + jp * NR * kc, C + (i0 + ir) * ldc + j0, ldc,
                               beta_k, std::min<int64_t>(MR, mc - ir), nr);
          }
        }
      }
    }
  }
}

// C = A * B + beta * C on operands already packed by the caller (layout in gemm.h, sgemm_packed):
// the same loop nest as gemm_blocked without the packing, serial. Depth blocks of about KC keep a B
// micro-panel in L1 while the A panels stream from L2.
template <class Kernel>
void gemm_prepacked(int64_t M, int64_t N, int64_t K, const float* Ap, const float* Bp, float beta, float* C,
                    int64_t ldc, int64_t KC) {
  constexpr int MR = Kernel::MR, NR = Kernel::NR;
  if (M <= 0 || N <= 0) return;
  if (K <= 0) return scale_c(M, N, beta, C, ldc);
  const int64_t kc_step = depth_step(K, KC);
  for (int64_t pc = 0; pc < K; pc += kc_step) {
    const int64_t kc = std::min(kc_step, K - pc);
    const float beta_k = pc == 0 ? beta : 1.f;
    for (int64_t j0 = 0; j0 < N; j0 += NR)
      for (int64_t i0 = 0; i0 < M; i0 += MR)
        run_tile<Kernel>(kc, Ap + ((i0 / MR) * K + pc) * MR, Bp + ((j0 / NR) * K + pc) * NR, C + i0 * ldc + j0, ldc,
                         beta_k, std::min<int64_t>(MR, M - i0), std::min<int64_t>(NR, N - j0));
  }
}

// Plain loops for problems too small to amortise packing (compiled with the caller's ISA flags, so
// the inner j loop vectorises).
inline void gemm_small(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                       int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i) {
    float* c = C + i * ldc;
    if (beta == 0.f)
      std::fill(c, c + N, 0.f);
    else if (beta != 1.f)
      for (int64_t j = 0; j < N; ++j) c[j] *= beta;
    for (int64_t k = 0; k < K; ++k) {
      const float a = alpha * (trans_a ? A[k * lda + i] : A[i * lda + k]);
      if (!trans_b) {
        const float* b = B + k * ldb;
        for (int64_t j = 0; j < N; ++j) c[j] += a * b[j];
      } else {
        for (int64_t j = 0; j < N; ++j) c[j] += a * B[j * ldb + k];
      }
    }
  }
}

}  // namespace
}  // namespace ember::cpu::gemm_detail
