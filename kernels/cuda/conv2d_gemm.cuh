// Convolution as implicit GEMM: the three conv passes are GEMMs whose operands are gathered on
// the fly from NCHW / KCRS tensors (no im2col buffer). A "problem" says how to read element
// (row, k) of A, (k, col) of B and where result (row, col) goes, per group; the tile engines in
// conv2d_simt.cu and conv2d_tc.cu only know this interface, so each pass is written once.
//
//   pass       rows (M)        cols          depth (K)       A gathered from   B from
//   forward    N*P*Q pixels    K/g out-ch    C/g*R*S         x                 w
//   bwd data   N*H*W pixels    C/g in-ch     K/g*R*S         dy (strided)      w
//   bwd weight K/g out-ch      C/g*R*S       N*P*Q (split)   dy                x
// All index math is int32: launchers reject tensors of 2^31 elements or more. The problems are
// __host__ __device__ so the host emulation in conv2d_common.cu can check them without a GPU.
#pragma once
#include "kernels/cuda/conv2d_dispatch.h"
#include "kernels/cuda/conv2d_tiles.cuh"
#include "kernels/cuda/fast_div.cuh"
#include "kernels/cuda/runtime.h"

namespace ember::cuda::conv {

struct Geom {
  int N, C, H, W, K, R, S, P, Q;
  int stride_h, stride_w, pad_h, pad_w, dil_h, dil_w;
  int groups, Cg, Kg;  // channels per group
  // Dividers for the gathers' index splits (fast_div.cuh), set by make_geom.
  FastDiv div_Q, div_P, div_W, div_H, div_S, div_R, div_RS, div_PQ, div_stride_h, div_stride_w;
  FastDiv div_K, div_C, div_Kg;  // the depthwise kernels' channel splits

  // output pixel row = (n * P + p) * Q + q; input pixel row = (n * H + h) * W + w;
  // depth index k = (c * R + r) * S + s (c: a channel of the group)
  __host__ __device__ void split_output(int row, int& n, int& p, int& q) const { split3(row, div_Q, div_P, n, p, q); }
  __host__ __device__ void split_input(int row, int& n, int& h, int& w) const { split3(row, div_W, div_H, n, h, w); }
  __host__ __device__ void split_tap(int k, int& c, int& r, int& s) const { split3(k, div_S, div_R, c, r, s); }
};
Geom make_geom(const Conv2dShape& s, const char* pass);  // validates, throws naming the shape

struct ForwardProblem {
  Geom g;
  const float* x;
  const float* w;
  const float* bias;
  float* y;
  // Which index is contiguous in memory (conv2d_tiles.cuh): A's pixels, B's (c, r, s) rows of w.
  static constexpr bool kAAlongDepth = false, kBAlongDepth = true;
  __host__ __device__ int rows() const { return g.N * g.P * g.Q; }
  __host__ __device__ int cols() const { return g.Kg; }
  __host__ __device__ int depth() const { return g.Cg * g.R * g.S; }
  __host__ __device__ float a(int grp, int row, int k) const {
    int n, p, q, c, r, s;
    g.split_output(row, n, p, q);
    g.split_tap(k, c, r, s);
    const int h = p * g.stride_h - g.pad_h + r * g.dil_h, w_ = q * g.stride_w - g.pad_w + s * g.dil_w;
    if (h < 0 || h >= g.H || w_ < 0 || w_ >= g.W) return 0.f;  // zero padding
    return x[((n * g.C + grp * g.Cg + c) * g.H + h) * g.W + w_];
  }
  __host__ __device__ float b(int grp, int k, int col) const { return w[(grp * g.Kg + col) * depth() + k]; }
  __host__ __device__ void store(int grp, int row, int col, float v) const {
    int n, p, q;
    g.split_output(row, n, p, q);
    const int k = grp * g.Kg + col;
    y[((n * g.K + k) * g.P + p) * g.Q + q] = v + (bias ? bias[k] : 0.f);
  }
};

struct BackwardDataProblem {
  Geom g;
  const float* dy;
  const float* w;
  float* dx;
  static constexpr bool kAAlongDepth = false, kBAlongDepth = true;  // dy's pixels; w's runs of R*S
  __host__ __device__ int rows() const { return g.N * g.H * g.W; }
  __host__ __device__ int cols() const { return g.Cg; }
  __host__ __device__ int depth() const { return g.Kg * g.R * g.S; }
  // dx[n,c,h,w] collects dy[n,k,p,q] * w[k,c,r,s] for every p with p*stride - pad + r*dil == h.
  __host__ __device__ float a(int grp, int row, int k) const {
    int n, h, wx, kk, r, s;
    g.split_input(row, n, h, wx);
    g.split_tap(k, kk, r, s);
    const int ph = h + g.pad_h - r * g.dil_h, pw = wx + g.pad_w - s * g.dil_w;
    if (ph < 0 || pw < 0) return 0.f;
    int p, q, ph_rem, pw_rem;
    g.div_stride_h.divmod(ph, p, ph_rem);
    g.div_stride_w.divmod(pw, q, pw_rem);
    if (ph_rem != 0 || pw_rem != 0 || p >= g.P || q >= g.Q) return 0.f;
    return dy[((n * g.K + grp * g.Kg + kk) * g.P + p) * g.Q + q];
  }
  __host__ __device__ float b(int grp, int k, int col) const {
    int kk, rs;
    g.div_RS.divmod(k, kk, rs);
    return w[((grp * g.Kg + kk) * g.Cg + col) * g.R * g.S + rs];
  }
  __host__ __device__ void store(int grp, int row, int col, float v) const {
    int n, h, wx;
    g.split_input(row, n, h, wx);
    dx[((n * g.C + grp * g.Cg + col) * g.H + h) * g.W + wx] = v;
  }
};

// The depth N*P*Q is long and rows*cols small, so blocks split the depth and add their partial
// sums into dw (zeroed first) with atomics: not bitwise deterministic, but well within FP32 bounds.
struct BackwardWeightProblem {
  Geom g;
  const float* x;
  const float* dy;
  float* dw;
  static constexpr bool kAAlongDepth = true, kBAlongDepth = true;  // both walk N*P*Q pixels
  __host__ __device__ int rows() const { return g.Kg; }
  __host__ __device__ int cols() const { return g.Cg * g.R * g.S; }
  __host__ __device__ int depth() const { return g.N * g.P * g.Q; }
  __host__ __device__ float a(int grp, int row, int k) const {
    int n, pq;
    g.div_PQ.divmod(k, n, pq);
    return dy[(n * g.K + grp * g.Kg + row) * g.P * g.Q + pq];
  }
  __host__ __device__ float b(int grp, int k, int col) const {
    int n, p, q, c, r, s;
    g.split_output(k, n, p, q);
    g.split_tap(col, c, r, s);
    const int h = p * g.stride_h - g.pad_h + r * g.dil_h, w_ = q * g.stride_w - g.pad_w + s * g.dil_w;
    if (h < 0 || h >= g.H || w_ < 0 || w_ >= g.W) return 0.f;
    return x[((n * g.C + grp * g.Cg + c) * g.H + h) * g.W + w_];
  }
  __host__ __device__ void store(int grp, int row, int col, float v) const {
#ifdef __CUDA_ARCH__
    atomicAdd(&dw[(grp * g.Kg + row) * cols() + col], v);
#else
    dw[(grp * g.Kg + row) * cols() + col] += v;  // host emulation (conv2d_common.cu)
#endif
  }
};

// How the depth of a GEMM is cut across blocks (gridDim.z = groups * splits).
struct DepthSplit {
  int splits = 1;
  int chunk = 0;  // depth per split, a multiple of the tile depth
};
DepthSplit plan_depth_split(int64_t tiles_per_group, int groups, int64_t depth, int tile_k, bool allow_split);

// dbias[k] = sum over n, p, q of dy[n, k, p, q] (write-only).
void bias_grad(const Geom& g, const float* dy, float* dbias);

// Depthwise-style convs (C/groups == 1) make GEMM tiles almost empty; these direct kernels
// (conv2d_depthwise.cu) handle them for both ember variants.
void depthwise_forward(const Geom& g, const float* x, const float* w, const float* bias, float* y);
void depthwise_backward_data(const Geom& g, const float* dy, const float* w, float* dx);
void depthwise_backward_weight(const Geom& g, const float* x, const float* dy, float* dw);

}  // namespace ember::cuda::conv
