// Fast float convolutions lowered to SGEMM (variant "im2col"):
//   forward        y_g[Kg, PQ]    = W_g[Kg, CgRS]   * col[CgRS, PQ]
//   backward data  col[CgRS, PQ]  = W_g^T[CgRS, Kg] * dy_g[Kg, PQ], then col2im into dx
//   backward wt    dW_g[Kg, CgRS] = dy_g[Kg, PQ]    * col^T[PQ, CgRS], summed over images
// Output rows are lowered in chunks so that the column buffer stays cache-sized instead of
// Cg*R*S*P*Q floats per image. 1x1 stride-1 unpadded convs use x itself as the column matrix.
// Depthwise convs (one channel per group) go to the direct kernels of conv2d_depthwise_avx2.cpp.
// (Tried and dropped: lowering straight into the GEMM's packed-B layout; its scattered panel writes
// cost as much as the pack they saved, measured on VGG16 conv1_2/conv2_2/conv3_2/conv4_2.)
//
// Threads: with at least as many images as threads (and an even split), each thread takes whole images
// and runs single-threaded GEMMs (no barriers, private column buffers); otherwise images run one after
// another with OpenMP inside im2col and the GEMM.
#include <omp.h>

#include <algorithm>
#include <vector>

#include "kernels/cpu/conv2d_im2col.h"
#include "kernels/cpu/gemm.h"

namespace ember::cpu {
namespace {

using conv_detail::col2im_add;
using conv_detail::im2col;
using conv_detail::thread_scratch;

bool is_pointwise(const Conv2dShape& s) {
  return s.R == 1 && s.S == 1 && s.stride_h == 1 && s.stride_w == 1 && s.pad_h == 0 && s.pad_w == 0;
}

// Output rows per lowering chunk. Small weight matrices: keep the column buffer near L2 size (512 KiB)
// but give the GEMM at least 512 columns; weights too big for L2 are repacked by every GEMM call, so
// very large ones (> 4 MiB) get chunks of up to 16 MiB (whole images at VGG's deep layers) to amortise
// that. Picked from (noisy, shared-machine) measurements on VGG16 shapes: for 64->64 @224 the
// L2-sized buffer beat 4 MiB, for 512->512 @28 whole images beat 224-column chunks.
int64_t rows_per_chunk(const Conv2dShape& s) {
  const int64_t crs = s.C / s.groups * s.R * s.S, weights = s.K / s.groups * crs;
  int64_t cols = std::max<int64_t>((int64_t(1) << 17) / crs, 512);
  if (weights > (int64_t(1) << 20)) cols = std::max(cols, (int64_t(1) << 22) / crs);
  return std::clamp<int64_t>(cols / s.Q(), 1, s.P());
}

bool split_images_across_threads(const Conv2dShape& s) {
  const int nt = omp_get_max_threads();
  return nt > 1 && !omp_in_parallel() && s.N >= nt && (s.N % nt == 0 || s.N >= 4 * nt);
}

struct Dims {
  int64_t P, Q, PQ, HW, Cg, Kg, crs;
  explicit Dims(const Conv2dShape& s)
      : P(s.P()), Q(s.Q()), PQ(P * Q), HW(s.H * s.W), Cg(s.C / s.groups), Kg(s.K / s.groups),
        crs(Cg * s.R * s.S) {}
};

void forward_image(const Conv2dShape& s, const float* x, const float* w, const float* bias, float* y, int64_t n,
                   bool inner_parallel) {
  const Dims d(s);
  const int64_t chunk = rows_per_chunk(s);
  for (int64_t g = 0; g < s.groups; ++g) {
    const float* xg = x + (n * s.C + g * d.Cg) * d.HW;
    const float* wg = w + g * d.Kg * d.crs;
    float* yg = y + (n * s.K + g * d.Kg) * d.PQ;
    if (is_pointwise(s)) {
      sgemm(false, false, d.Kg, d.PQ, d.Cg, 1.f, wg, d.Cg, xg, d.HW, 0.f, yg, d.PQ);
      continue;
    }
    float* col = thread_scratch<0>(d.crs * chunk * d.Q);
    for (int64_t p0 = 0; p0 < d.P; p0 += chunk) {
      const int64_t p1 = std::min(d.P, p0 + chunk), cols = (p1 - p0) * d.Q;
      im2col(s, xg, p0, p1, col, inner_parallel);
      sgemm(false, false, d.Kg, cols, d.crs, 1.f, wg, d.crs, col, cols, 0.f, yg + p0 * d.Q, d.PQ);
    }
  }
  if (bias) {
#pragma omp parallel for schedule(static) if (inner_parallel)
    for (int64_t k = 0; k < s.K; ++k) {
      float* plane = y + (n * s.K + k) * d.PQ;
      for (int64_t i = 0; i < d.PQ; ++i) plane[i] += bias[k];
    }
  }
}

void backward_data_image(const Conv2dShape& s, const float* dy, const float* w, float* dx, int64_t n,
                         bool inner_parallel) {
  const Dims d(s);
  const int64_t chunk = rows_per_chunk(s);
  for (int64_t g = 0; g < s.groups; ++g) {
    const float* dyg = dy + (n * s.K + g * d.Kg) * d.PQ;
    const float* wg = w + g * d.Kg * d.crs;
    float* dxg = dx + (n * s.C + g * d.Cg) * d.HW;
    if (is_pointwise(s)) {
      sgemm(true, false, d.Cg, d.HW, d.Kg, 1.f, wg, d.Cg, dyg, d.PQ, 0.f, dxg, d.HW);
      continue;
    }
    std::fill(dxg, dxg + d.Cg * d.HW, 0.f);
    float* col = thread_scratch<0>(d.crs * chunk * d.Q);
    for (int64_t p0 = 0; p0 < d.P; p0 += chunk) {
      const int64_t p1 = std::min(d.P, p0 + chunk), cols = (p1 - p0) * d.Q;
      sgemm(true, false, d.crs, cols, d.Kg, 1.f, wg, d.crs, dyg + p0 * d.Q, d.PQ, 0.f, col, cols);
      col2im_add(s, col, p0, p1, dxg, inner_parallel);
    }
  }
}

// dw (+)= this image's weight gradient; overwrite == true writes instead of accumulating.
void backward_weight_image(const Conv2dShape& s, const float* x, const float* dy, float* dw, int64_t n,
                           bool overwrite, bool inner_parallel) {
  const Dims d(s);
  const int64_t chunk = rows_per_chunk(s);
  for (int64_t g = 0; g < s.groups; ++g) {
    const float* dyg = dy + (n * s.K + g * d.Kg) * d.PQ;
    const float* xg = x + (n * s.C + g * d.Cg) * d.HW;
    float* dwg = dw + g * d.Kg * d.crs;
    if (is_pointwise(s)) {
      sgemm(false, true, d.Kg, d.Cg, d.PQ, 1.f, dyg, d.PQ, xg, d.HW, overwrite ? 0.f : 1.f, dwg, d.Cg);
      continue;
    }
    float* col = thread_scratch<0>(d.crs * chunk * d.Q);
    for (int64_t p0 = 0; p0 < d.P; p0 += chunk) {
      const int64_t p1 = std::min(d.P, p0 + chunk), cols = (p1 - p0) * d.Q;
      im2col(s, xg, p0, p1, col, inner_parallel);
      const float beta = overwrite && p0 == 0 ? 0.f : 1.f;
      sgemm(false, true, d.Kg, d.crs, cols, 1.f, dyg + p0 * d.Q, d.PQ, col, cols, beta, dwg, d.crs);
    }
  }
}

}  // namespace

namespace conv_detail {
void bias_gradient(const Conv2dShape& s, const float* dy, float* dbias) {
  const int64_t PQ = s.P() * s.Q();
#pragma omp parallel for schedule(static) if (!omp_in_parallel() && s.K * s.N * PQ > 65536)
  for (int64_t k = 0; k < s.K; ++k) {
    // In double, but vectorised: `omp simd` permits the reassociation into several partial sums. One
    // double chain per element ran at an add per 4 cycles (15 ms of conv1_1's 21 ms weight gradient);
    // float partial sums were faster still but missed the 1e-5 bound on a sum that cancels.
    double sum = 0;
    for (int64_t n = 0; n < s.N; ++n) {
      const float* plane = dy + (n * s.K + k) * PQ;
#pragma omp simd reduction(+ : sum)
      for (int64_t i = 0; i < PQ; ++i) sum += double(plane[i]);
    }
    dbias[k] = float(sum);
  }
}

}  // namespace conv_detail

void conv2d_forward_im2col(const Conv2dShape& s, const float* x, const float* w, const float* bias, float* y) {
  if (conv_detail::is_depthwise(s) && kernels::has_avx2()) return conv_detail::depthwise_forward_avx2(s, x, w, bias, y);
  if (split_images_across_threads(s)) {
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < s.N; ++n) forward_image(s, x, w, bias, y, n, false);
  } else {
    for (int64_t n = 0; n < s.N; ++n) forward_image(s, x, w, bias, y, n, true);
  }
}

void conv2d_backward_data_im2col(const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  if (conv_detail::is_depthwise(s) && kernels::has_avx2()) return conv_detail::depthwise_backward_data_avx2(s, dy, w, dx);
  if (split_images_across_threads(s)) {
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < s.N; ++n) backward_data_image(s, dy, w, dx, n, false);
  } else {
    for (int64_t n = 0; n < s.N; ++n) backward_data_image(s, dy, w, dx, n, true);
  }
}

void conv2d_backward_weight_im2col(const Conv2dShape& s, const float* x, const float* dy, float* dw, float* dbias) {
  if (conv_detail::is_depthwise(s) && kernels::has_avx2())
    return conv_detail::depthwise_backward_weight_avx2(s, x, dy, dw, dbias);
  const int64_t dw_size = s.K * (s.C / s.groups) * s.R * s.S;
  if (s.N == 0) std::fill(dw, dw + dw_size, 0.f);
  if (!split_images_across_threads(s)) {
    for (int64_t n = 0; n < s.N; ++n) backward_weight_image(s, x, dy, dw, n, n == 0, true);
  } else {
    // Each thread sums its images into a private buffer (thread 0 straight into dw); then the
    // buffers are added together, split by element across the threads.
    const int nt = omp_get_max_threads();
    std::vector<float*> partial(size_t(nt), nullptr);
#pragma omp parallel num_threads(nt)
    {
      const int tid = omp_get_thread_num();
      float* mine = tid == 0 ? dw : thread_scratch<1>(dw_size);
      bool first = true;
#pragma omp for schedule(static)
      for (int64_t n = 0; n < s.N; ++n) {
        backward_weight_image(s, x, dy, mine, n, first, false);
        first = false;
      }
      partial[size_t(tid)] = first ? nullptr : mine;
#pragma omp barrier
#pragma omp for schedule(static)
      for (int64_t i = 0; i < dw_size; ++i) {
        float sum = partial[0] ? dw[i] : 0.f;
        for (int t = 1; t < nt; ++t)
          if (partial[size_t(t)]) sum += partial[size_t(t)][i];
        dw[i] = sum;
      }
    }
  }
  if (dbias) conv_detail::bias_gradient(s, dy, dbias);
}

}  // namespace ember::cpu
