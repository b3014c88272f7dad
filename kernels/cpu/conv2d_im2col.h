// Internal helpers of the fast float convolutions (conv2d_im2col.cpp, conv2d_depthwise_avx2.cpp, the
// Winograd and direct kernels) and the variants' entry points for conv2d_table.cpp.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/cpu/conv2d.h"

namespace ember::cpu {

// Variant "im2col" (conv2d_im2col.cpp).
void conv2d_forward_im2col(const Conv2dShape&, const float*, const float*, const float*, float*);
void conv2d_backward_data_im2col(const Conv2dShape&, const float*, const float*, float*);
void conv2d_backward_weight_im2col(const Conv2dShape&, const float*, const float*, float*, float*);
// Variant "winograd" (conv2d_winograd_avx2.cpp, conv2d_winograd_wgrad_avx2.cpp); shapes outside its
// domain go to im2col.
void conv2d_forward_winograd(const Conv2dShape&, const float*, const float*, const float*, float*);
void conv2d_backward_data_winograd(const Conv2dShape&, const float*, const float*, float*);
void conv2d_backward_weight_winograd(const Conv2dShape&, const float*, const float*, float*, float*);
// Variant "direct" (conv2d_direct_avx512.cpp): forward only; shapes outside its domain go to im2col.
void conv2d_forward_direct(const Conv2dShape&, const float*, const float*, const float*, float*);
// Variant "direct_f23" (conv2d_direct_f23_avx512.cpp): forward only; the direct kernel with 1-D
// Winograd F(2,3) along each row where it applies (direct_f23_applies), "direct" elsewhere.
void conv2d_forward_direct_f23(const Conv2dShape&, const float*, const float*, const float*, float*);
// Variant "direct" of the weight gradient (conv2d_direct_wgrad_avx512.cpp), same domain as "direct".
void conv2d_backward_weight_direct(const Conv2dShape&, const float*, const float*, float*, float*);
// Variant "direct_f23" of the weight gradient (conv2d_direct_f23_wgrad_avx512.cpp): F(2,3) along rows
// where direct_f23_applies, "direct" elsewhere.
void conv2d_backward_weight_direct_f23(const Conv2dShape&, const float*, const float*, float*, float*);

namespace conv_detail {

namespace {  // internal linkage on purpose: the including files are built with different -m flags, and
             // one shared (linker-chosen) copy could carry AVX2 code into a path run without AVX2
// A grow-only float buffer per thread and slot, reused across calls so the hot path does not allocate.
// 64-byte aligned: large blocks from malloc start 16 bytes past a page, so with plain std::vector
// every other 32-byte load of a row that is a multiple of 8 floats long split a cache line.
template <int Slot>
float* thread_scratch(int64_t floats) {
  static thread_local std::vector<float> buf;
  if (int64_t(buf.size()) < floats + 15) buf.resize(size_t(floats + 15));
  const auto address = reinterpret_cast<std::uintptr_t>(buf.data());
  return buf.data() + ((64 - address % 64) % 64) / sizeof(float);
}

// For the direct kernels: copies the `rows` input rows that output rows from p0 on read, in every
// channel of image n, into a zero-bordered slab of row width Wp:
// slab[c][i][pad_w + w] = x[n][c][p0*stride_h - pad_h + i][w], zero outside the input.
inline void fill_slab(const Conv2dShape& s, const float* x, int64_t n, int64_t p0, int64_t rows, int64_t Wp,
                      float* slab) {
  for (int64_t c = 0; c < s.C; ++c)
    for (int64_t i = 0; i < rows; ++i) {
      float* dst = slab + (c * rows + i) * Wp;
      const int64_t h = p0 * s.stride_h - s.pad_h + i;
      if (h < 0 || h >= s.H) {
        std::memset(dst, 0, size_t(Wp) * sizeof(float));
        continue;
      }
      std::memset(dst, 0, size_t(s.pad_w) * sizeof(float));
      std::memcpy(dst + s.pad_w, x + ((n * s.C + c) * s.H + h) * s.W, size_t(s.W) * sizeof(float));
      std::memset(dst + s.pad_w + s.W, 0, size_t(Wp - s.pad_w - s.W) * sizeof(float));
    }
}

// A direct kernel's tasks: rows_per_task output rows of one image each, N * ceil(P / rows_per_task).
inline int64_t slab_task_count(const Conv2dShape& s, int64_t rows_per_task) {
  return s.N * ((s.P() + rows_per_task - 1) / rows_per_task);
}
// Task `task`: output rows [p0, p1) of image n, which read `slab_rows` input rows; they are copied
// into `slab` (this thread's scratch slot 1, rows of width Wp) by fill_slab.
struct SlabTask {
  int64_t n, p0, p1, slab_rows;
  float* slab;
};
// Image and output rows [p0, p1) of task `task` (nothing copied: for prefetching the next task).
struct TaskRows {
  int64_t n, p0, p1;
};
inline TaskRows slab_task_rows(const Conv2dShape& s, int64_t task, int64_t rows_per_task) {
  const int64_t P = s.P(), chunks = (P + rows_per_task - 1) / rows_per_task;
  const int64_t p0 = task % chunks * rows_per_task;
  return {task / chunks, p0, std::min(P, p0 + rows_per_task)};
}
inline SlabTask slab_task(const Conv2dShape& s, const float* x, int64_t task, int64_t rows_per_task, int64_t Wp) {
  const auto [n, p0, p1] = slab_task_rows(s, task, rows_per_task);
  SlabTask t;
  t.n = n, t.p0 = p0, t.p1 = p1;
  t.slab_rows = (t.p1 - 1 - t.p0) * s.stride_h + (s.R - 1) * s.dil_h + 1;
  t.slab = thread_scratch<1>(s.C * t.slab_rows * Wp);
  fill_slab(s, x, t.n, t.p0, t.slab_rows, Wp, t.slab);
  return t;
}

// Store/load mask of the last 16-lane vector of a row of Q outputs (all lanes when Q % 16 == 0).
inline uint16_t last_vector_mask(int64_t Q) { return Q % 16 ? uint16_t((1u << (Q % 16)) - 1) : uint16_t(0xFFFF); }

// Offset in the slab of a task (slab_rows rows of width Wp per channel) of every tap (c, r, t), in
// that order, relative to the slab position of the output at row 0, column 0.
inline void slab_tap_offsets(const Conv2dShape& s, int64_t slab_rows, int64_t Wp, int64_t* offset) {
  for (int64_t c = 0, i = 0; c < s.C; ++c)
    for (int64_t r = 0; r < s.R; ++r)
      for (int64_t t = 0; t < s.S; ++t, ++i) offset[i] = (c * slab_rows + r * s.dil_h) * Wp + t * s.dil_w;
}

// Whether a direct kernel writes y with non-temporal stores: an output larger than the last-level
// cache goes around it (no read-for-ownership of lines evicted before the next layer reads them;
// +5% on conv1_1 at batch 8, 103 MB of output). Needs y 64-byte aligned and rows of whole vectors
// (Q a multiple of q_multiple floats) so that every store is a whole aligned line.
inline bool stream_output(const Conv2dShape& s, const float* y, int64_t q_multiple) {
  const int64_t bytes = s.N * s.K * s.P() * s.Q() * int64_t(sizeof(float));
  return bytes >= (int64_t(32) << 20) && s.Q() % q_multiple == 0 && reinterpret_cast<uintptr_t>(y) % 64 == 0;
}
}  // namespace

// Lowers output rows [p0, p1) of one image and one group to a column matrix
// col[(c*R + r)*S + t][(p - p0)*Q + q] = x[c][p*stride_h - pad_h + r*dil_h][q*stride_w - pad_w + t*dil_w]
// (zero where the tap falls in the padding). x points at the group's first input channel (Cg planes).
void im2col(const Conv2dShape& s, const float* x, int64_t p0, int64_t p1, float* col, bool parallel);
// The adjoint: dx[c][h][w] += every col entry that im2col would have copied from (c, h, w).
void col2im_add(const Conv2dShape& s, const float* col, int64_t p0, int64_t p1, float* dx, bool parallel);

// dbias[k] = sum over n, p, q of dy[n][k][p][q] (accumulated in double); shared by the weight gradients.
void bias_gradient(const Conv2dShape& s, const float* dy, float* dbias);

// True when the direct depthwise kernels apply: one input and one output channel per group.
inline bool is_depthwise(const Conv2dShape& s) { return s.groups == s.C && s.K == s.C && s.groups > 1; }
void depthwise_forward_avx2(const Conv2dShape& s, const float* x, const float* w, const float* bias, float* y);
void depthwise_backward_data_avx2(const Conv2dShape& s, const float* dy, const float* w, float* dx);
void depthwise_backward_weight_avx2(const Conv2dShape& s, const float* x, const float* dy, float* dw, float* dbias);

// The direct kernel's domain: dense, unit horizontal stride, few taps per output (C*R*S <= 64 with at
// most 7 channels: the first layer of an image model; from 8 channels on Winograd or the GEMM win).
constexpr int64_t kDirectMaxTaps = 64;
inline bool direct_applies(const Conv2dShape& s) {
  return s.groups == 1 && s.stride_w == 1 && s.C < 8 && s.C * s.R * s.S <= kDirectMaxTaps;
}
// ...and the part of it where rows are 3 taps wide and contiguous (any R, stride_h, dil_h, padding).
inline bool direct_f23_applies(const Conv2dShape& s) { return direct_applies(s) && s.S == 3 && s.dil_w == 1; }

// Range [lo, hi) of output columns q whose input column q*stride - pad + tap*dil lies in [0, W).
struct ValidRange {
  int64_t lo, hi;
};
inline ValidRange valid_outputs(int64_t out_size, int64_t in_size, int64_t stride, int64_t pad, int64_t tap_offset) {
  const int64_t off = pad - tap_offset;  // input index = o*stride - off
  int64_t lo = off <= 0 ? 0 : (off + stride - 1) / stride;
  int64_t hi = in_size - 1 + off < 0 ? 0 : (in_size - 1 + off) / stride + 1;
  if (hi > out_size) hi = out_size;
  if (lo > hi) lo = hi;
  return {lo, hi};
}

}  // namespace conv_detail
}  // namespace ember::cpu
